//! [`Session`]: the core's engine driven over real HTTP by a tokio task.
//!
//! One task (an actor) owns the [`Engine`], the lent poll buffer and the
//! [`SnapshotStore`]; public calls are messages to it, answered through oneshot
//! channels. The task follows the core's run loop: after *every* input (a call, an HTTP
//! reply, a transport failure, a timer) it drains `poll_output` until `Timeout`, so
//!
//! * each `Transmit` becomes a reqwest request on its own task, whose reply (status +
//!   body, or a transport failure) comes back to the actor as the next input;
//! * each `PersistSnapshot` is written to the store before the next output is acted on;
//! * each `LoginStateChanged` is published on a [`watch`] channel;
//! * each `OperationCompleted` resolves the caller that started the operation, with the
//!   data read from the engine at that moment;
//! * `Timeout(deadline)` arms the one sleep of the loop (refresh time, request timeout).
//!
//! Nothing here knows a CloudBase path, header or JSON field: requests arrive fully
//! written by the engine (`origin + transmit.path`, `transmit.headers()`,
//! `transmit.body`) and replies go back to it unread.
//!
//! An actor rather than a mutex around the engine: HTTP replies, timers and calls all
//! arrive as messages to one owner, so the engine's "drain after every input" rule holds
//! by construction and no lock is held across an `.await`.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cloudbase_auth_core::capacity::{POLL_BUFFER_MIN, RESPONSE_BODY_MAX};
use cloudbase_auth_core::wire::ErrorBody;
use cloudbase_auth_core::{
    Completion, Config, Delivery, Disposition, Engine, Error, LoginState, OpId, Output, RequestId,
    SessionView, SnapshotError, Transmit, UserView,
};
use tokio::sync::{mpsc, oneshot, watch};

use super::store::SnapshotStore;

/// Wall-clock milliseconds since the Unix epoch: the core's `now_ms` (snapshots carry
/// absolute deadlines, so they must survive restarts).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// How to reach the server and which env to use.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionConfig {
    /// Base URL of the auth server: an origin such as `http://127.0.0.1:8787`, or an
    /// origin plus a path prefix when a reverse proxy mounts the API below one. Each
    /// request goes to this base followed by the path the engine wrote.
    pub server: String,
    /// The CloudBase env id (`wx.cloud.init({env})`).
    pub env: String,
    /// A request with no reply after this long fails as timed out (the engine's own
    /// deadline; the HTTP client gives up at the same time).
    pub request_timeout: Duration,
    /// When the server refuses an anonymous session's refresh token, sign in a new
    /// anonymous user in its place (the engine's
    /// [`Config::anonymous_recovery`](cloudbase_auth_core::Config::anonymous_recovery)).
    /// Off by default here: a program that holds a session (a script, a test, the CLI)
    /// wants to be told the user is gone, not to continue as somebody else. The calls
    /// waiting on the refused session fail with `SessionExpired` either way; with this
    /// on, [`Session::replacements`] counts the new users.
    pub anonymous_recovery: bool,
}

impl SessionConfig {
    /// Settings for `env` on the server at `server`, with a 15 s request timeout.
    pub fn new(server: impl Into<String>, env: impl Into<String>) -> Self {
        SessionConfig {
            server: server.into(),
            env: env.into(),
            request_timeout: Duration::from_secs(15),
            anonymous_recovery: false,
        }
    }

    /// Turns the automatic anonymous recovery on or off (see
    /// [`SessionConfig::anonymous_recovery`]).
    pub fn with_anonymous_recovery(mut self, on: bool) -> Self {
        self.anonymous_recovery = on;
        self
    }

    /// Changes the request timeout.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }
}

/// The session as the engine reports it: owned copies, safe to keep.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionInfo {
    /// The user id.
    pub uid: String,
    /// The access token, for the caller's own requests to CloudBase services.
    pub access_token: String,
    /// Its `Authorization` scheme (`Bearer`).
    pub token_type: String,
    /// When the access token expires (Unix ms, local clock).
    pub expires_at_ms: u64,
    /// When the session refreshes it (Unix ms, local clock).
    pub refresh_at_ms: u64,
    /// Whether the session can be refreshed at all.
    pub refreshable: bool,
}

