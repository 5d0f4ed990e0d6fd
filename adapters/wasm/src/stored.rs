//! The snapshot as the facade stores it: base64 text (the core's [`base64`](cloudbase_auth_core::base64) codec:
//! standard alphabet, padded), the string the facade has always stored, so stored
//! sessions survive an upgrade.

pub use cloudbase_auth_core::base64::{Undecodable, decode, encode, text_len};

/// The text of `bytes` (host builds: tests, the fuzz target).
#[cfg(not(target_arch = "wasm32"))]
pub fn text(bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![0; text_len(bytes.len())];
    encode(bytes, &mut out);
    out
}
