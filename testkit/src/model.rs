//! The model-based test of the session engine: one vocabulary for proptest and cargo-fuzz.
//!
//! Sequences of [`Op`]s (API calls; good, error, garbage, late and duplicate replies;
//! transport failures; time jumps forwards and backwards; restarts from the stored
//! snapshot, intact or corrupted; server-side revocations and token policies) run
//! against the real engine, through the `testing` harness with requests held and
//! answered by hand, and against [`Model`]: a small reference model written from the
//! design (the engine's doc comments, the transition table, the wire reference), not
//! from engine internals. The model reads only what a host sees: the op, the request
//! the harness recorded, and the reply it delivered.
//!
//! After every step the run checks that the engine did what the model did (state
//! changes in order, completions and their outcomes, the request it sent, whether a
//! reply was taken, the deadline), then [`check_invariants`].
//!
//! The proptest suite (`tests/model.rs`) generates the sequences with weighted
//! strategies; the `engine_ops` fuzz target decodes them with `arbitrary` (feature
//! `arbitrary`). Both replay them with [`run_ops`].

use std::collections::BTreeSet;

use cloudbase_auth_core::capacity::WAITERS_MAX;
use cloudbase_auth_core::state::is_allowed;
use cloudbase_auth_core::testing::{APPID, ENV, Harness};
use cloudbase_auth_core::wire::Endpoint;
use cloudbase_auth_core::{
    ApiMisuse, Completion, Config, Delivery, Engine, Error, LoginState, OpId, RequestId,
    ServerErrorKind, TransportError,
};

// ----- the operations -------------------------------------------------------------------

/// One step of a generated run. Plain small data: proptest builds it with the
/// strategies of `tests/model.rs`, the `engine_ops` fuzz target with the derived
/// `arbitrary::Arbitrary` (feature `arbitrary`; its byte layout is what
/// [`crate::seeds::encode_ops`] writes, so keep new variants at the end).
#[allow(clippy::exhaustive_enums)] // a test vocabulary, matched exhaustively on purpose
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Op {
    /// `get_login_state`.
    GetLoginState,
    /// `get_user_info`.
    GetUserInfo,
    /// `sign_in_anonymously`.
    SignInAnonymously,
    /// `sign_in_with_wechat` with a fresh `wx.login` code for one of [`OPENIDS`].
    SignInWeChat {
        /// Index into [`OPENIDS`] (modulo).
        openid_idx: u8,
    },
    /// `sign_in_with_wechat` with a code the server never minted.
    SignInWeChatBadCode,
    /// `link_wechat` with a fresh code for one of [`OPENIDS`].
    LinkWeChat {
        /// Index into [`OPENIDS`] (modulo).
        openid_idx: u8,
    },
    /// `sign_out`.
    SignOut,
    /// The scripted server answers a held request: the oldest (often a stale one) or the
    /// newest (the one in flight, if any).
    ReplyGood {
        /// Answer the oldest held request instead of the newest.
        oldest: bool,
    },
    /// The newest held request gets a CloudBase error reply.
    ReplyError {
        /// Index into [`ERROR_STATUSES`] (modulo).
        status_idx: u8,
        /// Index into [`ERROR_NAMES`] (modulo).
        kind_idx: u8,
    },
    /// The newest held request gets a non-JSON body (`<` + bytes).
    ReplyGarbage {
        /// Index into [`GARBAGE_STATUSES`] (modulo).
        status_idx: u8,
        /// Body bytes after the leading `<`.
        bytes: Vec<u8>,
    },
    /// A request that was already answered (or lost) gets a plausible credentials reply
    /// again: a duplicate or very late delivery.
    ReplyLateDuplicate {
        /// Index into the answered requests (modulo).
        idx: u8,
    },
    /// The newest held request fails in transport.
    TransportFail,
    /// The clock moves forward and the host's timer fires (`handle_timeout`).
    Advance {
        /// Milliseconds.
        ms: u32,
    },
    /// The clock moves to the engine's deadline and the timer fires.
    AdvanceToDeadline,
    /// Time passes without a timer firing: the next input carries the later time.
    Elapse {
        /// Milliseconds.
        ms: u32,
    },
    /// The device clock goes back and the timer fires (the engine ignores backwards time).
    Backwards {
        /// Milliseconds.
        ms: u32,
    },
    /// Restart: a fresh engine restores the stored snapshot (or starts empty).
    Restore,
    /// Restart with the stored snapshot damaged: one byte flipped (odd `flip`) or
    /// truncated (even `flip`).
    RestoreCorrupted {
        /// Where and how to damage it.
        flip: u16,
    },
    /// The server invalidates every refresh token.
    ServerRevokesRefreshTokens,
    /// The server invalidates every access token.
    ServerExpiresAccessTokens,
    /// The server hands out short access tokens from now on (1..=120 s; 0 → 7200 s).
    ShortTokens {
        /// `secs % 121`, 0 meaning the default 7200.
        secs: u8,
    },
    /// The server starts or stops issuing refresh tokens.
    NoRefreshTokens,
}

/// WeChat users of the generated runs (few, so links and sign-ins collide).
pub const OPENIDS: [&str; 3] = ["openid-alice", "openid-bob", "openid-carol"];
/// Statuses of [`Op::ReplyError`].
pub const ERROR_STATUSES: [u16; 10] = [400, 401, 403, 404, 409, 429, 500, 502, 503, 200];
/// `error` names of [`Op::ReplyError`] (`None`: an HTML error page, no JSON).
pub const ERROR_NAMES: [Option<&str>; 8] = [
    Some("invalid_grant"),
    Some("unauthenticated"),
    Some("invalid_argument"),
    Some("resource_exhausted"),
    Some("unavailable"),
    Some("permission_denied"),
    Some("mystery_error"),
    None,
];
/// Statuses of [`Op::ReplyGarbage`].
pub const GARBAGE_STATUSES: [u16; 5] = [200, 200, 204, 401, 502];
/// The body of a late duplicate: credentials that must never be taken.
const BAIT: &[u8] =
    br#"{"access_token":"at-bait","refresh_token":"rt-bait","expires_in":7200,"scope":"user","sub":"uid-bait"}"#;

