//! Turning store records into CloudBase replies (the core's `Credentials` and `User`)
//! and access-token claims.

use super::config::ServeConfig;
use super::error::{ApiError, json_response};
use super::jwt::{self, AccessClaims, ClaimsMeta};
use super::secrets::{OpaqueToken, new_id};
use super::state::{AppState, internal, unix_now};
use super::store::UserRecord;
use axum::http::StatusCode;
use axum::response::Response;
use cloudbase_auth_core::wire::{
    Credentials, ProviderIdentity, SCOPE_ANONYMOUS, SCOPE_USER, TOKEN_TYPE_BEARER as TOKEN_TYPE,
    User, UserGroup,
};
use std::time::{Duration, UNIX_EPOCH};

/// `name` of anonymous users (the SDK's v3 layer reads it as "is anonymous").
const ANONYMOUS_NAME: &str = "anonymous";
/// `providers[].name` of a Mini Program identity.
const WECHAT_PROVIDER_NAME: &str = "WeChat Mini Program";
/// `provider_type` claim of a Mini Program user (Tencent's provider type name).
const WECHAT_PROVIDER_TYPE: &str = "WX_MICRO_APP";

fn scope_of(user: &UserRecord) -> &'static str {
    if user.anonymous {
        SCOPE_ANONYMOUS
    } else {
        SCOPE_USER
    }
}

/// Copies `s` into a core string of capacity `N`. Our values always fit; if one ever
/// did not, the client gets a 500 rather than a truncated token.
pub(crate) fn fit<const N: usize>(s: &str) -> Result<heapless::String<N>, ApiError> {
    heapless::String::try_from(s).map_err(|_| {
        internal(
            "fitting a reply value",
            &format_args!("value of {} bytes exceeds core capacity {N}", s.len()),
        )
    })
}

/// The access-token claims for `user` in session family `family`, with the issuer and
/// lifetime of `config`.
pub(crate) fn claims_for(
    config: &ServeConfig,
    user: &UserRecord,
    family: &str,
    now: u64,
    jti: String,
) -> AccessClaims {
    let scope = scope_of(user);
    let wechat = user.identities.first();
    AccessClaims {
        iss: config.issuer.clone(),
        sub: user.uid.clone(),
        aud: user.env.clone(),
        exp: now.saturating_add(config.access_token_ttl.as_secs()),
        iat: now,
        jti,
        scope: scope.to_owned(),
        groups: vec![scope.to_owned()],
        name: if user.anonymous { ANONYMOUS_NAME } else { "" }.to_owned(),
        provider: match wechat {
            Some(id) if !user.anonymous => id.appid.clone(),
            _ => ANONYMOUS_NAME.to_owned(),
        },
        provider_type: wechat
            .filter(|_| !user.anonymous)
            .map(|_| WECHAT_PROVIDER_TYPE.to_owned()),
        meta: wechat.map(|id| ClaimsMeta {
            wx_open_id: Some(id.openid.clone()),
            wx_union_id: id.unionid.clone(),
        }),
        user_id: user.uid.clone(),
        project_id: user.env.clone(),
        roles: Vec::new(),
        user_type: if user.anonymous { "anonymous" } else { "user" }.to_owned(),
        client_type: "client_user".to_owned(),
        is_system_admin: false,
        sid: family.to_owned(),
    }
}

/// The credentials reply: a fresh access token plus `refresh`.
pub(crate) fn credentials(
    state: &AppState,
    user: &UserRecord,
    family: &str,
    refresh: &OpaqueToken,
) -> Result<Response, ApiError> {
    let now = u64::try_from(unix_now()).unwrap_or(0);
    let jti = new_id().map_err(|e| internal("random", &e))?;
    let claims = claims_for(&state.config, user, family, now, jti);
    let keys = state.keys.current();
    let signer = keys.signer(unix_now()).ok_or_else(|| {
        internal(
            "signing",
            &"no signing key opens with the key-encryption key",
        )
    })?;
    let access = jwt::sign(signer, &claims).map_err(|e| internal("signing", &e))?;
    let scope = scope_of(user);
    let mut c = Credentials::default();
    c.token_type = fit(TOKEN_TYPE)?;
    c.access_token = fit(&access)?;
    c.refresh_token = Some(fit(refresh.as_str())?);
    c.expires_in = state.config.access_token_ttl.as_secs();
    c.scope = fit(scope)?;
    c.sub = fit(&user.uid)?;
    c.groups
        .push(fit(scope)?)
        .map_err(|_| internal("building groups", &"no room"))?;
    Ok(json_response(StatusCode::OK, &c))
}

fn rfc3339(secs: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap_or(0));
    humantime::format_rfc3339_seconds(t).to_string()
}

/// The `user/me` reply (§5).
pub(crate) fn user_reply(user: &UserRecord) -> Result<Response, ApiError> {
    let mut u = User::default();
    u.sub = fit(&user.uid)?;
    match &user.name {
        Some(name) => u.name = fit(name)?,
        None if user.anonymous => u.name = fit(ANONYMOUS_NAME)?,
        None => {}
    }
    if let Some(picture) = &user.picture {
        u.picture = fit(picture)?;
    }
    let mut group = UserGroup::default();
    group.id = fit(scope_of(user))?;
    let _ = u.groups.push(group);
    // The core holds at most PROVIDERS_MAX entries; a user never has more here.
    for id in &user.identities {
        let mut p = ProviderIdentity::new(fit(&id.appid)?, fit(&id.openid)?);
        p.name = fit(WECHAT_PROVIDER_NAME)?;
        if u.providers.push(p).is_err() {
            break;
        }
    }
    u.created_at = fit(&rfc3339(user.created_at))?;
    u.updated_at = fit(&rfc3339(user.updated_at))?;
    Ok(json_response(StatusCode::OK, &u))
}
