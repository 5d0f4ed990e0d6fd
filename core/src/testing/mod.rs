//! Test harness: a fake clock and a scripted CloudBase server (feature `testing`).
//!
//! Modelled on quinn-proto's `Pair` and str0m's `progress`: [`Harness`] owns an
//! [`Engine`], a [`ScriptedServer`] that answers with the JSON shapes of docs/wire.md
//! (anonymous and WeChat users, rotating refresh tokens, `invalid_grant`,
//! `unauthenticated`), and a clock in milliseconds. Requests are answered automatically
//! by default; tests that need to hold, fail or reorder replies turn that off and answer
//! by hand. Everything is `no_std` and allocation-free, so the no-allocation test can run
//! a whole session through it. The harness checks every reported state change against
//! [`TRANSITIONS`](crate::state::TRANSITIONS), in every build. [`observe`] gives
//! everything a host can see of an engine as one value.
//!
//! Not a stable API: for this workspace's tests only.

mod observe;
mod server;

pub use observe::{Observed, ObservedSession, ObservedUser, observe, text};
pub use server::{REPLY_MAX, Reply, ScriptedServer};

use crate::capacity::*;
use crate::snapshot::SNAPSHOT_MAX;
use crate::state::is_allowed;
use crate::wire::{self, Endpoint};
use crate::{Completion, Config, Delivery, Engine, Error, LoginState, OpId, Output, RequestId};
use heapless::{String, Vec};
use server::endpoint_index;

/// Start of the fake clock (2023-11-14, Unix ms): real-looking, far from zero.
pub const T0: u64 = 1_700_000_000_000;
/// The env id the harness initialises with.
pub const ENV: &str = "test-env-1a2b3c";
/// The Mini Program appId the harness uses.
pub const APPID: &str = "wx0123456789abcdef";

/// A request the engine sent, as the harness recorded it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Sent {
    /// Its id.
    pub request: RequestId,
    /// Endpoint.
    pub endpoint: Endpoint,
    /// Path and query.
    pub path: String<PATH_MAX>,
    /// The `authorization` header, if any.
    pub authorization: Option<String<{ ACCESS_TOKEN_MAX + TOKEN_TYPE_MAX + 1 }>>,
    /// `x-request-id`.
    pub request_id_header: String<32>,
    /// `x-device-id`.
    pub device_id_header: String<DEVICE_ID_MAX>,
    /// The JSON body.
    pub body: Vec<u8, REQUEST_BODY_MAX>,
}

/// Engine + scripted server + fake clock.
pub struct Harness {
    /// The engine under test.
    pub engine: Engine,
    /// The server it talks to.
    pub server: ScriptedServer,
    /// Fake clock (host ms).
    pub now: u64,
    /// Answer requests automatically (default) or leave them in [`Harness::sent`].
    pub auto_reply: bool,
    /// Requests sent and not yet answered (when `auto_reply` is off).
    pub sent: Vec<Sent, 8>,
    /// Login state changes seen, in order (the newest 64).
    pub changes: Vec<(LoginState, LoginState), 64>,
    /// Completions seen, in order (the newest 64).
    pub completions: Vec<(OpId, Result<Completion, Error>), 64>,
    /// The last persisted snapshot (`None`: nothing stored or storage cleared).
    pub stored: Option<Vec<u8, SNAPSHOT_MAX>>,
    /// How many times storage was cleared.
    pub clears: u32,
    /// How many [`Output::SessionReplaced`] were reported.
    pub replacements: u32,
    /// Every request sent, counted per endpoint index of [`Endpoint::ALL`].
    pub sent_count: [u32; Endpoint::ALL.len()],
    /// The last deadline the engine reported.
    pub deadline: Option<u64>,
    buf: [u8; POLL_BUFFER_MIN],
}

impl Harness {
    /// A harness whose engine is initialised for [`ENV`] at [`T0`] and drained.
    pub fn new() -> Self {
        let mut h = Self::uninit();
        h.engine
            .init(h.now, Config::new(ENV), [42; 16])
            .expect("valid config");
        h.run();
        h
    }

    /// A harness whose engine is not initialised yet.
    pub fn uninit() -> Self {
        Harness {
            engine: Engine::new(),
            server: ScriptedServer::default(),
            now: T0,
            auto_reply: true,
            sent: Vec::new(),
            changes: Vec::new(),
            completions: Vec::new(),
            stored: None,
            clears: 0,
            replacements: 0,
            sent_count: [0; Endpoint::ALL.len()],
            deadline: None,
            buf: [0; POLL_BUFFER_MIN],
        }
    }

    /// Drains every output; answers requests while `auto_reply` is on.
    pub fn run(&mut self) {
        loop {
            self.drain();
            if !self.auto_reply || self.sent.is_empty() {
                return;
            }
            let sent = self.sent.remove(0);
            let reply = self.server.handle(&sent);
            let _ = self
                .engine
                .handle_response(self.now, sent.request, reply.status, &reply.body);
        }
    }