/// Held requests beyond this many are "lost in the network" (oldest stale first).
const HELD_MAX: usize = 6;

// ----- the reference model --------------------------------------------------------------

/// From `Config::new`: refresh 30 s before expiry, requests time out after 15 s.
const REFRESH_MARGIN_MS: u64 = 30_000;
const REQUEST_TIMEOUT_MS: u64 = 15_000;
/// Backoff of proactive refreshes after a transient failure (doubling, capped).
const BACKOFF_MIN_MS: u64 = 1_000;
const BACKOFF_MAX_MS: u64 = 300_000;
/// No proactive refresh sooner than this after a refresh brought new credentials (so
/// zero-lifetime tokens cause one refresh a second, not a storm).
const MIN_REFRESH_GAP_MS: u64 = 1_000;

/// What a sequence of requests is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Task {
    /// `signin/anonymously` → `user/me`; `recovery`: the automatic re-sign-in.
    Anonymous { recovery: bool },
    /// `provider/token` → `signin/with/provider` → `user/me`.
    WeChat,
    /// [`token` if due] → `provider/token` → `user/provider/bind` → [`token`] → `user/me`.
    Link,
    /// `token`.
    Refresh,
    /// `user/me`; on `unauthenticated`, `token` then `user/me` once more.
    FetchUser { refreshed: bool },
    /// `revoke`.
    SignOut,
}

impl Task {
    fn is_sign_in(self) -> bool {
        matches!(self, Task::Anonymous { .. } | Task::WeChat)
    }
}

/// The request in flight. `id` is learnt from the harness when it is sent.
#[derive(Debug, Clone, Copy)]
struct Flight {
    task: Task,
    step: Endpoint,
    op: Option<OpId>,
    id: Option<RequestId>,
    deadline: u64,
}

/// What a waiting caller wants when the operation in flight ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    /// `get_login_state`: asks again.
    LoginState,
    /// `get_user_info`: asks again.
    UserInfo,
    /// Joined an anonymous sign-in: gets its result.
    JoinSignIn,
    /// Joined a `get_user_info` in flight: gets its result.
    JoinUserInfo,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct MSession {
    uid: String,
    refreshable: bool,
    expires_at: u64,
    refresh_at: u64,
}

/// What the last persisted snapshot holds.
#[derive(Debug, Clone)]
struct MSnapshot {
    state: LoginState,
    session: Option<MSession>,
    saved_at: u64,
}

/// Coarse server error kinds: only what the session logic branches on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    InvalidGrant,
    Unauthenticated,
    /// Rate limited or server trouble.
    Transient,
    Other,
}

/// CloudBase's classification: the `error` name first, the HTTP status second.
fn classify(status: u16, name: &str) -> Kind {
    match name {
        "invalid_grant" => Kind::InvalidGrant,
        "unauthenticated" => Kind::Unauthenticated,
        "resource_exhausted" | "unavailable" | "internal" | "unreachable" => Kind::Transient,
        "invalid_argument"
        | "invalid_request"
        | "permission_denied"
        | "not_found"
        | "already_exists"
        | "failed_precondition"
        | "aborted" => Kind::Other,
        _ => match status {
            401 => Kind::Unauthenticated,
            429 | 500..=599 => Kind::Transient,
            _ => Kind::Other,
        },
    }
}

/// Errors as the model tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MErr {
    Server { status: u16, kind: Kind },
    Wire,
    Transport(TransportError),
    NotSignedIn,
    SessionExpired,
    Cancelled,
    Busy,
    NotAnonymous,
    Snapshot,
    Other,
}

type Outcome = Result<Completion, MErr>;

fn merr(e: &Error) -> MErr {
    match e {
        Error::Server(s) => MErr::Server {
            status: s.status,
            kind: match s.kind {
                ServerErrorKind::InvalidGrant => Kind::InvalidGrant,
                ServerErrorKind::Unauthenticated => Kind::Unauthenticated,
                ServerErrorKind::ResourceExhausted | ServerErrorKind::Unavailable => {
                    Kind::Transient
                }
                _ => Kind::Other,
            },
        },
        Error::Wire(_) => MErr::Wire,
        Error::Transport(t) => MErr::Transport(*t),
        Error::NotSignedIn => MErr::NotSignedIn,
        Error::SessionExpired => MErr::SessionExpired,
        Error::Cancelled => MErr::Cancelled,
        Error::ApiMisuse(ApiMisuse::Busy) => MErr::Busy,
        Error::ApiMisuse(ApiMisuse::NotAnonymous) => MErr::NotAnonymous,
        Error::Snapshot(_) => MErr::Snapshot,
        _ => MErr::Other,
    }
}

fn outcome(r: &Result<Completion, Error>) -> Outcome {
    r.map_err(|e| merr(&e))
}

/// Credentials as the model reads them.
#[derive(Debug, Clone)]
struct Creds {
    refresh: bool,
    expires_in: u64,
    scope: String,
    sub: String,
}

/// A reply as the model reads it.
#[derive(Debug, Clone)]
enum Reply {
    Creds(Creds),
    ProviderToken,
    User {
        sub: String,
    },
    /// 2xx, not error-shaped, none of the above (`{}`, garbage).
    OtherBody,
    Server {
        status: u16,
        kind: Kind,
    },
    Transport(TransportError),
}

/// Reads a reply of the scripted server (always JSON) for a request to `endpoint`.
fn read_server_reply(endpoint: Endpoint, status: u16, body: &[u8]) -> Reply {
    let v: serde_json::Value = serde_json::from_slice(body).expect("the server writes JSON");
    let str_field = |k: &str| v.get(k).and_then(serde_json::Value::as_str);
    if let Some(name) = str_field("error") {
        return Reply::Server {
            status,
            kind: classify(status, name),
        };
    }
    if !(200..300).contains(&status) {
        return Reply::Server {
            status,
            kind: classify(status, ""),
        };
    }
    match endpoint {
        Endpoint::SignInAnonymously | Endpoint::SignInWithProvider | Endpoint::Token => {
            Reply::Creds(Creds {
                refresh: str_field("refresh_token").is_some(),
                expires_in: v["expires_in"].as_u64().expect("expires_in"),
                scope: str_field("scope").unwrap_or("").to_owned(),
                sub: str_field("sub").unwrap_or("").to_owned(),
            })
        }
        Endpoint::ProviderToken => Reply::ProviderToken,
        Endpoint::UserMe => Reply::User {
            sub: str_field("sub").unwrap_or("").to_owned(),
        },
        _ => Reply::OtherBody,
    }
}

