//! # cloudbase-auth-wasm
//!
//! [`cloudbase_auth_core`] as a WebAssembly module for WeChat Mini Programs
//! (`WXWebAssembly`), Node and browsers: this crate is the logic of the module's exports,
//! as plain functions over **one** static [`Engine`](cloudbase_auth_core::Engine); the
//! cdylib in `module/` exports each of them with the C ABI under the same name. No
//! wasm-bindgen, **no imports**. The JS facade (`js/index.js`) moves bytes, time and
//! randomness; every CloudBase path, header and JSON field is written by the core.
//!
//! ## Memory
//!
//! Static memory holds the engine, a private poll buffer the engine writes requests
//! into, and the **exchange buffer** ([`abi::EXCHANGE_LEN`] bytes at [`cba_buf`]), the
//! only memory the host touches. The host writes inputs there and passes `(ptr, len)`
//! pairs (`ptr` is an address inside the exchange buffer); every export validates them,
//! so a wrong pointer, length, time or UTF-8 string is a typed error, never a trap.
//! Exports that produce data write a **record** at the start of the exchange buffer:
//! items one after another, no padding, each a `num` (`f64`, 8 bytes little-endian) or a
//! `str` (a `u32` little-endian byte length, then the bytes). The layouts are declared
//! once, in [`abi`]:
//!
//! | export (return value) | record |
//! |---|---|
//! | [`cba_poll`] kind `k` (the core's [output code](cloudbase_auth_core::code)) | [`abi::OUTPUTS`]`[k]`: 0 [timeout](abi::TIMEOUT), 1 [transmit](abi::TRANSMIT), 2 [persist](abi::PERSIST) (the snapshot as base64 text), 3 clear storage, 4 [state changed](abi::CHANGED), 5 [completed](abi::COMPLETED), 6 session replaced |
//! | [`cba_session`] `1` (`0`: no session) | [`abi::SESSION`] |
//! | [`cba_user`] `1` (`0`: no user) | [`abi::USER`] |
//! | [`cba_default_origin`] `1` (`0`: before init) | [`abi::ORIGIN`] |
//! | any export returning a negative value | [`abi::ERROR`] |
//!
//! ## Run loop
//!
//! Inputs are `cba_init`, `cba_restore`, the operations, `cba_handle_response`,
//! `cba_handle_transport_error` and `cba_handle_timeout`. After **every** input, whatever
//! it returned, the host calls [`cba_poll`] until it returns `0` (the engine's drain rule);
//! an input before that is refused with [`abi::arg::NOT_DRAINED`] and changes nothing.
//! The timeout record's deadline is when to call `cba_handle_timeout` next. Reads
//! (`cba_login_state`, `cba_session`, `cba_user`, `cba_default_origin`,
//! `cba_is_signed_in`, `cba_settled_until`) may come at any time; every export overwrites the record of the
//! previous one.
//!
//! ## Codes
//!
//! * Return values: exports that start an operation return the `OpId` (≥ 1, as `f64`);
//!   the others return `0`/`1` as documented. Negative: `-(class * 256 + sub)`
//!   ([`abi::error_return`]), and the error record is in the exchange buffer.
//! * Login states, output kinds, completions, error classes and sub-codes, server error
//!   kinds: the core's stable codes ([`cloudbase_auth_core::code`]). Class 1 is this
//!   module's own: a bad value from the host ([`abi::arg`]).
//! * The names the JS facade gives them: [`abi::STATE_NAMES`], [`abi::CLASS_NAMES`],
//!   [`abi::MISUSE_NAMES`], [`abi::OUTPUT_NAMES`]; `js/index.js` holds a copy
//!   ([`abi::js_tables`]) that the tests check.
//!
//! Time is Unix milliseconds as an `f64` (JS `Date.now()`), integral or not, in
//! `0..=2^53`. Request ids travel as two `u32`s (generation, seq).
//!
//! On the host (`cargo test`, a native fuzz target) the same exports work over a
//! `Mutex`; [`with_exchange`] gives safe access to the exchange buffer and [`reader`]
//! reads records back.

#![cfg_attr(target_arch = "wasm32", no_std)]

#[cfg(all(target_arch = "wasm32", target_feature = "atomics"))]
compile_error!("one static engine without locks: build without the `atomics` target feature");

pub mod abi;
mod arena;
pub mod exports;
mod host;
#[cfg(not(target_arch = "wasm32"))]
pub mod reader;
mod record;
pub mod stored;

pub use exports::*;

/// Safe access to the exchange buffer (for native callers: tests, a fuzz target). Do
/// not call exports from `f`.
pub fn with_exchange<R>(f: impl FnOnce(&mut [u8]) -> R) -> R {
    arena::with(|h| f(&mut h.xbuf[..]))
}

#[cfg(test)]
mod tests;

/// The body of the `wasm_abi` fuzz target (built for this crate's tests and under
/// cargo-fuzz's `--cfg fuzzing`).
#[cfg(all(not(target_arch = "wasm32"), any(test, fuzzing)))]
pub mod fuzzing;
