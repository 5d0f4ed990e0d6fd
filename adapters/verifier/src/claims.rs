//! The claims a verified access token carries (§4 of docs/wire.md), typed.

use cloudbase_auth_core::wire::SCOPE_ANONYMOUS;
use serde::Deserialize;

/// How the caller signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoginKind {
    /// An anonymous session (`scope` `anonymous`).
    Anonymous,
    /// A WeChat (Mini Program) user: any other scope.
    WeChat,
}

/// Who is calling: the claims of a verified access token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Claims {
    /// The user id (`sub`), stable for the user across sessions.
    pub uid: String,
    /// The env the token was issued for (`aud`), the verifier's env.
    pub env: String,
    /// How the user signed in.
    pub login: LoginKind,
    /// The user's openid in the Mini Program, where the token carries one.
    pub openid: Option<String>,
    /// The user's WeChat unionid, where the token carries one.
    pub unionid: Option<String>,
    /// The raw `scope` claim.
    pub scope: String,
    /// Issue time, Unix seconds (0 when absent).
    pub issued_at: u64,
    /// Expiry, Unix seconds.
    pub expires_at: u64,
}

/// The claims read from the token. `sub`, `aud`, `iss` and `exp` are required and
/// checked (with `nbf`) by jsonwebtoken's validation, which names a missing one; the
/// defaults here only let that check speak first.
#[derive(Deserialize)]
pub(crate) struct RawClaims {
    #[serde(default)]
    sub: String,
    #[serde(default)]
    aud: String,
    #[serde(default)]
    exp: u64,
    #[serde(default)]
    iat: u64,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    meta: Option<Meta>,
}

#[derive(Deserialize)]
struct Meta {
    #[serde(rename = "wxOpenId", default)]
    wx_open_id: Option<String>,
    #[serde(rename = "wxUnionId", default)]
    wx_union_id: Option<String>,
}

impl Claims {
    pub(crate) fn from_raw(raw: RawClaims) -> Self {
        let (openid, unionid) = raw
            .meta
            .map_or((None, None), |m| (m.wx_open_id, m.wx_union_id));
        Self {
            uid: raw.sub,
            env: raw.aud,
            login: if raw.scope == SCOPE_ANONYMOUS {
                LoginKind::Anonymous
            } else {
                LoginKind::WeChat
            },
            openid: openid.filter(|o| !o.is_empty()),
            unionid: unionid.filter(|u| !u.is_empty()),
            scope: raw.scope,
            issued_at: raw.iat,
            expires_at: raw.exp,
        }
    }
}
