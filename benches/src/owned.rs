//! The baselines' types: the same replies and session as owned std structs
//! (`String`, `Vec`), read and written with serde_json, as a std client (or the
//! official SDK, which keeps JSON) does.

use cloudbase_auth_core::Engine;
use serde::{Deserialize, Serialize};

/// A credentials reply (docs/wire.md §4), every field owned.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Credentials {
    /// `Bearer`.
    #[serde(default)]
    pub token_type: Option<String>,
    /// The access token (a JWT).
    pub access_token: String,
    /// The refresh token.
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// Lifetime in seconds.
    pub expires_in: u64,
    /// `anonymous` or `user`.
    #[serde(default)]
    pub scope: Option<String>,
    /// The user id.
    #[serde(default)]
    pub sub: Option<String>,
    /// Group names.
    #[serde(default)]
    pub groups: Option<Vec<String>>,
}

/// A group entry of the user reply.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Group {
    /// Group id.
    pub id: String,
}

/// A provider identity of the user reply.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Provider {
    /// The Mini Program appId.
    pub id: String,
    /// The openid.
    pub provider_user_id: String,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
}

/// The `user/me` reply (docs/wire.md §5): the fields the core reads, owned.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct User {
    /// User id.
    #[serde(default)]
    pub sub: Option<String>,
    /// Nickname.
    #[serde(default)]
    pub name: Option<String>,
    /// Avatar URL.
    #[serde(default)]
    pub picture: Option<String>,
    /// E-mail.
    #[serde(default)]
    pub email: Option<String>,
    /// Phone number.
    #[serde(default)]
    pub phone_number: Option<String>,
    /// Username.
    #[serde(default)]
    pub username: Option<String>,
    /// Gender.
    #[serde(default)]
    pub gender: Option<String>,
    /// Groups.
    #[serde(default)]
    pub groups: Vec<Group>,
    /// Provider identities.
    #[serde(default)]
    pub providers: Vec<Provider>,
    /// Creation time.
    #[serde(default)]
    pub created_at: Option<String>,
    /// Last update.
    #[serde(default)]
    pub updated_at: Option<String>,
}

/// The stored tokens of a session, as the official SDK keeps them (its credentials
/// object with the deadlines added).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StoredCredentials {
    /// `Bearer`.
    pub token_type: String,
    /// The access token.
    pub access_token: String,
    /// The refresh token.
    pub refresh_token: Option<String>,
    /// When the access token expires (Unix ms).
    pub expires_at: u64,
    /// When to refresh it (Unix ms).
    pub refresh_at: u64,
    /// The user id.
    pub sub: String,
}

/// The cached profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StoredProfile {
    /// Nickname.
    pub name: String,
    /// Avatar URL.
    pub avatar_url: String,
    /// E-mail.
    pub email: String,
    /// WeChat openid.
    pub openid: String,
    /// The Mini Program appId of the openid.
    pub appid: String,
}

/// Everything the engine's snapshot holds, as one JSON document: the baseline of the
/// snapshot bench.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StoredSession {
    /// The env id.
    pub env: String,
    /// `x-device-id`.
    pub device_id: String,
    /// The login state's name.
    pub login_state: String,
    /// The tokens.
    pub credentials: Option<StoredCredentials>,
    /// The profile.
    pub user: StoredProfile,
    /// The session generation.
    pub generation: u32,
    /// When it was saved (Unix ms).
    pub saved_at: u64,
}

impl StoredSession {
    /// What `engine` holds, saved at `saved_at` (Unix ms). The engine does not show its
    /// refresh token or the appId of the openid, so the caller gives them.
    pub fn of(engine: &Engine, refresh_token: &str, appid: &str, saved_at: u64) -> Self {
        let credentials = engine.session().map(|s| StoredCredentials {
            token_type: s.token_type.to_owned(),
            access_token: s.access_token.to_owned(),
            refresh_token: s.refreshable.then(|| refresh_token.to_owned()),
            expires_at: s.expires_at_ms,
            refresh_at: s.refresh_at_ms,
            sub: s.uid.to_owned(),
        });
        let user = engine.user();
        Self {
            env: engine.env().to_owned(),
            device_id: engine.device_id().to_owned(),
            login_state: format!("{:?}", engine.login_state()),
            credentials,
            user: StoredProfile {
                name: user.map(|u| u.nick_name.to_owned()).unwrap_or_default(),
                avatar_url: user.map(|u| u.avatar_url.to_owned()).unwrap_or_default(),
                email: user.map(|u| u.email.to_owned()).unwrap_or_default(),
                openid: user.map(|u| u.openid.to_owned()).unwrap_or_default(),
                appid: appid.to_owned(),
            },
            generation: engine.generation(),
            saved_at,
        }
    }
}
