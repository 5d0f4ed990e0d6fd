//! Base64 (standard alphabet, padded): the one codec of the workspace, for the `Basic`
//! client credentials of the automatic anonymous sign-in and for the text form in which
//! the wasm facade keeps a snapshot in Mini Program storage.
//!
//! Written here rather than taken from a crate for size, measured in the Mini Program
//! module after `wasm-opt -Oz`: the `base64` crate's encoder and decoder cost 4.9 KB,
//! `base64ct`'s 2.6 KB, this codec about 0.5 KB, against a budget of 55,300 bytes for
//! the module and its JS together. The tests check it against the `base64` crate.

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

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::DecodePaddingMode;
    use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
    use proptest::prelude::*;
    use std::string::String;
    use std::vec;
    use std::vec::Vec;

    /// What the facade's earlier decoder accepted: padding optional, stray low bits ignored.
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );

    #[test]
    fn every_length_encodes_as_the_crate_does_and_decodes_back() {
        for n in 0..70 {
            let bytes: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            let t = text(&bytes);
            assert_eq!(t.len(), text_len(n));
            assert_eq!(
                String::from_utf8(t.clone()).unwrap(),
                STANDARD.encode(&bytes)
            );
            let mut out = vec![0; n];
            assert_eq!(decode(&t, &mut out), Ok(n));
            assert_eq!(out, bytes);
        }
    }

    #[test]
    fn what_is_not_base64_or_too_long_is_undecodable() {
        let mut out = [0; 8];
        for bad in [&b"%%%"[..], b"ab cd", "中文".as_bytes(), b"AA=A", b"AAAA\n"] {
            assert_eq!(
                decode(bad, &mut out),
                Err(Undecodable::NotBase64),
                "{bad:?}"
            );
        }
        assert_eq!(decode(b"", &mut out), Ok(0));
        assert_eq!(decode(b"====", &mut out), Ok(0));
        assert_eq!(decode(&text(&[1; 9]), &mut out), Err(Undecodable::TooLong));
        assert_eq!(
            encode(&[1; 9], &mut [0; 11]),
            None,
            "12 bytes of text do not fit 11"
        );
    }

    proptest! {
        #[test]
        fn encoding_matches_the_crate(bytes in proptest::collection::vec(any::<u8>(), 0..3100)) {
            let t = text(&bytes);
            prop_assert_eq!(String::from_utf8(t.clone()).unwrap(), STANDARD.encode(&bytes));
            let mut out = vec![0; bytes.len()];
            prop_assert_eq!(decode(&t, &mut out), Ok(bytes.len()));
            prop_assert_eq!(out, bytes);
        }

        /// Whatever the crate decodes leniently, this decoder reads the same.
        #[test]
        fn decoding_matches_the_crate(t in "[A-Za-z0-9+/]{0,64}={0,2}") {
            if let Ok(bytes) = LENIENT.decode(&t) {
                let mut out = vec![0; t.len()];
                let n = decode(t.as_bytes(), &mut out);
                prop_assert_eq!(n, Ok(bytes.len()));
                prop_assert_eq!(&out[..bytes.len()], &bytes[..]);
            }
        }
    }

    /// The text of `bytes`.
    fn text(bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![0; text_len(bytes.len())];
        encode(bytes, &mut out);
        out
    }
}
