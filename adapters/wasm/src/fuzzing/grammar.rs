//! The input grammar: the steps an input stands for, and how bytes decode into them.
//!
//! Hand-written and byte-driven: a cursor reads one [`Step`] after another (at most
//! [`MAX_STEPS`](super::MAX_STEPS)); bytes past the end read as zero. Each step starts
//! with an opcode byte whose low 7 bits, modulo 23, choose the step ([`Step`] lists them
//! in order); for the inputs (`cba_init` … `cba_handle_timeout`, `cba_update_profile`,
//! `cba_delete_account`), the high bit `0x80`
//! says *do not drain* afterwards (otherwise the harness polls until the timeout kind
//! at once). [`encode`](super::encode) writes steps in this layout; [`decode`] shows the
//! steps an input stands for.

// The step types are an input format, matched exhaustively on purpose.
#![allow(clippy::exhaustive_enums, clippy::exhaustive_structs)]

use super::{APPID, ENV, MAX_STEPS};
use crate::abi::TIME_MAX;

/// Canned strings for [`Text::Canned`] (index modulo the length): good values, empty,
/// invalid ones the engine must refuse, a too-long one, not-UTF-8 bytes.
pub(super) const CANNED: [&[u8]; 12] = [
    b"",
    ENV.as_bytes(),
    APPID.as_bytes(),
    b"code-1",
    b"fuzz-client-9",
    b"bad id",
    b"wx/bad",
    b"env\xff",
    b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "匿名😀".as_bytes(),
    b"code\n",
    b"\0",
];

/// Raw times for [`Time::Special`]: NaN, -0, ±inf, 2^53, 2^53 + 1, -1, 0.
pub(super) const SPECIAL_TIMES: [f64; 8] = [
    f64::NAN,
    -0.0,
    f64::INFINITY,
    f64::NEG_INFINITY,
    TIME_MAX as f64,
    TIME_MAX as f64 + 2.0, // 2^53 + 1 is not an f64: the next one up
    -1.0,
    0.0,
];

/// Statuses for [`Status::Table`] (index modulo the length).
pub(super) const STATUSES: [u32; 12] = [200, 400, 401, 403, 404, 409, 429, 500, 503, 204, 302, 0];

/// A time argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Time {
    /// The harness's clock (monotonic; moved by [`Step::Advance`]). Byte `< 0xF0`.
    Clock,
    /// One of NaN, -0, +inf, -inf, 2^53, 2^53 + 2, -1, 0. Byte `0xF0 + i`.
    Special(u8),
    /// Any `f64`, as its bits. Byte `0xF8`, then 8 bytes little-endian.
    Raw(u64),
    /// The clock minus this many ms (time going back). Byte `0xF9`, then 2 bytes.
    Back(u16),
    /// The clock plus half a millisecond (not integral). Byte `0xFA`.
    Frac,
    /// The last timeout deadline (the clock moves there if it is later). Byte `0xFB..`.
    Deadline,
}

/// How a `(ptr, len)` pair is passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pair {
    /// Where the harness wrote the value. Byte `< 0xC0`.
    Placed,
    /// A pointer and length from two tables: `ptr % 10` picks the pointer
    /// (the placed one, 0, 1, `usize::MAX`, the buffer's end, end − 1, base − 1,
    /// `usize::MAX − extra`, base + extra, base − extra), `len % 12` the length (the
    /// placed one, 0, 1, `usize::MAX`, `EXCHANGE_LEN`, `EXCHANGE_LEN + 1`, exactly to the
    /// end, one past it, wrapping `ptr + len` to 0, extra, `start + len = usize::MAX`,
    /// overflowing `start + len`). Byte `0xC0..`, then ptr, len, extra (2 bytes).
    Hostile {
        /// Pointer choice.
        ptr: u8,
        /// Length choice.
        len: u8,
        /// Offset for the choices that take one.
        extra: u16,
    },
}

/// A string argument's bytes, which the harness writes into the exchange buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Text {
    /// The good value for the argument (env: [`ENV`]; client id: empty, i.e. the env;
    /// code: `code-1`; appid: [`APPID`]). Byte `0`.
    Good,
    /// A canned string (index modulo 12). Byte `1 + i` (`i < 0x7F`).
    Canned(u8),
    /// These bytes. Byte `0x80..`, then a length byte and the bytes.
    Bytes(Vec<u8>),
}

