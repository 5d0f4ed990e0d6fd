//! # cloudbase-auth-wasm
//!
//! [`cloudbase_auth_core`] as a WebAssembly module for WeChat Mini Programs
//! (`WXWebAssembly`), Node and browsers: plain `extern "C"` exports over **one** static
//! [`Engine`], no wasm-bindgen, **no imports**. The JS facade (`js/index.js`) moves bytes,
//! time and randomness; every CloudBase path, header and JSON field is written here by
//! the core.
//!
//! ## Memory
//!
//! Static memory holds the engine, a private poll buffer the engine writes requests
//! into, and the **exchange buffer** ([`EXCHANGE_LEN`] bytes at [`cba_buf`]), the only
//! memory the host touches. The host writes inputs there and passes `(ptr, len)` pairs
//! (`ptr` is an address inside the exchange buffer); every export validates them, so a
//! wrong pointer, length, time or UTF-8 string is a typed error, never a trap. Exports
//! that produce data write a **record** at the start of the exchange buffer:
//!
//! * `num`: an `f64`, 8 bytes little-endian;
//! * `str`: a `u32` byte length (little-endian) then that many bytes (UTF-8 for text).
//!
//! Items follow each other with no padding. Layouts, per export:
//!
//! | export (return value) | record |
//! |---|---|
//! | [`cba_poll`] `0` timeout | `num` deadline (host ms, at most 2^53; `-1`: none) |
//! | [`cba_poll`] `1` transmit | `num` generation, `num` seq, `str` method, `str` path+query, `str` headers (`name: value` lines, each ending in `\n`), `num` has_body (0/1), `str` body |
//! | [`cba_poll`] `2` persist snapshot | `str` snapshot bytes |
//! | [`cba_poll`] `3` clear storage | — |
//! | [`cba_poll`] `4` login state changed | `num` from, `num` to ([state codes](#codes)) |
//! | [`cba_poll`] `5` operation completed | `num` op, `num` ok (1/0); ok: `num` completion, `num` detail; else an *error record* |
//! | [`cba_poll`] `6` session replaced (a refused anonymous user was replaced by a new one; the state change to anonymous that follows is that new user) | — |
//! | [`cba_poll`] `7` an output this build does not know | — |
//! | [`cba_session`] `1` (`0`: no session) | `str` uid, `str` token type, `str` access token, `num` expires_at, `num` refresh_at, `num` refreshable (0/1) |
//! | [`cba_user`] `1` (`0`: no user) | `str` uid, `str` nickName, `str` avatarUrl, `str` email, `str` openid |
//! | any export returning a negative value | an *error record* |
//!
//! An **error record** is `num` class, `num` sub, `num` HTTP status, `num` server kind
//! (1 invalid grant, 2 unauthenticated, 3 invalid argument, 4 permission denied, 5 not
//! found, 6 conflict, 7 rate limited, 8 unavailable, 0 other), `num` server `error_code`,
//! `str` field name (of a refused input or reply field, else empty).
//!
//! ## Run loop
//!
//! Inputs are `cba_init`, `cba_restore`, the operations, `cba_handle_response`,
//! `cba_handle_transport_error` and `cba_handle_timeout`. After **every** input, whatever
//! it returned, the host calls [`cba_poll`] until it returns `0` (the engine's drain rule);
//! an input before that is refused with [`err::ARG_NOT_DRAINED`] and changes nothing. The
//! timeout record's deadline is when to call `cba_handle_timeout` next. Reads
//! (`cba_login_state`, `cba_session`, `cba_user`) may come at any time; every export
//! overwrites the record of the previous one.
//!
//! ## Codes
//!
//! * Return values: exports that start an operation return the `OpId` (≥ 1, as `f64`);
//!   the others return `0`/`1` as documented. Negative: `-(class * 256 + sub)` (see
//!   [`err`]), and the error record is in the exchange buffer.
//! * Login states: 0 uninitialized, 1 initialized, 2 anonymous, 3 WeChat, 4 signed out.
//! * Completions: 1 login state, 2 signed in (detail: state), 3 user info, 4 linked,
//!   5 signed out (detail: revoked 0/1).
//!
//! Time is Unix milliseconds as an `f64` (JS `Date.now()`), integral or not, in
//! `0..=2^53`. Request ids travel as two `u32`s (generation, seq).
//!
//! On the host (`cargo test`, a native fuzz target) the same exports work over a
//! `Mutex`; [`with_exchange`] gives safe access to the exchange buffer.

