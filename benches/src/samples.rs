//! Realistic inputs: CloudBase replies with real-size tokens, and engines in known
//! states, built once before measuring.
//!
//! The access tokens are signed by the server's own signer ([`AccessTokens`]), with the
//! claims it puts in every credentials reply (docs/wire.md §4); the replies are written
//! with the core's wire types, so they are byte for byte what `cloudbase-auth serve`
//! sends. The user reply carries the fields the official SDK stores for a WeChat user
//! (docs/wire.md §5).

use cloudbase_auth_core::capacity::POLL_BUFFER_MIN;
use cloudbase_auth_core::testing::{APPID, ENV, T0};
use cloudbase_auth_core::wire::{
    self, Credentials, Endpoint, ProviderIdentity, SCOPE_ANONYMOUS, SCOPE_USER, User, UserGroup,
};
use cloudbase_auth_core::{
    Completion, Config, Delivery, Engine, Error, LoginState, OpId, Output, RequestId,
};
use cloudbase_auth_server::ServeConfig;
use cloudbase_auth_server::store::{Identity, UserRecord};
use cloudbase_auth_server::testing::AccessTokens;

/// The anonymous user's id (19 digits, as CloudBase's).
pub const UID: &str = "1900000000781648021";
/// The WeChat user's id.
pub const WECHAT_UID: &str = "1900000000781648022";
/// The WeChat user's openid (28 characters, as WeChat's).
pub const OPENID: &str = "oA1b2C3d4E5f6G7h8I9j0KlMnOpQ";
/// The WeChat user's nickname.
pub const NICKNAME: &str = "微信用户";
/// The WeChat user's avatar URL (the shape of WeChat's avatar links).
pub const AVATAR: &str = "https://thirdwx.qlogo.cn/mmopen/vi_32/Q0j4TwGTfTLgN9ib4uKnvJ2dCvYh1xS9pZ3bWxEdAeJkLmNoPqRsTuVwXyZ/132";
/// The session family id the tokens name (22 characters, as the server mints).
pub const FAMILY: &str = "k3Jd8sQm2XvN7pL0aR5tYw";
/// Lifetime of the access tokens in the replies, in seconds (the server's default).
pub const EXPIRES_IN: u64 = 7200;

/// A 43-character base64url string, the shape of the server's opaque refresh and
/// provider tokens; `salt` makes distinct ones.
pub fn opaque(salt: u8) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    (0..43usize)
        .map(|i| char::from(ALPHABET[(i * 37 + usize::from(salt) * 11) % ALPHABET.len()]))
        .collect()
}

/// A credentials reply body as the server writes it.
fn credentials(access_token: &str, refresh_token: &str, scope: &str, sub: &str) -> Vec<u8> {
    let mut c = Credentials::default();
    c.token_type = wire_str(wire::TOKEN_TYPE_BEARER);
    c.access_token = wire_str(access_token);
    c.refresh_token = Some(wire_str(refresh_token));
    c.expires_in = EXPIRES_IN;
    c.scope = wire_str(scope);
    c.sub = wire_str(sub);
    c.groups.push(wire_str(scope)).expect("one group fits");
    serde_json::to_vec(&c).expect("serializes")
}

/// `s` as a bounded core string; the samples always fit.
fn wire_str<const N: usize>(s: &str) -> heapless::String<N> {
    heapless::String::try_from(s).expect("sample fits the core's capacity")
}

/// The replies a bench feeds to engines and parsers, built once.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Replies {
    /// Credentials of an anonymous sign-in.
    pub anonymous: Vec<u8>,
    /// Credentials of a refresh of that session (new access and refresh token).
    pub refreshed: Vec<u8>,
    /// Credentials of a WeChat sign-in.
    pub wechat: Vec<u8>,
    /// The `provider/token` reply.
    pub provider_token: Vec<u8>,
    /// The `user/me` reply of the anonymous user.
    pub anonymous_user: Vec<u8>,
    /// The `user/me` reply of the WeChat user.
    pub wechat_user: Vec<u8>,
    /// The length of the anonymous access token.
    pub access_token_len: usize,
}

