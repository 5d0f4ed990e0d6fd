//! The session engine: host calls in, [`Output`]s out.
//!
//! One login state, which owns the session (`login.rs`), plus at most one operation in
//! flight (`Inflight`) with a bounded list of callers waiting on it (single-flight).
//! The parts, one concern each:
//!
//! * this file: the host API (calls, outputs, reads) and the one door for state changes;
//! * `calls.rs`: what a call does now — answer, wait, or start a task — and the one
//!   request in flight;
//! * `flow.rs`: each task's sequence of requests;
//! * `replies.rs`: what a reply does to the session, and how a task ends;
//! * `timers.rs`: the one timer table behind `poll_timeout` and `handle_timeout`;
//! * `wire/request.rs`: writing a request into the host's buffer.
//!
//! Every state change goes through `Engine::set_login`, which checks the transition
//! table and queues the event. Every request is tagged with the session generation;
//! sign-in and sign-out bump it, so a late reply can never act on a newer session.

mod calls;
mod flow;
mod login;
mod replies;
mod timers;

use crate::capacity::*;
use crate::config::{
    Config, DEFAULT_REFRESH_MARGIN_MS, DEFAULT_REQUEST_TIMEOUT_MS, RETRY_BACKOFF_MIN_MS,
    checked_api_path, checked_id,
};
use crate::error::{ApiMisuse, Error, SnapshotError, TransportError};
use crate::output::{Completion, Delivery, OpId, Output, RequestId};
use crate::rng::Rng;
use crate::session::{Profile, SessionView, UserView};
use crate::snapshot::{self, SnapshotV1};
use crate::state::{LoginState, is_allowed};
use crate::wire::{self, Endpoint, request::Request};
use calls::{Call, Inflight, Waiter};
use flow::Task;
use heapless::{Deque, String, Vec};
use login::{Exchange, Kind, Login, NO_PROFILE, Side};
use replies::Reply;

/// Outputs waiting to be polled. Small tags: the data is read from the engine at poll
/// time, which is valid because outputs are drained before the next input.
#[derive(Debug, Clone, Copy)]
enum Queued {
    Transmit(RequestId),
    Persist,
    Clear,
    StateChanged(LoginState, LoginState),
    Replaced,
    Completed(OpId, Result<Completion, QueuedError>),
}

/// What the engine keeps beside the output queue, one at a time: the error of the last
/// input (see [`QueuedError`]), or a profile change waiting for its `user/profile`
/// request to be written. They never coexist: the change is parked by a call and
/// written before any reply to its task can produce an error, and a reply that fails
/// the task ends the change with it. Sharing the memory keeps the engine within 4 KiB.
#[derive(Debug, Clone)]
#[allow(
    clippy::large_enum_variant,
    reason = "one instance in the engine; no allocator to box into"
)]
enum Parked {
    Nothing,
    Error(Error),
    #[cfg(feature = "account")]
    Profile(ProfileChange),
}

/// A profile change: new nickname and avatar URL, `None` where unchanged.
#[cfg(feature = "account")]
#[derive(Debug, Clone)]
struct ProfileChange {
    name: Option<String<NAME_MAX>>,
    avatar: Option<String<AVATAR_MAX>>,
}

/// An error as it waits in the output queue. The common ones are tags; any other (a
/// server error with its texts, a malformed reply) is `Held`: it sits once in
/// `Engine::held`, since one input handles at most one reply and so queues at most one
/// such error (every caller of the failed task gets the same one). Keeps each queue
/// slot a few bytes: a server error with its texts is over 200, and there are
/// [`OUTPUTS_MAX`] slots.
#[derive(Debug, Clone, Copy)]
enum QueuedError {
    NotSignedIn,
    SessionExpired,
    Cancelled,
    Busy,
    Transport(TransportError),
    Held,
}

