//! Everything a host can observe of an engine, as one owned value: tests compare two
//! engines (before and after a restart, a restore of a fuzzed snapshot) with `==`, and
//! a failure prints both.

use crate::capacity::*;
use crate::{Engine, LoginState};
use heapless::String;

/// What [`Engine::session`] shows, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(
    clippy::exhaustive_structs,
    reason = "expected values are written out whole"
)]
pub struct ObservedSession {
    /// The user id.
    pub uid: String<UID_MAX>,
    /// The `Authorization` scheme.
    pub token_type: String<TOKEN_TYPE_MAX>,
    /// The access token.
    pub access_token: String<ACCESS_TOKEN_MAX>,
    /// When the access token expires (host ms).
    pub expires_at_ms: u64,
    /// When the engine refreshes it (host ms).
    pub refresh_at_ms: u64,
    /// Whether the session can be refreshed.
    pub refreshable: bool,
}

/// What [`Engine::user`] shows, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(
    clippy::exhaustive_structs,
    reason = "expected values are written out whole"
)]
pub struct ObservedUser {
    /// The user id.
    pub uid: String<UID_MAX>,
    /// Nickname.
    pub nick_name: String<NAME_MAX>,
    /// Avatar URL.
    pub avatar_url: String<AVATAR_MAX>,
    /// E-mail.
    pub email: String<EMAIL_MAX>,
    /// WeChat openid.
    pub openid: String<OPENID_MAX>,
}

/// Everything a host can observe of an engine's session, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(
    clippy::exhaustive_structs,
    reason = "expected values are written out whole"
)]
pub struct Observed {
    /// [`Engine::login_state`].
    pub state: LoginState,
    /// [`Engine::device_id`].
    pub device_id: String<DEVICE_ID_MAX>,
    /// [`Engine::generation`].
    pub generation: u32,
    /// [`Engine::session`].
    pub session: Option<ObservedSession>,
    /// [`Engine::user`].
    pub user: Option<ObservedUser>,
    /// [`Engine::poll_timeout`].
    pub deadline: Option<u64>,
    /// [`Engine::is_busy`].
    pub busy: bool,
}

/// A bounded copy of `s`, for writing expected values. Panics when it does not fit
/// (test code only).
pub fn text<const N: usize>(s: &str) -> String<N> {
    String::try_from(s).expect("the expected value fits its capacity")
}

/// What a host observes of `engine` now.
pub fn observe(engine: &Engine) -> Observed {
    Observed {
        state: engine.login_state(),
        device_id: text(engine.device_id()),
        generation: engine.generation(),
        session: engine.session().map(|s| ObservedSession {
            uid: text(s.uid),
            token_type: text(s.token_type),
            access_token: text(s.access_token),
            expires_at_ms: s.expires_at_ms,
            refresh_at_ms: s.refresh_at_ms,
            refreshable: s.refreshable,
        }),
        user: engine.user().map(|u| ObservedUser {
            uid: text(u.uid),
            nick_name: text(u.nick_name),
            avatar_url: text(u.avatar_url),
            email: text(u.email),
            openid: text(u.openid),
        }),
        deadline: engine.poll_timeout(),
        busy: engine.is_busy(),
    }
}
