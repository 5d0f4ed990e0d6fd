//! Snapshots: what a host stores between runs.
//!
//! Layout: `[format version u8][postcard body][crc32 LE of version + body]`. postcard is
//! not self-describing, so the version byte selects the decoder (`decode_v1`, later
//! `decode_v2` migrating forward). Anything that does not decode is a typed
//! [`SnapshotError`]; the engine then starts signed out and asks the host to clear
//! storage. [`SNAPSHOT_MAX`] is exact: a test encodes a session with every field at
//! capacity and gets that length.

use crate::capacity::*;
use crate::error::SnapshotError;
use crate::session::{Profile, Session};
use crate::state::LoginState;
use heapless::String;
use serde::{Deserialize, Serialize};

/// The format version this build writes.
pub const SNAPSHOT_VERSION: u8 = 1;

/// Bytes postcard uses for a length or integer `n` (LEB128 varint).
const fn varint(n: usize) -> usize {
    let mut len = 1;
    let mut v = n >> 7;
    while v > 0 {
        len += 1;
        v >>= 7;
    }
    len
}
/// Worst-case postcard size of a `heapless::String<N>`.
const fn string(n: usize) -> usize {
    varint(n) + n
}
const U64_MAX_VARINT: usize = 10;
const U32_MAX_VARINT: usize = 5;

const SESSION_MAX: usize = string(TOKEN_TYPE_MAX)
    + string(ACCESS_TOKEN_MAX)
    + 1 // Option tag
    + string(REFRESH_TOKEN_MAX)
    + U64_MAX_VARINT // expires_at
    + U64_MAX_VARINT // refresh_at
    + string(UID_MAX);
const PROFILE_MAX: usize = string(NAME_MAX)
    + string(AVATAR_MAX)
    + string(EMAIL_MAX)
    + string(OPENID_MAX)
    + string(APPID_MAX);

/// Largest snapshot this build writes or accepts, in bytes.
pub const SNAPSHOT_MAX: usize = 1 // version
    + string(ENV_ID_MAX)
    + string(DEVICE_ID_MAX)
    + 1 // login state
    + 1 // Option<Session> tag
    + SESSION_MAX
    + PROFILE_MAX
    + U32_MAX_VARINT // generation
    + U64_MAX_VARINT // saved_at
    + 4; // crc32

/// Version 1 body. Field order is the wire format: never reorder, add a `V2` instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SnapshotV1 {
    pub(crate) env: String<ENV_ID_MAX>,
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

/// CRC-32 (IEEE, reflected), bitwise: no 1 KiB table in the wasm build.
pub(crate) fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

/// Writes `snap` into `buf`; returns the length.
pub(crate) fn encode(snap: &SnapshotV1Ref<'_>, buf: &mut [u8]) -> Result<usize, SnapshotError> {
    let (version, rest) = buf.split_first_mut().ok_or(SnapshotError::BufferTooSmall)?;
    *version = SNAPSHOT_VERSION;
    let body_len = postcard::to_slice(snap, rest)
        .map_err(|_| SnapshotError::BufferTooSmall)?
        .len();
    let end = 1 + body_len;
    let crc = crc32(&buf[..end]);
    buf.get_mut(end..end + 4)
        .ok_or(SnapshotError::BufferTooSmall)?
        .copy_from_slice(&crc.to_le_bytes());
    Ok(end + 4)
}

/// Reads a snapshot of any known version, migrated to the current shape, and checks
/// its invariants.
pub(crate) fn decode(bytes: &[u8]) -> Result<SnapshotV1, SnapshotError> {
    if bytes.len() < 1 + 4 {
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
    let (signed, crc) = bytes.split_at(bytes.len() - 4);
    let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if crc32(signed) != stored {
        return Err(SnapshotError::BadChecksum);
    }
    let (snap, rest) = postcard::take_from_bytes::<SnapshotV1>(&signed[1..])
        .map_err(|_| SnapshotError::Malformed)?;
    if !rest.is_empty() {
        return Err(SnapshotError::Malformed);
    }
    Ok(snap)
}

/// The invariants a decoded snapshot must hold (a CRC only proves the bytes are the
/// ones written, not that a buggy or hostile writer wrote sensible ones).
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
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn varint_widths() {
        assert_eq!(varint(127), 1);
        assert_eq!(varint(128), 2);
        assert_eq!(varint(2048), 2);
        assert_eq!(U64_MAX_VARINT, varint(u64::MAX as usize));
    }
}