/// Reads a reply the test wrote: an error body (`name`) or a non-JSON page (`None`).
fn read_test_reply(status: u16, name: Option<&str>) -> Reply {
    match name {
        None if (200..300).contains(&status) => Reply::OtherBody,
        _ => Reply::Server {
            status,
            kind: classify(status, name.unwrap_or("")),
        },
    }
}

/// A refused refresh token (as opposed to a transient failure): a 4xx other than rate
/// limiting or server trouble, or `invalid_grant` whatever the status.
fn is_rejection(e: MErr) -> bool {
    matches!(e, MErr::Server { status, kind } if ((400..500).contains(&status) && kind != Kind::Transient)
        || kind == Kind::InvalidGrant)
}

/// The reference model: login state, session, the one request in flight, waiting
/// callers, refresh backoff, and what is stored. Written from the design, not the code.
#[derive(Debug, Clone)]
pub struct Model {
    state: LoginState,
    session: Option<MSession>,
    inflight: Option<Flight>,
    waiters: Vec<(OpId, Call)>,
    retry_at: u64,
    backoff: u64,
    /// The link in progress has its provider token (the code was exchanged).
    exchanged: bool,
    now: u64,
    stored: Option<MSnapshot>,
    /// Operations issued and not completed yet.
    pending: BTreeSet<u32>,
    // What the current step produced.
    changes: Vec<(LoginState, LoginState)>,
    /// Replacements of a refused anonymous user by a new one announced this step.
    replaced: u32,
    completions: Vec<(OpId, Outcome)>,
    persist: bool,
    clear: bool,
}

impl Model {
    fn blank(now: u64) -> Self {
        Model {
            state: LoginState::Uninitialized,
            session: None,
            inflight: None,
            waiters: Vec::new(),
            retry_at: 0,
            backoff: BACKOFF_MIN_MS,
            exchanged: false,
            now,
            stored: None,
            pending: BTreeSet::new(),
            changes: Vec::new(),
            replaced: 0,
            completions: Vec::new(),
            persist: false,
            clear: false,
        }
    }

    /// A fresh engine, `init` at `now`, then `restore` of `snap` if there is one.
    fn restarted(now: u64, snap: Option<MSnapshot>) -> Self {
        let mut m = Self::blank(now);
        m.set_state(LoginState::Initialized);
        if let Some(s) = snap {
            m.stored = Some(s.clone());
            m.adopt(s);
            m.on_tick();
        }
        m
    }

    /// A fresh engine that was given damaged snapshot bytes.
    fn corrupted(now: u64) -> Self {
        let mut m = Self::blank(now);
        m.set_state(LoginState::Initialized);
        m.set_state(LoginState::SignedOut);
        m.clear = true;
        m
    }

    fn adopt(&mut self, snap: MSnapshot) {
        // The clock went back since the save: keep the remaining lifetime.
        self.session = snap.session.map(|mut s| {
            if snap.saved_at > self.now {
                let shift = snap.saved_at - self.now;
                s.expires_at = s.expires_at.saturating_sub(shift);
                s.refresh_at = s.refresh_at.saturating_sub(shift);
            }
            s
        });
        if snap.state != LoginState::Initialized {
            self.set_state(snap.state);
        }
    }

    /// Any input: time never goes back.
    fn begin(&mut self, now: u64) {
        self.now = self.now.max(now);
    }

    /// What the step persisted or cleared becomes what is stored.
    fn end_step(&mut self) {
        if self.clear {
            self.stored = None;
        }
        if self.persist {
            self.stored = Some(MSnapshot {
                state: self.state,
                session: self.session.clone().filter(|_| self.state.is_signed_in()),
                saved_at: self.now,
            });
        }
        self.clear = false;
        self.persist = false;
    }

    fn set_state(&mut self, to: LoginState) {
        assert!(
            is_allowed(self.state, to),
            "model bug: {:?} -> {to:?}",
            self.state
        );
        self.changes.push((self.state, to));
        self.state = to;
    }

    fn signed_in(&self) -> bool {
        self.state.is_signed_in() && self.session.is_some()
    }

    fn refresh_due(&self) -> bool {
        self.session
            .as_ref()
            .is_some_and(|s| s.refreshable && self.now >= s.refresh_at)
    }

    fn expired(&self) -> bool {
        self.session
            .as_ref()
            .is_some_and(|s| self.now >= s.expires_at)
    }

    fn accepts(&self, id: RequestId) -> bool {
        self.inflight.is_some_and(|f| f.id == Some(id))
    }

    /// The deadline the engine must report.
    fn deadline(&self) -> Option<u64> {
        if let Some(f) = &self.inflight {
            return Some(f.deadline);
        }
        self.session.as_ref().map(|s| {
            if s.refreshable {
                s.refresh_at.max(self.retry_at)
            } else {
                s.expires_at
            }
        })
    }

    fn issue(&mut self, op: OpId) {
        assert!(self.pending.insert(op.0), "op id {op:?} handed out twice");
    }

    fn complete(&mut self, op: OpId, r: Outcome) {
        assert!(
            self.pending.remove(&op.0),
            "model bug: {op:?} completes twice"
        );
        self.completions.push((op, r));
    }

    fn wait(&mut self, op: OpId, call: Call) {
        if self.waiters.len() >= WAITERS_MAX {
            self.complete(op, Err(MErr::Busy));
        } else {
            self.waiters.push((op, call));
        }
    }

    fn start(&mut self, task: Task, step: Endpoint, op: Option<OpId>) {
        self.inflight = Some(Flight {
            task,
            step,
            op,
            id: None,
            deadline: self.now.saturating_add(REQUEST_TIMEOUT_MS),
        });
    }

    // ----- calls --------------------------------------------------------------------

    fn get_login_state(&mut self, op: OpId) {
        self.issue(op);
        self.dispatch(op, Call::LoginState);
        self.on_tick();
    }

