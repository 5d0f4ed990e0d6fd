//! The stored text's base64 against the `base64` crate.

use crate::stored::{Undecodable, decode, encode, text, text_len};
use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use proptest::prelude::*;

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