/// What [`Call::Restore`] restores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Snap {
    /// The last snapshot a poll persisted (kept across [`Step::Reset`]; empty if none).
    /// Byte `< 0x80`.
    Last,
    /// That snapshot with byte `at % len` xor-ed with `mask` (0 counts as 1). Byte
    /// `0x80..0xC0`, then 2 bytes and 1.
    Flipped {
        /// Which byte.
        at: u16,
        /// What to flip.
        mask: u8,
    },
    /// These bytes (stored as base64, so the engine gets them as they are). Byte
    /// `0xC0..0xE0`, then a 2-byte length and the bytes.
    Bytes(Vec<u8>),
    /// These bytes as the stored text itself (base64 or not). Byte `0xE0..`, then a
    /// 2-byte length and the bytes.
    Text(Vec<u8>),
}

/// Which request a reply or transport error is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Id {
    /// A transmit the harness polled: 0 the newest, modulo the 8 kept; `(0, 0)` if none.
    /// Byte `< 0x80`.
    Recent(u8),
    /// Any `(generation, seq)`. Byte `0x80..`, then two 4-byte numbers.
    Raw(u32, u32),
}

/// An HTTP status argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// 200, 400, 401, 403, 404, 409, 429, 500, 503, 204, 302, 0 (index modulo 12).
    /// Byte `< 0xF0`.
    Table(u8),
    /// Any `u32` (above 65535: refused). Byte `0xF0..`, then 4 bytes.
    Raw(u32),
}

/// A canned reply to the request's endpoint (one byte, modulo 8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// 200 with what CloudBase answers: credentials for sign-ins and refreshes (scope
    /// `anonymous` for the anonymous sign-in and for refreshes of an anonymous session
    /// not being linked, else `user`), a provider token, a user with a WeChat
    /// identity, `{}` for bind, revoke and anything else.
    Good,
    /// As `Good` with the other credentials scope.
    FlipScope,
    /// As `Good`, credentials without a refresh token.
    NoRefresh,
    /// As `Good`, credentials with this `expires_in` (then 8 bytes).
    Expires(u64),
    /// 401 `unauthenticated`.
    Unauthenticated,
    /// 400 `invalid_grant`.
    InvalidGrant,
    /// 503 `unavailable`.
    Unavailable,
    /// 200 `{}`.
    EmptyObject,
}

/// The two WeChat operations' arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeChat {
    /// Host time.
    pub time: Time,
    /// Where the strings go: offset `at * 64` in the exchange buffer.
    pub at: u8,
    /// The `wx.login` code.
    pub code: Text,
    /// How the code is passed.
    pub code_pair: Pair,
    /// The appId.
    pub appid: Text,
    /// How the appId is passed.
    pub appid_pair: Pair,
}