    fn get_user_info(&mut self, op: OpId) {
        self.issue(op);
        self.dispatch(op, Call::UserInfo);
        self.on_tick();
    }

    fn sign_in_anonymously(&mut self, op: OpId) {
        self.issue(op);
        match self.inflight {
            // A second call joins the one in flight.
            Some(Flight {
                task: Task::Anonymous { .. },
                ..
            }) => self.wait(op, Call::JoinSignIn),
            // No second anonymous user.
            _ if self.state == LoginState::Anonymous => {
                self.complete(op, Ok(Completion::SignedIn(LoginState::Anonymous)));
            }
            _ => {
                self.supersede();
                self.start(
                    Task::Anonymous { recovery: false },
                    Endpoint::SignInAnonymously,
                    Some(op),
                );
            }
        }
        self.on_tick();
    }

    fn sign_in_with_wechat(&mut self, op: OpId) {
        self.issue(op);
        self.supersede();
        self.start(Task::WeChat, Endpoint::ProviderToken, Some(op));
        self.on_tick();
    }

    /// Why `link_wechat` is refused now, if it is.
    fn link_refusal(&self) -> Option<MErr> {
        if self.state != LoginState::Anonymous {
            Some(MErr::NotAnonymous)
        } else if self.inflight.is_some() {
            Some(MErr::Busy)
        } else {
            None
        }
    }

    fn link_wechat(&mut self, op: OpId) {
        self.issue(op);
        self.exchanged = false;
        let first = if self.refresh_due() {
            Endpoint::Token
        } else {
            Endpoint::ProviderToken
        };
        self.start(Task::Link, first, Some(op));
        self.on_tick();
    }

    fn sign_out(&mut self, op: OpId) {
        self.issue(op);
        self.supersede();
        if self.session.take().is_some() {
            // Wiped locally at once; the server is told afterwards.
            self.set_state(LoginState::SignedOut);
            self.persist = true;
            self.start(Task::SignOut, Endpoint::Revoke, Some(op));
        } else {
            self.complete(op, Ok(Completion::SignedOut { revoked: false }));
        }
        self.on_tick();
    }

    /// A reply (or transport failure) for request `id`.
    fn reply(&mut self, id: RequestId, reply: &Reply) -> Delivery {
        if !self.accepts(id) {
            // A stale reply is still an input: the clock moved, timers run.
            self.on_tick();
            return Delivery::Stale;
        }
        let f = self.inflight.take().expect("accepted");
        self.on_reply(f, reply);
        self.on_tick();
        Delivery::Accepted
    }

    // ----- internals ----------------------------------------------------------------

    /// A query: answer now, wait for the operation in flight, or start a request.
    fn dispatch(&mut self, op: OpId, call: Call) {
        let task = self.inflight.map(|f| f.task);
        if !self.signed_in() {
            match (task, call) {
                (Some(t), _) if t.is_sign_in() => self.wait(op, call),
                (_, Call::UserInfo) => self.complete(op, Err(MErr::NotSignedIn)),
                _ => self.complete(op, Ok(Completion::LoginState)),
            }
            return;
        }
        match (task, call) {
            (Some(t), _) if t.is_sign_in() || t == Task::Refresh => self.wait(op, call),
            (Some(Task::FetchUser { .. }), Call::UserInfo) => self.wait(op, Call::JoinUserInfo),
            (Some(_), Call::LoginState) if !self.expired() => {
                self.complete(op, Ok(Completion::LoginState));
            }
            (Some(_), _) => self.wait(op, call),
            (None, _) if self.refresh_due() => {
                self.wait(op, call);
                self.start(Task::Refresh, Endpoint::Token, None);
            }
            (None, Call::UserInfo) => self.start(
                Task::FetchUser { refreshed: false },
                Endpoint::UserMe,
                Some(op),
            ),
            (None, _) => self.complete(op, Ok(Completion::LoginState)),
        }
    }

    /// A sign-in or sign-out starts: what is in flight ends, its reply will be stale.
    fn supersede(&mut self) {
        if let Some(f) = self.inflight.take() {
            let r = match f.task {
                Task::SignOut => Ok(Completion::SignedOut { revoked: false }),
                _ => Err(MErr::Cancelled),
            };
            if let Some(op) = f.op {
                self.complete(op, r);
            }
        }
        self.release_waiters(Err(MErr::Cancelled));
    }

    fn release_waiters(&mut self, r: Outcome) {
        for (op, _) in std::mem::take(&mut self.waiters) {
            self.complete(op, r);
        }
    }

    /// Success: the caller and joined callers get `r`, queries ask again.
    fn finish(&mut self, f: Flight, r: Outcome) {
        if let Some(op) = f.op {
            self.complete(op, r);
        }
        for (op, call) in std::mem::take(&mut self.waiters) {
            match call {
                Call::JoinSignIn | Call::JoinUserInfo => self.complete(op, r),
                call => self.dispatch(op, call),
            }
        }
    }

    /// Failure: the caller and every waiter get `e`.
    fn fail(&mut self, f: Flight, e: MErr) {
        if let Some(op) = f.op {
            self.complete(op, Err(e));
        }
        self.release_waiters(Err(e));
    }

    fn end_session(&mut self) {
        self.session = None;
        self.retry_at = 0;
        self.backoff = BACKOFF_MIN_MS;
        if self.state.is_signed_in() {
            self.set_state(LoginState::SignedOut);
        }
        self.persist = true;
    }

    /// The server refused the session: every caller waiting on it learns it is gone
    /// (none is answered with another user); an anonymous one is then replaced by one
    /// automatic anonymous sign-in of a new user; a WeChat one ends.
    fn session_rejected(&mut self, f: Flight) {
        let was = self.state;
        self.end_session();
        self.fail(f, MErr::SessionExpired);
        if was == LoginState::Anonymous && f.task != (Task::Anonymous { recovery: true }) {
            self.start(
                Task::Anonymous { recovery: true },
                Endpoint::SignInAnonymously,
                None,
            );
        }
    }

    fn session_from(&self, c: &Creds, keep_refresh: bool) -> MSession {
        let lifetime = c.expires_in.saturating_mul(1000);
        let expires_at = self.now.saturating_add(lifetime);
        MSession {
            uid: c.sub.clone(),
            refreshable: c.refresh || keep_refresh,
            expires_at,
            refresh_at: expires_at - REFRESH_MARGIN_MS.min(lifetime / 2),
        }
    }