#![cfg_attr(target_arch = "wasm32", no_std)]

#[cfg(all(target_arch = "wasm32", target_feature = "atomics"))]
compile_error!("one static engine without locks: build without the `atomics` target feature");

use cloudbase_auth_core::capacity::{POLL_BUFFER_MIN, RESPONSE_BODY_MAX};
use cloudbase_auth_core::{
    ApiMisuse, Completion, Config, Delivery, Engine, Error, LoginState, OpId, Output, RequestId,
    ServerErrorKind, SnapshotError, TransportError, WireError,
};

/// Size of the exchange buffer: a reply body at the core's limit plus 1 KiB, so a host
/// that copies `min(len, EXCHANGE_LEN)` bytes of a larger body still gets the core's
/// "body too large" error.
pub const EXCHANGE_LEN: usize = RESPONSE_BODY_MAX + 1024;

// The transmit record (request + lengths) always fits.
const _: () = assert!(EXCHANGE_LEN >= POLL_BUFFER_MIN + 256);

/// Error classes (`class` in `-(class * 256 + sub)`).
pub mod err {
    /// A value from the host is invalid (sub: [`ARG_RANGE`], [`ARG_UTF8`], [`ARG_TIME`],
    /// [`ARG_STATUS`], [`ARG_NOT_DRAINED`]).
    pub const ARG: u32 = 1;
    /// `ApiMisuse` (sub: 1 not initialized, 2 already initialized, 3 restore too late,
    /// 4 busy, 5 not anonymous, 6 input too long, 7 input invalid, 8 buffer too small,
    /// 9 output queue full).
    pub const API_MISUSE: u32 = 2;
    /// A CloudBase error reply (details: status, kind, error code).
    pub const SERVER: u32 = 3;
    /// A reply that could not be understood (sub: 1 body too large, 2 not UTF-8,
    /// 3 truncated, 4 syntax, 5 bad escape, 6 too deep, 7 not an object, 8 wrong type,
    /// 9 missing, 10 too long, 11 invalid value, 12 duplicate; the field when known).
    pub const WIRE: u32 = 4;
    /// No reply (sub: 1 failed, 2 timed out).
    pub const TRANSPORT: u32 = 5;
    /// Stored snapshot rejected (sub: 1 too short, 2 too long, 3 unknown version, 4 bad
    /// checksum, 5 malformed, 6 inconsistent, 7 another env, 8 buffer too small).
    pub const SNAPSHOT: u32 = 6;
    /// Not signed in.
    pub const NOT_SIGNED_IN: u32 = 7;
    /// The session ended: sign in again.
    pub const SESSION_EXPIRED: u32 = 8;
    /// Cancelled by a newer sign-in or sign-out.
    pub const CANCELLED: u32 = 9;
    /// An error kind this build does not know.
    pub const OTHER: u32 = 10;

    /// A `(ptr, len)` pair is not inside the exchange buffer.
    pub const ARG_RANGE: u32 = 1;
    /// A string is not UTF-8.
    pub const ARG_UTF8: u32 = 2;
    /// A time is NaN, negative, infinite or above 2^53.
    pub const ARG_TIME: u32 = 3;
    /// An HTTP status above 65535.
    pub const ARG_STATUS: u32 = 4;
    /// An input came before the outputs of the previous one were drained (poll until
    /// it returns the timeout kind `0` after every input).
    pub const ARG_NOT_DRAINED: u32 = 5;
}

/// Why an export failed: a bad value from the host (sub-code of [`err::ARG`]), or the
/// engine's error.
#[derive(Debug, Clone, Copy)]
enum Fail {
    Arg(u32),
    Core(Error),
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        Fail::Core(e)
    }
}

