//! The reference model's state: what a host could know about the engine at any moment,
//! named after the documented behaviour (core/README.md, the docs of `Engine`,
//! `Output`, `Completion`, `Error` and `Config`), and the timers that act on it.

use std::collections::{BTreeSet, VecDeque};

use cloudbase_auth_core::capacity::WAITERS_MAX;
use cloudbase_auth_core::config::{
    DEFAULT_REFRESH_MARGIN_MS, DEFAULT_REQUEST_TIMEOUT_MS, RETRY_BACKOFF_MIN_MS,
};
use cloudbase_auth_core::state::is_allowed;
use cloudbase_auth_core::wire::Endpoint;
use cloudbase_auth_core::{Completion, LoginState, OpId, RequestId, TransportError};

use super::answer::{Answer, Failure, Grant};
use super::ops::Setup;

/// How a call ends.
pub(crate) type Outcome = Result<Completion, Failure>;

/// The session a host reads through `Engine::session`, plus the refresh token the last
/// credentials carried (a host saw it in the reply; the model needs it to predict the
/// refresh request's body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UserSession {
    pub(crate) uid: String,
    pub(crate) token_type: String,
    pub(crate) access_token: String,
    pub(crate) refresh_token: Option<String>,
    pub(crate) expires_at: u64,
    pub(crate) refresh_at: u64,
}

impl UserSession {
    /// core/README.md: `expires_at` is the local receive time + `expires_in`; the refresh
    /// is due 30 s (the default margin) before it, never earlier than half-way through
    /// the lifetime.
    pub(crate) fn from_credentials(now: u64, c: &Grant) -> UserSession {
        let lifetime = c.expires_in_s.saturating_mul(1000);
        let expires_at = now.saturating_add(lifetime);
        UserSession {
            uid: c.sub.clone(),
            token_type: c.token_type.clone(),
            access_token: c.access_token.clone(),
            refresh_token: c.refresh_token.clone(),
            expires_at,
            refresh_at: expires_at - DEFAULT_REFRESH_MARGIN_MS.min(lifetime / 2),
        }
    }

    pub(crate) fn refreshable(&self) -> bool {
        self.refresh_token.is_some()
    }
}

/// A WeChat code exchange: the `wx.login` code the host passed, then the provider token
/// the server gave for it (§3 of docs/wire.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WxLogin {
    pub(crate) code: String,
    pub(crate) provider_token: Option<String>,
}

/// What the operation in flight is for (core/README.md: "sign-in, refresh, user fetch,
/// link, sign-out").
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// `signInAnonymously`, or (`automatic`) the sign-in of a new anonymous user that
    /// replaces a refused anonymous session.
    AnonymousSignIn {
        automatic: bool,
    },
    WeChatSignIn(WxLogin),
    /// For waiting callers, or proactive (due, nobody asked).
    Refresh,
    /// `getUserInfo`; `refreshed`: the one refresh after `unauthenticated` was made.
    UserInfo {
        refreshed: bool,
    },
    Link(WxLogin),
    /// `signOut`: the token being revoked.
    SignOut {
        access_token: String,
    },
    /// `user.update()`: the nickname and avatar URL to send.
    UpdateProfile {
        name: Option<String>,
        picture: Option<String>,
    },
    /// `deleteMe`.
    DeleteAccount,
}

impl Purpose {
    pub(crate) fn is_sign_in(&self) -> bool {
        matches!(
            self,
            Purpose::AnonymousSignIn { .. } | Purpose::WeChatSignIn(_)
        )
    }
}

/// The one operation in flight (core/README.md: "at most one operation in flight").
#[derive(Debug, Clone)]
pub(crate) struct Operation {
    pub(crate) purpose: Purpose,
    /// The call that started it (none for a proactive refresh or an automatic sign-in).
    pub(crate) caller: Option<OpId>,
    /// The requests it still has to make, in order; the first is on the wire.
    pub(crate) plan: VecDeque<Endpoint>,
    /// The id of the request on the wire, learnt when the host sees it.
    pub(crate) id: Option<RequestId>,
    /// When the request on the wire times out.
    pub(crate) times_out_at: u64,
}

impl Operation {
    /// The endpoint of the request on the wire.
    pub(crate) fn on_the_wire(&self) -> Endpoint {
        self.plan[0]
    }
}

/// What a waiting query asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Query {
    LoginState,
    UserInfo,
}