    /// Polls until `Timeout`, recording everything.
    pub fn drain(&mut self) {
        loop {
            let out = self
                .engine
                .poll_output(&mut self.buf)
                .expect("buffer is POLL_BUFFER_MIN");
            match out {
                Output::Transmit(t) => {
                    let sent = Sent {
                        request: t.request,
                        endpoint: t.endpoint,
                        path: String::try_from(t.path).expect("path fits"),
                        authorization: t
                            .header(wire::HEADER_AUTHORIZATION)
                            .map(|v| String::try_from(v).expect("authorization fits")),
                        request_id_header: String::try_from(
                            t.header(wire::HEADER_REQUEST_ID).unwrap_or(""),
                        )
                        .expect("request id fits"),
                        device_id_header: String::try_from(
                            t.header(wire::HEADER_DEVICE_ID).unwrap_or(""),
                        )
                        .expect("device id fits"),
                        body: Vec::from_slice(t.body.unwrap_or(&[])).expect("body fits"),
                    };
                    self.sent_count[endpoint_index(sent.endpoint)] += 1;
                    self.sent
                        .push(sent)
                        .expect("at most one request in flight plus stale ones");
                }
                Output::PersistSnapshot(bytes) => {
                    self.stored =
                        Some(Vec::from_slice(bytes).expect("snapshot within SNAPSHOT_MAX"));
                }
                Output::ClearStorage => {
                    self.stored = None;
                    self.clears += 1;
                }
                Output::LoginStateChanged { from, to } => {
                    assert!(
                        is_allowed(from, to),
                        "the engine reported {from:?} -> {to:?}, which is not in TRANSITIONS"
                    );
                    if self.changes.is_full() {
                        self.changes.remove(0);
                    }
                    let _ = self.changes.push((from, to));
                }
                Output::SessionReplaced => self.replacements += 1,
                Output::OperationCompleted { op, result } => {
                    if self.completions.is_full() {
                        let _ = self.completions.remove(0);
                    }
                    let _ = self.completions.push((op, result));
                }
                Output::Timeout(deadline) => {
                    self.deadline = deadline;
                    return;
                }
            }
        }
    }

    /// Moves the clock forward by `ms`, fires timers, and runs.
    pub fn advance(&mut self, ms: u64) {
        self.now += ms;
        self.engine.handle_timeout(self.now);
        self.run();
    }

    /// Moves the clock to the engine's next deadline (if any) and runs.
    pub fn advance_to_deadline(&mut self) {
        if let Some(d) = self.deadline {
            self.now = self.now.max(d);
            self.engine.handle_timeout(self.now);
            self.run();
        }
    }

    /// Answers the oldest held request with the server's reply.
    pub fn reply_next(&mut self) -> Delivery {
        let sent = self.sent.remove(0);
        let reply = self.server.handle(&sent);
        let d = self
            .engine
            .handle_response(self.now, sent.request, reply.status, &reply.body);
        self.run();
        d
    }

    /// Answers the oldest held request with `status` and `body`.
    pub fn reply_next_with(&mut self, status: u16, body: &[u8]) -> Delivery {
        let sent = self.sent.remove(0);
        let d = self
            .engine
            .handle_response(self.now, sent.request, status, body);
        self.run();
        d
    }

    /// Fails the oldest held request in transport.
    pub fn fail_next(&mut self) -> Delivery {
        let sent = self.sent.remove(0);
        let d = self.engine.handle_transport_error(self.now, sent.request);
        self.run();
        d
    }

    /// The result of operation `op`, if it completed.
    pub fn result(&self, op: OpId) -> Option<Result<Completion, Error>> {
        self.completions
            .iter()
            .find(|(o, _)| *o == op)
            .map(|(_, r)| *r)
    }

    /// Signs in anonymously and runs to completion.
    pub fn sign_in_anonymously(&mut self) -> Result<Completion, Error> {
        let op = self
            .engine
            .sign_in_anonymously(self.now)
            .expect("initialised");
        self.run();
        self.result(op).expect("completed")
    }

    /// Signs in with WeChat as `openid` (minting a code like `wx.login`) and runs.
    pub fn sign_in_with_wechat(&mut self, openid: &str) -> Result<Completion, Error> {
        let code = self.server.mint_code(openid);
        let op = self
            .engine
            .sign_in_with_wechat(self.now, &code, APPID)
            .expect("valid input");
        self.run();
        self.result(op).expect("completed")
    }

    /// Restores `bytes` into a fresh engine (same env), as a second start would.
    pub fn restart_with(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.engine = Engine::new();
        self.engine
            .init(self.now, Config::new(ENV), [43; 16])
            .expect("valid config");
        self.run();
        let r = self.engine.restore(self.now, bytes);
        self.run();
        r
    }
}

/// Writes the snapshot `engine` would persist now into `buf` and returns its length:
/// the encoder behind [`Output::PersistSnapshot`], callable at any time (the engine only
/// emits a snapshot when its session changes), for benchmarks of the snapshot codec.
/// `buf` needs [`SNAPSHOT_MAX`] bytes at most; a shorter one that does not fit gives
/// [`ApiMisuse::BufferTooSmall`](crate::ApiMisuse::BufferTooSmall).
pub fn write_snapshot(engine: &Engine, buf: &mut [u8]) -> Result<usize, Error> {
    engine.write_snapshot(buf)
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}
