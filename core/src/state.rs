//! The five login states and the one transition table.

use postcard::experimental::max_size::MaxSize;
use serde::{Deserialize, Serialize};

/// The observable login state: the five of a `wx.cloud.auth()` session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, MaxSize)]
#[non_exhaustive]
pub enum LoginState {
    /// `init` not called yet.
    Uninitialized,
    /// Env known, never signed in on this device (or storage was empty).
    Initialized,
    /// Signed in as an anonymous user.
    Anonymous,
    /// Signed in as a WeChat user (signed in with WeChat, or anonymous and linked).
    WeChat,
    /// Had a session; it was signed out, rejected or expired (or storage was corrupt).
    SignedOut,
}

impl LoginState {
    /// Whether a session (tokens) exists in this state.
    pub const fn is_signed_in(self) -> bool {
        matches!(self, LoginState::Anonymous | LoginState::WeChat)
    }
}

use LoginState::*;

/// Every allowed `(from, to)` change. `set_state` refuses anything else, and the
/// property tests check every emitted change against this table. Self-changes appear
/// only for `WeChat`: a new WeChat sign-in replaces the session in place.
pub const TRANSITIONS: &[(LoginState, LoginState)] = &[
    (Uninitialized, Initialized), // init
    (Initialized, Anonymous),     // sign-in, restore
    (Initialized, WeChat),        // sign-in, restore
    (Initialized, SignedOut),     // restore of a signed-out or corrupt snapshot
    (Anonymous, WeChat),          // link, or WeChat sign-in
    (Anonymous, SignedOut),       // sign-out, refresh rejected, expiry
    (WeChat, Anonymous),          // anonymous sign-in replaces the WeChat session
    (WeChat, WeChat),             // another WeChat sign-in
    (WeChat, SignedOut),          // sign-out, refresh rejected, expiry
    (SignedOut, Anonymous),       // sign-in (also the anonymous recovery)
    (SignedOut, WeChat),          // sign-in
];

/// Whether `from → to` is in [`TRANSITIONS`].
pub fn is_allowed(from: LoginState, to: LoginState) -> bool {
    TRANSITIONS.iter().any(|&(f, t)| f == from && t == to)
}