    fn on_tick(&mut self) {
        if let Some(f) = self.inflight
            && self.now >= f.deadline
        {
            self.inflight = None;
            self.on_reply(f, &Reply::Transport(TransportError::TimedOut));
        }
        if self.inflight.is_some() {
            return;
        }
        if let Some(s) = &self.session {
            if !s.refreshable {
                if self.now >= s.expires_at {
                    self.end_session();
                }
            } else if self.now >= s.refresh_at.max(self.retry_at) {
                self.start(Task::Refresh, Endpoint::Token, None);
            }
        }
    }

    /// What a reply means for a request to `step`: the success body, or the error.
    fn decode(step: Endpoint, reply: &Reply) -> Result<Reply, MErr> {
        match reply {
            Reply::Transport(t) => Err(MErr::Transport(*t)),
            Reply::Server { status, kind } => Err(MErr::Server {
                status: *status,
                kind: *kind,
            }),
            body => match (step, body) {
                (
                    Endpoint::SignInAnonymously | Endpoint::SignInWithProvider | Endpoint::Token,
                    Reply::Creds(_),
                )
                | (Endpoint::ProviderToken, Reply::ProviderToken)
                | (Endpoint::UserMe, Reply::User { .. })
                | (Endpoint::ProviderBind | Endpoint::Revoke, _) => Ok(body.clone()),
                _ => Err(MErr::Wire),
            },
        }
    }

    fn on_reply(&mut self, f: Flight, reply: &Reply) {
        let decoded = Self::decode(f.step, reply);
        match f.step {
            Endpoint::SignInAnonymously | Endpoint::SignInWithProvider => match decoded {
                Ok(Reply::Creds(c)) => {
                    let implied = match f.task {
                        Task::Anonymous { .. } => LoginState::Anonymous,
                        _ => LoginState::WeChat,
                    };
                    let kind = match c.scope.as_str() {
                        "" => implied,
                        "anonymous" => LoginState::Anonymous,
                        _ => LoginState::WeChat,
                    };
                    self.session = Some(self.session_from(&c, false));
                    self.retry_at = self.now.saturating_add(MIN_REFRESH_GAP_MS);
                    self.backoff = BACKOFF_MIN_MS;
                    if !(self.state == LoginState::Anonymous && kind == LoginState::Anonymous) {
                        self.set_state(kind);
                    }
                    if f.task == (Task::Anonymous { recovery: true }) {
                        self.replaced += 1;
                    }
                    self.persist = true;
                    self.start(f.task, Endpoint::UserMe, f.op);
                }
                Err(_) if f.task == (Task::Anonymous { recovery: true }) => {
                    self.fail(f, MErr::SessionExpired);
                }
                Err(e) => self.fail(f, e),
                Ok(_) => unreachable!(),
            },
            Endpoint::ProviderToken => match decoded {
                Ok(_) => {
                    self.exchanged = true;
                    let next = if f.task == Task::Link {
                        Endpoint::ProviderBind
                    } else {
                        Endpoint::SignInWithProvider
                    };
                    self.start(f.task, next, f.op);
                }
                Err(e) => self.fail(f, e),
            },
            Endpoint::ProviderBind => match decoded {
                Ok(_) => {
                    self.set_state(LoginState::WeChat);
                    self.persist = true;
                    let refreshable = self.session.as_ref().is_some_and(|s| s.refreshable);
                    let next = if refreshable {
                        Endpoint::Token
                    } else {
                        Endpoint::UserMe
                    };
                    self.start(f.task, next, f.op);
                }
                Err(e) => self.fail(f, e),
            },
            Endpoint::Token => match decoded {
                Ok(Reply::Creds(c)) => {
                    let old = self.session.clone().expect("a refresh needs a session");
                    let mut s = self.session_from(&c, old.refreshable);
                    if s.uid.is_empty() {
                        s.uid = old.uid;
                    }
                    self.session = Some(s);
                    self.retry_at = self.now.saturating_add(MIN_REFRESH_GAP_MS);
                    self.backoff = BACKOFF_MIN_MS;
                    if self.state == LoginState::Anonymous
                        && !c.scope.is_empty()
                        && c.scope != "anonymous"
                    {
                        self.set_state(LoginState::WeChat);
                    }
                    self.persist = true;
                    match f.task {
                        Task::Link => {
                            let next = if self.exchanged {
                                Endpoint::UserMe
                            } else {
                                Endpoint::ProviderToken
                            };
                            self.start(Task::Link, next, f.op);
                        }
                        Task::FetchUser { .. } => {
                            self.start(Task::FetchUser { refreshed: true }, Endpoint::UserMe, f.op);
                        }
                        _ => self.finish(f, Ok(Completion::LoginState)),
                    }
                }
                Err(e) if is_rejection(e) => self.session_rejected(f),
                Err(e) => {
                    // Offline or server trouble: keep the session, back off.
                    self.retry_at = self.now.saturating_add(self.backoff);
                    self.backoff = (self.backoff * 2).min(BACKOFF_MAX_MS);
                    if f.task == Task::Link && self.exchanged {
                        self.finish(f, Ok(Completion::Linked));
                    } else {
                        self.fail(f, e);
                    }
                }
                Ok(_) => unreachable!(),
            },
            Endpoint::UserMe => {
                let after_sign_in =
                    matches!(f.task, Task::Anonymous { .. } | Task::WeChat | Task::Link);
                let done = match f.task {
                    Task::Anonymous { .. } => Completion::SignedIn(LoginState::Anonymous),
                    Task::WeChat => Completion::SignedIn(self.state),
                    Task::Link => Completion::Linked,
                    _ => Completion::UserInfo,
                };
                match decoded {
                    Ok(Reply::User { sub }) => {
                        if let Some(s) = &mut self.session
                            && s.uid.is_empty()
                            && !sub.is_empty()
                        {
                            s.uid = sub;
                        }
                        self.persist = true;
                        self.finish(f, Ok(done));
                    }
                    // The sign-in itself succeeded; the profile comes later.
                    Err(_) if after_sign_in => self.finish(f, Ok(done)),
                    Err(MErr::Server {
                        kind: Kind::Unauthenticated,
                        ..
                    }) => {
                        let refreshable = self.session.as_ref().is_some_and(|s| s.refreshable);
                        if f.task == (Task::FetchUser { refreshed: false }) && refreshable {
                            self.start(Task::FetchUser { refreshed: true }, Endpoint::Token, f.op);
                        } else {
                            self.session_rejected(f);
                        }
                    }
                    Err(e) => self.fail(f, e),
                    Ok(_) => unreachable!(),
                }
            }
            Endpoint::Revoke => {
                let revoked = decoded.is_ok();
                self.finish(f, Ok(Completion::SignedOut { revoked }));
            }
            other => panic!("model bug: no task sends {other:?}"),
        }
    }
}