/// The CloudBase Auth session engine. See the crate docs for the run loop.
#[derive(Debug, Clone)]
pub struct Engine {
    login: Login,
    side: Side,
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
    inflight: Option<Inflight>,
    waiters: Vec<Waiter, WAITERS_MAX>,
    outputs: Deque<Queued, OUTPUTS_MAX>,
    /// No proactive refresh before this (backoff after transport failures).
    retry_at: u64,
    backoff_ms: u64,
    /// The one error in the output queue that is not a tag (see [`QueuedError`]), or a
    /// profile change waiting to be written.
    parked: Parked,
}

impl Default for Engine {
    fn default() -> Self {
        Self::new()
    }
}

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

/// A nickname for `update_profile`: 1..=[`NAME_MAX`] bytes, no control characters.
#[cfg(feature = "account")]
fn checked_nickname(s: &str) -> Result<String<NAME_MAX>, ApiMisuse> {
    const FIELD: &str = "nickname";
    if s.len() > NAME_MAX {
        return Err(ApiMisuse::InputTooLong {
            field: FIELD,
            max: NAME_MAX as u16,
        });
    }
    // All whitespace is what `trim().is_empty()` says, without `trim`'s code (the wasm
    // module ships this check).
    if s.chars().all(char::is_whitespace) || s.chars().any(char::is_control) {
        return Err(ApiMisuse::InputInvalid { field: FIELD });
    }
    Ok(String::try_from(s).unwrap_or_default())
}

/// An avatar URL for `update_profile`: `http://` or `https://` and a host, at most
/// [`AVATAR_MAX`] bytes, nothing that needs quoting (spaces, quotes, backslashes,
/// control characters).
#[cfg(feature = "account")]
fn checked_avatar(s: &str) -> Result<String<AVATAR_MAX>, ApiMisuse> {
    const FIELD: &str = "avatar_url";
    if s.len() > AVATAR_MAX {
        return Err(ApiMisuse::InputTooLong {
            field: FIELD,
            max: AVATAR_MAX as u16,
        });
    }
    // Bytes, not `str` slicing: the same test without a panicking path in the wasm module.
    let b = s.as_bytes();
    let lower_starts = |p: &str| {
        b.get(..p.len())
            .is_some_and(|h| h.eq_ignore_ascii_case(p.as_bytes()))
    };
    let scheme = if lower_starts("https://") {
        8
    } else if lower_starts("http://") {
        7
    } else {
        return Err(ApiMisuse::InputInvalid { field: FIELD });
    };
    // A host: something before the first `/`, `?` or `#` after the scheme.
    let host_ok = b
        .get(scheme)
        .is_some_and(|c| !matches!(c, b'/' | b'?' | b'#'));
    let clean = !s
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || matches!(c, '"' | '\\' | '<' | '>'));
    if !host_ok || !clean {
        return Err(ApiMisuse::InputInvalid { field: FIELD });
    }
    Ok(String::try_from(s).unwrap_or_default())
}

impl Engine {
    /// A new engine in `Uninitialized`. `const`, so it can live in a `static`.
    pub const fn new() -> Self {
        Engine {
            login: Login::Uninitialized,
            side: Side::Profile(Profile::EMPTY),
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
            inflight: None,
            waiters: Vec::new(),
            outputs: Deque::new(),
            retry_at: 0,
            backoff_ms: RETRY_BACKOFF_MIN_MS,
            parked: Parked::Nothing,
        }
    }

    // ----- host calls: setup --------------------------------------------------------

