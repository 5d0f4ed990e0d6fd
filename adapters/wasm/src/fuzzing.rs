//! The body of the `wasm_abi` cargo-fuzz target (`fuzz/fuzz_targets/wasm_abi.rs`):
//! arbitrary call sequences and byte buffers through the exported functions, compiled
//! natively, with the pointers, lengths, times, statuses and request ids a hostile or
//! buggy JS facade could pass.
//!
//! Host builds only, and only for this crate's tests or a `--cfg fuzzing` build (the
//! fuzz crate includes this crate's source with `#[path]`, the crate being
//! cdylib-only): the wasm32 module does not contain it.
//!
//! # Input format
//!
//! Hand-written and byte-driven: a cursor reads one [`Step`] after another (at most
//! [`MAX_STEPS`]); bytes past the end read as zero. Each step starts with an opcode byte
//! whose low 7 bits, modulo 21, choose the step ([`Step`] lists them in order); for the
//! inputs (`cba_init` … `cba_handle_timeout`), the high bit `0x80` says *do not drain*
//! afterwards (otherwise the harness polls until the timeout kind at once). [`encode`]
//! writes steps in this layout; [`decode`] shows the steps an input stands for.
//!
//! # Properties
//!
//! Never a panic; and after every call, the contract of the crate docs: finite return
//! values of the documented range per export; a negative return is `-(class * 256 +
//! sub)` and the error record in the exchange buffer says the same, with the documented
//! sub-codes of its class; an `ARG` error exactly when a host value is bad
//! (`ARG_NOT_DRAINED` for every input before the drain, which then changes no read;
//! otherwise one of the bad values' codes, e.g. `ARG_RANGE` for any `(ptr, len)` outside
//! the exchange buffer); well-formed records (every `str` inside the buffer, UTF-8 for
//! text; kinds, states, completions and booleans in range); state-change records that
//! chain and end at `cba_login_state()` when the drain ends; completions only for ids an
//! export returned, once each; at most [`MAX_POLLS`] polls before the timeout kind; a
//! restore refused as corrupt queues a state change and a clear-storage output; a
//! session (and a user) exactly in the anonymous and WeChat states.

// The step types are an input format, matched exhaustively on purpose.
#![allow(clippy::exhaustive_enums, clippy::exhaustive_structs)]

use super::{EXCHANGE_LEN, err, exports::*, with_exchange};
use cloudbase_auth_core::wire::Endpoint;
use std::format;
use std::string::String;
use std::vec::Vec;

/// Steps run per input, at most.
pub const MAX_STEPS: usize = 256;

/// Polls that may return something other than the timeout kind after an input (the
/// engine's queue holds at most a handful of outputs per input; this bound only catches
/// a queue that never drains).
pub const MAX_POLLS: u32 = 64;

/// Host time of a fresh harness (Unix ms, November 2023).
pub const T0: u64 = 1_700_000_000_000;

/// The env id the harness initialises with ([`Text::Good`] for `env`).
pub const ENV: &str = "fuzz-env-1a2b";

/// The Mini Program appId ([`Text::Good`] for `appid`).
pub const APPID: &str = "wx0123456789abcdef";

/// The largest time the exports accept (2^53 ms).
const TIME_MAX: f64 = super::TIME_MAX as f64;

/// Canned strings for [`Text::Canned`] (index modulo the length): good values, empty,
/// invalid ones the engine must refuse, a too-long one, not-UTF-8 bytes.
const CANNED: [&[u8]; 12] = [
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
const SPECIAL_TIMES: [f64; 8] = [
    f64::NAN,
    -0.0,
    f64::INFINITY,
    f64::NEG_INFINITY,
    TIME_MAX,
    TIME_MAX + 2.0, // 2^53 + 1 is not an f64: the next one up
    -1.0,
    0.0,
];

/// Statuses for [`Status::Table`] (index modulo the length).
const STATUSES: [u32; 12] = [200, 400, 401, 403, 404, 409, 429, 500, 503, 204, 302, 0];

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
    /// These bytes. Byte `0xC0..`, then a 2-byte length and the bytes.
    Bytes(Vec<u8>),
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
}

/// One step of an input; the opcode is the position in this list (0 … 20).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Opcodes 0–11: an input export, then (if `drain`) polls until the timeout kind.
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

const KINDS: u8 = 21;

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
            _ => {
                let n = self.u16();
                Snap::Bytes(self.bytes(usize::from(n)))
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
            _ => return Some(Step::Buf),
        };
        Some(Step::Input { call, drain })
    }
}

/// The steps `data` stands for (what [`wasm_abi`] runs; for reading crash inputs).
pub fn decode(data: &[u8]) -> Vec<Step> {
    let mut c = Cursor { data, pos: 0 };
    core::iter::from_fn(|| c.step()).take(MAX_STEPS).collect()
}

// ----- encoding --------------------------------------------------------------------------

/// Writes steps in the input format: `decode(&encode(s)) == s` for steps whose numbers
/// are in the ranges the format gives them (seeds; decoded steps).
pub fn encode(steps: &[Step]) -> Vec<u8> {
    let mut out = Vec::new();
    for s in steps {
        encode_step(&mut out, s);
    }
    out
}

fn enc_time(o: &mut Vec<u8>, t: &Time) {
    match t {
        Time::Clock => o.push(0),
        Time::Special(i) => o.push(0xF0 + i % 8),
        Time::Raw(bits) => {
            o.push(0xF8);
            o.extend_from_slice(&bits.to_le_bytes());
        }
        Time::Back(ms) => {
            o.push(0xF9);
            o.extend_from_slice(&ms.to_le_bytes());
        }
        Time::Frac => o.push(0xFA),
        Time::Deadline => o.push(0xFB),
    }
}

fn enc_pair(o: &mut Vec<u8>, p: &Pair) {
    match p {
        Pair::Placed => o.push(0),
        Pair::Hostile { ptr, len, extra } => {
            o.extend_from_slice(&[0xC0, *ptr, *len]);
            o.extend_from_slice(&extra.to_le_bytes());
        }
    }
}

fn enc_text(o: &mut Vec<u8>, t: &Text) {
    match t {
        Text::Good => o.push(0),
        Text::Canned(i) => o.push(1 + i % 0x7F),
        Text::Bytes(b) => {
            let b = &b[..b.len().min(255)];
            o.extend_from_slice(&[0x80, b.len() as u8]);
            o.extend_from_slice(b);
        }
    }
}