/// Writes the error record of `f`; the export's return value `-(class * 256 + sub)`.
#[inline(never)]
fn write_error(w: &mut Rec<'_>, f: Fail) -> f64 {
    let (mut status, mut kind, mut code, mut field) = (0, 0, 0, "");
    let (class, sub) = match f {
        Fail::Arg(sub) => (err::ARG, sub),
        Fail::Core(e) => match e {
            Error::ApiMisuse(m) => (err::API_MISUSE, misuse_code(m, &mut field)),
            Error::Server(s) => {
                status = s.status;
                kind = server_kind(s.kind);
                code = s.code;
                (err::SERVER, 0)
            }
            Error::Wire(w) => (err::WIRE, wire_code(w, &mut field)),
            Error::Transport(TransportError::Failed) => (err::TRANSPORT, 1),
            Error::Transport(TransportError::TimedOut) => (err::TRANSPORT, 2),
            Error::Transport(_) => (err::TRANSPORT, 0),
            Error::Snapshot(s) => (err::SNAPSHOT, snapshot_code(s)),
            Error::NotSignedIn => (err::NOT_SIGNED_IN, 0),
            Error::SessionExpired => (err::SESSION_EXPIRED, 0),
            Error::Cancelled => (err::CANCELLED, 0),
            _ => (err::OTHER, 0),
        },
    };
    // A few numbers and a short name: always fits the exchange buffer.
    let _ = (|| {
        w.int(class)?;
        w.int(sub)?;
        w.int(u32::from(status))?;
        w.int(kind)?;
        w.num(code as f64)?;
        w.str(field.as_bytes())
    })();
    -f64::from(class * 256 + sub)
}

fn misuse_code(m: ApiMisuse, field: &mut &'static str) -> u32 {
    match m {
        ApiMisuse::NotInitialized => 1,
        ApiMisuse::AlreadyInitialized => 2,
        ApiMisuse::RestoreTooLate => 3,
        ApiMisuse::Busy => 4,
        ApiMisuse::NotAnonymous => 5,
        ApiMisuse::InputTooLong { field: f, .. } => {
            *field = f;
            6
        }
        ApiMisuse::InputInvalid { field: f } => {
            *field = f;
            7
        }
        ApiMisuse::BufferTooSmall { .. } => 8,
        ApiMisuse::OutputQueueFull => 9,
        _ => 0,
    }
}

fn wire_code(w: WireError, field: &mut &'static str) -> u32 {
    match w {
        WireError::BodyTooLarge => 1,
        WireError::NotUtf8 => 2,
        WireError::Truncated => 3,
        WireError::Syntax { .. } => 4,
        WireError::BadEscape { .. } => 5,
        WireError::TooDeep => 6,
        WireError::NotAnObject => 7,
        WireError::WrongType { field: f } => {
            *field = f;
            8
        }
        WireError::Missing { field: f } => {
            *field = f;
            9
        }
        WireError::TooLong { field: f } => {
            *field = f;
            10
        }
        WireError::InvalidValue { field: f } => {
            *field = f;
            11
        }
        WireError::Duplicate { field: f } => {
            *field = f;
            12
        }
        _ => 0,
    }
}

fn snapshot_code(s: SnapshotError) -> u32 {
    match s {
        SnapshotError::TooShort => 1,
        SnapshotError::TooLong => 2,
        SnapshotError::UnknownVersion(_) => 3,
        SnapshotError::BadChecksum => 4,
        SnapshotError::Malformed => 5,
        SnapshotError::Inconsistent => 6,
        SnapshotError::EnvMismatch => 7,
        SnapshotError::BufferTooSmall => 8,
        _ => 0,
    }
}

fn server_kind(k: ServerErrorKind) -> u32 {
    match k {
        ServerErrorKind::InvalidGrant => 1,
        ServerErrorKind::Unauthenticated => 2,
        ServerErrorKind::InvalidArgument => 3,
        ServerErrorKind::PermissionDenied => 4,
        ServerErrorKind::NotFound => 5,
        ServerErrorKind::Conflict => 6,
        ServerErrorKind::ResourceExhausted => 7,
        ServerErrorKind::Unavailable => 8,
        _ => 0,
    }
}

