//! The session engine: host calls in, [`Output`]s out.
//!
//! One login state ([`LoginState`]) plus at most one operation in flight
//! (`Inflight`), with a bounded list of callers waiting on it (single-flight). Every
//! state change goes through `Engine::set_state`, which checks the transition table and
//! queues the event. Every request is tagged with the session generation; sign-in and
//! sign-out bump it, so a late reply can never act on a newer session.

use crate::capacity::*;
use crate::config::{
    Config, DEFAULT_REFRESH_MARGIN_MS, DEFAULT_REQUEST_TIMEOUT_MS, MIN_REFRESH_GAP_MS,
    RETRY_BACKOFF_MAX_MS, RETRY_BACKOFF_MIN_MS, checked_api_path, checked_id,
};
use crate::error::{ApiMisuse, Error, ServerErrorKind, SnapshotError, TransportError};
use crate::output::{Completion, Delivery, OpId, Output, RequestId, Transmit};
use crate::rng::Rng;
use crate::session::{Profile, Session, SessionView, UserView};
use crate::snapshot::{self, SnapshotV1};
use crate::state::{LoginState, is_allowed};
use crate::wire::{self, Credential, Credentials, Endpoint, ProviderTokenReply, User};
use heapless::{Deque, String, Vec};

/// What a sequence of requests is for. The current request's [`Endpoint`] is the step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Task {
    /// `signin/anonymously` → `user/me`. `recovery`: the SDK's automatic re-sign-in
    /// after an anonymous refresh token was rejected (sends `Basic` client auth).
    AnonymousSignIn { recovery: bool },
    /// `provider/token` → `signin/with/provider` → `user/me`.
    WeChatSignIn,
    /// [`token` if due] → `provider/token` → `user/provider/bind` → `token` → `user/me`.
    Link,
    /// `token` (proactive, or for waiters).
    Refresh,
    /// `user/me`; on `unauthenticated`, `token` then `user/me` once more.
    FetchUser { refreshed: bool },
    /// `revoke`.
    SignOut,
}

impl Task {
    fn is_sign_in(self) -> bool {
        matches!(self, Task::AnonymousSignIn { .. } | Task::WeChatSignIn)
    }
}

/// The one operation in flight.
#[derive(Debug, Clone, Copy)]
struct Inflight {
    task: Task,
    step: Endpoint,
    /// The call that started it (`None` for internal refreshes).
    op: Option<OpId>,
    request: RequestId,
    deadline: u64,
}

/// What a waiting caller wants once the operation in flight ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    /// `get_login_state`: re-evaluated after success.
    LoginState,
    /// `get_user_info`: re-evaluated after success.
    UserInfo,
    /// Joined an identical operation: gets its result.
    Same,
}

#[derive(Debug, Clone, Copy)]
struct Waiter {
    op: OpId,
    call: Call,
}

/// Outputs waiting to be polled. Small tags: the data is read from the engine at poll
/// time, which is valid because outputs are drained before the next input.
#[derive(Debug, Clone, Copy)]
enum Queued {
    Transmit(RequestId),
    Persist,
    Clear,
    StateChanged(LoginState, LoginState),
    Replaced,
    Completed(OpId, Result<Completion, Error>),
}

/// Where the session's tokens are.
#[derive(Debug, Clone)]
enum Tokens {
    None,
    /// The usable session (only in `Anonymous`/`WeChat`).
    Live(Session),
    /// Signed out locally; kept only until the `revoke` request is written, then wiped.
    Revoking(Session),
}

/// A WeChat exchange in progress: the `wx.login` code, replaced by the provider token.
#[derive(Debug, Clone, Default)]
struct Exchange {
    secret: String<PROVIDER_TOKEN_MAX>,
    appid: String<APPID_MAX>,
    exchanged: bool,
}

/// The profile cache and a WeChat exchange never coexist: an exchange evicts the cache
/// (it is re-fetched right after), which keeps the engine within 4 KiB.
#[derive(Debug, Clone)]
enum Side {
    Profile(Profile),
    Exchange(Exchange),
}

/// The CloudBase Auth session engine. See the crate docs for the run loop.
#[derive(Debug, Clone)]
pub struct Engine {
    state: LoginState,
    /// Whether `restore` is still accepted (right after `init`).
    restorable: bool,
    env: String<ENV_ID_MAX>,
    client_id: String<ENV_ID_MAX>,
    api_path: String<API_PATH_MAX>,
    device_id: String<DEVICE_ID_MAX>,
    refresh_margin_ms: u64,
    request_timeout_ms: u64,
    anonymous_recovery: bool,
    rng: Rng,
    now: u64,
    generation: u32,
    next_seq: u32,
    next_op: u32,
    tokens: Tokens,
    side: Side,
    inflight: Option<Inflight>,
    waiters: Vec<Waiter, WAITERS_MAX>,
    outputs: Deque<Queued, OUTPUTS_MAX>,
    /// No proactive refresh before this (backoff after transport failures).
    retry_at: u64,
    backoff_ms: u64,
}

impl Default for Engine {
    fn default() -> Self {
        Self::new()
    }
}

/// An empty profile to point at while the cache is evicted.
static NO_PROFILE: Profile = Profile::EMPTY;

fn checked_secret<const N: usize>(field: &'static str, s: &str) -> Result<String<N>, ApiMisuse> {
    if s.len() > N {
        return Err(ApiMisuse::InputTooLong {
            field,
            max: N as u16,
        });
    }
    if !wire::is_token_safe(s) {
        return Err(ApiMisuse::InputInvalid { field });
    }
    Ok(String::try_from(s).unwrap_or_default())
}

