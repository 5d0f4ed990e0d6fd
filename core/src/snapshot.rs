//! Snapshots: what a host stores between runs.
//!
//! Layout: `[format version u8][postcard body][crc32 LE of version + body]`. postcard is
//! not self-describing, so the version byte selects the decoder (`decode_v1`, later
//! `decode_v2` migrating forward). Anything that does not decode is a typed
//! [`SnapshotError`]; the engine then starts signed out and asks the host to clear
//! storage. [`SNAPSHOT_MAX`] is exact: a test encodes a session with every field at
//! capacity and gets that length. The body is postcard's wire format written by a small
//! codec of our own (postcard's serde-generic code cost ~6 KB of wasm); a test checks
//! that postcard reads and writes the very same bytes.

use crate::capacity::*;
use crate::error::SnapshotError;
use crate::session::{Profile, Session};
use crate::state::LoginState;
use heapless::String;

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
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(serde::Serialize, serde::Deserialize))]
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
#[cfg_attr(test, derive(serde::Serialize))]
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
    let mut w = Out { buf, pos: 0 };
    w.body(snap).ok_or(SnapshotError::BufferTooSmall)?;
    let end = w.pos;
    let crc = crc32(&w.buf[..end]);
    w.put(&crc.to_le_bytes())
        .ok_or(SnapshotError::BufferTooSmall)?;
    Ok(end + 4)
}

/// postcard's encoding, written by hand (serde-derive + postcard cost ~6 KB of wasm):
/// varint (LEB128) lengths and integers, `Option` as a 0/1 tag, enums as their index.
struct Out<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl Out<'_> {
    fn put(&mut self, bytes: &[u8]) -> Option<()> {
        let end = self.pos.checked_add(bytes.len())?;
        self.buf.get_mut(self.pos..end)?.copy_from_slice(bytes);
        self.pos = end;
        Some(())
    }
    fn varint(&mut self, mut v: u64) -> Option<()> {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                return self.put(&[b]);
            }
            self.put(&[b | 0x80])?;
        }
    }
    fn str(&mut self, s: &str) -> Option<()> {
        self.varint(s.len() as u64)?;
        self.put(s.as_bytes())
    }
    fn body(&mut self, s: &SnapshotV1Ref<'_>) -> Option<()> {
        self.put(&[SNAPSHOT_VERSION])?;
        self.str(s.env)?;
        self.str(s.device_id)?;
        self.varint(s.state as u64)?;
        match s.session {
            None => self.put(&[0])?,
            Some(x) => {
                self.put(&[1])?;
                self.str(&x.token_type)?;
                self.str(&x.access_token)?;
                match &x.refresh_token {
                    None => self.put(&[0])?,
                    Some(r) => {
                        self.put(&[1])?;
                        self.str(r)?;
                    }
                }
                self.varint(x.expires_at)?;
                self.varint(x.refresh_at)?;
                self.str(&x.uid)?;
            }
        }
        let p = s.profile;
        for f in [p.name.as_str(), &p.avatar, &p.email, &p.openid, &p.appid] {
            self.str(f)?;
        }
        self.varint(u64::from(s.generation))?;
        self.varint(s.saved_at)
    }
}