/// Login state code (see the crate docs).
fn state_code(s: LoginState) -> u32 {
    match s {
        LoginState::Uninitialized => 0,
        LoginState::Initialized => 1,
        LoginState::Anonymous => 2,
        LoginState::WeChat => 3,
        LoginState::SignedOut => 4,
        _ => 5,
    }
}

/// Writes a record into the exchange buffer.
struct Rec<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

/// A record did not fit (cannot happen with [`EXCHANGE_LEN`]; checked, not assumed).
const OVERFLOW: Fail = Fail::Arg(err::ARG_RANGE);

/// Rec writes fail only if the buffer is full (never with [`EXCHANGE_LEN`]).
type Fits = Option<()>;

impl<'a> Rec<'a> {
    fn new(buf: &'a mut [u8]) -> Self {
        Rec { buf, pos: 0 }
    }

    fn put(&mut self, bytes: &[u8]) -> Fits {
        let end = self.pos.checked_add(bytes.len())?;
        self.buf.get_mut(self.pos..end)?.copy_from_slice(bytes);
        self.pos = end;
        Some(())
    }

    fn num(&mut self, v: f64) -> Fits {
        self.put(&v.to_le_bytes())
    }

    fn int(&mut self, v: u32) -> Fits {
        self.num(f64::from(v))
    }

    fn str(&mut self, bytes: &[u8]) -> Fits {
        self.put(&u32::try_from(bytes.len()).ok()?.to_le_bytes())?;
        self.put(bytes)
    }
}

/// The engine and its drain flag (a data segment: `Engine::new()` is not all zeros).
struct State {
    engine: Engine,
    /// An input reached the engine and `cba_poll` has not returned the timeout since.
    undrained: bool,
}

/// The buffers: all zeros, so they cost no bytes in the module (`.bss`).
struct Buffers {
    /// Lent to `Engine::poll_output`; never seen by the host.
    poll: [u8; POLL_BUFFER_MIN],
    /// The exchange buffer (see the crate docs).
    xbuf: [u8; EXCHANGE_LEN],
}

impl State {
    const fn new() -> Self {
        State {
            engine: Engine::new(),
            undrained: false,
        }
    }
}

impl Buffers {
    const fn new() -> Self {
        Buffers {
            poll: [0; POLL_BUFFER_MIN],
            xbuf: [0; EXCHANGE_LEN],
        }
    }
}

/// What an export works on: everything the module keeps, borrowed from the arena.
struct Host<'a> {
    engine: &'a mut Engine,
    undrained: &'a mut bool,
    poll: &'a mut [u8; POLL_BUFFER_MIN],
    xbuf: &'a mut [u8; EXCHANGE_LEN],
}

/// Latest host time, 2^53 ms (the last integer an `f64` holds exactly; the year 285,616).
const TIME_MAX: u64 = 1 << 53;

/// Host time: Unix ms as an `f64`, finite, `0..=2^53`.
fn time(now: f64) -> Result<u64, Fail> {
    if (0.0..=TIME_MAX as f64).contains(&now) {
        Ok(now as u64)
    } else {
        Err(Fail::Arg(err::ARG_TIME))
    }
}

/// The bytes at `(ptr, len)`, which must lie inside the exchange buffer `xbuf`.
fn span(xbuf: &[u8], ptr: usize, len: usize) -> Result<&[u8], Fail> {
    const RANGE: Fail = Fail::Arg(err::ARG_RANGE);
    let start = ptr.wrapping_sub(xbuf.as_ptr().addr());
    let end = start.checked_add(len).ok_or(RANGE)?;
    xbuf.get(start..end).ok_or(RANGE)
}

/// The UTF-8 text at `(ptr, len)` in `xbuf`.
fn text(xbuf: &[u8], (ptr, len): (usize, usize)) -> Result<&str, Fail> {
    core::str::from_utf8(span(xbuf, ptr, len)?).map_err(|_| Fail::Arg(err::ARG_UTF8))
}