// ----- invariants -----------------------------------------------------------------------

/// Checks, after any step, everything that must hold between the engine, the harness's
/// record of its outputs, and the model. `clock_max` is the largest `now` given to the
/// engine (backwards time is ignored, so that is the engine's clock).
///
/// Free of any proptest or fuzzing machinery: the property tests and the `engine_ops`
/// fuzz target both reach it through [`World`].
pub fn check_invariants(h: &Harness, m: &Model, clock_max: u64) {
    let e = &h.engine;
    let state = e.login_state();

    // The login state is the model's.
    assert_eq!(state, m.state, "login state");

    // Tokens exist exactly in Anonymous / WeChat, and are the model's.
    let session = e.session();
    assert_eq!(
        session.is_some(),
        state.is_signed_in(),
        "tokens outside a session"
    );
    assert_eq!(session.is_some(), m.session.is_some(), "session exists");
    assert_eq!(
        e.user().is_some(),
        session.is_some(),
        "user without session"
    );
    if let (Some(s), Some(ms)) = (session, &m.session) {
        assert_eq!(s.uid, ms.uid, "uid");
        assert_eq!(s.refreshable, ms.refreshable, "refreshable");
        assert_eq!(s.expires_at_ms, ms.expires_at, "expires_at");
        assert_eq!(s.refresh_at_ms, ms.refresh_at, "refresh_at");
        assert!(s.refresh_at_ms <= s.expires_at_ms);
        assert!(!s.uid.is_empty() && !s.access_token.is_empty());
    }

    // At most one request in flight, and it is the model's (hence at most one refresh).
    assert_eq!(e.is_busy(), m.inflight.is_some(), "busy");
    assert_eq!(
        e.is_refreshing(),
        m.inflight.is_some_and(|f| f.step == Endpoint::Token),
        "refreshing"
    );
    if let Some(id) = m.inflight.and_then(|f| f.id) {
        let live = h.sent.iter().filter(|s| s.request == id).count();
        assert_eq!(live, 1, "the request in flight is held once");
        assert_eq!(h.sent.last().map(|s| s.request), Some(id), "newest is live");
        let refreshes = h
            .sent
            .iter()
            .filter(|s| s.endpoint == Endpoint::Token && s.request == id)
            .count();
        assert!(refreshes <= 1, "two refreshes in flight");
    }

    // The deadline is the model's and never in the past.
    assert_eq!(h.deadline, m.deadline(), "deadline");
    if let Some(d) = h.deadline {
        assert!(
            d >= clock_max,
            "deadline {d} is before the engine clock {clock_max} (by {} ms)",
            clock_max - d
        );
    }

    // Every change is in the table.
    for &(from, to) in &h.changes {
        assert!(
            is_allowed(from, to),
            "{from:?} -> {to:?} not in TRANSITIONS"
        );
    }

    // What is stored is what the model expects, describes the current session, and
    // round-trips through a fresh engine.
    assert_eq!(h.stored.is_some(), m.stored.is_some(), "stored");
    if state.is_signed_in() {
        assert!(h.stored.is_some(), "a session that is not stored");
    }
    if let (Some(bytes), Some(snap)) = (&h.stored, &m.stored) {
        assert_eq!(snap.state, state, "stored state is the current one");
        assert_eq!(
            snap.session.as_ref().map(|s| (&s.uid, s.refreshable)),
            m.session.as_ref().map(|s| (&s.uid, s.refreshable)),
            "stored session is the current one"
        );
        let mut r = Harness::uninit();
        r.auto_reply = false;
        r.now = clock_max;
        assert_eq!(r.restart_with(bytes), Ok(()), "stored snapshot restores");
        let rm = Model::restarted(clock_max, Some(snap.clone()));
        assert_eq!(
            r.changes.as_slice(),
            rm.changes.as_slice(),
            "restore changes"
        );
        assert_eq!(r.engine.login_state(), rm.state, "restored state");
        let restored = r.engine.session().map(|s| {
            (
                s.uid.to_owned(),
                s.refreshable,
                s.expires_at_ms,
                s.refresh_at_ms,
            )
        });
        let expected = rm
            .session
            .as_ref()
            .map(|s| (s.uid.clone(), s.refreshable, s.expires_at, s.refresh_at));
        assert_eq!(restored, expected, "restored session");
        assert_eq!(r.deadline, rm.deadline(), "restored deadline");
        assert_eq!(
            r.sent.first().map(|s| s.endpoint),
            rm.inflight.map(|f| f.step),
            "restored engine's first request"
        );
    }
}

// ----- the driver -----------------------------------------------------------------------

/// Engine (in the harness) and model side by side: [`World::apply`] runs one [`Op`]
/// on both and checks that they agree, then [`check_invariants`].
pub struct World {
    h: Box<Harness>,
    m: Model,
    /// The largest `now` given to the engine: its clock.
    clock_max: u64,
    /// Requests answered, failed or lost: any later reply to them is stale.
    answered: Vec<RequestId>,
    /// Held requests before the current step.
    before: Vec<RequestId>,
    /// `h.clears` before the current step.
    clears_before: u32,
    /// `h.replacements` before the current step.
    replacements_before: u32,
}

fn corrupt(bytes: &[u8], flip: u16) -> Vec<u8> {
    let mut v = bytes.to_vec();
    let pos = usize::from(flip >> 1) % v.len();
    if flip & 1 == 0 {
        v.truncate(pos);
    } else {
        v[pos] ^= ((flip >> 8) as u8) | 1;
    }
    v
}