fn enc_id(o: &mut Vec<u8>, id: &Id) {
    match id {
        Id::Recent(k) => o.push(k % 0x80),
        Id::Raw(g, s) => {
            o.push(0x80);
            o.extend_from_slice(&g.to_le_bytes());
            o.extend_from_slice(&s.to_le_bytes());
        }
    }
}

fn enc_wechat(o: &mut Vec<u8>, w: &WeChat) {
    enc_time(o, &w.time);
    o.push(w.at);
    enc_text(o, &w.code);
    enc_pair(o, &w.code_pair);
    enc_text(o, &w.appid);
    enc_pair(o, &w.appid_pair);
}

fn encode_step(o: &mut Vec<u8>, s: &Step) {
    let (call, drain) = match s {
        Step::Input { call, drain } => (call, *drain),
        Step::Poll => return o.push(12),
        Step::Drain => return o.push(13),
        Step::LoginState => return o.push(14),
        Step::Session => return o.push(15),
        Step::User => return o.push(16),
        Step::Write { at, bytes } => {
            let b = &bytes[..bytes.len().min(255)];
            o.push(17);
            o.extend_from_slice(&at.to_le_bytes());
            o.push(b.len() as u8);
            return o.extend_from_slice(b);
        }
        Step::Advance(ms) => {
            o.push(18);
            return o.extend_from_slice(&ms.to_le_bytes());
        }
        Step::Reset => return o.push(19),
        Step::Buf => return o.push(20),
    };
    let flag = if drain { 0 } else { 0x80 };
    match call {
        Call::Init {
            time,
            at,
            env,
            env_pair,
            client,
            client_pair,
            seed,
            seed_pair,
        } => {
            o.push(flag);
            enc_time(o, time);
            o.push(*at);
            enc_text(o, env);
            enc_pair(o, env_pair);
            enc_text(o, client);
            enc_pair(o, client_pair);
            o.push(*seed);
            enc_pair(o, seed_pair);
        }
        Call::Restore {
            time,
            at,
            snap,
            pair,
        } => {
            o.push(flag | 1);
            enc_time(o, time);
            o.push(*at);
            match snap {
                Snap::Last => o.push(0),
                Snap::Flipped { at, mask } => {
                    o.push(0x80);
                    o.extend_from_slice(&at.to_le_bytes());
                    o.push(*mask);
                }
                Snap::Bytes(b) => {
                    let b = &b[..b.len().min(usize::from(u16::MAX))];
                    o.push(0xC0);
                    o.extend_from_slice(&(b.len() as u16).to_le_bytes());
                    o.extend_from_slice(b);
                }
            }
            enc_pair(o, pair);
        }
        Call::GetLoginState(t) => {
            o.push(flag | 2);
            enc_time(o, t);
        }
        Call::GetUserInfo(t) => {
            o.push(flag | 3);
            enc_time(o, t);
        }
        Call::SignInAnonymously(t) => {
            o.push(flag | 4);
            enc_time(o, t);
        }
        Call::SignOut(t) => {
            o.push(flag | 5);
            enc_time(o, t);
        }
        Call::SignInWithWeChat(w) => {
            o.push(flag | 6);
            enc_wechat(o, w);
        }
        Call::LinkWeChat(w) => {
            o.push(flag | 7);
            enc_wechat(o, w);
        }
        Call::Answer {
            time,
            at,
            id,
            reply,
            pair,
        } => {
            o.push(flag | 8);
            enc_time(o, time);
            o.push(*at);
            enc_id(o, id);
            match reply {
                Reply::Good => o.push(0),
                Reply::FlipScope => o.push(1),
                Reply::NoRefresh => o.push(2),
                Reply::Expires(s) => {
                    o.push(3);
                    o.extend_from_slice(&s.to_le_bytes());
                }
                Reply::Unauthenticated => o.push(4),
                Reply::InvalidGrant => o.push(5),
                Reply::Unavailable => o.push(6),
                Reply::EmptyObject => o.push(7),
            }
            enc_pair(o, pair);
        }
        Call::Respond {
            time,
            at,
            id,
            status,
            body,
            pair,
        } => {
            o.push(flag | 9);
            enc_time(o, time);
            o.push(*at);
            enc_id(o, id);
            match status {
                Status::Table(i) => o.push(i % 0xF0),
                Status::Raw(s) => {
                    o.push(0xF0);
                    o.extend_from_slice(&s.to_le_bytes());
                }
            }
            let b = &body[..body.len().min(usize::from(u16::MAX))];
            o.extend_from_slice(&(b.len() as u16).to_le_bytes());
            o.extend_from_slice(b);
            enc_pair(o, pair);
        }
        Call::TransportError { time, id } => {
            o.push(flag | 10);
            enc_time(o, time);
            enc_id(o, id);
        }
        Call::Timeout(t) => {
            o.push(flag | 11);
            enc_time(o, t);
        }
    }
}

// ----- records ---------------------------------------------------------------------------

/// Reads a record from the exchange buffer; every problem is a message (the caller
/// panics with it outside the buffer's lock).
struct Rd<'a> {
    buf: &'a [u8],
    pos: usize,
}

type Check<T> = Result<T, String>;