impl Host<'_> {
    /// Starts an input export: refused until the previous input's outputs were drained
    /// (the engine's contract); otherwise marks the queue as needing a drain, whatever
    /// this call returns. The validated time.
    #[inline(never)]
    fn begin(&mut self, now: f64) -> Result<u64, Fail> {
        if *self.undrained {
            return Err(Fail::Arg(err::ARG_NOT_DRAINED));
        }
        *self.undrained = true;
        time(now)
    }

    /// An export's return value: `v`, or the error code with the error record written.
    #[inline(never)]
    fn out(&mut self, r: Result<f64, Fail>) -> f64 {
        match r {
            Ok(v) => v,
            Err(f) => write_error(&mut Rec::new(&mut self.xbuf[..]), f),
        }
    }

    fn init(
        &mut self,
        now: f64,
        env: (usize, usize),
        client: (usize, usize),
        seed: usize,
    ) -> Result<f64, Fail> {
        let now = self.begin(now)?;
        let xbuf = &self.xbuf[..];
        let seed = <[u8; 16]>::try_from(span(xbuf, seed, 16)?).map_err(|_| OVERFLOW)?;
        let mut config = Config::new(text(xbuf, env)?);
        if client.1 > 0 {
            config = config.with_client_id(text(xbuf, client)?);
        }
        self.engine.init(now, config, seed)?;
        Ok(0.0)
    }

    fn restore(&mut self, now: f64, ptr: usize, len: usize) -> Result<f64, Fail> {
        let now = self.begin(now)?;
        self.engine.restore(now, span(&self.xbuf[..], ptr, len)?)?;
        Ok(0.0)
    }

    /// An operation without arguments: its id.
    fn op(
        &mut self,
        now: f64,
        f: fn(&mut Engine, u64) -> Result<OpId, Error>,
    ) -> Result<f64, Fail> {
        let now = self.begin(now)?;
        Ok(f64::from(f(self.engine, now)?.0))
    }

    /// `sign_in_with_wechat` / `link_wechat`: the operation id.
    fn wechat_op(
        &mut self,
        now: f64,
        code: (usize, usize),
        appid: (usize, usize),
        f: fn(&mut Engine, u64, &str, &str) -> Result<OpId, Error>,
    ) -> Result<f64, Fail> {
        let now = self.begin(now)?;
        let xbuf = &self.xbuf[..];
        Ok(f64::from(
            f(self.engine, now, text(xbuf, code)?, text(xbuf, appid)?)?.0,
        ))
    }

    fn response(
        &mut self,
        now: f64,
        id: RequestId,
        status: u32,
        ptr: usize,
        len: usize,
    ) -> Result<f64, Fail> {
        let now = self.begin(now)?;
        let status = u16::try_from(status).map_err(|_| Fail::Arg(err::ARG_STATUS))?;
        let body = span(&self.xbuf[..], ptr, len)?;
        Ok(delivery(self.engine.handle_response(now, id, status, body)))
    }

    fn transport_error(&mut self, now: f64, id: RequestId) -> Result<f64, Fail> {
        let now = self.begin(now)?;
        Ok(delivery(self.engine.handle_transport_error(now, id)))
    }

    fn timeout(&mut self, now: f64) -> Result<f64, Fail> {
        let now = self.begin(now)?;
        self.engine.handle_timeout(now);
        Ok(0.0)
    }

    fn poll(&mut self) -> Result<f64, Fail> {
        let out = self.engine.poll_output(&mut self.poll[..])?;
        if matches!(out, Output::Timeout(_)) {
            *self.undrained = false;
        }
        let kind = write_output(&mut Rec::new(&mut self.xbuf[..]), out).ok_or(OVERFLOW)?;
        Ok(f64::from(kind))
    }

    fn session(&mut self) -> Result<f64, Fail> {
        let Some(s) = self.engine.session() else {
            return Ok(0.0);
        };
        let mut w = Rec::new(&mut self.xbuf[..]);
        (|| {
            w.str(s.uid.as_bytes())?;
            w.str(s.token_type.as_bytes())?;
            w.str(s.access_token.as_bytes())?;
            w.num(s.expires_at_ms as f64)?;
            w.num(s.refresh_at_ms as f64)?;
            w.int(u32::from(s.refreshable))
        })()
        .ok_or(OVERFLOW)?;
        Ok(1.0)
    }

    fn user(&mut self) -> Result<f64, Fail> {
        let Some(u) = self.engine.user() else {
            return Ok(0.0);
        };
        let mut w = Rec::new(&mut self.xbuf[..]);
        for s in [u.uid, u.nick_name, u.avatar_url, u.email, u.openid] {
            w.str(s.as_bytes()).ok_or(OVERFLOW)?;
        }
        Ok(1.0)
    }
}