impl Engine {
    /// A new engine in `Uninitialized`. `const`, so it can live in a `static`.
    pub const fn new() -> Self {
        Engine {
            state: LoginState::Uninitialized,
            restorable: false,
            env: String::new(),
            client_id: String::new(),
            api_path: String::new(),
            device_id: String::new(),
            refresh_margin_ms: DEFAULT_REFRESH_MARGIN_MS,
            request_timeout_ms: DEFAULT_REQUEST_TIMEOUT_MS,
            anonymous_recovery: true,
            rng: Rng::UNSEEDED,
            now: 0,
            generation: 0,
            next_seq: 0,
            next_op: 0,
            tokens: Tokens::None,
            side: Side::Profile(Profile::EMPTY),
            inflight: None,
            waiters: Vec::new(),
            outputs: Deque::new(),
            retry_at: 0,
            backoff_ms: RETRY_BACKOFF_MIN_MS,
        }
    }

    // ----- host calls: setup --------------------------------------------------------

    /// `wx.cloud.init({env})`: validates `config`, seeds request and device ids from
    /// `seed` (host entropy), and moves to `Initialized`.
    pub fn init(&mut self, now_ms: u64, config: Config<'_>, seed: [u8; 16]) -> Result<(), Error> {
        if self.state != LoginState::Uninitialized {
            return Err(ApiMisuse::AlreadyInitialized.into());
        }
        let env = checked_id("env", config.env)?;
        let client_id = checked_id("client_id", config.client_id.unwrap_or(config.env))?;
        let api_path = checked_api_path(config.api_path)?;
        self.begin_input(now_ms);
        self.env = env;
        self.client_id = client_id;
        self.api_path = api_path;
        self.refresh_margin_ms = config.refresh_margin_ms;
        self.request_timeout_ms = config.request_timeout_ms.max(1);
        self.anonymous_recovery = config.anonymous_recovery;
        self.rng = Rng::new(seed);
        let id = self.rng.hex32();
        self.device_id = String::try_from(id.as_str()).unwrap_or_default();
        self.restorable = true;
        self.set_state(LoginState::Initialized);
        Ok(())
    }

    /// Restores a stored snapshot; only right after `init`. On a corrupt or unknown
    /// snapshot the engine goes to `SignedOut`, queues `ClearStorage`, and returns the
    /// reason; a snapshot of another env is left alone (`EnvMismatch`, no change).
    pub fn restore(&mut self, now_ms: u64, bytes: &[u8]) -> Result<(), Error> {
        if self.state == LoginState::Uninitialized {
            return Err(ApiMisuse::NotInitialized.into());
        }
        if !self.restorable {
            return Err(ApiMisuse::RestoreTooLate.into());
        }
        self.begin_input(now_ms);
        self.restorable = false;
        let snap = match snapshot::decode(bytes) {
            Ok(s) if s.env != self.env => return Err(SnapshotError::EnvMismatch.into()),
            Ok(s) => s,
            Err(e) => {
                self.set_state(LoginState::SignedOut);
                self.push(Queued::Clear);
                return Err(e.into());
            }
        };
        self.adopt(snap);
        self.on_tick();
        Ok(())
    }

    fn adopt(&mut self, snap: SnapshotV1) {
        let SnapshotV1 {
            device_id,
            state,
            session,
            profile,
            generation,
            saved_at,
            ..
        } = snap;
        self.device_id = device_id;
        // A new generation: request numbers restart with this engine, so a reply meant
        // for the process that wrote the snapshot can never match.
        self.generation = generation.wrapping_add(1);
        self.side = Side::Profile(profile);
        if let Some(mut s) = session {
            // The clock went back since the save: keep the remaining lifetime, not the
            // absolute deadline (conservative on a device whose clock was changed).
            if saved_at > self.now {
                let shift = saved_at - self.now;
                s.expires_at = s.expires_at.saturating_sub(shift);
                s.refresh_at = s.refresh_at.saturating_sub(shift);
            }
            self.tokens = Tokens::Live(s);
        }
        if state != LoginState::Initialized {
            self.set_state(state);
        }
    }

    // ----- host calls: the wx.cloud.auth() operations ---------------------------------

    /// `auth.getLoginState()`. Completes with [`Completion::LoginState`]; read
    /// [`Engine::login_state`] and [`Engine::session`]. Refreshes first when the access
    /// token is due, and waits for a sign-in or refresh in flight.
    pub fn get_login_state(&mut self, now_ms: u64) -> Result<OpId, Error> {
        self.start_call(now_ms)?;
        let op = self.new_op();
        self.dispatch(op, Call::LoginState);
        self.on_tick();
        Ok(op)
    }

    /// `auth.getUserInfo()`: `GET user/me` (refreshing first when due). Completes with
    /// [`Completion::UserInfo`]; read [`Engine::user`].
    pub fn get_user_info(&mut self, now_ms: u64) -> Result<OpId, Error> {
        self.start_call(now_ms)?;
        let op = self.new_op();
        self.dispatch(op, Call::UserInfo);
        self.on_tick();
        Ok(op)
    }

    /// `auth.signInAnonymously()`. When the session is already anonymous it completes at
    /// once with that session (no second anonymous user, as Firebase does); a second
    /// call while one is in flight joins it. Anything else in flight is cancelled.
    pub fn sign_in_anonymously(&mut self, now_ms: u64) -> Result<OpId, Error> {
        self.start_call(now_ms)?;
        let op = self.new_op();
        match self.inflight {
            Some(Inflight {
                task: Task::AnonymousSignIn { .. },
                ..
            }) => {
                self.wait(op, Call::Same);
            }
            _ if self.state == LoginState::Anonymous => {
                self.complete(op, Ok(Completion::SignedIn(LoginState::Anonymous)));
            }
            _ => {
                self.supersede();
                self.start(
                    Task::AnonymousSignIn { recovery: false },
                    Endpoint::SignInAnonymously,
                    Some(op),
                );
            }
        }
        self.on_tick();
        Ok(op)
    }

