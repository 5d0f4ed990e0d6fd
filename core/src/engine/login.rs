//! What the engine holds about the user: the login state with the session it owns, and
//! beside it the profile cache or a WeChat exchange.
//!
//! Tokens live inside [`Login::SignedIn`], so "a session exists only while signed in"
//! holds by construction; the one exception is named: a signed-out session is kept in
//! [`Login::SignedOut`] only until the `revoke` request carrying its access token is
//! written.

use crate::capacity::{APPID_MAX, PROVIDER_TOKEN_MAX};
use crate::session::{Profile, Session};
use crate::state::LoginState;
use heapless::String;

/// Which user a session belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// An anonymous user.
    Anonymous,
    /// A WeChat user (signed in with WeChat, or anonymous and linked).
    WeChat,
}

/// The login state and the session it owns.
#[derive(Debug, Clone)]
pub(super) enum Login {
    /// `init` not called yet.
    Uninitialized,
    /// Env known, never signed in on this device.
    Initialized,
    /// Signed in: the usable session.
    SignedIn {
        /// Anonymous or WeChat.
        kind: Kind,
        /// Tokens and deadlines.
        session: Session,
    },
    /// Signed out, rejected or expired.
    SignedOut {
        /// The session just signed out, kept only until the `revoke` request that
        /// carries its access token is written, then dropped.
        revoking: Option<Session>,
    },
}

impl Login {
    /// The observable state.
    pub(super) const fn state(&self) -> LoginState {
        match self {
            Login::Uninitialized => LoginState::Uninitialized,
            Login::Initialized => LoginState::Initialized,
            Login::SignedIn {
                kind: Kind::Anonymous,
                ..
            } => LoginState::Anonymous,
            Login::SignedIn {
                kind: Kind::WeChat, ..
            } => LoginState::WeChat,
            Login::SignedOut { .. } => LoginState::SignedOut,
        }
    }

    /// The usable session (only while signed in).
    pub(super) fn session(&self) -> Option<&Session> {
        match self {
            Login::SignedIn { session, .. } => Some(session),
            _ => None,
        }
    }

    /// The usable session, to update in place (a refresh keeps the state).
    pub(super) fn session_mut(&mut self) -> Option<&mut Session> {
        match self {
            Login::SignedIn { session, .. } => Some(session),
            _ => None,
        }
    }

    /// The tokens a request may carry: the usable session, or the one being revoked.
    pub(super) fn tokens(&self) -> Option<&Session> {
        match self {
            Login::SignedIn { session, .. }
            | Login::SignedOut {
                revoking: Some(session),
            } => Some(session),
            _ => None,
        }
    }
}

/// A WeChat exchange in progress: the `wx.login` code, replaced by the provider token
/// once `provider/token` answered.
#[derive(Debug, Clone, Default)]
pub(super) struct Exchange {
    pub(super) secret: String<PROVIDER_TOKEN_MAX>,
    pub(super) appid: String<APPID_MAX>,
}

/// The profile cache and a WeChat exchange never coexist: an exchange evicts the cache
/// (it is fetched again right after), which keeps the engine within 4 KiB.
#[derive(Debug, Clone)]
pub(super) enum Side {
    /// The signed-in user's profile (empty until fetched; empty when signed out).
    Profile(Profile),
    /// A WeChat sign-in or link in flight.
    Exchange(Exchange),
}

impl Side {
    /// The cached profile (empty while an exchange evicted it).
    pub(super) fn profile(&self) -> &Profile {
        match self {
            Side::Profile(p) => p,
            Side::Exchange(_) => &NO_PROFILE,
        }
    }

    /// The Mini Program appId of the WeChat identity, from either side.
    pub(super) fn appid(&self) -> &str {
        match self {
            Side::Profile(p) => &p.appid,
            Side::Exchange(x) => &x.appid,
        }
    }
}

/// An empty profile to point at while the cache is evicted.
pub(super) static NO_PROFILE: Profile = Profile::EMPTY;