impl<'a> Rd<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Rd { buf, pos: 0 }
    }

    fn num(&mut self, what: &str) -> Check<f64> {
        let b = self
            .buf
            .get(self.pos..self.pos + 8)
            .ok_or_else(|| format!("{what}: num past the buffer"))?;
        self.pos += 8;
        let v = f64::from_le_bytes(b.try_into().map_err(|_| "8 bytes")?);
        if !v.is_finite() {
            return Err(format!("{what}: not finite: {v}"));
        }
        Ok(v)
    }

    /// An integral `num` in `lo..=hi`.
    fn int(&mut self, what: &str, lo: f64, hi: f64) -> Check<f64> {
        let v = self.num(what)?;
        if v.fract() != 0.0 || !(lo..=hi).contains(&v) {
            return Err(format!("{what}: {v} not an integer in {lo}..={hi}"));
        }
        Ok(v)
    }

    fn bytes(&mut self, what: &str) -> Check<&'a [u8]> {
        let n = self
            .buf
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| format!("{what}: length past the buffer"))?;
        let n = u32::from_le_bytes(n.try_into().map_err(|_| "4 bytes")?) as usize;
        self.pos += 4;
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= EXCHANGE_LEN)
            .ok_or_else(|| format!("{what}: str of {n} bytes past the exchange buffer"))?;
        let b = &self.buf[self.pos..end];
        self.pos = end;
        Ok(b)
    }

    fn text(&mut self, what: &str) -> Check<&'a str> {
        core::str::from_utf8(self.bytes(what)?).map_err(|_| format!("{what}: not UTF-8"))
    }

    /// An error record: (class, sub), checked against the documented codes.
    fn error(&mut self) -> Check<(u32, u32)> {
        let class = self.int("class", 1.0, 10.0)? as u32;
        let sub = self.int("sub", 0.0, 255.0)? as u32;
        let subs: &[u32] = match class {
            err::ARG => &[
                err::ARG_RANGE,
                err::ARG_UTF8,
                err::ARG_TIME,
                err::ARG_STATUS,
                err::ARG_NOT_DRAINED,
            ],
            err::API_MISUSE => &[1, 2, 3, 4, 5, 6, 7, 8, 9],
            err::WIRE => &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
            err::TRANSPORT => &[1, 2],
            err::SNAPSHOT => &[1, 2, 3, 4, 5, 6, 7, 8],
            _ => &[0],
        };
        if !subs.contains(&sub) {
            return Err(format!("class {class}: undocumented sub {sub}"));
        }
        self.int("status", 0.0, 65535.0)?;
        self.int("server kind", 0.0, 8.0)?;
        self.num("error_code")?;
        self.text("field")?;
        Ok((class, sub))
    }
}