/// Writes the record of one output; its kind.
fn write_output(w: &mut Rec<'_>, out: Output<'_>) -> Option<u32> {
    Some(match out {
        Output::Timeout(deadline) => {
            // The engine's deadlines can pass 2^53 (a huge `expires_in`, a clock at the
            // limit); capped, the deadline is always a time `cba_handle_timeout` takes.
            w.num(deadline.map_or(-1.0, |d| d.min(TIME_MAX) as f64))?;
            0
        }
        Output::Transmit(t) => {
            w.int(t.request.generation)?;
            w.int(t.request.seq)?;
            w.str(t.method.as_str().as_bytes())?;
            w.str(t.path.as_bytes())?;
            w.str(t.header_block().as_bytes())?;
            w.int(u32::from(t.body.is_some()))?;
            w.str(t.body.unwrap_or(&[]))?;
            1
        }
        Output::PersistSnapshot(bytes) => {
            w.str(bytes)?;
            2
        }
        Output::ClearStorage => 3,
        Output::LoginStateChanged { from, to } => {
            w.int(state_code(from))?;
            w.int(state_code(to))?;
            4
        }
        Output::OperationCompleted { op, result } => {
            w.int(op.0)?;
            match result {
                Ok(c) => {
                    w.int(1)?;
                    let (kind, detail) = match c {
                        Completion::LoginState => (1, 0),
                        Completion::SignedIn(s) => (2, state_code(s)),
                        Completion::UserInfo => (3, 0),
                        Completion::Linked => (4, 0),
                        Completion::SignedOut { revoked } => (5, u32::from(revoked)),
                        _ => (0, 0),
                    };
                    w.int(kind)?;
                    w.int(detail)?;
                }
                Err(e) => {
                    w.int(0)?;
                    write_error(w, Fail::Core(e));
                }
            }
            5
        }
        Output::SessionReplaced => 6,
        _ => 7,
    })
}

fn delivery(d: Delivery) -> f64 {
    match d {
        Delivery::Accepted => 1.0,
        _ => 0.0,
    }
}

/// The one static arena, behind the only `unsafe` of the crate (wasm) or a `Mutex`
/// (host). `with` is the single way in; exports call it exactly once and never nest.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code, reason = "a static arena on a single-threaded target")]
mod arena {
    use super::{Buffers, Host, State};
    use core::cell::UnsafeCell;

    struct Global<T>(UnsafeCell<T>);

    // SAFETY: wasm32 without the `atomics` target feature (a compile_error above) runs
    // one thread per instance, so these statics are never reached from two threads.
    unsafe impl<T> Sync for Global<T> {}

    static STATE: Global<State> = Global(UnsafeCell::new(State::new()));
    static BUFFERS: Global<Buffers> = Global(UnsafeCell::new(Buffers::new()));