/// An input export call (the engine's drain rule applies to these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// `cba_init`. Layout: time, at, env, env pair, client, client pair, seed byte, seed
    /// pair.
    Init {
        /// Host time.
        time: Time,
        /// Where the strings go: offset `at * 64`.
        at: u8,
        /// The env id.
        env: Text,
        /// How the env id is passed.
        env_pair: Pair,
        /// The client id (empty: the env id).
        client: Text,
        /// How the client id is passed.
        client_pair: Pair,
        /// The 16 seed bytes are all this byte.
        seed: u8,
        /// How the seed is passed (its length is always 16).
        seed_pair: Pair,
    },
    /// `cba_restore`. Layout: time, at, snap, pair.
    Restore {
        /// Host time.
        time: Time,
        /// Where the bytes go: offset `at * 64` (moved back to fit).
        at: u8,
        /// What to restore.
        snap: Snap,
        /// How it is passed.
        pair: Pair,
    },
    /// `cba_get_login_state`. Layout: time.
    GetLoginState(Time),
    /// `cba_get_user_info`. Layout: time.
    GetUserInfo(Time),
    /// `cba_sign_in_anonymously`. Layout: time.
    SignInAnonymously(Time),
    /// `cba_sign_out`. Layout: time.
    SignOut(Time),
    /// `cba_sign_in_with_wechat`. Layout: time, at, code, code pair, appid, appid pair.
    SignInWithWeChat(WeChat),
    /// `cba_link_wechat`. Layout as for sign-in.
    LinkWeChat(WeChat),
    /// `cba_handle_response` with a canned reply for the request's endpoint. Layout:
    /// time, at, id, reply, pair.
    Answer {
        /// Host time.
        time: Time,
        /// Where the body goes: offset `at * 64`.
        at: u8,
        /// Which request.
        id: Id,
        /// What to answer.
        reply: Reply,
        /// How the body is passed.
        pair: Pair,
    },
    /// `cba_handle_response` with any status and body. Layout: time, at, id, status,
    /// body (2-byte length, bytes), pair.
    Respond {
        /// Host time.
        time: Time,
        /// Where the body goes: offset `at * 64` (moved back to fit).
        at: u8,
        /// Which request.
        id: Id,
        /// HTTP status.
        status: Status,
        /// Body bytes.
        body: Vec<u8>,
        /// How the body is passed.
        pair: Pair,
    },
    /// `cba_handle_transport_error`. Layout: time, id.
    TransportError {
        /// Host time.
        time: Time,
        /// Which request.
        id: Id,
    },
    /// `cba_handle_timeout`. Layout: time.
    Timeout(Time),
    /// `cba_update_profile`. Layout: time, at, nickname, nickname pair, avatar URL,
    /// avatar pair, fields byte.
    UpdateProfile {
        /// Host time.
        time: Time,
        /// Where the strings go: offset `at * 64`.
        at: u8,
        /// The nickname (good: `Ming`).
        nickname: Text,
        /// How the nickname is passed.
        nickname_pair: Pair,
        /// The avatar URL (good: `https://a.example/m.png`).
        avatar: Text,
        /// How the avatar URL is passed.
        avatar_pair: Pair,
        /// The `fields` argument (bits above the two defined ones are refused).
        fields: u8,
    },
    /// `cba_delete_account`. Layout: time.
    DeleteAccount(Time),
}

/// One step of an input; the opcode is the position in this list (0 … 20), then 21 and
/// 22 for the account inputs (added last, so older inputs keep their meaning).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Opcodes 0–11, 21 and 22: an input export, then (if `drain`) polls until the
    /// timeout kind.
    Input {
        /// The call.
        call: Call,
        /// Drain afterwards (opcode bit `0x80` clear).
        drain: bool,
    },
    /// 12: one `cba_poll`.
    Poll,
    /// 13: `cba_poll` until it returns the timeout kind.
    Drain,
    /// 14: `cba_login_state`.
    LoginState,
    /// 15: `cba_session`.
    Session,
    /// 16: `cba_user`.
    User,
    /// 17: writes bytes into the exchange buffer at `at % EXCHANGE_LEN` (cut at its
    /// end). Layout: 2-byte offset, length byte, bytes.
    Write {
        /// Offset.
        at: u16,
        /// Bytes.
        bytes: Vec<u8>,
    },
    /// 18: the clock moves on by this many ms. Layout: 4 bytes.
    Advance(u32),
    /// 19: `cba_reset` (a new engine; the last snapshot is kept for [`Snap::Last`]).
    Reset,
    /// 20: `cba_buf` and `cba_buf_len` (constant).
    Buf,
}

const KINDS: u8 = 23;

// ----- decoding --------------------------------------------------------------------------

