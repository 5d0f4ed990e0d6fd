//! Snapshots: what a host stores between runs.
//!
//! Layout: `[format version u8][postcard body][CRC-32 (IEEE) LE of version + body]`.
//! postcard writes and reads the body; it is not self-describing, so the version byte
//! selects the decoder (`decode_v1`, later `decode_v2` migrating forward). Anything that
//! does not decode is a typed [`SnapshotError`]; the engine then starts signed out and
//! asks the host to clear storage. [`SNAPSHOT_MAX`] is postcard's `MaxSize` of the body
//! plus the version byte and the CRC, and exact: a test encodes a session with every
//! field at capacity and gets that length.

use crate::capacity::*;
use crate::error::SnapshotError;
use crate::session::{Profile, Session};
use crate::state::LoginState;
use heapless::String;
use postcard::experimental::max_size::MaxSize;
use serde::{Deserialize, Serialize};

/// The format version this build writes.
pub const SNAPSHOT_VERSION: u8 = 1;

/// Largest snapshot this build writes or accepts, in bytes: the version byte, the
/// largest body, the CRC.
pub const SNAPSHOT_MAX: usize = 1 + SnapshotV1::POSTCARD_MAX_SIZE + CRC_LEN;

const CRC_LEN: usize = 4;

/// How the CRC-32 is computed; every choice gives the same checksum (same polynomial).
///
/// wasm32 computes it bit by bit: the Mini Program budget (wasm + min.js ≤ 55,300 bytes)
/// has no room for a lookup table, and a snapshot is written at most once per session
/// change there. Elsewhere a 16-way table (16 KiB of read-only data) is used: bit by bit
/// was about three quarters of a snapshot write in `perf record` of the `core` bench,
/// and a sign-in writes two snapshots.
#[cfg(target_arch = "wasm32")]
type CrcImpl = crc::NoTable;
#[cfg(not(target_arch = "wasm32"))]
type CrcImpl = crc::Table<16>;

/// CRC-32 (IEEE, reflected), as zlib and PNG compute it.
const CRC: crc::Crc<u32, CrcImpl> = crc::Crc::<u32, CrcImpl>::new(&crc::CRC_32_ISO_HDLC);

/// Version 1 body. Field order is the wire format: never reorder, add a `V2` instead.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, MaxSize)]
pub(crate) struct SnapshotV1 {
    #[serde(deserialize_with = "bounded")]
    pub(crate) env: String<ENV_ID_MAX>,
    #[serde(deserialize_with = "bounded")]
    pub(crate) device_id: String<DEVICE_ID_MAX>,
    pub(crate) state: LoginState,
    pub(crate) session: Option<Session>,
    pub(crate) profile: Profile,
    pub(crate) generation: u32,
    pub(crate) saved_at: u64,
}

/// The same fields, borrowed from the engine for writing (postcard writes `&str` and
/// `heapless::String` identically).
#[derive(Serialize)]
pub(crate) struct SnapshotV1Ref<'a> {
    pub(crate) env: &'a str,
    pub(crate) device_id: &'a str,
    pub(crate) state: LoginState,
    pub(crate) session: Option<&'a Session>,
    pub(crate) profile: &'a Profile,
    pub(crate) generation: u32,
    pub(crate) saved_at: u64,
}

/// Reads a postcard string into a `heapless::String<N>` through serde's one `&str`
/// visitor, instead of one heapless visitor per capacity: 350 bytes less wasm for the
/// body's strings (measured with `scripts/build-wasm.sh`). Too long or not
/// UTF-8 is an error, as with heapless's own impl.
pub(crate) fn bounded<'de, D, const N: usize>(d: D) -> Result<String<N>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let s = <&str>::deserialize(d)?;
    String::try_from(s).map_err(|_| serde::de::Error::invalid_length(s.len(), &"a shorter string"))
}