/// Reads what [`Out`] writes (and postcard wrote).
struct In<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl In<'_> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }
    /// A LEB128 varint of an integer type `bits` wide, read as postcard does: at most
    /// `ceil(bits / 7)` bytes and no bit beyond `bits` (so nothing is silently dropped).
    fn varint(&mut self, bits: u32) -> Option<u64> {
        let mut v = 0u64;
        let mut shift = 0;
        while shift < bits {
            let b = self.byte()?;
            let payload = u64::from(b & 0x7f);
            if bits - shift < 7 && payload >> (bits - shift) != 0 {
                return None;
            }
            v |= payload << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
            shift += 7;
        }
        None
    }

    fn str_into(&mut self, out: &mut heapless::string::StringView) -> Option<()> {
        let len = usize::try_from(self.varint(usize::BITS)?).ok()?;
        let end = self.pos.checked_add(len)?;
        let s = core::str::from_utf8(self.bytes.get(self.pos..end)?).ok()?;
        self.pos = end;
        out.clear();
        out.push_str(s).ok()
    }
    fn tag(&mut self) -> Option<bool> {
        match self.byte()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }
    fn body(&mut self) -> Option<SnapshotV1> {
        let mut s = SnapshotV1 {
            env: String::new(),
            device_id: String::new(),
            state: LoginState::Uninitialized,
            session: None,
            profile: Profile::EMPTY,
            generation: 0,
            saved_at: 0,
        };
        self.str_into(&mut s.env)?;
        self.str_into(&mut s.device_id)?;
        s.state = match self.varint(32)? {
            0 => LoginState::Uninitialized,
            1 => LoginState::Initialized,
            2 => LoginState::Anonymous,
            3 => LoginState::WeChat,
            4 => LoginState::SignedOut,
            _ => return None,
        };
        if self.tag()? {
            let mut x = Session::default();
            self.str_into(&mut x.token_type)?;
            self.str_into(&mut x.access_token)?;
            if self.tag()? {
                let mut r = String::new();
                self.str_into(&mut r)?;
                x.refresh_token = Some(r);
            }
            x.expires_at = self.varint(64)?;
            x.refresh_at = self.varint(64)?;
            self.str_into(&mut x.uid)?;
            s.session = Some(x);
        }
        let p = &mut s.profile;
        for f in [
            &mut p.name as &mut heapless::string::StringView,
            &mut p.avatar,
            &mut p.email,
            &mut p.openid,
            &mut p.appid,
        ] {
            self.str_into(f)?;
        }
        s.generation = u32::try_from(self.varint(32)?).ok()?;
        s.saved_at = self.varint(64)?;
        Some(s)
    }
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
    let mut r = In {
        bytes: &signed[1..],
        pos: 0,
    };
    match r.body() {
        Some(snap) if r.pos == r.bytes.len() => Ok(snap),
        _ => Err(SnapshotError::Malformed),
    }
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

#[cfg(test)]
mod postcard_compat {
    //! The hand-written codec writes and reads exactly postcard's bytes.
    use super::*;
    use crate::testing::Harness;

    #[test]
    fn same_bytes_as_postcard() {
        let mut h = Harness::new();
        h.sign_in_with_wechat("oCOMPAT").unwrap();
        let bytes = h.stored.clone().unwrap();
        let body = &bytes[1..bytes.len() - 4];
        let (by_postcard, rest) = postcard::take_from_bytes::<SnapshotV1>(body).unwrap();
        assert!(rest.is_empty());
        let ours = decode(&bytes).unwrap();
        assert_eq!(by_postcard, ours);
        let r = SnapshotV1Ref {
            env: &ours.env,
            device_id: &ours.device_id,
            state: ours.state,
            session: ours.session.as_ref(),
            profile: &ours.profile,
            generation: ours.generation,
            saved_at: ours.saved_at,
        };
        let mut buf = [0u8; SNAPSHOT_MAX];
        let n = postcard::to_slice(&r, &mut buf).unwrap().len();
        assert_eq!(&buf[..n], body);
    }

    /// Ours and postcard's: the same value, or both refuse (the fuzz target found a
    /// 10-byte varint whose dropped high bits ours accepted).
    fn both(body: &[u8]) -> (Option<SnapshotV1>, Option<SnapshotV1>) {
        let mut r = In {
            bytes: body,
            pos: 0,
        };
        let ours = r.body().filter(|_| r.pos == body.len());
        let theirs = postcard::take_from_bytes::<SnapshotV1>(body)
            .ok()
            .filter(|(_, rest)| rest.is_empty())
            .map(|(s, _)| s);
        (ours, theirs)
    }

    #[test]
    fn every_single_byte_mutation_reads_as_postcard_reads_it() {
        let mut h = Harness::new();
        h.sign_in_with_wechat("oCOMPAT").unwrap();
        let bytes = h.stored.clone().unwrap();
        let body = bytes[1..bytes.len() - 4].to_vec();
        for i in 0..body.len() {
            for v in [0x00, 0x01, 0x02, 0x0f, 0x10, 0x7f, 0x80, 0x81, 0xfe, 0xff] {
                let mut m = body.clone();
                m[i] = v;
                let (ours, theirs) = both(&m);
                assert_eq!(ours, theirs, "byte {i} = {v:#04x}");
            }
        }
        // Overlong varints at the end (saved_at): 10 bytes with bits past 64.
        let mut m = body[..body.len() - 6].to_vec();
        m.extend_from_slice(&[0xff; 9]);
        m.push(0x7f);
        assert_eq!(both(&m), (None, None));
    }
}