/// Reads `data` front to back; past the end, zeros.
struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn done(&self) -> bool {
        self.pos >= self.data.len()
    }

    fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos = self.pos.saturating_add(1).min(self.data.len());
        b
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | (u64::from(self.u32()) << 32)
    }

    /// Up to `n` bytes (fewer at the end of the input).
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let end = self.pos.saturating_add(n).min(self.data.len());
        let v = self.data[self.pos..end].to_vec();
        self.pos = end;
        v
    }

    fn time(&mut self) -> Time {
        match self.u8() {
            b @ 0xF0..=0xF7 => Time::Special(b - 0xF0),
            0xF8 => Time::Raw(self.u64()),
            0xF9 => Time::Back(self.u16()),
            0xFA => Time::Frac,
            0xFB..=0xFF => Time::Deadline,
            _ => Time::Clock,
        }
    }

    fn pair(&mut self) -> Pair {
        if self.u8() < 0xC0 {
            return Pair::Placed;
        }
        Pair::Hostile {
            ptr: self.u8(),
            len: self.u8(),
            extra: self.u16(),
        }
    }

    fn text(&mut self) -> Text {
        match self.u8() {
            0 => Text::Good,
            b @ 1..0x80 => Text::Canned(b - 1),
            _ => {
                let n = self.u8();
                Text::Bytes(self.bytes(usize::from(n)))
            }
        }
    }

    fn snap(&mut self) -> Snap {
        match self.u8() {
            0..0x80 => Snap::Last,
            0x80..0xC0 => Snap::Flipped {
                at: self.u16(),
                mask: self.u8(),
            },
            0xC0..0xE0 => {
                let n = self.u16();
                Snap::Bytes(self.bytes(usize::from(n)))
            }
            _ => {
                let n = self.u16();
                Snap::Text(self.bytes(usize::from(n)))
            }
        }
    }

    fn id(&mut self) -> Id {
        match self.u8() {
            b @ 0..0x80 => Id::Recent(b),
            _ => Id::Raw(self.u32(), self.u32()),
        }
    }

    fn status(&mut self) -> Status {
        match self.u8() {
            b @ 0..0xF0 => Status::Table(b),
            _ => Status::Raw(self.u32()),
        }
    }

    fn reply(&mut self) -> Reply {
        match self.u8() % 8 {
            0 => Reply::Good,
            1 => Reply::FlipScope,
            2 => Reply::NoRefresh,
            3 => Reply::Expires(self.u64()),
            4 => Reply::Unauthenticated,
            5 => Reply::InvalidGrant,
            6 => Reply::Unavailable,
            _ => Reply::EmptyObject,
        }
    }

    fn wechat(&mut self) -> WeChat {
        WeChat {
            time: self.time(),
            at: self.u8(),
            code: self.text(),
            code_pair: self.pair(),
            appid: self.text(),
            appid_pair: self.pair(),
        }
    }

    fn step(&mut self) -> Option<Step> {
        if self.done() {
            return None;
        }
        let op = self.u8();
        let drain = op & 0x80 == 0;
        let call = match (op & 0x7F) % KINDS {
            0 => Call::Init {
                time: self.time(),
                at: self.u8(),
                env: self.text(),
                env_pair: self.pair(),
                client: self.text(),
                client_pair: self.pair(),
                seed: self.u8(),
                seed_pair: self.pair(),
            },
            1 => Call::Restore {
                time: self.time(),
                at: self.u8(),
                snap: self.snap(),
                pair: self.pair(),
            },
            2 => Call::GetLoginState(self.time()),
            3 => Call::GetUserInfo(self.time()),
            4 => Call::SignInAnonymously(self.time()),
            5 => Call::SignOut(self.time()),
            6 => Call::SignInWithWeChat(self.wechat()),
            7 => Call::LinkWeChat(self.wechat()),
            8 => Call::Answer {
                time: self.time(),
                at: self.u8(),
                id: self.id(),
                reply: self.reply(),
                pair: self.pair(),
            },
            9 => {
                let (time, at, id, status) = (self.time(), self.u8(), self.id(), self.status());
                let n = self.u16();
                Call::Respond {
                    time,
                    at,
                    id,
                    status,
                    body: self.bytes(usize::from(n)),
                    pair: self.pair(),
                }
            }
            10 => Call::TransportError {
                time: self.time(),
                id: self.id(),
            },
            11 => Call::Timeout(self.time()),
            12 => return Some(Step::Poll),
            13 => return Some(Step::Drain),
            14 => return Some(Step::LoginState),
            15 => return Some(Step::Session),
            16 => return Some(Step::User),
            17 => {
                let at = self.u16();
                let n = self.u8();
                return Some(Step::Write {
                    at,
                    bytes: self.bytes(usize::from(n)),
                });
            }
            18 => return Some(Step::Advance(self.u32())),
            19 => return Some(Step::Reset),
            20 => return Some(Step::Buf),
            21 => Call::UpdateProfile {
                time: self.time(),
                at: self.u8(),
                nickname: self.text(),
                nickname_pair: self.pair(),
                avatar: self.text(),
                avatar_pair: self.pair(),
                fields: self.u8(),
            },
            _ => Call::DeleteAccount(self.time()),
        };
        Some(Step::Input { call, drain })
    }
}

/// The steps `data` stands for (what [`wasm_abi`](super::wasm_abi) runs; for reading
/// crash inputs).
pub fn decode(data: &[u8]) -> Vec<Step> {
    let mut c = Cursor { data, pos: 0 };
    core::iter::from_fn(|| c.step()).take(MAX_STEPS).collect()
}
