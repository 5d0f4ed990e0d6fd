//! An independent reader and writer of the documented snapshot layout.
//!
//! `core/README.md` ("Snapshot format") documents the bytes a host stores:
//! `[version u8 = 1][postcard body][CRC-32 (IEEE) little-endian over version + body]`,
//! the body holding env, device id, login state, the session (tokens with their
//! deadlines, uid), the cached profile, generation and save time, in that order. This
//! module reads and writes that layout with its own types (std strings, no capacities,
//! no consistency checks), so tests can
//!
//! * craft snapshots the engine cannot be driven into writing (an `Initialized`
//!   snapshot, every field at capacity, a clock far ahead) for the fuzz seed corpus;
//! * check what the engine made of bytes it accepted, field by field, and that a
//!   snapshot it re-encoded holds the same values (the `snapshot_decode` fuzz target).
//!
//! The engine is stricter than this reader (capacities, token characters, state and
//! session consistency); the converse must never happen: bytes the engine accepts
//! always read here.

use cloudbase_auth_core::LoginState;
use serde::{Deserialize, Serialize};

/// The format version this reader knows.
pub const VERSION: u8 = 1;

/// A snapshot body, field for field in wire order.
#[allow(clippy::exhaustive_structs)] // test data mirroring a fixed wire layout
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotFile {
    /// Env id the snapshot belongs to.
    pub env: String,
    /// Device id (`x-device-id`).
    pub device_id: String,
    /// Login state when saved.
    pub state: LoginState,
    /// The session, present exactly in `Anonymous` / `WeChat` for a consistent snapshot.
    pub session: Option<SessionFields>,
    /// The cached profile (empty without a session).
    pub profile: ProfileFields,
    /// Session generation when saved.
    pub generation: u32,
    /// Host time of the save (ms).
    pub saved_at: u64,
}

/// The session part of a snapshot.
#[allow(clippy::exhaustive_structs)] // test data mirroring a fixed wire layout
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SessionFields {
    /// `Authorization` scheme.
    pub token_type: String,
    /// Access token.
    pub access_token: String,
    /// Refresh token, if the session can be refreshed.
    pub refresh_token: Option<String>,
    /// When the access token expires (host ms).
    pub expires_at: u64,
    /// When the engine refreshes (host ms).
    pub refresh_at: u64,
    /// User id.
    pub uid: String,
}

/// The profile part of a snapshot.
#[allow(clippy::exhaustive_structs)] // test data mirroring a fixed wire layout
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ProfileFields {
    /// Nickname.
    pub name: String,
    /// Avatar URL.
    pub avatar: String,
    /// E-mail.
    pub email: String,
    /// WeChat openid.
    pub openid: String,
    /// Mini Program appId of the WeChat identity.
    pub appid: String,
}

/// The layout's checksum: CRC-32 (IEEE, reflected; `CRC_32_ISO_HDLC` in the `crc`
/// crate's catalogue), computed bit by bit like the core's, by that crate rather than by
/// the core's code, so this reader stays independent of what it checks.
const CRC32: crc::Crc<u32, crc::NoTable> =
    crc::Crc::<u32, crc::NoTable>::new(&crc::CRC_32_ISO_HDLC);

/// CRC-32 (IEEE), as the layout uses.
pub fn crc32(bytes: &[u8]) -> u32 {
    CRC32.checksum(bytes)
}

/// Replaces the last four bytes with the CRC of the rest (no-op below five bytes), so
/// arbitrary bytes get past the checksum and reach the body decoder.
pub fn reseal(bytes: &mut [u8]) {
    if bytes.len() < 5 {
        return;
    }
    let n = bytes.len() - 4;
    let crc = crc32(&bytes[..n]);
    bytes[n..].copy_from_slice(&crc.to_le_bytes());
}

/// Reads a version-1 snapshot: version byte, CRC, and a body with nothing after it.
/// `None` for anything else.
pub fn read(bytes: &[u8]) -> Option<SnapshotFile> {
    if bytes.len() < 5 || bytes[0] != VERSION {
        return None;
    }
    let (signed, crc) = bytes.split_at(bytes.len() - 4);
    if crc32(signed).to_le_bytes() != crc {
        return None;
    }
    match postcard::take_from_bytes::<SnapshotFile>(&signed[1..]) {
        Ok((file, [])) => Some(file),
        _ => None,
    }
}

/// Writes `file` in the version-1 layout.
pub fn write(file: &SnapshotFile) -> Vec<u8> {
    let mut buf = vec![0u8; 64 * 1024];
    buf[0] = VERSION;
    let body_len = postcard::to_slice(file, &mut buf[1..])
        .expect("a test snapshot fits 64 KiB")
        .len();
    buf.truncate(1 + body_len);
    let crc = crc32(&buf);
    buf.extend_from_slice(&crc.to_le_bytes());
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn write_then_read() {
        let file = SnapshotFile {
            env: "env-1".into(),
            device_id: "0123456789abcdef".into(),
            state: LoginState::WeChat,
            session: Some(SessionFields {
                token_type: "Bearer".into(),
                access_token: "at".into(),
                refresh_token: None,
                expires_at: 10,
                refresh_at: 5,
                uid: "u".into(),
            }),
            profile: ProfileFields::default(),
            generation: 7,
            saved_at: 3,
        };
        let bytes = write(&file);
        assert_eq!(read(&bytes), Some(file));
        let mut bad = bytes.clone();
        bad[3] ^= 1;
        assert_eq!(read(&bad), None);
        reseal(&mut bad);
        assert_eq!(
            crc32(&bad[..bad.len() - 4]).to_le_bytes(),
            bad[bad.len() - 4..]
        );
    }
}