impl From<SessionView<'_>> for SessionInfo {
    fn from(v: SessionView<'_>) -> Self {
        SessionInfo {
            uid: v.uid.to_owned(),
            access_token: v.access_token.to_owned(),
            token_type: v.token_type.to_owned(),
            expires_at_ms: v.expires_at_ms,
            refresh_at_ms: v.refresh_at_ms,
            refreshable: v.refreshable,
        }
    }
}

/// Tokens stay out of logs: `Debug` shows only the token's length.
impl fmt::Debug for SessionInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionInfo")
            .field("uid", &self.uid)
            .field(
                "access_token",
                &format_args!("<{} bytes>", self.access_token.len()),
            )
            .field("token_type", &self.token_type)
            .field("expires_at_ms", &self.expires_at_ms)
            .field("refresh_at_ms", &self.refresh_at_ms)
            .field("refreshable", &self.refreshable)
            .finish()
    }
}

/// The signed-in user with the profile the engine cached (empty strings: unknown).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UserInfo {
    /// The user id.
    pub uid: String,
    /// Nickname.
    pub nick_name: String,
    /// Avatar URL.
    pub avatar_url: String,
    /// E-mail address.
    pub email: String,
    /// WeChat openid, when a WeChat identity is known.
    pub openid: String,
}

impl From<UserView<'_>> for UserInfo {
    fn from(v: UserView<'_>) -> Self {
        UserInfo {
            uid: v.uid.to_owned(),
            nick_name: v.nick_name.to_owned(),
            avatar_url: v.avatar_url.to_owned(),
            email: v.email.to_owned(),
            openid: v.openid.to_owned(),
        }
    }
}

/// The login state with the session and user, read from the engine at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Status {
    /// The login state.
    pub state: LoginState,
    /// The session, when signed in.
    pub session: Option<SessionInfo>,
    /// The user with the cached profile, when signed in.
    pub user: Option<UserInfo>,
}

/// What [`Session::sign_out`] did. The local session is gone in every case.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SignedOut {
    /// Whether there was a session to sign out of.
    pub had_session: bool,
    /// Whether the server confirmed the revocation (false: offline, server error, or no
    /// session).
    pub revoked: bool,
    /// Why the server was not told, when it was tried and failed (the server's error
    /// description or the transport failure).
    pub detail: Option<String>,
}

/// What [`Session::open`] found in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Restored {
    /// Nothing was stored: a fresh start (`Initialized`).
    Nothing,
    /// The stored session was restored in this state (`SignedOut` after a sign-out).
    Session(LoginState),
    /// The stored snapshot belongs to another env; it was left alone.
    OtherEnv,
    /// The stored snapshot was refused (damaged, or written by a newer release): the
    /// session starts signed out, and the bytes were set aside at `kept_at` (if the
    /// store keeps such things).
    Discarded {
        /// Why the engine refused it.
        reason: SnapshotError,
        /// Where the refused bytes are now.
        kept_at: Option<PathBuf>,
    },
}