/// A caller waiting on the operation in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Waiting {
    /// Asks again when the operation succeeds (a query behind a sign-in or refresh).
    AsksAgain(OpId, Query),
    /// Gets the operation's own result (a second `signInAnonymously`, a second
    /// `getUserInfo` behind a user fetch).
    Shares(OpId),
}

impl Waiting {
    fn op(self) -> OpId {
        match self {
            Waiting::AsksAgain(op, _) | Waiting::Shares(op) => op,
        }
    }
}

/// What the last persisted snapshot holds.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub(crate) login: LoginState,
    pub(crate) session: Option<UserSession>,
    pub(crate) saved_at: u64,
}

/// The outputs one step must produce.
#[derive(Debug, Clone, Default)]
pub(crate) struct StepOutputs {
    pub(crate) changes: Vec<(LoginState, LoginState)>,
    /// `Output::SessionReplaced`.
    pub(crate) replaced: u32,
    pub(crate) completions: Vec<(OpId, Outcome)>,
    pub(crate) persisted: bool,
    pub(crate) cleared: bool,
}

/// The reference model: what a host could know of the engine (login state, session,
/// the operation in flight and who waits on it, the refresh schedule, what is stored)
/// and the outputs the current step must produce. Written from the documented
/// behaviour, not from the engine's code.
#[derive(Debug, Clone)]
pub struct Model {
    pub(crate) setup: Setup,
    /// The engine's clock (time never goes back).
    pub(crate) now: u64,
    pub(crate) login: LoginState,
    pub(crate) session: Option<UserSession>,
    /// No proactive refresh before this: `MIN_REFRESH_GAP_MS` after new credentials,
    /// the backoff after a failed refresh.
    pub(crate) proactive_not_before: u64,
    /// The wait after the next failed refresh (doubling up to `RETRY_BACKOFF_MAX_MS`).
    pub(crate) next_backoff: u64,
    pub(crate) in_flight: Option<Operation>,
    pub(crate) waiting: Vec<Waiting>,
    /// Calls that returned an id and have not completed.
    pub(crate) open_calls: BTreeSet<u32>,
    pub(crate) stored: Option<Stored>,
    pub(crate) step: StepOutputs,
}

impl Model {
    fn blank(setup: Setup, now: u64) -> Self {
        Model {
            setup,
            now,
            login: LoginState::Uninitialized,
            session: None,
            proactive_not_before: 0,
            next_backoff: RETRY_BACKOFF_MIN_MS,
            in_flight: None,
            waiting: Vec::new(),
            open_calls: BTreeSet::new(),
            stored: None,
            step: StepOutputs::default(),
        }
    }

    /// A fresh engine: `init` at `now`, then `restore` of `stored` if there is one.
    pub(crate) fn restarted(setup: Setup, now: u64, stored: Option<Stored>) -> Self {
        let mut m = Self::blank(setup, now);
        m.set_state(LoginState::Initialized);
        if let Some(s) = stored {
            m.stored = Some(s.clone());
            m.adopt(s);
            m.tick();
        }
        m
    }

    /// A fresh engine given damaged snapshot bytes: `SignedOut`, storage cleared.
    pub(crate) fn after_corrupt_snapshot(setup: Setup, now: u64) -> Self {
        let mut m = Self::blank(setup, now);
        m.set_state(LoginState::Initialized);
        m.set_state(LoginState::SignedOut);
        m.step.cleared = true;
        m
    }

    /// core/README.md: a snapshot restored on a clock that went back keeps the remaining
    /// lifetime, not the absolute deadline.
    fn adopt(&mut self, stored: Stored) {
        let shift = stored.saved_at.saturating_sub(self.now);
        self.session = stored.session.map(|mut s| {
            s.expires_at = s.expires_at.saturating_sub(shift);
            s.refresh_at = s.refresh_at.saturating_sub(shift);
            s
        });
        if stored.login != LoginState::Initialized {
            self.set_state(stored.login);
        }
    }

    /// Any input: time going backwards is ignored.
    pub(crate) fn begin(&mut self, now: u64) {
        self.now = self.now.max(now);
    }

    /// What the step persisted or cleared becomes what is stored; the step's outputs
    /// are handed over.
    pub(crate) fn end_step(&mut self) -> StepOutputs {
        let out = std::mem::take(&mut self.step);
        if out.cleared {
            self.stored = None;
        }
        if out.persisted {
            self.stored = Some(Stored {
                login: self.login,
                session: self.session.clone(),
                saved_at: self.now,
            });
        }
        out
    }