impl World {
    /// A fresh engine, initialised and drained, with requests held for the ops to
    /// answer; the model in the same state. Checked once before any op.
    pub fn new() -> Self {
        let mut h = Box::new(Harness::new());
        h.auto_reply = false;
        let m = Model::restarted(h.now, None);
        let mut w = World {
            clock_max: h.now,
            h,
            m,
            answered: Vec::new(),
            before: Vec::new(),
            clears_before: 0,
            replacements_before: 0,
        };
        w.after_step();
        w
    }

    /// The harness passed `h.now` to the engine.
    fn input(&mut self) {
        self.clock_max = self.clock_max.max(self.h.now);
        self.m.begin(self.h.now);
    }

    /// Loses old held requests so the harness's list never fills.
    fn prune_held(&mut self) {
        let live = self.m.inflight.and_then(|f| f.id);
        while self.h.sent.len() >= HELD_MAX {
            let i = self
                .h
                .sent
                .iter()
                .position(|s| Some(s.request) != live)
                .expect("one live request at most");
            let lost = self.h.sent.remove(i);
            self.answered.push(lost.request);
        }
    }

    /// Delivers `status`/`body` (or a transport failure) for a held request.
    fn deliver(&mut self, id: RequestId, reply: Reply, raw: Option<(u16, &[u8])>) {
        let d = match raw {
            Some((status, body)) => self.h.engine.handle_response(self.h.now, id, status, body),
            None => self.h.engine.handle_transport_error(self.h.now, id),
        };
        self.h.run();
        self.input();
        let expected = self.m.reply(id, &reply);
        assert_eq!(d, expected, "delivery of {id:?}");
        self.answered.push(id);
    }

    fn take_held(&mut self, oldest: bool) -> Option<cloudbase_auth_core::testing::Sent> {
        if self.h.sent.is_empty() {
            None
        } else if oldest {
            Some(self.h.sent.remove(0))
        } else {
            self.h.sent.pop()
        }
    }

    fn restart_fresh(&mut self) {
        self.h.sent.clear();
        self.answered.clear();
        self.before.clear();
        self.clock_max = self.h.now;
    }

    /// Runs `op` against engine and model, then compares what the step produced and
    /// checks the invariants (panics on any disagreement).
    pub fn apply(&mut self, op: &Op) {
        self.prune_held();
        self.before = self.h.sent.iter().map(|s| s.request).collect();
        self.clears_before = self.h.clears;
        self.replacements_before = self.h.replacements;
        let now = self.h.now;
        match op {
            Op::GetLoginState => {
                let r = self.h.engine.get_login_state(now);
                self.h.run();
                self.input();
                self.m.get_login_state(r.expect("initialised"));
            }
            Op::GetUserInfo => {
                let r = self.h.engine.get_user_info(now);
                self.h.run();
                self.input();
                self.m.get_user_info(r.expect("initialised"));
            }
            Op::SignInAnonymously => {
                let r = self.h.engine.sign_in_anonymously(now);
                self.h.run();
                self.input();
                self.m.sign_in_anonymously(r.expect("initialised"));
            }
            Op::SignInWeChat { openid_idx } => {
                let openid = OPENIDS[usize::from(*openid_idx) % OPENIDS.len()];
                let code = self.h.server.mint_code(openid);
                let r = self.h.engine.sign_in_with_wechat(now, &code, APPID);
                self.h.run();
                self.input();
                self.m.sign_in_with_wechat(r.expect("valid input"));
            }
            Op::SignInWeChatBadCode => {
                let r = self
                    .h
                    .engine
                    .sign_in_with_wechat(now, "never-minted", APPID);
                self.h.run();
                self.input();
                self.m.sign_in_with_wechat(r.expect("valid input"));
            }
            Op::LinkWeChat { openid_idx } => {
                let openid = OPENIDS[usize::from(*openid_idx) % OPENIDS.len()];
                let code = self.h.server.mint_code(openid);
                let r = self.h.engine.link_wechat(now, &code, APPID);
                self.h.run();
                self.input();
                match self.m.link_refusal() {
                    Some(e) => {
                        assert_eq!(r.map_err(|e| merr(&e)), Err(e), "link refused");
                        // A refused call still brings the time: timers run.
                        self.m.on_tick();
                    }
                    None => {
                        self.m.link_wechat(r.expect("link accepted"));
                    }
                }
            }
            Op::SignOut => {
                let r = self.h.engine.sign_out(now);
                self.h.run();
                self.input();
                self.m.sign_out(r.expect("initialised"));
            }
            Op::ReplyGood { oldest } => {
                if let Some(sent) = self.take_held(*oldest) {
                    let reply = self.h.server.handle(&sent);
                    let read = read_server_reply(sent.endpoint, reply.status, &reply.body);
                    self.deliver(sent.request, read, Some((reply.status, &reply.body)));
                }
            }
            Op::ReplyError {
                status_idx,
                kind_idx,
            } => {
                if let Some(sent) = self.take_held(false) {
                    let status = ERROR_STATUSES[usize::from(*status_idx) % ERROR_STATUSES.len()];
                    let name = ERROR_NAMES[usize::from(*kind_idx) % ERROR_NAMES.len()];
                    let body = match name {
                        Some(n) => format!(
                            r#"{{"error":"{n}","error_code":3,"error_description":"model"}}"#
                        ),
                        None => "<html>bad gateway</html>".to_owned(),
                    };
                    let read = read_test_reply(status, name);
                    self.deliver(sent.request, read, Some((status, body.as_bytes())));
                }
            }
            Op::ReplyGarbage { status_idx, bytes } => {
                if let Some(sent) = self.take_held(false) {
                    let status =
                        GARBAGE_STATUSES[usize::from(*status_idx) % GARBAGE_STATUSES.len()];
                    let mut body = vec![b'<'];
                    body.extend_from_slice(bytes);
                    let read = read_test_reply(status, None);
                    self.deliver(sent.request, read, Some((status, &body)));
                }
            }
            Op::ReplyLateDuplicate { idx } => {
                if !self.answered.is_empty() {
                    let id = self.answered[usize::from(*idx) % self.answered.len()];
                    let read = Reply::Creds(Creds {
                        refresh: true,
                        expires_in: 7200,
                        scope: "user".to_owned(),
                        sub: "uid-bait".to_owned(),
                    });
                    self.deliver(id, read, Some((200, BAIT)));
                    assert_eq!(self.answered.pop(), Some(id));
                }
            }
            Op::TransportFail => {
                if let Some(sent) = self.take_held(false) {
                    let read = Reply::Transport(TransportError::Failed);
                    self.deliver(sent.request, read, None);
                }
            }
            Op::Advance { ms } => {
                self.h.advance(u64::from(*ms));
                self.input();
                self.m.on_tick();
            }
            Op::AdvanceToDeadline => {
                if self.h.deadline.is_some() {
                    self.h.advance_to_deadline();
                    self.input();
                    self.m.on_tick();
                }
            }
            Op::Elapse { ms } => self.h.now += u64::from(*ms),
            Op::Backwards { ms } => {
                self.h.now = self.h.now.saturating_sub(u64::from(*ms));
                self.h.engine.handle_timeout(self.h.now);
                self.h.run();
                self.input();
                self.m.on_tick();
            }
            Op::Restore => {
                self.restart_fresh();
                match self.h.stored.clone() {
                    Some(bytes) => assert_eq!(self.h.restart_with(&bytes), Ok(())),
                    None => {
                        self.h.engine = Engine::new();
                        self.h
                            .engine
                            .init(self.h.now, Config::new(ENV), [43; 16])
                            .expect("valid config");
                        self.h.run();
                    }
                }
                self.m = Model::restarted(self.h.now, self.m.stored.clone());
            }
            Op::RestoreCorrupted { flip } => {
                self.restart_fresh();
                let bytes = match &self.h.stored {
                    Some(b) => corrupt(b, *flip),
                    None => flip.to_le_bytes().to_vec(),
                };
                let r = self.h.restart_with(&bytes);
                assert!(matches!(r, Err(Error::Snapshot(_))), "{r:?}");
                self.m = Model::corrupted(self.h.now);
            }
            Op::ServerRevokesRefreshTokens => self.h.server.revoke_all_refresh_tokens(),
            Op::ServerExpiresAccessTokens => self.h.server.revoke_all_access_tokens(),
            Op::ShortTokens { secs } => {
                self.h.server.expires_in = match secs % 121 {
                    0 => 7200,
                    s => u64::from(s),
                };
            }
            Op::NoRefreshTokens => {
                self.h.server.issue_refresh_tokens = !self.h.server.issue_refresh_tokens;
            }
        }
        self.after_step();
    }