/// Runs `f` on the exchange buffer's record; panics (outside the lock) on a problem.
fn record<T>(what: &str, f: impl FnOnce(&mut Rd<'_>) -> Check<T>) -> T {
    match with_exchange(|x| f(&mut Rd::new(x))) {
        Ok(v) => v,
        Err(e) => panic!("{what} record: {e}"),
    }
}

/// One polled output, as far as the harness follows it.
enum Polled {
    Timeout(f64),
    Transmit(u32, u32, Option<Endpoint>),
    Persist(Vec<u8>),
    Clear,
    Changed(u32, u32),
    Completed(u32),
    Replaced,
}

fn read_output(kind: u32) -> Polled {
    record("poll", |r| {
        Ok(match kind {
            0 => {
                let d = r.num("deadline")?;
                if d != -1.0 && d < 0.0 {
                    return Err(format!("deadline {d}"));
                }
                Polled::Timeout(d)
            }
            1 => {
                let g = r.int("generation", 0.0, f64::from(u32::MAX))? as u32;
                let s = r.int("seq", 0.0, f64::from(u32::MAX))? as u32;
                r.text("method")?;
                let path = r.text("path")?;
                let headers = r.text("headers")?;
                if !headers.is_empty() && !headers.ends_with('\n') {
                    return Err("a header line without its \\n".into());
                }
                if let Some(l) = headers.lines().find(|l| !l.contains(": ")) {
                    return Err(format!("header line {l:?} is not `name: value`"));
                }
                r.int("has_body", 0.0, 1.0)?;
                r.bytes("body")?;
                // `/auth/v1/token?client_id=…` → `Endpoint::Token`.
                let path = path.split('?').next().unwrap_or("");
                let ep = Endpoint::ALL.into_iter().find(|e| path.ends_with(e.path()));
                Polled::Transmit(g, s, ep)
            }
            2 => Polled::Persist(r.bytes("snapshot")?.to_vec()),
            3 => Polled::Clear,
            4 => Polled::Changed(
                r.int("from", 0.0, 4.0)? as u32,
                r.int("to", 0.0, 4.0)? as u32,
            ),
            5 => {
                let op = r.int("op", 1.0, f64::from(u32::MAX))? as u32;
                if r.int("ok", 0.0, 1.0)? == 1.0 {
                    let c = r.int("completion", 1.0, 5.0)?;
                    let hi = match c as u32 {
                        2 => 4.0,
                        5 => 1.0,
                        _ => 0.0,
                    };
                    r.int("detail", 0.0, hi)?;
                } else if r.error()?.0 == err::ARG {
                    return Err("an operation failed with a host-value error".into());
                }
                Polled::Completed(op)
            }
            6 => Polled::Replaced,
            k => return Err(format!("poll kind {k}")),
        })
    })
}

// ----- the harness -----------------------------------------------------------------------

/// Transmits kept for [`Id::Recent`].
const RECENT: usize = 8;

/// What the harness knows beyond the module: its clock, what it polled, and what the
/// docs say must happen next.
struct Harness {
    base: usize,
    clock: u64,
    deadline: Option<f64>,
    /// An input was made (whatever it returned) and no poll returned the timeout since.
    undrained: bool,
    /// Polls since the last timeout kind.
    polls: u32,
    recent: Vec<(u32, u32, Option<Endpoint>)>,
    snapshot: Option<Vec<u8>>,
    issued: Vec<u32>,
    completed: Vec<u32>,
    /// The login state as the state-change records tell it.
    reported: u32,
    /// A restore was refused as corrupt: the drain must show a state change and a
    /// clear-storage output.
    expect_clear: bool,
    seen_clear: bool,
    /// A "session replaced" was polled: the next state change must be to anonymous.
    replacing: bool,
    seen_change: bool,
    /// A bind was answered and no refresh since: that refresh gets the `user` scope.
    bound: bool,
    /// Where the next placed value goes.
    place: usize,
}

/// What an input export may fail with from the values the host passes.
#[derive(Default)]
struct Faults {
    subs: Vec<u32>,
    /// `(ptr, len)` pairs to check once every value is placed (a later value may
    /// overwrite an earlier one's bytes), and whether each is text.
    pairs: Vec<((usize, usize), bool)>,
}

impl Faults {
    fn add(&mut self, sub: u32) {
        if !self.subs.contains(&sub) {
            self.subs.push(sub);
        }
    }
}

/// What the reads show: login state, session record (uid, token type, access token,
/// expires_at, refresh_at, refreshable), user record. A refused input must leave them
/// as they were.
#[derive(PartialEq, Debug)]
struct Reads {
    state: u32,
    session: Option<(String, String, String, f64, f64, f64)>,
    user: Option<Vec<String>>,
}

/// How a successful input export's return value must look.
#[derive(Clone, Copy)]
enum Returns {
    Zero,
    OpId,
    Delivery,
}

fn code(class: u32, sub: u32) -> f64 {
    -f64::from(class * 256 + sub)
}

impl Harness {
    fn new() -> Self {
        Harness {
            base: cba_buf().addr(),
            clock: T0,
            deadline: None,
            undrained: false,
            polls: 0,
            recent: Vec::new(),
            snapshot: None,
            issued: Vec::new(),
            completed: Vec::new(),
            reported: 0,
            expect_clear: false,
            seen_clear: false,
            replacing: false,
            seen_change: false,
            bound: false,
            place: 0,
        }
    }

    fn reset(&mut self) {
        cba_reset();
        self.deadline = None;
        self.undrained = false;
        self.polls = 0;
        self.recent.clear();
        self.issued.clear();
        self.completed.clear();
        self.reported = 0;
        self.expect_clear = false;
        self.bound = false;
    }

    fn time(&mut self, t: &Time) -> f64 {
        match t {
            Time::Clock => self.clock as f64,
            Time::Special(i) => SPECIAL_TIMES[usize::from(*i) % SPECIAL_TIMES.len()],
            Time::Raw(bits) => f64::from_bits(*bits),
            Time::Back(ms) => self.clock.saturating_sub(u64::from(*ms)) as f64,
            Time::Frac => self.clock as f64 + 0.5,
            Time::Deadline => match self.deadline {
                // Deadlines are capped at 2^53, so the deadline itself is always a time
                // `cba_handle_timeout` takes (asserted where the record is read).
                Some(d) if d >= 0.0 => {
                    if d > self.clock as f64 {
                        self.clock = d as u64;
                    }
                    d
                }
                _ => self.clock as f64,
            },
        }
    }

    /// Writes `bytes` at the next free offset from `at * 64` (moved back to fit); its
    /// offset.
    fn put(&mut self, bytes: &[u8]) -> usize {
        let off = self.place.min(EXCHANGE_LEN - bytes.len().min(EXCHANGE_LEN));
        let n = bytes.len().min(EXCHANGE_LEN - off);
        with_exchange(|x| x[off..off + n].copy_from_slice(&bytes[..n]));
        self.place = off + n;
        off
    }

    /// The `(ptr, len)` for a value placed at `off` with `len` bytes.
    fn pair(&self, p: &Pair, off: usize, len: usize) -> (usize, usize) {
        let Pair::Hostile { ptr, len: l, extra } = p else {
            return (self.base + off, len);
        };
        let (base, e) = (self.base, usize::from(*extra));
        let ptr = match ptr % 10 {
            0 => base + off,
            1 => 0,
            2 => 1,
            3 => usize::MAX,
            4 => base + EXCHANGE_LEN,
            5 => base + EXCHANGE_LEN - 1,
            6 => base.wrapping_sub(1),
            7 => usize::MAX - e,
            8 => base.wrapping_add(e),
            _ => base.wrapping_sub(e),
        };
        let start = ptr.wrapping_sub(base);
        let len = match l % 12 {
            0 => len,
            1 => 0,
            2 => 1,
            3 => usize::MAX,
            4 => EXCHANGE_LEN,
            5 => EXCHANGE_LEN + 1,
            6 => EXCHANGE_LEN.wrapping_sub(start),
            7 => EXCHANGE_LEN.wrapping_sub(start).wrapping_add(1),
            8 => 0usize.wrapping_sub(ptr),
            9 => e,
            10 => usize::MAX - start,
            _ => (usize::MAX - start).wrapping_add(1),
        };
        (ptr, len)
    }

    /// The docs' "inside the exchange buffer".
    fn inside(&self, (ptr, len): (usize, usize)) -> bool {
        let start = ptr.wrapping_sub(self.base);
        start <= EXCHANGE_LEN && len <= EXCHANGE_LEN - start
    }

    /// Checks the pairs of `f` against the buffer as it is now (right before the
    /// call): out of range, or (for text) not UTF-8, is a fault.
    fn settle(&self, f: &mut Faults) {
        for (pair, text) in core::mem::take(&mut f.pairs) {
            if !self.inside(pair) {
                f.add(err::ARG_RANGE);
                continue;
            }
            if text {
                let start = pair.0 - self.base;
                let utf8 =
                    with_exchange(|x| core::str::from_utf8(&x[start..start + pair.1]).is_ok());
                if !utf8 {
                    f.add(err::ARG_UTF8);
                }
            }
        }
    }

    /// Places a string argument; its `(ptr, len)`.
    fn text(&mut self, f: &mut Faults, t: &Text, good: &[u8], p: &Pair) -> (usize, usize) {
        let bytes: &[u8] = match t {
            Text::Good => good,
            Text::Canned(i) => CANNED[usize::from(*i) % CANNED.len()],
            Text::Bytes(b) => b,
        };
        let off = self.put(bytes);
        let pair = self.pair(p, off, bytes.len());
        f.pairs.push((pair, true));
        pair
    }

    fn bytes_arg(&mut self, f: &mut Faults, bytes: &[u8], p: &Pair) -> (usize, usize) {
        let off = self.put(bytes);
        let pair = self.pair(p, off, bytes.len());
        f.pairs.push((pair, false));
        pair
    }

    fn id(&self, id: &Id) -> (u32, u32, Option<Endpoint>) {
        match id {
            Id::Recent(k) if !self.recent.is_empty() => {
                let i = usize::from(*k) % self.recent.len();
                self.recent[self.recent.len() - 1 - i]
            }
            Id::Recent(_) => (0, 0, None),
            Id::Raw(g, s) => (*g, *s, None),
        }
    }

    /// A canned reply for `endpoint`: (status, body).
    fn canned(&mut self, endpoint: Option<Endpoint>, reply: &Reply) -> (u32, Vec<u8>) {
        let err = |status, error: &str, code: u32| {
            let body =
                format!(r#"{{"error":"{error}","error_code":{code},"error_description":"fuzz"}}"#);
            (status, body.into_bytes())
        };
        let (mut expires, mut refresh, flip) = (7200, true, false);
        let flip = match reply {
            Reply::Good => flip,
            Reply::FlipScope => true,
            Reply::NoRefresh => {
                refresh = false;
                flip
            }
            Reply::Expires(s) => {
                expires = *s;
                flip
            }
            Reply::Unauthenticated => return err(401, "unauthenticated", 16),
            Reply::InvalidGrant => return err(400, "invalid_grant", 3),
            Reply::Unavailable => return err(503, "unavailable", 14),
            Reply::EmptyObject => return (200, b"{}".to_vec()),
        };
        let creds = |anonymous: bool| {
            let (sub, scope) = if anonymous ^ flip {
                ("100", "anonymous")
            } else {
                ("200", "user")
            };
            let rt = if refresh {
                format!(r#""refresh_token":"rt-{sub}","#)
            } else {
                String::new()
            };
            let body = format!(
                r#"{{"token_type":"Bearer","access_token":"at-{sub}",{rt}"expires_in":{expires},"scope":"{scope}","sub":"{sub}"}}"#
            );
            (200, body.into_bytes())
        };
        match endpoint {
            Some(Endpoint::SignInAnonymously) => creds(true),
            Some(Endpoint::SignInWithProvider | Endpoint::SignInWeChatNoAuth) => creds(false),
            Some(Endpoint::Token) => {
                let anonymous = cba_login_state() == 2 && !self.bound;
                self.bound = false;
                creds(anonymous)
            }
            Some(Endpoint::ProviderToken) => (
                200,
                br#"{"provider_token":"pt-1","expires_in":300}"#.to_vec(),
            ),
            Some(Endpoint::UserMe) => (
                200,
                format!(
                    r#"{{"sub":"100","name":"微信用户😀","picture":"https://a/b.png","email":"a@b.c","providers":[{{"id":"{APPID}","provider_user_id":"oOPENID"}}]}}"#
                )
                .into_bytes(),
            ),
            Some(Endpoint::ProviderBind) => {
                self.bound = true;
                (200, b"{}".to_vec())
            }
            _ => (200, b"{}".to_vec()),
        }
    }

    fn input(&mut self, call: &Call, drain: bool) {
        let refused = self.undrained;
        let before = refused.then(|| self.reads());
        let mut f = Faults::default();
        let time_ok = |t: f64, f: &mut Faults| {
            if !(0.0..=TIME_MAX).contains(&t) {
                f.add(err::ARG_TIME);
            }
            t
        };
        let (r, returns) = match call {
            Call::Init {
                time,
                at,
                env,
                env_pair,
                client,
                client_pair,
                seed,
                seed_pair,
            } => {
                let now = time_ok(self.time(time), &mut f);
                self.place = usize::from(*at) * 64;
                let off = self.put(&[*seed; 16]);
                // The seed's length is always 16: only the pointer can be hostile.
                let seed = self.pair(seed_pair, off, 16).0;
                if !self.inside((seed, 16)) {
                    f.add(err::ARG_RANGE);
                }
                let env = self.text(&mut f, env, ENV.as_bytes(), env_pair);
                // `client_len == 0`: the env id, the pointer unused (and unchecked).
                let mut cf = Faults::default();
                let client = self.text(&mut cf, client, b"", client_pair);
                if client.1 > 0 {
                    f.pairs.append(&mut cf.pairs);
                }
                self.settle(&mut f);
                let r = cba_init(now, env.0, env.1, client.0, client.1, seed);
                (r, Returns::Zero)
            }
            Call::Restore {
                time,
                at,
                snap,
                pair,
            } => {
                let now = time_ok(self.time(time), &mut f);
                self.place = usize::from(*at) * 64;
                let bytes = match snap {
                    Snap::Last => self.snapshot.clone().unwrap_or_default(),
                    Snap::Flipped { at, mask } => {
                        let mut b = self.snapshot.clone().unwrap_or_default();
                        if !b.is_empty() {
                            let i = usize::from(*at) % b.len();
                            b[i] ^= (*mask).max(1);
                        }
                        b
                    }
                    Snap::Bytes(b) => b.clone(),
                };
                let (ptr, len) = self.bytes_arg(&mut f, &bytes, pair);
                self.settle(&mut f);
                (cba_restore(now, ptr, len), Returns::Zero)
            }
            Call::GetLoginState(t) => {
                let now = time_ok(self.time(t), &mut f);
                (cba_get_login_state(now), Returns::OpId)
            }
            Call::GetUserInfo(t) => {
                let now = time_ok(self.time(t), &mut f);
                (cba_get_user_info(now), Returns::OpId)
            }
            Call::SignInAnonymously(t) => {
                let now = time_ok(self.time(t), &mut f);
                (cba_sign_in_anonymously(now), Returns::OpId)
            }
            Call::SignOut(t) => {
                let now = time_ok(self.time(t), &mut f);
                (cba_sign_out(now), Returns::OpId)
            }
            Call::SignInWithWeChat(w) | Call::LinkWeChat(w) => {
                let now = time_ok(self.time(&w.time), &mut f);
                self.place = usize::from(w.at) * 64;
                let code = self.text(&mut f, &w.code, b"code-1", &w.code_pair);
                let appid = self.text(&mut f, &w.appid, APPID.as_bytes(), &w.appid_pair);
                let export = match call {
                    Call::LinkWeChat(_) => cba_link_wechat,
                    _ => cba_sign_in_with_wechat,
                };
                self.settle(&mut f);
                let r = export(now, code.0, code.1, appid.0, appid.1);
                (r, Returns::OpId)
            }
            Call::Answer {
                time,
                at,
                id,
                reply,
                pair,
            } => {
                let now = time_ok(self.time(time), &mut f);
                let (g, s, endpoint) = self.id(id);
                let (status, body) = self.canned(endpoint, reply);
                self.place = usize::from(*at) * 64;
                let (ptr, len) = self.bytes_arg(&mut f, &body, pair);
                self.settle(&mut f);
                let r = cba_handle_response(now, g, s, status, ptr, len);
                (r, Returns::Delivery)
            }
            Call::Respond {
                time,
                at,
                id,
                status,
                body,
                pair,
            } => {
                let now = time_ok(self.time(time), &mut f);
                let (g, s, _) = self.id(id);
                let status = match status {
                    Status::Table(i) => STATUSES[usize::from(*i) % STATUSES.len()],
                    Status::Raw(s) => *s,
                };
                if status > 65535 {
                    f.add(err::ARG_STATUS);
                }
                self.place = usize::from(*at) * 64;
                let (ptr, len) = self.bytes_arg(&mut f, body, pair);
                self.settle(&mut f);
                let r = cba_handle_response(now, g, s, status, ptr, len);
                (r, Returns::Delivery)
            }
            Call::TransportError { time, id } => {
                let now = time_ok(self.time(time), &mut f);
                let (g, s, _) = self.id(id);
                (cba_handle_transport_error(now, g, s), Returns::Delivery)
            }
            Call::Timeout(t) => {
                let now = time_ok(self.time(t), &mut f);
                (cba_handle_timeout(now), Returns::Zero)
            }
        };
        let class_sub = self.check_return("input", r);
        if refused {
            assert_eq!(
                r,
                code(err::ARG, err::ARG_NOT_DRAINED),
                "an input before the drain must be refused"
            );
            let after = self.reads();
            assert_eq!(before, Some(after), "a refused input changed a read");
        } else {
            match class_sub {
                Some((err::ARG, sub)) => assert!(
                    f.subs.contains(&sub),
                    "ARG sub {sub} but the host's bad values give {:?}",
                    f.subs
                ),
                _ => assert!(
                    f.subs.is_empty(),
                    "bad host values {:?}, but the export returned {r}",
                    f.subs
                ),
            }
            match (class_sub, returns) {
                (Some(_), _) => {}
                (None, Returns::Zero) => assert_eq!(r, 0.0, "{call:?}"),
                (None, Returns::Delivery) => assert!(r == 0.0 || r == 1.0, "{call:?}: {r}"),
                (None, Returns::OpId) => {
                    assert!(r >= 1.0 && r <= f64::from(u32::MAX) && r.fract() == 0.0);
                    assert!(!self.issued.contains(&(r as u32)), "op id {r} again");
                    self.issued.push(r as u32);
                }
            }
            // Corrupt (not another env's): state change and clear storage follow.
            self.expect_clear = matches!(call, Call::Restore { .. })
                && matches!(class_sub, Some((err::SNAPSHOT, sub)) if sub != 7);
            self.seen_clear = false;
            self.seen_change = false;
            self.undrained = true;
        }
        if drain {
            self.drain();
        }
    }

    /// Checks an `f64` return value and, when negative, its error record; the
    /// error's (class, sub).
    fn check_return(&self, what: &str, r: f64) -> Option<(u32, u32)> {
        assert!(r.is_finite(), "{what}: returned {r}");
        if r >= 0.0 {
            return None;
        }
        let (class, sub) = record("error", |rd| rd.error());
        assert_eq!(r, code(class, sub), "{what}: return value vs error record");
        Some((class, sub))
    }

    /// One `cba_poll`; its kind.
    fn poll(&mut self) -> f64 {
        let r = cba_poll();
        if self.check_return("cba_poll", r).is_some() {
            return r;
        }
        assert!(
            r.fract() == 0.0 && r <= 6.0,
            "cba_poll returned {r} (kinds 0..=6)"
        );
        if r != 0.0 {
            self.polls += 1;
            assert!(
                self.polls <= MAX_POLLS,
                "no timeout within {MAX_POLLS} polls"
            );
        }
        match read_output(r as u32) {
            Polled::Timeout(d) => {
                assert!(
                    d == -1.0 || (0.0..=TIME_MAX).contains(&d),
                    "deadline {d} is neither -1 nor a host time"
                );
                self.deadline = (d >= 0.0).then_some(d);
                self.undrained = false;
                self.polls = 0;
                assert_eq!(
                    self.reported,
                    cba_login_state(),
                    "the last state change of the drain vs cba_login_state"
                );
                if self.expect_clear {
                    assert!(
                        self.seen_clear && self.seen_change,
                        "a corrupt snapshot must queue a state change and clear storage"
                    );
                    self.expect_clear = false;
                }
                self.reads();
            }
            Polled::Transmit(g, s, ep) => {
                if self.recent.len() == RECENT {
                    self.recent.remove(0);
                }
                self.recent.push((g, s, ep));
            }
            Polled::Persist(b) => self.snapshot = Some(b),
            Polled::Clear => self.seen_clear = true,
            Polled::Changed(from, to) => {
                assert_eq!(from, self.reported, "state change from {from} to {to}");
                if std::mem::take(&mut self.replacing) {
                    assert_eq!((from, to), (4, 2), "a replacement is a new anonymous user");
                }
                self.reported = to;
                self.seen_change = true;
            }
            Polled::Replaced => {
                assert!(!self.replacing, "two replacements without a state change");
                self.replacing = true;
            }
            Polled::Completed(op) => {
                assert!(self.issued.contains(&op), "completion of unknown op {op}");
                assert!(!self.completed.contains(&op), "op {op} completed twice");
                self.completed.push(op);
            }
        }
        r
    }

    fn drain(&mut self) {
        for _ in 0..=MAX_POLLS {
            if self.poll() == 0.0 {
                return;
            }
        }
        panic!("no timeout within {MAX_POLLS} polls");
    }

    fn login_state(&self) -> u32 {
        let s = cba_login_state();
        assert!(s <= 4, "login state {s}");
        s
    }

    /// `cba_login_state`, `cba_session` and `cba_user`: records well-formed, a session
    /// and a user exactly when signed in.
    fn reads(&self) -> Reads {
        let state = self.login_state();
        let signed_in = state == 2 || state == 3;
        let s = cba_session();
        self.check_return("cba_session", s);
        assert!(s == 0.0 || s == 1.0, "cba_session returned {s}");
        let session = (s == 1.0).then(|| {
            record("session", |r| {
                Ok((
                    r.text("uid")?.into(),
                    r.text("token type")?.into(),
                    r.text("access token")?.into(),
                    r.num("expires_at")?,
                    r.num("refresh_at")?,
                    r.int("refreshable", 0.0, 1.0)?,
                ))
            })
        });
        assert_eq!(s == 1.0, signed_in, "session vs login state {state}");
        let u = cba_user();
        self.check_return("cba_user", u);
        assert!(u == 0.0 || u == 1.0, "cba_user returned {u}");
        let user = (u == 1.0).then(|| {
            record("user", |r| {
                ["uid", "nickName", "avatarUrl", "email", "openid"]
                    .into_iter()
                    .map(|what| r.text(what).map(String::from))
                    .collect()
            })
        });
        assert_eq!(u == 1.0, signed_in, "user vs login state {state}");
        Reads {
            state,
            session,
            user,
        }
    }

    fn step(&mut self, s: &Step) {
        match s {
            Step::Input { call, drain } => self.input(call, *drain),
            Step::Poll => {
                self.poll();
            }
            Step::Drain => self.drain(),
            Step::LoginState => {
                self.login_state();
            }
            Step::Session | Step::User => {
                self.reads();
            }
            Step::Write { at, bytes } => {
                let off = usize::from(*at) % EXCHANGE_LEN;
                let n = bytes.len().min(EXCHANGE_LEN - off);
                with_exchange(|x| x[off..off + n].copy_from_slice(&bytes[..n]));
            }
            Step::Advance(ms) => {
                self.clock = self.clock.saturating_add(u64::from(*ms));
            }
            Step::Reset => self.reset(),
            Step::Buf => {
                assert_eq!(cba_buf().addr(), self.base, "cba_buf moved");
                assert_eq!(cba_buf_len() as usize, EXCHANGE_LEN);
            }
        }
    }
}

/// The fuzz target's body: runs the steps `data` encodes (see the module docs) on a
/// fresh engine (`cba_reset`), checking the ABI contract after every call, then drains.
/// Panics on a broken property; returns quietly otherwise.
///
/// The exports share one static engine: callers in the same process must not run
/// exports concurrently (tests take a lock).
pub fn wasm_abi(data: &[u8]) {
    let mut h = Harness::new();
    h.reset();
    let mut c = Cursor { data, pos: 0 };
    for _ in 0..MAX_STEPS {
        let Some(s) = c.step() else { break };
        h.step(&s);
    }
    // The drain rule holds at the end of every input too.
    h.drain();
}

// ----- seeds -----------------------------------------------------------------------------

fn input(call: Call) -> Step {
    Step::Input { call, drain: true }
}

fn undrained(call: Call) -> Step {
    Step::Input { call, drain: false }
}

fn init_call(time: Time, env: Text, env_pair: Pair, seed_pair: Pair) -> Call {
    Call::Init {
        time,
        at: 0,
        env,
        env_pair,
        client: Text::Good,
        client_pair: Pair::Placed,
        seed: 7,
        seed_pair,
    }
}

fn init() -> Step {
    input(init_call(
        Time::Clock,
        Text::Good,
        Pair::Placed,
        Pair::Placed,
    ))
}

fn answer(reply: Reply) -> Step {
    input(Call::Answer {
        time: Time::Clock,
        at: 8,
        id: Id::Recent(0),
        reply,
        pair: Pair::Placed,
    })
}

fn respond(status: Status, body: &[u8], pair: Pair) -> Step {
    input(Call::Respond {
        time: Time::Clock,
        at: 8,
        id: Id::Recent(0),
        status,
        body: body.to_vec(),
        pair,
    })
}

fn wechat(code: Text, code_pair: Pair) -> WeChat {
    WeChat {
        time: Time::Clock,
        at: 4,
        code,
        code_pair,
        appid: Text::Good,
        appid_pair: Pair::Placed,
    }
}

fn hostile(ptr: u8, len: u8, extra: u16) -> Pair {
    Pair::Hostile { ptr, len, extra }
}

fn restore(snap: Snap) -> Step {
    input(Call::Restore {
        time: Time::Clock,
        at: 16,
        snap,
        pair: Pair::Placed,
    })
}

/// Init, anonymous sign-in, its credentials and user replies.
fn signed_in_anonymously() -> Vec<Step> {
    vec![
        init(),
        input(Call::SignInAnonymously(Time::Clock)),
        answer(Reply::Good),
        answer(Reply::Good),
    ]
}

/// The committed seeds of `fuzz/corpus/wasm_abi/`: (file name, bytes).
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let mut v = Vec::new();
    let mut seed = |name, steps: Vec<Step>| v.push((name, encode(&steps)));

    seed("anonymous_session", {
        let mut s = signed_in_anonymously();
        s.extend([
            Step::Session,
            Step::User,
            input(Call::GetUserInfo(Time::Clock)),
            answer(Reply::Good),
            input(Call::GetLoginState(Time::Clock)),
            input(Call::SignInAnonymously(Time::Clock)),
            // To the refresh time: the refresh goes out; answered.
            Step::Advance(7_170_000),
            input(Call::Timeout(Time::Deadline)),
            answer(Reply::Good),
            Step::Session,
            input(Call::SignOut(Time::Clock)),
            answer(Reply::Good),
            input(Call::GetUserInfo(Time::Clock)),
            Step::LoginState,
            Step::Buf,
        ]);
        s
    });

    seed("wechat_sign_in_and_link", {
        let mut s = signed_in_anonymously();
        s.extend([
            input(Call::LinkWeChat(wechat(Text::Good, Pair::Placed))),
            answer(Reply::Good), // provider token
            answer(Reply::Good), // bind
            answer(Reply::Good), // refresh: now WeChat
            answer(Reply::Good), // user
            Step::User,
            input(Call::SignInWithWeChat(wechat(
                Text::Canned(3),
                Pair::Placed,
            ))),
            answer(Reply::Good),
            answer(Reply::Good),
            answer(Reply::Good),
            Step::Session,
            input(Call::SignOut(Time::Clock)),
            input(Call::TransportError {
                time: Time::Clock,
                id: Id::Recent(0),
            }),
            // Link refused: not anonymous; a bad code and appId.
            input(Call::LinkWeChat(wechat(Text::Good, Pair::Placed))),
            input(Call::SignInWithWeChat(wechat(
                Text::Canned(5),
                Pair::Placed,
            ))),
            input(Call::SignInWithWeChat(WeChat {
                appid: Text::Canned(6),
                ..wechat(Text::Good, Pair::Placed)
            })),
        ]);
        s
    });

    seed("restore_snapshot", {
        let mut s = signed_in_anonymously();
        s.extend([
            Step::Reset,
            init(),
            restore(Snap::Last),
            Step::Session,
            Step::User,
            restore(Snap::Last), // too late
            Step::Reset,
            init(),
            restore(Snap::Flipped { at: 5, mask: 0x40 }),
            Step::Reset,
            init(),
            restore(Snap::Bytes(b"not a snapshot".to_vec())),
            Step::Reset,
            init(),
            restore(Snap::Bytes(Vec::new())),
            // Another env's snapshot is left alone.
            Step::Reset,
            input(init_call(
                Time::Clock,
                Text::Canned(4),
                Pair::Placed,
                Pair::Placed,
            )),
            restore(Snap::Last),
            input(Call::SignInAnonymously(Time::Clock)),
        ]);
        s
    });

    seed("hostile_pointers", {
        let mut s = Vec::new();
        // Every pointer choice, with the placed length and others.
        for (ptr, len) in [
            (1, 0),
            (2, 2),
            (3, 0),
            (4, 2),
            (5, 5),
            (6, 0),
            (7, 9),
            (8, 9),
        ] {
            s.push(input(init_call(
                Time::Clock,
                Text::Good,
                hostile(ptr, len, 40),
                Pair::Placed,
            )));
        }
        for len in [3, 4, 5, 6, 7, 8, 10, 11] {
            s.push(input(init_call(
                Time::Clock,
                Text::Good,
                hostile(0, len, 0),
                Pair::Placed,
            )));
        }
        // The seed cut at the buffer's end; an empty env at the very end.
        s.push(input(init_call(
            Time::Clock,
            Text::Good,
            Pair::Placed,
            hostile(5, 0, 0),
        )));
        s.push(input(init_call(
            Time::Clock,
            Text::Good,
            hostile(4, 1, 0),
            Pair::Placed,
        )));
        s.extend([
            init(),
            input(Call::SignInAnonymously(Time::Clock)),
            // The whole buffer as a body: over the core's limit.
            Step::Write {
                at: 0,
                bytes: vec![b' '; 200],
            },
            respond(Status::Table(0), b"{}", hostile(8, 4, 0)),
            input(Call::SignInAnonymously(Time::Clock)),
            respond(Status::Table(0), b"{}", hostile(9, 0, 1)),
            respond(Status::Table(0), b"{}", hostile(0, 11, 0)),
            input(Call::LinkWeChat(wechat(Text::Good, hostile(3, 3, 0)))),
            // A pointer into bytes the host wrote.
            Step::Write {
                at: 100,
                bytes: b"\xff\xfe not text".to_vec(),
            },
            input(Call::SignInWithWeChat(wechat(
                Text::Good,
                hostile(8, 9, 100),
            ))),
            input(Call::Restore {
                time: Time::Clock,
                at: 255,
                snap: Snap::Bytes(vec![0xAA; 300]),
                pair: hostile(0, 7, 0),
            }),
        ]);
        s
    });

    seed("undrained_inputs", {
        vec![
            undrained(init_call(
                Time::Clock,
                Text::Good,
                Pair::Placed,
                Pair::Placed,
            )),
            undrained(Call::SignInAnonymously(Time::Clock)),
            undrained(Call::Timeout(Time::Clock)),
            Step::Session,
            Step::Poll,
            Step::Poll,
            undrained(Call::SignInAnonymously(Time::Clock)),
            Step::Poll,
            undrained(Call::Answer {
                time: Time::Clock,
                at: 8,
                id: Id::Recent(0),
                reply: Reply::Good,
                pair: Pair::Placed,
            }),
            Step::Drain,
            undrained(Call::Answer {
                time: Time::Clock,
                at: 8,
                id: Id::Recent(0),
                reply: Reply::Good,
                pair: Pair::Placed,
            }),
            Step::Poll,
            Step::LoginState,
            input(Call::GetUserInfo(Time::Clock)),
            Step::Drain,
            undrained(Call::Timeout(Time::Special(0))),
            undrained(Call::SignOut(Time::Clock)),
        ]
    });

    seed("bad_times_and_statuses", {
        let mut s = Vec::new();
        for i in 0..8 {
            s.push(input(init_call(
                Time::Special(i),
                Text::Good,
                Pair::Placed,
                Pair::Placed,
            )));
            s.push(input(Call::Timeout(Time::Special(i))));
        }
        s.extend([
            input(Call::Timeout(Time::Raw(0x7FF0_0000_0000_0001))),
            input(Call::Timeout(Time::Frac)),
            input(Call::Timeout(Time::Back(1000))),
            input(Call::SignInAnonymously(Time::Clock)),
            respond(Status::Raw(70_000), b"{}", Pair::Placed),
            respond(Status::Raw(u32::MAX), b"{}", Pair::Placed),
            input(Call::TransportError {
                time: Time::Clock,
                id: Id::Raw(7, 9),
            }),
            respond(Status::Table(8), b"<html>502</html>", Pair::Placed),
        ]);
        s
    });

    seed("server_errors_and_refresh", {
        let mut s = signed_in_anonymously();
        s.extend([
            // The server says the token is bad: one refresh, then user/me again.
            input(Call::GetUserInfo(Time::Clock)),
            answer(Reply::Unauthenticated),
            answer(Reply::Good),
            answer(Reply::Good),
            input(Call::GetUserInfo(Time::Clock)),
            answer(Reply::Unavailable),
            // The refresh is refused: the anonymous session signs in again.
            Step::Advance(7_170_000),
            input(Call::Timeout(Time::Deadline)),
            answer(Reply::InvalidGrant),
            answer(Reply::Good),
            answer(Reply::Good),
            // A WeChat code refused; a garbage credentials reply.
            input(Call::SignInWithWeChat(wechat(Text::Good, Pair::Placed))),
            answer(Reply::InvalidGrant),
            input(Call::SignInWithWeChat(wechat(Text::Good, Pair::Placed))),
            answer(Reply::Good),
            respond(Status::Table(0), br#"{"access_token":1}"#, Pair::Placed),
        ]);
        s
    });

    seed("expiry_and_request_timeouts", {
        vec![
            init(),
            input(Call::SignInAnonymously(Time::Clock)),
            answer(Reply::NoRefresh),
            answer(Reply::Good),
            // No refresh token: the session expires at its deadline.
            Step::Advance(7_200_000),
            input(Call::Timeout(Time::Deadline)),
            Step::Session,
            // A request that times out, then its late reply (stale).
            input(Call::SignInAnonymously(Time::Clock)),
            Step::Advance(20_000),
            input(Call::Timeout(Time::Clock)),
            answer(Reply::Good),
            // A lifetime far past 2^53 ms.
            input(Call::SignInAnonymously(Time::Clock)),
            answer(Reply::Expires(u64::MAX / 1000)),
            answer(Reply::Good),
            input(Call::Timeout(Time::Deadline)),
        ]
    });

    v
}