impl Replies {
    /// Signs the tokens (on a fresh key in a temporary directory, deleted afterwards)
    /// and writes the replies.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let tokens =
            AccessTokens::create(dir.path(), ServeConfig::new(dir.path())).expect("a signing key");
        let now_s = T0 / 1000;
        let now = i64::try_from(now_s).expect("in range");
        let anonymous = UserRecord::new(UID.to_owned(), ENV.to_owned(), true, now);
        let mut wechat = UserRecord::new(WECHAT_UID.to_owned(), ENV.to_owned(), false, now);
        wechat
            .identities
            .push(Identity::new(APPID.to_owned(), OPENID.to_owned(), None));
        let access = tokens.sign(&anonymous, FAMILY, now_s);
        let refreshed = tokens.sign(&anonymous, FAMILY, now_s + EXPIRES_IN - 10);
        let wechat_access = tokens.sign(&wechat, FAMILY, now_s);

        let mut user = User::default();
        user.sub = wire_str(WECHAT_UID);
        user.name = wire_str(NICKNAME);
        user.picture = wire_str(AVATAR);
        let mut group = UserGroup::default();
        group.id = wire_str(SCOPE_USER);
        user.groups.push(group).expect("one group fits");
        let mut provider = ProviderIdentity::new(wire_str(APPID), wire_str(OPENID));
        provider.name = wire_str("WeChat Mini Program");
        user.providers.push(provider).expect("one provider fits");
        user.created_at = wire_str("2023-11-14T22:13:20Z");
        user.updated_at = wire_str("2023-11-14T22:13:20Z");

        // As the server answers for an anonymous user.
        let mut anonymous_user = User::default();
        anonymous_user.sub = wire_str(UID);
        anonymous_user.name = wire_str("anonymous");
        let mut group = UserGroup::default();
        group.id = wire_str(SCOPE_ANONYMOUS);
        anonymous_user.groups.push(group).expect("one group fits");
        anonymous_user.created_at = wire_str("2023-11-14T22:13:20Z");
        anonymous_user.updated_at = wire_str("2023-11-14T22:13:20Z");

        Self {
            access_token_len: access.len(),
            anonymous: credentials(&access, &opaque(1), SCOPE_ANONYMOUS, UID),
            refreshed: credentials(&refreshed, &opaque(2), SCOPE_ANONYMOUS, UID),
            wechat: credentials(&wechat_access, &opaque(3), SCOPE_USER, WECHAT_UID),
            provider_token: format!(r#"{{"provider_token":"{}","expires_in":300}}"#, opaque(4))
                .into_bytes(),
            anonymous_user: serde_json::to_vec(&anonymous_user).expect("serializes"),
            wechat_user: serde_json::to_vec(&user).expect("serializes"),
        }
    }

    /// The reply to a request of `endpoint` from an engine in `state` (every one used
    /// here succeeds).
    pub fn for_endpoint(&self, endpoint: Endpoint, state: LoginState) -> &[u8] {
        match endpoint {
            Endpoint::SignInAnonymously => &self.anonymous,
            Endpoint::Token => &self.refreshed,
            Endpoint::SignInWithProvider => &self.wechat,
            Endpoint::ProviderToken => &self.provider_token,
            Endpoint::UserMe if state == LoginState::Anonymous => &self.anonymous_user,
            Endpoint::UserMe => &self.wechat_user,
            _ => b"{}",
        }
    }
}

impl Default for Replies {
    fn default() -> Self {
        Self::new()
    }
}

/// What a host saw while draining an engine once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Drained {
    /// The request to send, if one was emitted.
    pub transmit: Option<(RequestId, Endpoint)>,
    /// The last login-state change.
    pub changed_to: Option<LoginState>,
    /// The last completion.
    pub completed: Option<(OpId, Result<Completion, Error>)>,
    /// The length of the last snapshot to persist.
    pub persisted: Option<usize>,
}