    /// Compares what the step produced, then checks the invariants.
    fn after_step(&mut self) {
        assert_eq!(
            self.h.clears - self.clears_before,
            u32::from(self.m.clear),
            "storage cleared"
        );
        self.m.end_step();
        assert_eq!(
            self.h.changes.as_slice(),
            self.m.changes.as_slice(),
            "state changes"
        );
        assert_eq!(
            self.h.replacements - self.replacements_before,
            self.m.replaced,
            "sessions replaced"
        );
        let mut got: Vec<(u32, Outcome)> = self
            .h
            .completions
            .iter()
            .map(|(op, r)| (op.0, outcome(r)))
            .collect();
        let mut want: Vec<(u32, Outcome)> = self
            .m
            .completions
            .iter()
            .map(|(op, r)| (op.0, *r))
            .collect();
        got.sort_by_key(|c| c.0);
        want.sort_by_key(|c| c.0);
        assert_eq!(got, want, "completions");
        let new: Vec<_> = self
            .h
            .sent
            .iter()
            .filter(|s| !self.before.contains(&s.request))
            .map(|s| (s.request, s.endpoint))
            .collect();
        // Credentials: the access token only goes to `user/me` and `user/provider/bind`
        // (the current session's); only the automatic re-sign-in authenticates the client.
        for sent in self
            .h
            .sent
            .iter()
            .filter(|s| !self.before.contains(&s.request))
        {
            let auth = sent.authorization.as_deref();
            match sent.endpoint {
                Endpoint::UserMe | Endpoint::ProviderBind => {
                    let token = self.h.engine.session().map(|s| s.access_token);
                    assert_eq!(
                        auth.and_then(|a| a.strip_prefix("Bearer ")),
                        token,
                        "{:?} carries the session's access token",
                        sent.endpoint
                    );
                }
                _ if self.m.inflight.is_some_and(|f| {
                    f.task == (Task::Anonymous { recovery: true })
                        && f.step == Endpoint::SignInAnonymously
                }) =>
                {
                    assert!(auth.is_some_and(|a| a.starts_with("Basic ")), "{auth:?}");
                }
                _ => assert_eq!(auth, None, "{:?} carries no credential", sent.endpoint),
            }
        }
        match self.m.inflight.as_mut() {
            Some(f) if f.id.is_none() => {
                assert_eq!(
                    new.iter().map(|n| n.1).collect::<Vec<_>>(),
                    [f.step],
                    "request sent"
                );
                f.id = Some(new[0].0);
            }
            _ => assert_eq!(new, [], "no request expected"),
        }
        check_invariants(&self.h, &self.m, self.clock_max);
        self.h.changes.clear();
        self.h.completions.clear();
        self.m.changes.clear();
        self.m.replaced = 0;
        self.m.completions.clear();
    }

    /// Answers whatever is in flight until nothing is; then every call has completed.
    pub fn settle(&mut self) {
        for _ in 0..64 {
            if self.m.inflight.is_none() {
                break;
            }
            self.apply(&Op::ReplyGood { oldest: false });
        }
        assert!(self.m.inflight.is_none(), "still busy after 64 replies");
        assert!(
            self.m.pending.is_empty(),
            "calls never completed: {:?}",
            self.m.pending
        );
    }
}

/// Runs `ops` against engine and model, checking after every step; then settles.
/// Panics on the first disagreement or broken invariant.
pub fn run_ops(ops: &[Op]) {
    let mut w = World::new();
    for op in ops {
        w.apply(op);
    }
    w.settle();
}

impl Default for World {
    fn default() -> Self {
        Self::new()
    }
}