/// Why a [`Session`] call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The engine reported an error (server refusal, network failure, not signed in, …).
    /// [`Error::disposition`] says what it meant for the session.
    #[error("{error}{}", detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Auth {
        /// The engine's error.
        error: Error,
        /// The server's `error_description`, or the HTTP client's cause of a transport
        /// failure, when there was one.
        detail: Option<String>,
    },
    /// The settings cannot work (bad server URL, bad env id).
    #[error("invalid settings: {0}")]
    Config(String),
    /// The store holds the sessions of another server than the one configured: nothing
    /// was sent (a refresh token is only ever offered to the server that issued it).
    #[error("the profile store belongs to {store_server}, not {server}")]
    OtherServer {
        /// The configured server.
        server: String,
        /// The server the store is bound to.
        store_server: String,
    },
    /// The snapshot store failed to read or write. At [`Session::open`] (the store
    /// cannot be written) nothing was sent; later, the session in memory is intact and
    /// the write is retried, but the next run will not see it until one succeeds.
    #[error("profile storage failed: {0}")]
    Store(#[source] io::Error),
    /// The HTTP client could not be built.
    #[error("HTTP client setup failed: {0}")]
    Http(#[source] reqwest::Error),
    /// The session's task has stopped.
    #[error("the session was closed")]
    Closed,
}

impl ClientError {
    fn auth(error: Error) -> Self {
        ClientError::Auth {
            error,
            detail: None,
        }
    }

    /// The engine's error, if this is one.
    pub fn engine_error(&self) -> Option<&Error> {
        match self {
            ClientError::Auth { error, .. } => Some(error),
            _ => None,
        }
    }

    /// What the failure means for the session: the engine's classification, and
    /// `RetryLater` for storage and setup failures.
    pub fn disposition(&self) -> Disposition {
        match self {
            ClientError::Auth { error, .. } => error.disposition(),
            ClientError::Config(_) | ClientError::OtherServer { .. } => Disposition::KeepSession,
            _ => Disposition::RetryLater,
        }
    }
}

/// An async handle on one CloudBase Auth session. See the [module docs](self).
///
/// Calls may be made concurrently from several tasks (`&self`); the engine serialises
/// them (single-flight refresh, sign-in superseding what is in flight). Call
/// [`Session::close`] before exiting so an in-flight refresh is finished and stored; a
/// dropped session does the same in the background.
#[derive(Debug)]
pub struct Session {
    commands: mpsc::Sender<Command>,
    states: watch::Receiver<LoginState>,
    replacements: watch::Receiver<u64>,
    restored: Restored,
}

impl Session {
    /// Starts a session: checks that `store` belongs to `config.server` and can be
    /// written ([`SnapshotStore::check_writable`]: a refresh spent on the server must
    /// be storable), initialises the engine for `config.env` with a seed from the OS,
    /// restores what `store` holds (a refused snapshot is set aside with
    /// [`SnapshotStore::quarantine`] and the session starts signed out; see
    /// [`Session::restored`]), and spawns the task that runs the engine. A refresh that
    /// is already due starts at once. Nothing is sent before the checks pass. Needs a
    /// tokio runtime.
    pub async fn open(
        config: SessionConfig,
        mut store: impl SnapshotStore,
    ) -> Result<Session, ClientError> {
        let base = checked_base(&config.server)?;
        if let Some(bound) = store.server()
            && bound != base
        {
            return Err(ClientError::OtherServer {
                server: base,
                store_server: bound.to_owned(),
            });
        }
        store.check_writable().map_err(ClientError::Store)?;
        let http = http_client(&base, config.request_timeout)?;
        let mut seed = [0u8; 16];
        getrandom::fill(&mut seed)
            .map_err(|e| ClientError::Store(io::Error::other(format!("OS RNG: {e}"))))?;
        let timeout_ms = u64::try_from(config.request_timeout.as_millis()).unwrap_or(u64::MAX);

        let (commands_tx, commands) = mpsc::channel(16);
        let (replies_tx, replies) = mpsc::unbounded_channel();
        let (state_tx, states) = watch::channel(LoginState::Uninitialized);
        let (replaced_tx, replacements) = watch::channel(0);
        let mut actor = Actor {
            engine: Box::new(Engine::new()),
            buf: vec![0; POLL_BUFFER_MIN],
            store: Box::new(store),
            http,
            base,
            pending: HashMap::new(),
            state_tx,
            replaced_tx,
            replies_tx,
            replies,
            commands,
            deadline: None,
            unsaved: None,
            store_failure: None,
            last_detail: None,
            closing: false,
            close_ack: Vec::new(),
        };

        let engine_config = Config::new(&config.env)
            .with_request_timeout_ms(timeout_ms)
            .with_anonymous_recovery(config.anonymous_recovery);
        actor
            .engine
            .init(now_ms(), engine_config, seed)
            .map_err(|e| ClientError::Config(format!("env {:?}: {e}", config.env)))?;
        actor.drain();
        let restored = actor.restore()?;
        actor.drain();
        tokio::spawn(actor.run());
        Ok(Session {
            commands: commands_tx,
            states,
            replacements,
            restored,
        })
    }

    /// What was found in the store at [`Session::open`].
    pub fn restored(&self) -> &Restored {
        &self.restored
    }

    /// Login-state changes (the current state, then every change the engine reports).
    pub fn login_states(&self) -> watch::Receiver<LoginState> {
        self.states.clone()
    }

    /// How many times a refused anonymous user was replaced by a new one (only with
    /// [`SessionConfig::anonymous_recovery`] on): each is a different uid, never the
    /// same session continued.
    pub fn replacements(&self) -> watch::Receiver<u64> {
        self.replacements.clone()
    }

    /// `auth.signInAnonymously()`. Already anonymous: the current session, no new user.
    pub async fn sign_in_anonymously(&self) -> Result<Status, ClientError> {
        Ok(self.call(Call::SignInAnonymously).await?.status)
    }

    /// Signs in with a `wx.login` `code` of the Mini Program `appid`.
    pub async fn sign_in_with_wechat(
        &self,
        code: &str,
        appid: &str,
    ) -> Result<Status, ClientError> {
        let call = Call::SignInWithWeChat {
            code: code.to_owned(),
            appid: appid.to_owned(),
        };
        Ok(self.call(call).await?.status)
    }

    /// Links the WeChat identity of `code` (for `appid`) to the signed-in anonymous
    /// user, keeping its uid.
    pub async fn link_wechat(&self, code: &str, appid: &str) -> Result<Status, ClientError> {
        let call = Call::LinkWeChat {
            code: code.to_owned(),
            appid: appid.to_owned(),
        };
        Ok(self.call(call).await?.status)
    }

    /// `auth.getUserInfo()`: asks the server (refreshing first when due).
    pub async fn user_info(&self) -> Result<UserInfo, ClientError> {
        self.call(Call::UserInfo)
            .await?
            .status
            .user
            .ok_or_else(|| ClientError::auth(Error::NotSignedIn))
    }

    /// A valid access token: the current one, or a fresh one when it is due for refresh
    /// (`auth.getLoginState()`, which refreshes when due, then the session).
    pub async fn access_token(&self) -> Result<SessionInfo, ClientError> {
        self.call(Call::LoginState)
            .await?
            .status
            .session
            .ok_or_else(|| ClientError::auth(Error::NotSignedIn))
    }

    /// `auth.getLoginState()`: the state, refreshing first when the token is due.
    pub async fn login_state(&self) -> Result<Status, ClientError> {
        Ok(self.call(Call::LoginState).await?.status)
    }

    /// What the engine holds right now, without any request.
    pub async fn current(&self) -> Result<Status, ClientError> {
        Ok(self.call(Call::Current).await?.status)
    }

    /// `auth.signOut()`: the local session is wiped (and stored as signed out) at once;
    /// then the server is told. [`SignedOut::revoked`] is false when it could not be.
    pub async fn sign_out(&self) -> Result<SignedOut, ClientError> {
        let answer = self.call(Call::SignOut).await?;
        let revoked = matches!(
            answer.completion,
            Some(Completion::SignedOut { revoked: true })
        );
        Ok(SignedOut {
            had_session: answer.before.is_signed_in(),
            revoked,
            detail: if revoked { None } else { answer.detail },
        })
    }

    /// `user.update({name, picture})`: sets the nickname and/or the avatar URL on the
    /// server (`PATCH user/profile`). Answers the user as the server now has it (also
    /// cached and stored). Bad values are refused before anything is sent
    /// ([`cloudbase_auth_core::ApiMisuse`]); the server's refusals read
    /// `server refused (HTTP 400 invalid_argument): …`.
    pub async fn update_profile(
        &self,
        nickname: Option<&str>,
        avatar_url: Option<&str>,
    ) -> Result<UserInfo, ClientError> {
        let call = Call::UpdateProfile {
            nickname: nickname.map(str::to_owned),
            avatar_url: avatar_url.map(str::to_owned),
        };
        self.call(call)
            .await?
            .status
            .user
            .ok_or_else(|| ClientError::auth(Error::NotSignedIn))
    }

    /// `auth.deleteMe()`: deletes the signed-in user on the server with its identities
    /// and every session on every device, then ends the local session (stored as
    /// signed out). Answers the status afterwards (`SignedOut`).
    pub async fn delete_account(&self) -> Result<Status, ClientError> {
        Ok(self.call(Call::DeleteAccount).await?.status)
    }

    /// Stops the session: waits for a request in flight (a refresh whose new tokens
    /// must be stored) up to the request timeout, retries a snapshot write that failed,
    /// then releases the store (and with it a [`FileStore`](super::FileStore)'s profile
    /// lock). Fails with [`ClientError::Store`] when the latest session could still not
    /// be written: the next run will not have it.
    pub async fn close(self) -> Result<(), ClientError> {
        let (ack, done) = oneshot::channel();
        if self.commands.send(Command::Close(ack)).await.is_err() {
            return Ok(());
        }
        match done.await {
            Ok(Some((kind, message))) => Err(ClientError::Store(io::Error::new(kind, message))),
            _ => Ok(()),
        }
    }

    async fn call(&self, call: Call) -> Result<Answer, ClientError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Call(call, tx))
            .await
            .map_err(|_| ClientError::Closed)?;
        rx.await.map_err(|_| ClientError::Closed)?
    }
}

