//! The snapshot as the facade stores it: base64 text out of a persist record, the same
//! text back into `cba_restore`.

use super::*;
use cloudbase_auth_core::{Error, SnapshotError};

/// What the facade stored before the module wrote base64 itself: its own encoder's
/// text of the snapshot that [`sign_in_anonymously`] persists (env `wasm-test-1a2b`,
/// seed `[7; 16]`, at `T0`).
const STORED_BY_THE_JS_ENCODER: &str = include_str!("stored_v1.txt");

/// Restores `text` on a fresh engine initialised at `now`; the export's return value.
fn restore_text(now: f64, text: &[u8]) -> f64 {
    cba_reset();
    init(now);
    let p = put(&[text]);
    cba_restore(now, p[0].0, p[0].1)
}

const CLEARED: [OutputRecord; 3] = [
    OutputRecord::Changed(1, 4),
    OutputRecord::Clear,
    NO_DEADLINE,
];

#[test]
fn snapshots_restore_and_corrupt_ones_clear_storage() {
    let _g = fresh();
    init(T0);
    let snap = persisted(&sign_in_anonymously()).expect("a snapshot");

    // Warm start on a fresh engine.
    assert_eq!(restore_text(T0 + 10.0, &stored(&snap)), 0.0);
    assert_eq!(drain()[0], OutputRecord::Changed(1, 2));
    assert_eq!(cba_user(), 1.0);
    assert_eq!(read(|r| r.user())[0], "100");
    let p = put(&[&stored(&snap)]);
    assert_eq!(
        input(cba_restore(T0 + 11.0, p[0].0, p[0].1)),
        code(Error::CLASS_API_MISUSE, 3),
        "restore only once"
    );

    // A damaged copy: typed error, signed out, storage cleared.
    let mut bad = snap.clone();
    bad[5] ^= 0x40;
    assert_eq!(
        restore_text(T0, &stored(&bad)),
        -f64::from(u32::from(Error::CLASS_SNAPSHOT) * 256 + 4)
    );
    assert_eq!(drain(), CLEARED);
    // Garbage and empty values too: as the stored text, and as the snapshot's bytes.
    for junk in [&b""[..], b"not base64 at all", &[0xff; 3100]] {
        for text in [junk.to_vec(), stored(junk)] {
            assert!(restore_text(T0, &text) < 0.0);
            assert_eq!(error_record().class, Error::CLASS_SNAPSHOT);
            assert_eq!(drain(), CLEARED);
        }
    }
}

/// A session stored by an earlier facade (which encoded the bytes in JS) restores, and
/// the module writes that very text for the same session: stored sessions survive.
#[test]
fn sessions_stored_by_the_earlier_facade_survive() {
    let _g = fresh();
    init(T0);
    // The reader checks a persist record's text is the canonical encoding of the bytes
    // it decodes to, so encoding them again gives the record's text.
    let text = persisted(&sign_in_anonymously())
        .map(|b| stored(&b))
        .unwrap();
    assert_eq!(String::from_utf8(text).unwrap(), STORED_BY_THE_JS_ENCODER);

    assert_eq!(
        restore_text(T0 + 10.0, STORED_BY_THE_JS_ENCODER.as_bytes()),
        0.0
    );
    assert_eq!(drain()[0], OutputRecord::Changed(1, 2));
    assert_eq!(cba_session(), 1.0);
    assert_eq!(read(|r| r.session()).access_token, "at-100");
    // Without its padding, as the earlier decoder took it, too.
    let unpadded = STORED_BY_THE_JS_ENCODER.trim_end_matches('=');
    assert_eq!(restore_text(T0 + 10.0, unpadded.as_bytes()), 0.0);
    assert_eq!(drain()[0], OutputRecord::Changed(1, 2));
}

/// Text that decodes to more than the module can hold is a snapshot too long, not a
/// trap or a truncation.
#[test]
fn stored_text_too_long_for_any_snapshot_is_refused_as_too_long() {
    let _g = fresh();
    let too_long = SnapshotError::TooLong.code();
    for n in [4100, 6680, 10_000, 17_000] {
        let text = vec![b'A'; n];
        assert_eq!(
            restore_text(T0, &text),
            code(Error::CLASS_SNAPSHOT, too_long),
            "{n} characters"
        );
        assert_eq!(drain(), CLEARED);
    }
}