    pub(super) fn with<R>(f: impl FnOnce(&mut Host<'_>) -> R) -> R {
        // SAFETY: the only references into STATE and BUFFERS are created here, and live
        // only during `f`. Single thread (above); the module has no imports, so no JS
        // runs while an export is on the stack and no export can re-enter; no caller
        // nests `with`. The host writes the exchange buffer only between export calls,
        // when no reference into it is live.
        let (s, b) = unsafe { (&mut *STATE.0.get(), &mut *BUFFERS.0.get()) };
        f(&mut Host {
            engine: &mut s.engine,
            undrained: &mut s.undrained,
            poll: &mut b.poll,
            xbuf: &mut b.xbuf,
        })
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod arena {
    use super::{Buffers, Host, State};
    use std::sync::{Mutex, PoisonError};

    static HOST: Mutex<(State, Buffers)> = Mutex::new((State::new(), Buffers::new()));

    pub(super) fn with<R>(f: impl FnOnce(&mut Host<'_>) -> R) -> R {
        // A panic while locked (tests only: the code under test never panics) must not
        // wedge the remaining tests.
        let mut guard = HOST.lock().unwrap_or_else(PoisonError::into_inner);
        let (s, b) = &mut *guard;
        f(&mut Host {
            engine: &mut s.engine,
            undrained: &mut s.undrained,
            poll: &mut b.poll,
            xbuf: &mut b.xbuf,
        })
    }
}

/// Safe access to the exchange buffer (for native callers: tests, a fuzz target). Do
/// not call exports from `f`.
pub fn with_exchange<R>(f: impl FnOnce(&mut [u8]) -> R) -> R {
    arena::with(|h| f(&mut h.xbuf[..]))
}

pub use exports::*;

/// The `extern "C"` exports (the module's whole interface).
#[allow(
    unsafe_code,
    reason = "#[unsafe(no_mangle)] names the wasm exports; no unsafe blocks here"
)]
pub mod exports {
    use super::{Engine, RequestId, arena};

    /// Address of the exchange buffer in linear memory.
    #[unsafe(no_mangle)]
    pub extern "C" fn cba_buf() -> *mut u8 {
        arena::with(|h| h.xbuf.as_mut_ptr())
    }

    /// Length of the exchange buffer ([`super::EXCHANGE_LEN`]).
    #[unsafe(no_mangle)]
    pub extern "C" fn cba_buf_len() -> u32 {
        super::EXCHANGE_LEN as u32
    }

    /// Drops the engine and starts over with a new, uninitialised one. Host builds only
    /// (tests, fuzzing): in JS every `init()` gets a new instance, so the module leaves
    /// it out.
    #[cfg(not(target_arch = "wasm32"))]
    #[unsafe(no_mangle)]
    pub extern "C" fn cba_reset() {
        arena::with(|h| {
            *h.engine = Engine::new();
            *h.undrained = false;
        })
    }

    /// `wx.cloud.init({ env })`: env id and optional client id (`client_len == 0`: the
    /// env id) as UTF-8, 16 seed bytes at `seed_ptr`. `0` or an error.
    #[unsafe(no_mangle)]
    pub extern "C" fn cba_init(
        now: f64,
        env_ptr: usize,
        env_len: usize,
        client_ptr: usize,
        client_len: usize,
        seed_ptr: usize,
    ) -> f64 {
        arena::with(|h| {
            let r = h.init(now, (env_ptr, env_len), (client_ptr, client_len), seed_ptr);
            h.out(r)
        })
    }

    /// Restores stored snapshot bytes (right after init). `0` or an error; a corrupt
    /// snapshot still queues the state change and a clear-storage output.
    #[unsafe(no_mangle)]
    pub extern "C" fn cba_restore(now: f64, ptr: usize, len: usize) -> f64 {
        arena::with(|h| {
            let r = h.restore(now, ptr, len);
            h.out(r)
        })
    }

    /// `auth.getLoginState()`: the operation id or an error.
    #[unsafe(no_mangle)]
    pub extern "C" fn cba_get_login_state(now: f64) -> f64 {
        arena::with(|h| {
            let r = h.op(now, Engine::get_login_state);
            h.out(r)
        })
    }

    /// `auth.getUserInfo()`: the operation id or an error.
    #[unsafe(no_mangle)]
    pub extern "C" fn cba_get_user_info(now: f64) -> f64 {
        arena::with(|h| {
            let r = h.op(now, Engine::get_user_info);
            h.out(r)
        })
    }

    /// `auth.signInAnonymously()`: the operation id or an error.
    #[unsafe(no_mangle)]
    pub extern "C" fn cba_sign_in_anonymously(now: f64) -> f64 {
        arena::with(|h| {
            let r = h.op(now, Engine::sign_in_anonymously);
            h.out(r)
        })
    }

    /// `auth.signOut()`: the operation id or an error.
    #[unsafe(no_mangle)]
    pub extern "C" fn cba_sign_out(now: f64) -> f64 {
        arena::with(|h| {
            let r = h.op(now, Engine::sign_out);
            h.out(r)
        })
    }

    /// `auth.signInWithWeChat()` with a `wx.login` code and the Mini Program appId
    /// (UTF-8): the operation id or an error.
    #[unsafe(no_mangle)]
    pub extern "C" fn cba_sign_in_with_wechat(
        now: f64,
        code_ptr: usize,
        code_len: usize,
        appid_ptr: usize,
        appid_len: usize,
    ) -> f64 {
        arena::with(|h| {
            let r = h.wechat_op(
                now,
                (code_ptr, code_len),
                (appid_ptr, appid_len),
                Engine::sign_in_with_wechat,
            );
            h.out(r)
        })
    }

    /// `auth.linkWithWeChat()`: like [`cba_sign_in_with_wechat`], for an anonymous session.
    #[unsafe(no_mangle)]
    pub extern "C" fn cba_link_wechat(
        now: f64,
        code_ptr: usize,
        code_len: usize,
        appid_ptr: usize,
        appid_len: usize,
    ) -> f64 {
        arena::with(|h| {
            let r = h.wechat_op(
                now,
                (code_ptr, code_len),
                (appid_ptr, appid_len),
                Engine::link_wechat,
            );
            h.out(r)
        })
    }

    /// The reply to request `(generation, seq)`: HTTP status and body. `1` accepted,
    /// `0` stale (dropped), or an error.
    #[unsafe(no_mangle)]
    pub extern "C" fn cba_handle_response(
        now: f64,
        generation: u32,
        seq: u32,
        status: u32,
        ptr: usize,
        len: usize,
    ) -> f64 {
        arena::with(|h| {
            let r = h.response(now, RequestId { generation, seq }, status, ptr, len);
            h.out(r)
        })
    }

    /// Request `(generation, seq)` got no reply (network failure). `1`/`0` as for
    /// [`cba_handle_response`], or an error.
    #[unsafe(no_mangle)]
    pub extern "C" fn cba_handle_transport_error(now: f64, generation: u32, seq: u32) -> f64 {
        arena::with(|h| {
            let r = h.transport_error(now, RequestId { generation, seq });
            h.out(r)
        })
    }

    /// Time passed (the deadline of the last timeout output, or any time). `0` or an error.
    #[unsafe(no_mangle)]
    pub extern "C" fn cba_handle_timeout(now: f64) -> f64 {
        arena::with(|h| {
            let r = h.timeout(now);
            h.out(r)
        })
    }

    /// The next output: its kind (0 timeout … 5 completed, 6 unknown: skip it) with its
    /// record in the exchange buffer, or an error. Call until it returns `0` after every
    /// input.
    #[unsafe(no_mangle)]
    pub extern "C" fn cba_poll() -> f64 {
        arena::with(|h| {
            let r = h.poll();
            h.out(r)
        })
    }

    /// The current login state code.
    #[unsafe(no_mangle)]
    pub extern "C" fn cba_login_state() -> u32 {
        arena::with(|h| super::state_code(h.engine.login_state()))
    }

    /// Writes the session record; `1`, or `0` when signed out.
    #[unsafe(no_mangle)]
    pub extern "C" fn cba_session() -> f64 {
        arena::with(|h| {
            let r = h.session();
            h.out(r)
        })
    }

    /// Writes the user record (profile fields empty until fetched); `1`, or `0`.
    #[unsafe(no_mangle)]
    pub extern "C" fn cba_user() -> f64 {
        arena::with(|h| {
            let r = h.user();
            h.out(r)
        })
    }
}

#[cfg(test)]
mod tests;

// The body of the `wasm_abi` fuzz target; the fuzz crate includes this file with
// `#[path]` (this crate is cdylib-only), so no `crate::` paths here.
#[cfg(all(not(target_arch = "wasm32"), any(test, fuzzing)))]
pub mod fuzzing;

#[cfg(target_arch = "wasm32")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}
