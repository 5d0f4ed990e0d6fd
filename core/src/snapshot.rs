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
/// wasm32 computes it bit by bit: the Mini Program budget (wasm + min.js ≤ 52,000 bytes)
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
    let body = body::write(snap, rest).ok_or(SnapshotError::BufferTooSmall)?;
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
    body::read(&signed[1..]).ok_or(SnapshotError::Malformed)
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

/// The body in postcard's format, written and read by hand: the same bytes as
/// `postcard::to_slice` / `take_from_bytes` of [`SnapshotV1Ref`] / [`SnapshotV1`] (the
/// tests hold it to postcard on generated snapshots, damaged ones and arbitrary bytes),
/// for a smaller wasm module than serde and postcard's code for these structs (measured:
/// 47,758 → 46,112 bytes, with the account exports; the module's size budget needs it).
///
/// The format: fields in declaration order, no padding; unsigned integers as LEB128
/// varints (postcard rejects a last byte with bits beyond the type, and more bytes than
/// the type needs); strings as a varint length (of `usize`) and UTF-8; `Option` as a 0
/// or 1 byte then the value; an enum as its variant index as a `u32` varint.
mod body {
    use super::{SnapshotV1, SnapshotV1Ref};
    use crate::session::{Profile, Session};
    use crate::state::LoginState;
    use heapless::String;