    /// `auth.signInWithWeChat()`: exchanges the `wx.login` `code` for the Mini Program
    /// `appid` (`provider/token`), then signs in with the provider token. Cancels
    /// anything in flight; the current session stays until the new one arrives.
    pub fn sign_in_with_wechat(
        &mut self,
        now_ms: u64,
        code: &str,
        appid: &str,
    ) -> Result<OpId, Error> {
        let exchange = Self::exchange(code, appid)?;
        self.start_call(now_ms)?;
        let op = self.new_op();
        self.supersede();
        self.side = Side::Exchange(exchange);
        self.start(Task::WeChatSignIn, Endpoint::ProviderToken, Some(op));
        self.on_tick();
        Ok(op)
    }

    /// Links WeChat to the current anonymous user, keeping its uid (`provider/token` then
    /// `user/provider/bind`, then a refresh so the token reflects the new identity).
    /// Needs an anonymous session and nothing else in flight.
    pub fn link_wechat(&mut self, now_ms: u64, code: &str, appid: &str) -> Result<OpId, Error> {
        let exchange = Self::exchange(code, appid)?;
        self.start_call(now_ms)?;
        let refusal = match (self.state, self.inflight) {
            (LoginState::Anonymous, None) => None,
            (LoginState::Anonymous, Some(_)) => Some(ApiMisuse::Busy),
            _ => Some(ApiMisuse::NotAnonymous),
        };
        if let Some(refusal) = refusal {
            // The clock moved all the same: run the timers.
            self.on_tick();
            return Err(refusal.into());
        }
        let op = self.new_op();
        self.side = Side::Exchange(exchange);
        let first = if self.refresh_due() {
            Endpoint::Token
        } else {
            Endpoint::ProviderToken
        };
        self.start(Task::Link, first, Some(op));
        self.on_tick();
        Ok(op)
    }

    /// `auth.signOut()`: wipes the local session at once (state `SignedOut`, new
    /// snapshot queued), cancels anything in flight, and tells the server with
    /// `revoke`. Completes with [`Completion::SignedOut`] once the server answered or
    /// failed; the local wipe never depends on it.
    pub fn sign_out(&mut self, now_ms: u64) -> Result<OpId, Error> {
        self.start_call(now_ms)?;
        let op = self.new_op();
        self.supersede();
        match core::mem::replace(&mut self.tokens, Tokens::None) {
            Tokens::Live(session) => {
                self.tokens = Tokens::Revoking(session);
                self.side = Side::Profile(Profile::EMPTY);
                self.set_state(LoginState::SignedOut);
                self.push(Queued::Persist);
                self.start(Task::SignOut, Endpoint::Revoke, Some(op));
            }
            _ => self.complete(op, Ok(Completion::SignedOut { revoked: false })),
        }
        self.on_tick();
        Ok(op)
    }

    fn exchange(code: &str, appid: &str) -> Result<Exchange, Error> {
        Ok(Exchange {
            secret: checked_secret("code", code)?,
            appid: checked_id("appid", appid)?,
            exchanged: false,
        })
    }

    // ----- host calls: IO results and time ------------------------------------------

    /// The reply to request `id`: HTTP status and body bytes (untrusted).
    pub fn handle_response(
        &mut self,
        now_ms: u64,
        id: RequestId,
        status: u16,
        body: &[u8],
    ) -> Delivery {
        self.begin_input(now_ms);
        let Some(f) = self.take_inflight(id) else {
            // Time still moved: run the timers so no deadline is left in the past.
            self.on_tick();
            return Delivery::Stale;
        };
        self.on_reply(f, Reply::Http { status, body });
        self.on_tick();
        Delivery::Accepted
    }

    /// Request `id` failed in transport (connection refused, DNS, reset, host timeout).
    pub fn handle_transport_error(&mut self, now_ms: u64, id: RequestId) -> Delivery {
        self.begin_input(now_ms);
        let Some(f) = self.take_inflight(id) else {
            self.on_tick();
            return Delivery::Stale;
        };
        self.on_reply(f, Reply::Failed(TransportError::Failed));
        self.on_tick();
        Delivery::Accepted
    }

