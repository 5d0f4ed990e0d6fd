//! What a signed-in engine holds: tokens with their deadlines, and the cached profile.
//! Both are part of the snapshot body (field order is its wire format).

use crate::capacity::*;
use heapless::String;
use postcard::experimental::max_size::MaxSize;
use serde::{Deserialize, Serialize};

/// Tokens of the current session, with deadlines in host milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, MaxSize)]
pub(crate) struct Session {
    #[serde(deserialize_with = "crate::snapshot::bounded")]
    pub(crate) token_type: String<TOKEN_TYPE_MAX>,
    #[serde(deserialize_with = "crate::snapshot::bounded")]
    pub(crate) access_token: String<ACCESS_TOKEN_MAX>,
    pub(crate) refresh_token: Option<String<REFRESH_TOKEN_MAX>>,
    /// When the access token stops working (local clock: receipt time + `expires_in`).
    pub(crate) expires_at: u64,
    /// When to refresh: `expires_at − margin`, but never earlier than half-way through
    /// the lifetime, so a server handing out very short tokens cannot cause a refresh loop.
    pub(crate) refresh_at: u64,
    #[serde(deserialize_with = "crate::snapshot::bounded")]
    pub(crate) uid: String<UID_MAX>,
}

/// The cached profile (from `user/me`) shown by `getLoginState`/`getUserInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, MaxSize)]
pub(crate) struct Profile {
    #[serde(deserialize_with = "crate::snapshot::bounded")]
    pub(crate) name: String<NAME_MAX>,
    #[serde(deserialize_with = "crate::snapshot::bounded")]
    pub(crate) avatar: String<AVATAR_MAX>,
    #[serde(deserialize_with = "crate::snapshot::bounded")]
    pub(crate) email: String<EMAIL_MAX>,
    #[serde(deserialize_with = "crate::snapshot::bounded")]
    pub(crate) openid: String<OPENID_MAX>,
    /// The Mini Program appId of the WeChat identity (to pick the openid).
    #[serde(deserialize_with = "crate::snapshot::bounded")]
    pub(crate) appid: String<APPID_MAX>,
}

impl Profile {
    /// Nothing cached.
    pub(crate) const EMPTY: Profile = Profile {
        name: String::new(),
        avatar: String::new(),
        email: String::new(),
        openid: String::new(),
        appid: String::new(),
    };
}

/// A read-only view of the session, for hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionView<'a> {
    /// The user id (`sub`).
    pub uid: &'a str,
    /// The access token, for the host's own calls to CloudBase services.
    pub access_token: &'a str,
    /// The `Authorization` scheme (`Bearer`).
    pub token_type: &'a str,
    /// When the access token expires (host milliseconds).
    pub expires_at_ms: u64,
    /// When the engine will refresh it (host milliseconds).
    pub refresh_at_ms: u64,
    /// Whether the session can be refreshed at all.
    pub refreshable: bool,
}

/// A read-only view of the signed-in user, for hosts (`getUserInfo`'s `user`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct UserView<'a> {
    /// CloudBase user id.
    pub uid: &'a str,
    /// Nickname (empty when unknown).
    pub nick_name: &'a str,
    /// Avatar URL (empty when unknown).
    pub avatar_url: &'a str,
    /// E-mail (empty when unknown).
    pub email: &'a str,
    /// WeChat openid (empty unless a WeChat identity is known).
    pub openid: &'a str,
}