/// Writes `snap` into `buf`; returns the length.
pub(crate) fn encode(snap: &SnapshotV1Ref<'_>, buf: &mut [u8]) -> Result<usize, SnapshotError> {
    let (version, rest) = buf.split_first_mut().ok_or(SnapshotError::BufferTooSmall)?;
    *version = SNAPSHOT_VERSION;
    let body = postcard::to_slice(snap, rest)
        .map_err(|_| SnapshotError::BufferTooSmall)?
        .len();
    let end = 1 + body;
    let crc = CRC.checksum(&buf[..end]).to_le_bytes();
    buf.get_mut(end..end + CRC_LEN)
        .ok_or(SnapshotError::BufferTooSmall)?
        .copy_from_slice(&crc);
    Ok(end + CRC_LEN)
}

/// Reads a snapshot of any known version, migrated to the current shape, and checks
/// its invariants.
pub(crate) fn decode(bytes: &[u8]) -> Result<SnapshotV1, SnapshotError> {
    if bytes.len() < 1 + CRC_LEN {
        return Err(SnapshotError::TooShort);
    }
    if bytes.len() > SNAPSHOT_MAX {
        return Err(SnapshotError::TooLong);
    }
    let snap = match bytes[0] {
        1 => decode_v1(bytes)?,
        v => return Err(SnapshotError::UnknownVersion(v)),
    };
    check(&snap)?;
    Ok(snap)
}

fn decode_v1(bytes: &[u8]) -> Result<SnapshotV1, SnapshotError> {
    let (signed, crc) = bytes.split_at(bytes.len() - CRC_LEN);
    let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if CRC.checksum(signed) != stored {
        return Err(SnapshotError::BadChecksum);
    }
    match postcard::take_from_bytes::<SnapshotV1>(&signed[1..]) {
        Ok((snap, [])) => Ok(snap),
        _ => Err(SnapshotError::Malformed),
    }
}

/// The invariants a decoded snapshot must hold (a CRC only proves the bytes are the
/// ones written, not that a buggy or malicious writer wrote sensible ones).
fn check(s: &SnapshotV1) -> Result<(), SnapshotError> {
    use crate::wire::is_token_safe;
    let ok = crate::config::is_valid_id(&s.env)
        && s.device_id.len() >= DEVICE_ID_MIN
        && is_token_safe(&s.device_id)
        && match (&s.session, s.state) {
            (Some(sess), LoginState::Anonymous | LoginState::WeChat) => {
                is_token_safe(&sess.token_type)
                    && is_token_safe(&sess.access_token)
                    && sess.refresh_token.as_deref().is_none_or(is_token_safe)
                    && sess.refresh_at <= sess.expires_at
            }
            (None, LoginState::Initialized | LoginState::SignedOut) => true,
            _ => false,
        };
    if ok {
        Ok(())
    } else {
        Err(SnapshotError::Inconsistent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_is_the_ieee_crc32() {
        // The standard check value of CRC-32/ISO-HDLC.
        assert_eq!(CRC.checksum(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn this_targets_crc_matches_the_bit_by_bit_one() {
        // Snapshots move between hosts (a native build may read what wasm wrote), so the
        // table-driven and the bit-by-bit CRC must agree on every length and alignment.
        const BITWISE: crc::Crc<u32, crc::NoTable> =
            crc::Crc::<u32, crc::NoTable>::new(&crc::CRC_32_ISO_HDLC);
        let mut bytes = [0u8; 300];
        let mut x = 0x9E37_79B9u32;
        for b in &mut bytes {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *b = x.to_le_bytes()[0];
        }
        for start in 0..17 {
            for end in start..bytes.len() {
                let part = &bytes[start..end];
                assert_eq!(CRC.checksum(part), BITWISE.checksum(part), "{start}..{end}");
            }
        }
    }

    #[test]
    fn snapshot_max_is_3033_bytes() {
        // Proven exact by `tests/snapshot.rs` (every field at capacity).
        assert_eq!(SNAPSHOT_MAX, 3_033);
    }
}