    /// Time passed. Spurious calls are harmless; fires request timeouts, refreshes and
    /// expiries that are due.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        self.begin_input(now_ms);
        self.on_tick();
    }

    // ----- outputs ------------------------------------------------------------------

    /// The next output, written into `buf` where it has bytes (a request or snapshot;
    /// [`POLL_BUFFER_MIN`] bytes always suffice). Returns [`Output::Timeout`] when
    /// nothing is queued. A too-small buffer leaves the output queued.
    pub fn poll_output<'a>(&mut self, buf: &'a mut [u8]) -> Result<Output<'a>, Error> {
        // A request superseded before it was polled is never sent.
        while let Some(Queued::Transmit(id)) = self.outputs.front() {
            if self.inflight.is_some_and(|f| f.request == *id) {
                break;
            }
            self.outputs.pop_front();
        }
        let Some(front) = self.outputs.front().copied() else {
            return Ok(Output::Timeout(self.poll_timeout()));
        };
        let out = match (front, self.inflight) {
            (Queued::Transmit(_), Some(f)) => {
                let layout = self.write_request(f, buf)?;
                if let Tokens::Revoking(_) = self.tokens {
                    // The revoke body holds the token now; drop our copy.
                    self.tokens = Tokens::None;
                }
                Output::Transmit(layout.into_transmit(f, buf))
            }
            (Queued::Persist, _) => {
                let n = self.write_snapshot(buf)?;
                let bytes: &'a [u8] = buf;
                Output::PersistSnapshot(&bytes[..n])
            }
            (Queued::Clear, _) => Output::ClearStorage,
            (Queued::StateChanged(from, to), _) => Output::LoginStateChanged { from, to },
            (Queued::Replaced, _) => Output::SessionReplaced,
            (Queued::Completed(op, result), _) => Output::OperationCompleted { op, result },
            // Excluded by the loop above.
            (Queued::Transmit(_), None) => Output::Timeout(self.poll_timeout()),
        };
        self.outputs.pop_front();
        Ok(out)
    }

    /// The next deadline (host ms) at which `handle_timeout` must be called: the request
    /// timeout, the refresh time (`expires_at − margin`, or the retry backoff), or the
    /// expiry of a session that cannot refresh. Changes after any input.
    pub fn poll_timeout(&self) -> Option<u64> {
        if let Some(f) = &self.inflight {
            return Some(f.deadline);
        }
        match &self.tokens {
            Tokens::Live(s) if s.refresh_token.is_some() => Some(s.refresh_at.max(self.retry_at)),
            Tokens::Live(s) => Some(s.expires_at),
            _ => None,
        }
    }

    // ----- reads --------------------------------------------------------------------

    /// The current login state.
    pub fn login_state(&self) -> LoginState {
        self.state
    }

    /// The session, when signed in.
    pub fn session(&self) -> Option<SessionView<'_>> {
        match &self.tokens {
            Tokens::Live(s) => Some(SessionView {
                uid: &s.uid,
                access_token: &s.access_token,
                token_type: &s.token_type,
                expires_at_ms: s.expires_at,
                refresh_at_ms: s.refresh_at,
                refreshable: s.refresh_token.is_some(),
            }),
            _ => None,
        }
    }

    /// The signed-in user with the cached profile (fields empty until `get_user_info`
    /// or a sign-in fetched them).
    pub fn user(&self) -> Option<UserView<'_>> {
        let Tokens::Live(s) = &self.tokens else {
            return None;
        };
        let p = match &self.side {
            Side::Profile(p) => p,
            Side::Exchange(_) => &NO_PROFILE,
        };
        Some(UserView {
            uid: &s.uid,
            nick_name: &p.name,
            avatar_url: &p.avatar,
            email: &p.email,
            openid: &p.openid,
        })
    }

    /// The env id given to `init`.
    pub fn env(&self) -> &str {
        &self.env
    }

    /// The device id sent as `x-device-id` (from the snapshot, or generated at `init`).
    pub fn device_id(&self) -> &str {
        &self.device_id
    }

    /// The current session generation.
    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// Whether a request is in flight (at most one ever is).
    pub fn is_busy(&self) -> bool {
        self.inflight.is_some()
    }

    /// Whether the request in flight (if any) is a refresh (`token`).
    pub fn is_refreshing(&self) -> bool {
        matches!(
            self.inflight,
            Some(Inflight {
                step: Endpoint::Token,
                ..
            })
        )
    }

    // ----- internals: calls ---------------------------------------------------------

    fn begin_input(&mut self, now_ms: u64) {
        debug_assert!(
            self.outputs.is_empty(),
            "drain poll_output after every input"
        );
        // Time going backwards is ignored.
        self.now = self.now.max(now_ms);
    }

    fn start_call(&mut self, now_ms: u64) -> Result<(), Error> {
        if self.state == LoginState::Uninitialized {
            return Err(ApiMisuse::NotInitialized.into());
        }
        if self.outputs.len() + WAITERS_MAX + 5 > OUTPUTS_MAX {
            return Err(ApiMisuse::OutputQueueFull.into());
        }
        self.begin_input(now_ms);
        self.restorable = false;
        Ok(())
    }

    fn new_op(&mut self) -> OpId {
        self.next_op = self.next_op.wrapping_add(1);
        OpId(self.next_op)
    }

    fn refresh_due(&self) -> bool {
        matches!(&self.tokens, Tokens::Live(s) if s.refresh_token.is_some() && self.now >= s.refresh_at)
    }

    fn expired(&self) -> bool {
        matches!(&self.tokens, Tokens::Live(s) if self.now >= s.expires_at)
    }

    /// Decides what a query call does now: answer, wait, or start a request.
    fn dispatch(&mut self, op: OpId, call: Call) {
        let inflight = self.inflight.map(|f| f.task);
        if !self.state.is_signed_in() || !matches!(self.tokens, Tokens::Live(_)) {
            match (inflight, call) {
                (Some(t), _) if t.is_sign_in() => self.wait(op, call),
                (_, Call::UserInfo) => self.complete(op, Err(Error::NotSignedIn)),
                _ => self.complete(op, Ok(Completion::LoginState)),
            }
            return;
        }
        match (inflight, call) {
            (Some(t), _) if t.is_sign_in() || t == Task::Refresh => self.wait(op, call),
            (Some(Task::FetchUser { .. }), Call::UserInfo) => self.wait(op, Call::Same),
            (Some(_), Call::LoginState) if !self.expired() => {
                self.complete(op, Ok(Completion::LoginState))
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

    fn wait(&mut self, op: OpId, call: Call) {
        if self.waiters.push(Waiter { op, call }).is_err() {
            self.complete(op, Err(ApiMisuse::Busy.into()));
        }
    }

    /// A sign-in or sign-out starts: whatever is in flight is about a session that is
    /// going away, so it ends here and its reply will be dropped.
    fn supersede(&mut self) {
        self.generation = self.generation.wrapping_add(1);
        if let Some(f) = self.inflight.take() {
            let result = match f.task {
                Task::SignOut => Ok(Completion::SignedOut { revoked: false }),
                _ => Err(Error::Cancelled),
            };
            if let Some(op) = f.op {
                self.complete(op, result);
            }
            if matches!(self.side, Side::Exchange(_)) {
                self.side = Side::Profile(Profile::EMPTY);
            }
        }
        self.release_waiters(Err(Error::Cancelled));
    }

    fn start(&mut self, task: Task, step: Endpoint, op: Option<OpId>) {
        self.next_seq = self.next_seq.wrapping_add(1);
        let request = RequestId {
            generation: self.generation,
            seq: self.next_seq,
        };
        let deadline = self.now.saturating_add(self.request_timeout_ms);
        self.inflight = Some(Inflight {
            task,
            step,
            op,
            request,
            deadline,
        });
        self.push(Queued::Transmit(request));
    }

    /// The next request of the same task.
    fn step(&mut self, f: Inflight, step: Endpoint) {
        self.start(f.task, step, f.op);
    }

    fn take_inflight(&mut self, id: RequestId) -> Option<Inflight> {
        match self.inflight {
            Some(f) if f.request == id && id.generation == self.generation => self.inflight.take(),
            _ => None,
        }
    }

    // ----- internals: replies -------------------------------------------------------

    fn on_reply(&mut self, f: Inflight, reply: Reply<'_>) {
        match f.step {
            Endpoint::SignInAnonymously | Endpoint::SignInWithProvider => {
                self.on_sign_in_reply(f, reply)
            }
            Endpoint::ProviderToken => self.on_provider_token_reply(f, reply),
            Endpoint::ProviderBind => match reply.decode(|_| Ok(())) {
                Ok(()) => {
                    // Bound: the user now has the WeChat identity, same uid.
                    self.set_state(LoginState::WeChat);
                    self.push(Queued::Persist);
                    if self.has_refresh_token() {
                        self.step(f, Endpoint::Token);
                    } else {
                        self.step(f, Endpoint::UserMe);
                    }
                }
                Err(e) => self.fail(f, e),
            },
            Endpoint::Token => self.on_refresh_reply(f, reply),
            Endpoint::UserMe => self.on_user_reply(f, reply),
            Endpoint::Revoke => {
                let revoked = reply.decode(|_| Ok(())).is_ok();
                self.finish(f, Ok(Completion::SignedOut { revoked }));
            }
            // Not used by the engine's tasks.
            _ => self.fail(f, Error::Transport(TransportError::Failed)),
        }
    }

    fn on_sign_in_reply(&mut self, f: Inflight, reply: Reply<'_>) {
        let creds = match reply.decode(Credentials::parse) {
            Ok(c) => c,
            Err(e) => {
                if let Task::AnonymousSignIn { recovery: true } = f.task {
                    // The one automatic re-sign-in failed: the session is gone.
                    return self.fail(f, Error::SessionExpired);
                }
                return self.fail(f, e);
            }
        };
        let implied = match f.task {
            Task::AnonymousSignIn { .. } => LoginState::Anonymous,
            _ => LoginState::WeChat,
        };
        let kind = match creds.scope.as_str() {
            "" => implied,
            wire::SCOPE_ANONYMOUS => LoginState::Anonymous,
            _ => LoginState::WeChat,
        };
        let appid = match &self.side {
            Side::Exchange(x) => x.appid.clone(),
            Side::Profile(_) => String::new(),
        };
        self.tokens = Tokens::Live(self.session_from(creds, None));
        self.side = Side::Profile(Profile {
            appid,
            ..Profile::EMPTY
        });
        self.fresh_credentials();
        // Anonymous → Anonymous (a WeChat sign-in answered with an anonymous scope) is
        // no change of state.
        if f.task == (Task::AnonymousSignIn { recovery: true }) {
            // A new user, not the refused one: announced before the state change it
            // explains, so hosts never pass it off as the same session.
            self.push(Queued::Replaced);
        }
        if !(self.state == kind && kind == LoginState::Anonymous) {
            self.set_state(kind);
        }
        self.push(Queued::Persist);
        self.step(f, Endpoint::UserMe);
    }

    fn on_provider_token_reply(&mut self, f: Inflight, reply: Reply<'_>) {
        match reply.decode(ProviderTokenReply::parse) {
            Ok(p) => {
                if let Side::Exchange(x) = &mut self.side {
                    x.secret = String::try_from(p.provider_token.as_str()).unwrap_or_default();
                    x.exchanged = true;
                }
                let next = if f.task == Task::Link {
                    Endpoint::ProviderBind
                } else {
                    Endpoint::SignInWithProvider
                };
                self.step(f, next);
            }
            Err(e) => self.fail(f, e),
        }
    }

    fn on_refresh_reply(&mut self, f: Inflight, reply: Reply<'_>) {
        let creds = match reply.decode(Credentials::parse) {
            Ok(c) => c,
            Err(e) if is_rejection(&e) => return self.session_rejected(f),
            Err(e) => {
                // Offline or server trouble: keep the session (a network error is not
                // an auth failure) and back off before the next proactive try.
                self.retry_at = self.now.saturating_add(self.backoff_ms);
                self.backoff_ms = (self.backoff_ms * 2).min(RETRY_BACKOFF_MAX_MS);
                if f.task == Task::Link && matches!(&self.side, Side::Exchange(x) if x.exchanged) {
                    // Already bound; the fresh token can come later.
                    return self.finish(f, Ok(Completion::Linked));
                }
                return self.fail(f, e);
            }
        };
        let Tokens::Live(old) = &self.tokens else {
            return self.fail(f, Error::NotSignedIn);
        };
        // No new refresh token in the reply: the old one stays valid (RFC 6749 §6).
        let keep = if creds.refresh_token.is_none() {
            old.refresh_token.clone()
        } else {
            None
        };
        let uid = old.uid.clone();
        let anonymous_to_wechat =
            self.state == LoginState::Anonymous && !creds.scope.is_empty() && !creds.is_anonymous();
        let mut session = self.session_from(creds, keep);
        if session.uid.is_empty() {
            session.uid = uid;
        }
        self.tokens = Tokens::Live(session);
        self.fresh_credentials();
        if anonymous_to_wechat {
            self.set_state(LoginState::WeChat);
        }
        self.push(Queued::Persist);
        match f.task {
            Task::Link => {
                let exchanged = matches!(&self.side, Side::Exchange(x) if x.exchanged);
                self.step(
                    f,
                    if exchanged {
                        Endpoint::UserMe
                    } else {
                        Endpoint::ProviderToken
                    },
                );
            }
            Task::FetchUser { .. } => {
                self.start(Task::FetchUser { refreshed: true }, Endpoint::UserMe, f.op)
            }
            _ => self.finish(f, Ok(Completion::LoginState)),
        }
    }

    fn on_user_reply(&mut self, f: Inflight, reply: Reply<'_>) {
        let after_sign_in = matches!(
            f.task,
            Task::AnonymousSignIn { .. } | Task::WeChatSignIn | Task::Link
        );
        let done = match f.task {
            Task::AnonymousSignIn { .. } => Completion::SignedIn(LoginState::Anonymous),
            Task::WeChatSignIn => Completion::SignedIn(self.state),
            Task::Link => Completion::Linked,
            _ => Completion::UserInfo,
        };
        match reply.decode(User::parse) {
            Ok(user) => {
                self.cache_profile(&user);
                self.push(Queued::Persist);
                self.finish(f, Ok(done));
            }
            // The sign-in itself succeeded; the profile is fetched again on demand.
            Err(_) if after_sign_in => self.finish(f, Ok(done)),
            Err(Error::Server(e)) if e.kind == ServerErrorKind::Unauthenticated => {
                match f.task {
                    Task::FetchUser { refreshed: false } if self.has_refresh_token() => {
                        // The server says the token is bad though our clock says it is
                        // valid: believe the server, refresh once, and ask again.
                        self.start(Task::FetchUser { refreshed: true }, Endpoint::Token, f.op);
                    }
                    _ => self.session_rejected(f),
                }
            }
            Err(e) => self.fail(f, e),
        }
    }

    fn cache_profile(&mut self, user: &User) {
        let appid = match &self.side {
            Side::Profile(p) => p.appid.clone(),
            Side::Exchange(x) => x.appid.clone(),
        };
        let mut p = Profile {
            appid,
            ..Profile::EMPTY
        };
        copy_cut(&mut p.name, &user.name);
        copy_cut(&mut p.avatar, &user.picture);
        copy_cut(&mut p.email, &user.email);
        copy_cut(&mut p.openid, user.openid_for(&p.appid).unwrap_or(""));
        self.side = Side::Profile(p);
        if let Tokens::Live(s) = &mut self.tokens
            && !user.sub.is_empty()
            && s.uid.is_empty()
        {
            copy_cut(&mut s.uid, &user.sub);
        }
    }

    /// The server refused the session's credentials. An anonymous session signs in
    /// anonymously again, once (as the SDK does); a WeChat session ends.
    ///
    /// Every call that was waiting on the refused session completes with
    /// [`Error::SessionExpired`]: none of them is answered with another user. The
    /// automatic recovery (when [`Config::anonymous_recovery`] is on) signs in a *new*
    /// anonymous user in the background; its arrival is announced with
    /// [`Output::SessionReplaced`].
    fn session_rejected(&mut self, f: Inflight) {
        let was = self.state;
        self.end_session();
        self.fail(f, Error::SessionExpired);
        let recovered_already = matches!(f.task, Task::AnonymousSignIn { recovery: true });
        if was == LoginState::Anonymous && !recovered_already && self.anonymous_recovery {
            self.generation = self.generation.wrapping_add(1);
            self.start(
                Task::AnonymousSignIn { recovery: true },
                Endpoint::SignInAnonymously,
                None,
            );
        }
    }

    fn end_session(&mut self) {
        self.tokens = Tokens::None;
        self.side = Side::Profile(Profile::EMPTY);
        self.retry_at = 0;
        self.backoff_ms = RETRY_BACKOFF_MIN_MS;
        if self.state.is_signed_in() {
            self.set_state(LoginState::SignedOut);
        }
        self.push(Queued::Persist);
    }

    fn session_from(
        &self,
        creds: Credentials,
        keep_refresh: Option<String<REFRESH_TOKEN_MAX>>,
    ) -> Session {
        let lifetime = creds.expires_in.saturating_mul(1000);
        let expires_at = self.now.saturating_add(lifetime);
        let refresh_at = expires_at - self.refresh_margin_ms.min(lifetime / 2);
        Session {
            token_type: creds.token_type,
            access_token: creds.access_token,
            refresh_token: creds.refresh_token.or(keep_refresh),
            expires_at,
            refresh_at,
            uid: creds.sub,
        }
    }

    fn fresh_credentials(&mut self) {
        self.backoff_ms = RETRY_BACKOFF_MIN_MS;
        self.retry_at = self.now.saturating_add(MIN_REFRESH_GAP_MS);
    }

    fn has_refresh_token(&self) -> bool {
        matches!(&self.tokens, Tokens::Live(s) if s.refresh_token.is_some())
    }

    /// The task ends successfully: its caller and joined callers get `result`, query
    /// waiters re-evaluate.
    fn finish(&mut self, f: Inflight, result: Result<Completion, Error>) {
        if matches!(self.side, Side::Exchange(_)) {
            self.side = Side::Profile(Profile::EMPTY);
        }
        if let Some(op) = f.op {
            self.complete(op, result);
        }
        let waiters = core::mem::take(&mut self.waiters);
        for w in waiters {
            match w.call {
                Call::Same => self.complete(w.op, result),
                call => self.dispatch(w.op, call),
            }
        }
    }

    /// The task failed: its caller and every waiter get `err`.
    fn fail(&mut self, f: Inflight, err: Error) {
        if matches!(self.side, Side::Exchange(_)) {
            self.side = Side::Profile(Profile::EMPTY);
        }
        if let Some(op) = f.op {
            self.complete(op, Err(err));
        }
        self.release_waiters(Err(err));
    }

    fn release_waiters(&mut self, result: Result<Completion, Error>) {
        for w in core::mem::take(&mut self.waiters) {
            self.complete(w.op, result);
        }
    }

    fn complete(&mut self, op: OpId, result: Result<Completion, Error>) {
        self.push(Queued::Completed(op, result));
    }

    /// Timers: request timeout, session expiry, proactive refresh. Runs after every
    /// input, so no deadline returned by `poll_timeout` is ever in the past.
    fn on_tick(&mut self) {
        if let Some(f) = self.inflight
            && self.now >= f.deadline
        {
            self.inflight = None;
            self.on_reply(f, Reply::Failed(TransportError::TimedOut));
        }
        if self.inflight.is_some() {
            return;
        }
        if let Tokens::Live(s) = &self.tokens {
            if s.refresh_token.is_none() {
                if self.now >= s.expires_at {
                    // No way to refresh: the session ends with its access token.
                    self.end_session();
                }
            } else if self.now >= s.refresh_at.max(self.retry_at) {
                self.start(Task::Refresh, Endpoint::Token, None);
            }
        }
    }

    /// The only door for state changes: checks the table and queues the event.
    fn set_state(&mut self, to: LoginState) {
        let from = self.state;
        debug_assert!(
            is_allowed(from, to),
            "transition {from:?} -> {to:?} is not in the table"
        );
        if !is_allowed(from, to) {
            return;
        }
        self.state = to;
        self.push(Queued::StateChanged(from, to));
    }

    fn push(&mut self, q: Queued) {
        if matches!(q, Queued::Persist) && self.outputs.iter().any(|o| matches!(o, Queued::Persist))
        {
            // One snapshot per drain is enough: it is written at poll time.
            return;
        }
        // Sized so that one input never overflows (see OUTPUTS_MAX); calls made without
        // draining are refused at entry (`start_call`).
        let _ = self.outputs.push_back(q);
    }

    // ----- internals: writing -------------------------------------------------------

    fn write_snapshot(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let session = match &self.tokens {
            Tokens::Live(s) if self.state.is_signed_in() => Some(s),
            _ => None,
        };
        let profile = match (&self.side, session) {
            (Side::Profile(p), Some(_)) => p,
            _ => &NO_PROFILE,
        };
        let snap = snapshot::SnapshotV1Ref {
            env: &self.env,
            device_id: &self.device_id,
            state: self.state,
            session,
            profile,
            generation: self.generation,
            saved_at: self.now,
        };
        snapshot::encode(&snap, buf).map_err(|_| {
            ApiMisuse::BufferTooSmall {
                needed: snapshot::SNAPSHOT_MAX,
            }
            .into()
        })
    }

    fn write_request(&mut self, f: Inflight, buf: &mut [u8]) -> Result<Layout, Error> {
        let too_small = || {
            Error::from(ApiMisuse::BufferTooSmall {
                needed: POLL_BUFFER_MIN,
            })
        };
        let mut w = Writer { buf, len: 0 };
        // Path and query.
        w.put(&self.api_path).ok_or_else(too_small)?;
        w.put(f.step.path()).ok_or_else(too_small)?;
        let credential = f.step.credential();
        if credential == Credential::None {
            w.put("?").ok_or_else(too_small)?;
            w.put(wire::CLIENT_ID_PARAM).ok_or_else(too_small)?;
            w.put("=").ok_or_else(too_small)?;
            w.put(&self.client_id).ok_or_else(too_small)?;
        }
        let path_end = w.len;
        // Headers.
        let request_id = self.rng.hex32();
        w.header(wire::HEADER_REQUEST_ID, &[request_id.as_str()])
            .ok_or_else(too_small)?;
        w.header(wire::HEADER_DEVICE_ID, &[self.device_id.as_str()])
            .ok_or_else(too_small)?;
        w.header(wire::HEADER_SDK_VERSION, &[wire::SDK_VERSION])
            .ok_or_else(too_small)?;
        let method = f.step.method();
        if method == wire::Method::Post {
            w.header(wire::HEADER_CONTENT_TYPE, &[wire::CONTENT_TYPE_JSON])
                .ok_or_else(too_small)?;
        }
        match (credential, &self.tokens) {
            (Credential::Bearer, Tokens::Live(s)) => {
                w.header(
                    wire::HEADER_AUTHORIZATION,
                    &[s.token_type.as_str(), " ", s.access_token.as_str()],
                )
                .ok_or_else(too_small)?;
            }
            (Credential::None, _) if f.task == (Task::AnonymousSignIn { recovery: true }) => {
                // The SDK's automatic re-sign-in authenticates the client: Basic
                // base64("{client_id}:") (empty secret).
                let mut b64 = String::<{ 4 * (ENV_ID_MAX + 1).div_ceil(3) }>::new();
                base64_into(self.client_id.as_bytes(), b":", &mut b64);
                w.header(wire::HEADER_AUTHORIZATION, &["Basic ", b64.as_str()])
                    .ok_or_else(too_small)?;
            }
            _ => {}
        }
        let headers_end = w.len;
        // Body.
        let body_len = match method {
            wire::Method::Get => None,
            _ => Some(
                self.write_body(f, &mut w.buf[headers_end..])
                    .ok_or_else(too_small)?,
            ),
        };
        Ok(Layout {
            path_end,
            headers_end,
            body_len,
        })
    }

    fn write_body(&self, f: Inflight, out: &mut [u8]) -> Option<usize> {
        use serde_json_core::to_slice;
        let secret = match &self.side {
            Side::Exchange(x) => Some((x.secret.as_str(), x.appid.as_str())),
            Side::Profile(_) => None,
        };
        let tokens = match &self.tokens {
            Tokens::Live(s) | Tokens::Revoking(s) => Some(s),
            Tokens::None => None,
        };
        let written = match f.step {
            Endpoint::ProviderToken => {
                let (code, appid) = secret?;
                let params = wire::ProviderParams::new(wire::PROVIDER_CODE_TYPE_OPEN_ID, appid);
                to_slice(&wire::ProviderTokenRequest::new(appid, code, params), out)
            }
            Endpoint::SignInWithProvider | Endpoint::ProviderBind => {
                to_slice(&wire::ProviderTokenBody::new(secret?.0), out)
            }
            Endpoint::Token => {
                let refresh = tokens?.refresh_token.as_deref()?;
                let body = wire::RefreshRequest::new(
                    self.client_id.as_str(),
                    "",
                    wire::GRANT_REFRESH_TOKEN,
                    refresh,
                );
                to_slice(&body, out)
            }
            Endpoint::Revoke => to_slice(
                &wire::RevokeRequest::new(tokens?.access_token.as_str()),
                out,
            ),
            _ => to_slice(&wire::AnonymousSignInRequest::<&str>::default(), out),
        };
        written.ok()
    }
}

/// A reply as the engine sees it.
#[derive(Clone, Copy)]
enum Reply<'a> {
    Http { status: u16, body: &'a [u8] },
    Failed(TransportError),
}

impl Reply<'_> {
    fn decode<T>(self, parse: fn(&[u8]) -> Result<T, crate::error::WireError>) -> Result<T, Error> {
        match self {
            Reply::Http { status, body } => wire::decode_reply(status, body, parse),
            Reply::Failed(t) => Err(Error::Transport(t)),
        }
    }
}

/// Whether a failed refresh means the refresh token itself was refused (4xx other
/// than rate limiting) rather than a transient failure.
fn is_rejection(e: &Error) -> bool {
    matches!(e, Error::Server(s) if (400..500).contains(&s.status)
        && !matches!(s.kind, ServerErrorKind::ResourceExhausted | ServerErrorKind::Unavailable))
        || matches!(e, Error::Server(s) if s.kind == ServerErrorKind::InvalidGrant)
}

fn copy_cut<const N: usize>(out: &mut String<N>, s: &str) {
    out.clear();
    for c in s.chars() {
        if out.push(c).is_err() {
            break;
        }
    }
}

fn base64_into<const N: usize>(a: &[u8], b: &[u8], out: &mut String<N>) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bytes = a.iter().chain(b).copied();
    while let Some(b0) = bytes.next() {
        let (b1, b2) = (bytes.next(), bytes.next());
        let n =
            (u32::from(b0) << 16) | (u32::from(b1.unwrap_or(0)) << 8) | u32::from(b2.unwrap_or(0));
        let chars = [
            ALPHABET[(n >> 18) as usize & 63],
            ALPHABET[(n >> 12) as usize & 63],
            if b1.is_some() {
                ALPHABET[(n >> 6) as usize & 63]
            } else {
                b'='
            },
            if b2.is_some() {
                ALPHABET[n as usize & 63]
            } else {
                b'='
            },
        ];
        for c in chars {
            let _ = out.push(c as char);
        }
    }
}