/// `server` must be an http(s) URL without query or fragment; the result has no
/// trailing `/`, so the engine's paths (which start with `/`) append to it.
pub(super) fn checked_base(server: &str) -> Result<String, ClientError> {
    let url = reqwest::Url::parse(server)
        .map_err(|e| ClientError::Config(format!("server URL {server:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ClientError::Config(format!(
            "server URL {server:?}: expected http://HOST[:PORT] or https://HOST[:PORT]"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ClientError::Config(format!(
            "server URL {server:?}: no query or fragment allowed"
        )));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

pub(super) fn http_client(base: &str, timeout: Duration) -> Result<reqwest::Client, ClientError> {
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .user_agent(concat!(
            env!("CARGO_PKG_NAME"),
            "/",
            env!("CARGO_PKG_VERSION")
        ));
    let loopback = reqwest::Url::parse(base).ok().is_some_and(|u| {
        let host = u.host_str().unwrap_or_default();
        host == "localhost"
            || host
                .trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    });
    if loopback {
        // A local server is never behind the user's HTTP proxy.
        builder = builder.no_proxy();
    }
    builder.build().map_err(ClientError::Http)
}

/// A call to the engine, sent to the actor.
#[derive(Debug)]
enum Call {
    SignInAnonymously,
    SignInWithWeChat {
        code: String,
        appid: String,
    },
    LinkWeChat {
        code: String,
        appid: String,
    },
    UserInfo,
    LoginState,
    SignOut,
    Current,
    UpdateProfile {
        nickname: Option<String>,
        avatar_url: Option<String>,
    },
    DeleteAccount,
}

/// What the actor answers a call with.
#[derive(Debug)]
struct Answer {
    /// `None` for [`Call::Current`], which starts no operation.
    completion: Option<Completion>,
    /// The login state when the call was made.
    before: LoginState,
    status: Status,
    /// The last error detail (server description or transport cause) at completion.
    detail: Option<String>,
}

type Reply = oneshot::Sender<Result<Answer, ClientError>>;

/// Answers a close: the store failure still standing, if any.
type CloseAck = oneshot::Sender<Option<(io::ErrorKind, String)>>;

enum Command {
    Call(Call, Reply),
    Close(CloseAck),
}

struct Pending {
    before: LoginState,
    reply: Reply,
}

/// An HTTP exchange's outcome, fed back to the actor.
struct HttpReply {
    id: RequestId,
    result: Result<(u16, Vec<u8>), reqwest::Error>,
}

struct Actor {
    engine: Box<Engine>,
    /// Lent to `poll_output`; holds the current request or snapshot.
    buf: Vec<u8>,
    store: Box<dyn SnapshotStore>,
    http: reqwest::Client,
    base: String,
    pending: HashMap<OpId, Pending>,
    state_tx: watch::Sender<LoginState>,
    replaced_tx: watch::Sender<u64>,
    replies_tx: mpsc::UnboundedSender<HttpReply>,
    replies: mpsc::UnboundedReceiver<HttpReply>,
    commands: mpsc::Receiver<Command>,
    /// The engine's next deadline (Unix ms).
    deadline: Option<u64>,
    /// A snapshot the store failed to write, retried until a write succeeds (a newer
    /// snapshot replaces it).
    unsaved: Option<Vec<u8>>,
    /// Why the last store write failed (cleared by the next successful one).
    store_failure: Option<(io::ErrorKind, String)>,
    /// The server's description of the last error reply, or the transport failure.
    last_detail: Option<String>,
    closing: bool,
    close_ack: Vec<CloseAck>,
}

impl Actor {
    fn restore(&mut self) -> Result<Restored, ClientError> {
        let Some(bytes) = self.store.load().map_err(ClientError::Store)? else {
            return Ok(Restored::Nothing);
        };
        match self.engine.restore(now_ms(), &bytes) {
            Ok(()) => Ok(Restored::Session(self.engine.login_state())),
            Err(Error::Snapshot(SnapshotError::EnvMismatch)) => Ok(Restored::OtherEnv),
            Err(Error::Snapshot(reason)) => {
                // Set the bytes aside before the engine's `ClearStorage` is drained.
                let kept_at = self.store.quarantine().map_err(ClientError::Store)?;
                Ok(Restored::Discarded { reason, kept_at })
            }
            Err(e) => Err(ClientError::auth(e)),
        }
    }

    async fn run(mut self) {
        loop {
            self.drain();
            if self.closing && !self.engine.is_busy() {
                break;
            }
            let wake = self.deadline.map(|d| {
                tokio::time::Instant::now() + Duration::from_millis(d.saturating_sub(now_ms()))
            });
            tokio::select! {
                command = self.commands.recv(), if !self.closing => match command {
                    Some(Command::Call(call, reply)) => self.call(call, reply),
                    Some(Command::Close(ack)) => {
                        self.closing = true;
                        self.close_ack.push(ack);
                    }
                    None => self.closing = true,
                },
                Some(reply) = self.replies.recv() => self.on_http_reply(reply),
                () = sleep_until(wake) => self.engine.handle_timeout(now_ms()),
            }
        }
        // Last chance for a snapshot that could not be written.
        self.retry_unsaved();
        let acks = std::mem::take(&mut self.close_ack);
        let failure = self.store_failure.take();
        // Release the store (and its lock) before anyone learns the session closed.
        drop(self);
        for ack in acks {
            let _ = ack.send(failure.clone());
        }
    }

    fn call(&mut self, call: Call, reply: Reply) {
        let now = now_ms();
        let before = self.engine.login_state();
        let started = match &call {
            Call::Current => {
                let _ = reply.send(Ok(Answer {
                    completion: None,
                    before,
                    status: self.status(),
                    detail: None,
                }));
                return;
            }
            Call::SignInAnonymously => self.engine.sign_in_anonymously(now),
            Call::SignInWithWeChat { code, appid } => {
                self.engine.sign_in_with_wechat(now, code, appid)
            }
            Call::LinkWeChat { code, appid } => self.engine.link_wechat(now, code, appid),
            Call::UserInfo => self.engine.get_user_info(now),
            Call::LoginState => self.engine.get_login_state(now),
            Call::SignOut => self.engine.sign_out(now),
            Call::UpdateProfile {
                nickname,
                avatar_url,
            } => self
                .engine
                .update_profile(now, nickname.as_deref(), avatar_url.as_deref()),
            Call::DeleteAccount => self.engine.delete_account(now),
        };
        match started {
            Ok(op) => {
                self.pending.insert(op, Pending { before, reply });
            }
            Err(e) => {
                let _ = reply.send(Err(ClientError::auth(e)));
            }
        }
    }

    fn on_http_reply(&mut self, reply: HttpReply) {
        let now = now_ms();
        let (delivery, detail) = match reply.result {
            Ok((status, body)) => {
                let detail = if !(200..300).contains(&status) || ErrorBody::is_error_shaped(&body) {
                    ErrorBody::parse(&body)
                        .ok()
                        .map(|b| b.error_description.as_str().to_owned())
                        .filter(|d| !d.is_empty())
                } else {
                    None
                };
                let delivery = self.engine.handle_response(now, reply.id, status, &body);
                (delivery, detail)
            }
            Err(e) => (
                self.engine.handle_transport_error(now, reply.id),
                Some(transport_cause(&e)),
            ),
        };
        // A stale reply (superseded request) says nothing about the operations now.
        if delivery == Delivery::Accepted {
            self.last_detail = detail;
        }
    }

    /// Writes a snapshot again that the store refused earlier (the disk may have room
    /// again, the directory may be writable again).
    fn retry_unsaved(&mut self) {
        if let Some(bytes) = &self.unsaved {
            match self.store.save(bytes) {
                Ok(()) => {
                    self.unsaved = None;
                    self.store_failure = None;
                }
                Err(e) => self.store_failure = Some((e.kind(), e.to_string())),
            }
        }
    }

    /// Acts on every queued output until the engine says `Timeout` (the core's rule:
    /// drain after every input, before the next one).
    fn drain(&mut self) {
        self.retry_unsaved();
        loop {
            let output = match self.engine.poll_output(&mut self.buf) {
                Ok(output) => output,
                // Only `BufferTooSmall`, impossible with POLL_BUFFER_MIN bytes; stop
                // rather than spin, the output stays queued.
                Err(_) => return,
            };
            match output {
                Output::Transmit(t) => {
                    let request = prepare(&self.http, &self.base, &t);
                    let tx = self.replies_tx.clone();
                    let id = t.request;
                    tokio::spawn(async move {
                        let result = perform(request).await;
                        let _ = tx.send(HttpReply { id, result });
                    });
                }
                Output::PersistSnapshot(bytes) => {
                    let failed = self.store.save(bytes).err();
                    // A newer snapshot supersedes one that could not be written.
                    self.unsaved = failed.is_some().then(|| bytes.to_vec());
                    self.store_failure = failed.map(|e| (e.kind(), e.to_string()));
                }
                Output::ClearStorage => {
                    self.unsaved = None;
                    self.store_failure =
                        self.store.clear().err().map(|e| (e.kind(), e.to_string()));
                }
                Output::LoginStateChanged { to, .. } => {
                    self.state_tx.send_replace(to);
                }
                Output::SessionReplaced => {
                    self.replaced_tx.send_modify(|n| *n += 1);
                }
                Output::OperationCompleted { op, result } => self.resolve(op, result),
                Output::Timeout(deadline) => {
                    self.deadline = deadline;
                    return;
                }
                // Outputs added by a later core: nothing to do for this host.
                _ => {}
            }
        }
    }

    fn resolve(&mut self, op: OpId, result: Result<Completion, Error>) {
        let Some(pending) = self.pending.remove(&op) else {
            return;
        };
        let answer = match (result, &self.store_failure) {
            (Ok(_), Some((kind, message))) => {
                Err(ClientError::Store(io::Error::new(*kind, message.clone())))
            }
            (Ok(completion), None) => Ok(Answer {
                completion: Some(completion),
                before: pending.before,
                status: self.status(),
                detail: self.last_detail.clone(),
            }),
            (Err(error), _) => {
                let detail = match error {
                    // A server error carries the server's own texts (its Display shows
                    // them); a transport failure's cause is known only here.
                    Error::Transport(_) => self.last_detail.clone(),
                    _ => None,
                };
                Err(ClientError::Auth { error, detail })
            }
        };
        let _ = pending.reply.send(answer);
    }

    fn status(&self) -> Status {
        Status {
            state: self.engine.login_state(),
            session: self.engine.session().map(SessionInfo::from),
            user: self.engine.user().map(UserInfo::from),
        }
    }
}

async fn sleep_until(wake: Option<tokio::time::Instant>) {
    match wake {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Builds the reqwest request the engine wrote: method, base + path, headers, body.
fn prepare(http: &reqwest::Client, base: &str, t: &Transmit<'_>) -> reqwest::RequestBuilder {
    let method =
        reqwest::Method::from_bytes(t.method.as_str().as_bytes()).unwrap_or(reqwest::Method::POST);
    let mut request = http.request(method, format!("{base}{}", t.path));
    for (name, value) in t.headers() {
        request = request.header(name, value);
    }
    if let Some(body) = t.body {
        request = request.body(body.to_vec());
    }
    request
}

/// Sends the request; reads at most one byte more than the engine accepts (it refuses
/// longer replies unread anyway), so a misbehaving server cannot make us buffer much.
async fn perform(request: reqwest::RequestBuilder) -> Result<(u16, Vec<u8>), reqwest::Error> {
    let mut response = request.send().await?;
    let status = response.status().as_u16();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        body.extend_from_slice(&chunk);
        if body.len() > RESPONSE_BODY_MAX {
            break;
        }
    }
    Ok((status, body))
}

/// The innermost cause of a transport failure ("Connection refused (os error 111)").
fn transport_cause(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "timed out".to_owned();
    }
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_are_checked() {
        assert_eq!(
            checked_base("http://127.0.0.1:8787").unwrap(),
            "http://127.0.0.1:8787"
        );
        assert_eq!(
            checked_base("https://example.com/gw/").unwrap(),
            "https://example.com/gw"
        );
        for bad in ["127.0.0.1:8787", "ftp://x", "http://x/?a=b", "not a url"] {
            assert!(checked_base(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_hides_the_token() {
        let info = SessionInfo {
            uid: "u".into(),
            access_token: "secret-token".into(),
            token_type: "Bearer".into(),
            expires_at_ms: 1,
            refresh_at_ms: 0,
            refreshable: true,
        };
        assert!(!format!("{info:?}").contains("secret-token"));
    }
}