    /// `wx.cloud.init({env})`: validates `config`, seeds request and device ids from
    /// `seed` (host entropy), and moves to `Initialized`.
    pub fn init(&mut self, now_ms: u64, config: Config<'_>, seed: [u8; 16]) -> Result<(), Error> {
        if self.login.state() != LoginState::Uninitialized {
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
        self.set_login(Login::Initialized);
        Ok(())
    }

    /// Restores a stored snapshot; only right after `init`. On a corrupt or unknown
    /// snapshot the engine goes to `SignedOut`, queues `ClearStorage`, and returns the
    /// reason; a snapshot of another env is left alone (`EnvMismatch`, no change).
    pub fn restore(&mut self, now_ms: u64, bytes: &[u8]) -> Result<(), Error> {
        if self.login.state() == LoginState::Uninitialized {
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
                self.set_login(Login::SignedOut { revoking: None });
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
        let login = match (state, session) {
            (LoginState::Anonymous | LoginState::WeChat, Some(mut session)) => {
                // The clock went back since the save: keep the remaining lifetime, not
                // the absolute deadline (conservative on a device whose clock was changed).
                if saved_at > self.now {
                    let shift = saved_at - self.now;
                    session.expires_at = session.expires_at.saturating_sub(shift);
                    session.refresh_at = session.refresh_at.saturating_sub(shift);
                }
                let kind = match state {
                    LoginState::WeChat => Kind::WeChat,
                    _ => Kind::Anonymous,
                };
                Login::SignedIn { kind, session }
            }
            (LoginState::SignedOut, None) => Login::SignedOut { revoking: None },
            // Initialized (`snapshot::decode` refuses every other combination).
            _ => return,
        };
        self.set_login(login);
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
            _ if self.login.state() == LoginState::Anonymous => {
                self.complete(op, Ok(Completion::SignedIn(LoginState::Anonymous)));
            }
            _ => {
                self.supersede();
                self.start(Task::AnonymousSignIn { recovery: false }, Some(op));
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
        self.start(Task::WeChatSignIn, Some(op));
        self.on_tick();
        Ok(op)
    }

    /// Links WeChat to the current anonymous user, keeping its uid (`provider/token` then
    /// `user/provider/bind`, then a refresh so the token reflects the new identity).
    /// Needs an anonymous session and nothing else in flight.
    pub fn link_wechat(&mut self, now_ms: u64, code: &str, appid: &str) -> Result<OpId, Error> {
        let exchange = Self::exchange(code, appid)?;
        self.start_call(now_ms)?;
        let refusal = match (self.login.state(), self.inflight) {
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
        self.start(Task::Link { bound: false }, Some(op));
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
        match self.login.session_mut() {
            Some(session) => {
                let session = core::mem::take(session);
                self.side = Side::Profile(Profile::EMPTY);
                self.set_login(Login::SignedOut {
                    revoking: Some(session),
                });
                self.push(Queued::Persist);
                self.start(Task::SignOut, Some(op));
            }
            None => self.complete(op, Ok(Completion::SignedOut { revoked: false })),
        }
        self.on_tick();
        Ok(op)
    }

    /// `user.update({name, picture})`: changes the nickname and/or the avatar URL on the
    /// server (`PATCH user/profile`, refreshing first when due). Completes with
    /// [`Completion::ProfileUpdated`]; the cached profile ([`Engine::user`]) and the
    /// snapshot then hold the user object the server answered with. A refusal leaves
    /// both as they were. Needs a session and nothing else in flight.
    ///
    /// Typed errors, nothing sent: neither field given, or one empty or with control
    /// characters (`InputInvalid`); a nickname over [`NAME_MAX`] or an avatar URL over
    /// [`AVATAR_MAX`] bytes (`InputTooLong`); an avatar URL that is not `http(s)://…`
    /// or has spaces, quotes or backslashes (`InputInvalid`).
    #[cfg(feature = "account")]
    pub fn update_profile(
        &mut self,
        now_ms: u64,
        nickname: Option<&str>,
        avatar_url: Option<&str>,
    ) -> Result<OpId, Error> {
        let change = ProfileChange {
            name: nickname.map(checked_nickname).transpose()?,
            avatar: avatar_url.map(checked_avatar).transpose()?,
        };
        if change.name.is_none() && change.avatar.is_none() {
            return Err(ApiMisuse::InputInvalid { field: "profile" }.into());
        }
        self.start_account_task(now_ms, Task::UpdateProfile, Some(change))
    }

    /// `auth.deleteMe()`: deletes the signed-in user on the server (`DELETE user/me`,
    /// refreshing first when due) — its identities and every session on every device —
    /// then ends the local session as a sign-out does (state `SignedOut`, snapshot
    /// written). Completes with [`Completion::AccountDeleted`]; a refusal keeps the
    /// session. Needs a session and nothing else in flight.
    #[cfg(feature = "account")]
    pub fn delete_account(&mut self, now_ms: u64) -> Result<OpId, Error> {
        self.start_account_task(now_ms, Task::DeleteAccount, None)
    }

    #[cfg(feature = "account")]
    fn start_account_task(
        &mut self,
        now_ms: u64,
        task: Task,
        change: Option<ProfileChange>,
    ) -> Result<OpId, Error> {
        self.start_call(now_ms)?;
        let refusal = match (self.login.session(), self.inflight) {
            (Some(_), None) => None,
            (Some(_), Some(_)) => Some(Error::from(ApiMisuse::Busy)),
            (None, _) => Some(Error::NotSignedIn),
        };
        if let Some(refusal) = refusal {
            // The clock moved all the same: run the timers.
            self.on_tick();
            return Err(refusal);
        }
        if let Some(change) = change {
            self.parked = Parked::Profile(change);
        }
        let op = self.new_op();
        self.start(task, Some(op));
        self.on_tick();
        Ok(op)
    }

    fn exchange(code: &str, appid: &str) -> Result<Exchange, Error> {
        Ok(Exchange {
            secret: checked_secret("code", code)?,
            appid: checked_id("appid", appid)?,
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
                let layout = self.request(f, buf)?;
                if let Login::SignedOut { revoking } = &mut self.login {
                    // The revoke body holds the token now; drop our copy.
                    *revoking = None;
                }
                Output::Transmit(layout.into_transmit(f.request, f.step, buf))
            }
            (Queued::Persist, _) => {
                let n = self.write_snapshot(buf)?;
                let bytes: &'a [u8] = buf;
                Output::PersistSnapshot(&bytes[..n])
            }
            (Queued::Clear, _) => Output::ClearStorage,
            (Queued::StateChanged(from, to), _) => Output::LoginStateChanged { from, to },
            (Queued::Replaced, _) => Output::SessionReplaced,
            (Queued::Completed(op, result), _) => Output::OperationCompleted {
                op,
                result: result.map_err(|e| self.unqueue_error(e)),
            },
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
        self.next_deadline()
    }

    // ----- reads --------------------------------------------------------------------

    /// Until when (host ms, exclusive) a [`Engine::get_login_state`] would complete at
    /// once with the login state and session as they are now, changing nothing else —
    /// provided no other input comes first. `None`: a call now would wait (a sign-in or
    /// refresh is in flight, a refresh is due) or fire a timer; `Some(u64::MAX)`: no time
    /// limit. A host may answer `getLoginState` from its own copy of
    /// [`Engine::session`] and [`Engine::user`] until then, as long as it drops that copy
    /// at the next output other than [`Output::Timeout`].
    pub fn login_state_settled_until(&self) -> Option<u64> {
        self.settled_until()
    }

    /// The current login state.
    pub fn login_state(&self) -> LoginState {
        self.login.state()
    }

    /// The session, when signed in.
    pub fn session(&self) -> Option<SessionView<'_>> {
        self.login.session().map(|s| SessionView {
            uid: &s.uid,
            access_token: &s.access_token,
            token_type: &s.token_type,
            expires_at_ms: s.expires_at,
            refresh_at_ms: s.refresh_at,
            refreshable: s.refresh_token.is_some(),
        })
    }

    /// The signed-in user with the cached profile (fields empty until `get_user_info`
    /// or a sign-in fetched them).
    pub fn user(&self) -> Option<UserView<'_>> {
        let s = self.login.session()?;
        let p = self.side.profile();
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

    /// The only door for login-state changes (smoltcp's `set_state`): replaces what the
    /// login holds and queues the change event. A change missing from
    /// [`TRANSITIONS`](crate::state::TRANSITIONS) is a bug: it still happens and is
    /// reported, so the checks on every reported change (the test harness's, the
    /// model's) catch it in every build, not only where `debug_assert!` runs.
    fn set_login(&mut self, to: Login) {
        let from = self.login.state();
        self.login = to;
        let to = self.login.state();
        debug_assert!(
            is_allowed(from, to),
            "transition {from:?} -> {to:?} is not in the table"
        );
        self.push(Queued::StateChanged(from, to));
    }

    /// Queues an operation's result; an error that is not a tag goes to `held`.
    fn queue_completion(&mut self, op: OpId, result: Result<Completion, Error>) {
        let result = result.map_err(|e| match e {
            Error::NotSignedIn => QueuedError::NotSignedIn,
            Error::SessionExpired => QueuedError::SessionExpired,
            Error::Cancelled => QueuedError::Cancelled,
            Error::ApiMisuse(ApiMisuse::Busy) => QueuedError::Busy,
            Error::Transport(t) => QueuedError::Transport(t),
            other => {
                self.parked = Parked::Error(other);
                QueuedError::Held
            }
        });
        self.push(Queued::Completed(op, result));
    }

    fn unqueue_error(&self, e: QueuedError) -> Error {
        match e {
            QueuedError::NotSignedIn => Error::NotSignedIn,
            QueuedError::SessionExpired => Error::SessionExpired,
            QueuedError::Cancelled => Error::Cancelled,
            QueuedError::Busy => ApiMisuse::Busy.into(),
            QueuedError::Transport(t) => Error::Transport(t),
            QueuedError::Held => match &self.parked {
                Parked::Error(e) => *e,
                // Unreachable while hosts drain after every input (see `Parked`).
                _ => Error::Transport(TransportError::Failed),
            },
        }
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

    /// Writes the snapshot of the current state into `buf` (what
    /// [`Output::PersistSnapshot`] carries); `testing::write_snapshot` calls it at will.
    pub(crate) fn write_snapshot(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let session = self.login.session();
        let profile = match session {
            Some(_) => self.side.profile(),
            None => &NO_PROFILE,
        };
        let snap = snapshot::SnapshotV1Ref {
            env: &self.env,
            device_id: &self.device_id,
            state: self.login.state(),
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

    /// Writes the request in flight into `buf`, with what the session holds.
    fn request(&mut self, f: Inflight, buf: &mut [u8]) -> Result<wire::request::Layout, Error> {
        let request_id = self.rng.hex32();
        let tokens = self.login.tokens();
        let provider = match &self.side {
            Side::Exchange(x) => Some((x.secret.as_str(), x.appid.as_str())),
            Side::Profile(_) => None,
        };
        let request = Request {
            endpoint: f.step,
            api_path: &self.api_path,
            client_id: &self.client_id,
            device_id: &self.device_id,
            request_id: &request_id,
            access_token: tokens.map(|s| (s.token_type.as_str(), s.access_token.as_str())),
            refresh_token: tokens.and_then(|s| s.refresh_token.as_deref()),
            provider,
            client_auth: f.task == (Task::AnonymousSignIn { recovery: true }),
            profile: match &self.parked {
                #[cfg(feature = "account")]
                Parked::Profile(c) => Some((c.name.as_deref(), c.avatar.as_deref())),
                _ => None,
            },
        };
        request.write(buf).ok_or_else(|| {
            ApiMisuse::BufferTooSmall {
                needed: POLL_BUFFER_MIN,
            }
            .into()
        })
    }
}