impl Drained {
    /// What two drains in a row saw: the later one's outputs where it had any.
    pub fn then(self, later: Drained) -> Drained {
        Drained {
            transmit: later.transmit,
            changed_to: later.changed_to.or(self.changed_to),
            completed: later.completed.or(self.completed),
            persisted: later.persisted.or(self.persisted),
        }
    }
}

/// Most outputs one input can queue; draining stops there (a bound, not a limit the
/// engine reaches: its own queue is smaller).
const DRAIN_MAX: usize = 64;

/// A host's poll loop: drains `engine` into `buf` (at least
/// [`POLL_BUFFER_MIN`] bytes) until `Timeout`, and reports what it saw.
pub fn drain(engine: &mut Engine, buf: &mut [u8]) -> Drained {
    let mut seen = Drained::default();
    for _ in 0..DRAIN_MAX {
        match engine.poll_output(buf).expect("the buffer is large enough") {
            Output::Transmit(t) => seen.transmit = Some((t.request, t.endpoint)),
            Output::PersistSnapshot(bytes) => seen.persisted = Some(bytes.len()),
            Output::LoginStateChanged { to, .. } => seen.changed_to = Some(to),
            Output::OperationCompleted { op, result } => seen.completed = Some((op, result)),
            Output::Timeout(_) => return seen,
            _ => {}
        }
    }
    panic!("the engine queued more than {DRAIN_MAX} outputs after one input");
}

/// Most requests one operation sends here (the WeChat sign-in sends three).
const REQUESTS_MAX: usize = 8;

/// Answers every request `engine` sends with `replies`, until none is in flight;
/// returns the last completion.
pub fn run(engine: &mut Engine, now: u64, replies: &Replies) -> Option<Result<Completion, Error>> {
    let mut buf = vec![0u8; POLL_BUFFER_MIN];
    let mut seen = drain(engine, &mut buf);
    let mut completed = seen.completed.map(|(_, r)| r);
    for _ in 0..REQUESTS_MAX {
        let Some((id, endpoint)) = seen.transmit else {
            return completed;
        };
        let reply = replies.for_endpoint(endpoint, engine.login_state());
        let delivery = engine.handle_response(now, id, 200, reply);
        assert_eq!(delivery, Delivery::Accepted, "the reply to {endpoint:?}");
        seen = drain(engine, &mut buf);
        completed = seen.completed.map(|(_, r)| r).or(completed);
    }
    panic!("the engine sent more than {REQUESTS_MAX} requests for one operation");
}

/// An engine initialised for [`ENV`] at [`T0`], drained.
pub fn initialized() -> Engine {
    let mut engine = Engine::new();
    engine
        .init(T0, Config::new(ENV), [42; 16])
        .expect("a valid config");
    let mut buf = vec![0u8; POLL_BUFFER_MIN];
    drain(&mut engine, &mut buf);
    engine
}

/// An engine signed in anonymously at [`T0`] with [`Replies::anonymous`].
pub fn signed_in_anonymously(replies: &Replies) -> Engine {
    let mut engine = initialized();
    engine.sign_in_anonymously(T0).expect("initialised");
    let done = run(&mut engine, T0, replies);
    assert_eq!(done, Some(Ok(Completion::SignedIn(LoginState::Anonymous))));
    engine
}

/// An engine signed in with WeChat at [`T0`], its profile fetched (`user/me`).
pub fn signed_in_with_wechat(replies: &Replies) -> Engine {
    let mut engine = initialized();
    engine
        .sign_in_with_wechat(T0, "wxlogin-code-1", APPID)
        .expect("a valid code");
    let done = run(&mut engine, T0, replies);
    assert_eq!(done, Some(Ok(Completion::SignedIn(LoginState::WeChat))));
    assert_eq!(engine.user().map(|u| u.openid), Some(OPENID));
    engine
}
