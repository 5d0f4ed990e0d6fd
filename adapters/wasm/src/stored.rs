//! The snapshot as the facade stores it: base64 text (standard alphabet, padded), the
//! string the facade has always stored, so stored sessions survive an upgrade.
//!
//! Written here rather than taken from the `base64` crate for size: in the module, the
//! crate's encoder and decoder cost 4.9 KB of wasm after `wasm-opt -Oz` (45,116 bytes
//! against 40,172 without either; `base64ct` 2.6 KB), this codec 0.5 KB, and the Mini
//! Program budget is 52,000 bytes for the module and the JS together. The tests check it
//! against the crate.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// The length of the text of `n` bytes.
pub const fn text_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

/// Writes the text of `bytes` at the start of `out`; its length, or `None` if `out` is
/// too short.
pub fn encode(bytes: &[u8], out: &mut [u8]) -> Option<usize> {
    let n = text_len(bytes.len());
    let out = out.get_mut(..n)?;
    for (chunk, quad) in bytes.chunks(3).zip(out.chunks_mut(4)) {
        let byte = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let v = byte(0) << 16 | byte(1) << 8 | byte(2);
        for (i, c) in quad.iter_mut().enumerate() {
            // `i` symbols carry the bits of `i` bytes (and one more); the rest is padding.
            *c = if i <= chunk.len() {
                ALPHABET[(v >> (18 - 6 * i) & 63) as usize]
            } else {
                b'='
            };
        }
    }
    Some(n)
}

/// The text of `bytes` (host builds: tests, the fuzz target).
#[cfg(not(target_arch = "wasm32"))]
pub fn text(bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![0; text_len(bytes.len())];
    encode(bytes, &mut out);
    out
}

/// Why stored text gives no snapshot bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::exhaustive_enums, reason = "the two ways decoding fails")]
pub enum Undecodable {
    /// A character outside the alphabet (padding aside).
    NotBase64,
    /// More bytes than `out` holds.
    TooLong,
}

/// Decodes `text` into the start of `out`; the number of bytes. As the facade's own
/// decoder did: padding is optional (trailing `=`s are dropped) and the unused low bits
/// of the last symbol are ignored.
pub fn decode(text: &[u8], out: &mut [u8]) -> Result<usize, Undecodable> {
    let end = text.iter().rposition(|&c| c != b'=').map_or(0, |i| i + 1);
    let (mut acc, mut bits, mut n) = (0u32, 0, 0);
    for &c in &text[..end] {
        let v = ALPHABET
            .iter()
            .position(|&a| a == c)
            .ok_or(Undecodable::NotBase64)?;
        acc = (acc << 6 | v as u32) & 0xFFFF;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            *out.get_mut(n).ok_or(Undecodable::TooLong)? = (acc >> bits) as u8;
            n += 1;
        }
    }
    Ok(n)
}