    // ----- what the host sees change ----------------------------------------------

    pub(crate) fn set_state(&mut self, to: LoginState) {
        assert!(
            is_allowed(self.login, to),
            "model bug: {:?} -> {to:?}",
            self.login
        );
        self.step.changes.push((self.login, to));
        self.login = to;
    }

    pub(crate) fn persist(&mut self) {
        self.step.persisted = true;
    }

    /// A call returned `op`.
    pub(crate) fn opened(&mut self, op: OpId) {
        assert!(
            self.open_calls.insert(op.0),
            "op id {op:?} handed out twice"
        );
    }

    pub(crate) fn complete(&mut self, op: OpId, r: Outcome) {
        assert!(
            self.open_calls.remove(&op.0),
            "model bug: {op:?} completes twice"
        );
        self.step.completions.push((op, r));
    }

    /// At most `WAITERS_MAX` callers wait on one operation; one more is refused as busy.
    pub(crate) fn wait(&mut self, w: Waiting) {
        if self.waiting.len() >= WAITERS_MAX {
            self.complete(w.op(), Err(Failure::Busy));
        } else {
            self.waiting.push(w);
        }
    }

    /// Every waiting caller gets `r`.
    pub(crate) fn release_waiters(&mut self, r: Outcome) {
        for w in std::mem::take(&mut self.waiting) {
            self.complete(w.op(), r);
        }
    }

    // ----- the session and its schedule -------------------------------------------

    pub(crate) fn refresh_due(&self) -> bool {
        self.session
            .as_ref()
            .is_some_and(|s| s.refreshable() && self.now >= s.refresh_at)
    }

    pub(crate) fn token_expired(&self) -> bool {
        self.session
            .as_ref()
            .is_some_and(|s| self.now >= s.expires_at)
    }

    /// The deadline `poll_timeout` reports: while a request is on the wire, its timeout
    /// (nothing else can start before it ends); otherwise the refresh time (never before
    /// the proactive refresh may run again), or the expiry of a session that cannot
    /// refresh.
    pub(crate) fn deadline(&self) -> Option<u64> {
        if let Some(f) = &self.in_flight {
            return Some(f.times_out_at);
        }
        self.session.as_ref().map(|s| {
            if s.refreshable() {
                s.refresh_at.max(self.proactive_not_before)
            } else {
                s.expires_at
            }
        })
    }

    /// Starts an operation with its planned requests; the first goes on the wire.
    pub(crate) fn start(&mut self, purpose: Purpose, caller: Option<OpId>, plan: &[Endpoint]) {
        self.in_flight = Some(Operation {
            purpose,
            caller,
            plan: plan.iter().copied().collect(),
            id: None,
            times_out_at: self.request_deadline(),
        });
    }

    /// The operation's next planned request goes on the wire.
    pub(crate) fn send_next(&mut self, mut f: Operation) {
        f.plan.pop_front();
        assert!(
            !f.plan.is_empty(),
            "model bug: {:?} has no next request",
            f.purpose
        );
        f.id = None;
        f.times_out_at = self.request_deadline();
        self.in_flight = Some(f);
    }

    fn request_deadline(&self) -> u64 {
        self.now.saturating_add(DEFAULT_REQUEST_TIMEOUT_MS)
    }

    /// Timers, after every input: a request past its timeout fails as timed out; then,
    /// with nothing in flight, a session that cannot refresh ends at its expiry and a
    /// refreshable one starts its proactive refresh when due.
    pub(crate) fn tick(&mut self) {
        let now = self.now;
        if let Some(f) = self.in_flight.take_if(|f| now >= f.times_out_at) {
            self.on_answer(f, Answer::NoReply(TransportError::TimedOut));
        }
        if self.in_flight.is_some() {
            return;
        }
        let Some(s) = &self.session else {
            return;
        };
        if !s.refreshable() {
            if self.now >= s.expires_at {
                self.end_session();
            }
        } else if self.now >= s.refresh_at.max(self.proactive_not_before) {
            self.start(Purpose::Refresh, None, &[Endpoint::Token]);
        }
    }

    /// The session ends locally (refused, expired): `SignedOut`, persisted, the refresh
    /// schedule forgotten.
    pub(crate) fn end_session(&mut self) {
        self.session = None;
        self.proactive_not_before = 0;
        self.next_backoff = RETRY_BACKOFF_MIN_MS;
        if self.login.is_signed_in() {
            self.set_state(LoginState::SignedOut);
        }
        self.persist();
    }
}