    /// Writes into a slice; `None` when it is full.
    struct Out<'a> {
        buf: &'a mut [u8],
        pos: usize,
    }

    impl Out<'_> {
        fn byte(&mut self, b: u8) -> Option<()> {
            *self.buf.get_mut(self.pos)? = b;
            self.pos += 1;
            Some(())
        }

        fn varint(&mut self, mut v: u64) -> Option<()> {
            while v >= 0x80 {
                self.byte(v as u8 | 0x80)?;
                v >>= 7;
            }
            self.byte(v as u8)
        }

        fn str(&mut self, s: &str) -> Option<()> {
            self.varint(s.len() as u64)?;
            let end = self.pos.checked_add(s.len())?;
            self.buf
                .get_mut(self.pos..end)?
                .copy_from_slice(s.as_bytes());
            self.pos = end;
            Some(())
        }
    }

    /// The body of `snap` at the start of `buf`; its length, or `None` if it does not fit.
    pub(super) fn write(snap: &SnapshotV1Ref<'_>, buf: &mut [u8]) -> Option<usize> {
        let mut o = Out { buf, pos: 0 };
        o.str(snap.env)?;
        o.str(snap.device_id)?;
        o.varint(u64::from(snap.state.code()))?;
        match snap.session {
            None => o.byte(0)?,
            Some(s) => {
                o.byte(1)?;
                o.str(&s.token_type)?;
                o.str(&s.access_token)?;
                match &s.refresh_token {
                    None => o.byte(0)?,
                    Some(t) => {
                        o.byte(1)?;
                        o.str(t)?;
                    }
                }
                o.varint(s.expires_at)?;
                o.varint(s.refresh_at)?;
                o.str(&s.uid)?;
            }
        }
        let p = snap.profile;
        for f in [&p.name[..], &p.avatar, &p.email, &p.openid, &p.appid] {
            o.str(f)?;
        }
        o.varint(u64::from(snap.generation))?;
        o.varint(snap.saved_at)?;
        Some(o.pos)
    }

    /// Reads a slice front to back; `None` at its end or on anything postcard refuses.
    struct In<'a> {
        bytes: &'a [u8],
    }

    impl<'a> In<'a> {
        fn byte(&mut self) -> Option<u8> {
            let (b, rest) = self.bytes.split_first()?;
            self.bytes = rest;
            Some(*b)
        }

        /// A varint of a type of `bits` bits (32 or 64).
        fn varint(&mut self, bits: u32) -> Option<u64> {
            let max = bits.div_ceil(7);
            let mut out = 0u64;
            for i in 0..max {
                let b = self.byte()?;
                out |= u64::from(b & 0x7F) << (7 * i);
                if b & 0x80 == 0 {
                    return (i + 1 < max || b < 1 << (bits % 7)).then_some(out);
                }
            }
            None
        }

        fn u64(&mut self) -> Option<u64> {
            self.varint(64)
        }

        fn u32(&mut self) -> Option<u32> {
            self.varint(32).map(|v| v as u32)
        }

        fn str<const N: usize>(&mut self) -> Option<String<N>> {
            let len = self.varint(usize::BITS)?;
            let len = usize::try_from(len).ok()?;
            let (s, rest) = self.bytes.split_at_checked(len)?;
            self.bytes = rest;
            String::try_from(core::str::from_utf8(s).ok()?).ok()
        }

        /// An `Option` tag: `Some(true)` for a value.
        fn some(&mut self) -> Option<bool> {
            match self.byte()? {
                0 => Some(false),
                1 => Some(true),
                _ => None,
            }
        }
    }

    /// The snapshot of a whole body (nothing may follow it).
    pub(super) fn read(bytes: &[u8]) -> Option<SnapshotV1> {
        let mut i = In { bytes };
        let env = i.str()?;
        let device_id = i.str()?;
        let state = LoginState::from_code(u8::try_from(i.u32()?).ok()?)?;
        let session = if i.some()? {
            Some(Session {
                token_type: i.str()?,
                access_token: i.str()?,
                refresh_token: if i.some()? { Some(i.str()?) } else { None },
                expires_at: i.u64()?,
                refresh_at: i.u64()?,
                uid: i.str()?,
            })
        } else {
            None
        };
        let profile = Profile {
            name: i.str()?,
            avatar: i.str()?,
            email: i.str()?,
            openid: i.str()?,
            appid: i.str()?,
        };
        let snap = SnapshotV1 {
            env,
            device_id,
            state,
            session,
            profile,
            generation: i.u32()?,
            saved_at: i.u64()?,
        };
        i.bytes.is_empty().then_some(snap)
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

    /// The hand-written body codec against postcard, the format's own implementation.
    mod body_is_postcard {
        use super::super::body;
        use super::*;
        use proptest::prelude::*;

        /// Text with 1-, 2-, 3- and 4-byte characters, up to `n` characters.
        fn text(n: usize) -> impl Strategy<Value = std::string::String> {
            proptest::collection::vec(
                prop_oneof![Just('a'), Just('9'), Just('é'), Just('说'), Just('😀')],
                0..=n,
            )
            .prop_map(|v| v.into_iter().collect())
        }

        fn cut<const N: usize>(s: &str) -> String<N> {
            let mut out = String::new();
            for c in s.chars() {
                if out.push(c).is_err() {
                    break;
                }
            }
            out
        }

        prop_compose! {
            fn snapshot()(
                texts in proptest::collection::vec(text(70), 12),
                state in 0u8..5,
                session in any::<bool>(),
                refresh in any::<bool>(),
                times in (any::<u64>(), any::<u64>(), any::<u64>()),
                generation in any::<u32>(),
            ) -> SnapshotV1 {
                let t = &texts;
                SnapshotV1 {
                    env: cut(&t[0]),
                    device_id: cut(&t[1]),
                    state: LoginState::from_code(state).unwrap_or(LoginState::SignedOut),
                    session: session.then(|| Session {
                        token_type: cut(&t[2]),
                        access_token: cut(&t[3]),
                        refresh_token: refresh.then(|| cut(&t[4])),
                        expires_at: times.0,
                        refresh_at: times.1,
                        uid: cut(&t[5]),
                    }),
                    profile: Profile {
                        name: cut(&t[6]),
                        avatar: cut(&t[7]),
                        email: cut(&t[8]),
                        openid: cut(&t[9]),
                        appid: cut(&t[10]),
                    },
                    generation,
                    saved_at: times.2,
                }
            }
        }

        fn as_ref(s: &SnapshotV1) -> SnapshotV1Ref<'_> {
            SnapshotV1Ref {
                env: &s.env,
                device_id: &s.device_id,
                state: s.state,
                session: s.session.as_ref(),
                profile: &s.profile,
                generation: s.generation,
                saved_at: s.saved_at,
            }
        }

        fn postcard_read(bytes: &[u8]) -> Option<SnapshotV1> {
            match postcard::take_from_bytes::<SnapshotV1>(bytes) {
                Ok((snap, [])) => Some(snap),
                _ => None,
            }
        }

        proptest! {
            #[test]
            fn writes_the_bytes_postcard_writes(snap in snapshot()) {
                let mut ours = [0u8; SNAPSHOT_MAX];
                let mut theirs = [0u8; SNAPSHOT_MAX];
                let n = body::write(&as_ref(&snap), &mut ours).expect("fits");
                let expected = postcard::to_slice(&as_ref(&snap), &mut theirs).expect("fits");
                prop_assert_eq!(&ours[..n], &*expected);
                prop_assert_eq!(body::read(&ours[..n]), Some(snap.clone()));
                // Too small a buffer is refused, never overrun.
                prop_assert_eq!(body::write(&as_ref(&snap), &mut ours[..n - 1]), None);
            }

            #[test]
            fn reads_what_postcard_reads(
                snap in snapshot(),
                edits in proptest::collection::vec((any::<u16>(), any::<u8>()), 0..4),
                cut_at in any::<u16>(),
                tail in proptest::collection::vec(any::<u8>(), 0..3),
            ) {
                // A valid body, damaged: bytes changed, cut short or with bytes after it.
                let mut buf = [0u8; SNAPSHOT_MAX];
                let n = body::write(&as_ref(&snap), &mut buf).expect("fits");
                let mut bytes = buf[..n].to_vec();
                for (at, v) in edits {
                    let i = usize::from(at) % bytes.len();
                    bytes[i] = v;
                }
                if cut_at % 3 == 0 {
                    bytes.truncate(usize::from(cut_at) % (bytes.len() + 1));
                }
                bytes.extend(tail);
                prop_assert_eq!(body::read(&bytes), postcard_read(&bytes));
            }

            #[test]
            fn reads_any_bytes_as_postcard_does(bytes in proptest::collection::vec(any::<u8>(), 0..24)) {
                prop_assert_eq!(body::read(&bytes), postcard_read(&bytes));
            }
        }
    }

    #[test]
    fn snapshot_max_is_3033_bytes() {
        // Proven exact by `tests/snapshot.rs` (every field at capacity).
        assert_eq!(SNAPSHOT_MAX, 3_033);
    }
}