/// Appends strings to the lent buffer.
struct Writer<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl Writer<'_> {
    fn put(&mut self, s: &str) -> Option<()> {
        let end = self.len.checked_add(s.len())?;
        self.buf
            .get_mut(self.len..end)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Some(())
    }

    fn header(&mut self, name: &str, value: &[&str]) -> Option<()> {
        self.put(name)?;
        self.put(": ")?;
        for part in value {
            self.put(part)?;
        }
        self.put("\n")
    }
}

/// Where `write_request` put each part in the buffer.
struct Layout {
    path_end: usize,
    headers_end: usize,
    body_len: Option<usize>,
}

impl Layout {
    fn into_transmit(self, f: Inflight, buf: &[u8]) -> Transmit<'_> {
        // Only `&str` pieces were written, so these slices are UTF-8.
        let text = |r: core::ops::Range<usize>| core::str::from_utf8(&buf[r]).unwrap_or("");
        Transmit {
            request: f.request,
            endpoint: f.step,
            method: f.step.method(),
            path: text(0..self.path_end),
            header_block: text(self.path_end..self.headers_end),
            body: self
                .body_len
                .map(|n| &buf[self.headers_end..self.headers_end + n]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_sdk_header() {
        // From the wire reference's harness: Basic base64("peer-test-1g2h3i4j5k:").
        let mut s = String::<128>::new();
        base64_into(b"peer-test-1g2h3i4j5k", b":", &mut s);
        assert_eq!(s, "cGVlci10ZXN0LTFnMmgzaTRqNWs6");
        for (input, expect) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v")] {
            let mut s = String::<16>::new();
            base64_into(input.as_bytes(), b"", &mut s);
            assert_eq!(s, expect);
        }
    }
}
