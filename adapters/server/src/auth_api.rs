//! The CloudBase Auth endpoints of the core's table ([`Endpoint::ALL`]), as the
//! official SDK calls them. Request bodies are the core's request types; replies are
//! the core's reply types (see `replies`).
//!
//! `signin/wechat/noauth` (the SDK's `signInWithWechat(params)`, which passes the
//! caller's params verbatim) takes `{provider_token}` from `provider/token` exactly like
//! `signin/with/provider`. Without one it answers 400 `invalid_argument` saying so: this
//! server has no WeChat web-OAuth flow that could sign in from nothing.
//!
//! `user/profile` (`PATCH`) stores `name` and `picture` (other fields the SDK may pass
//! are ignored) and answers with the updated user; `DELETE user/me` deletes the user
//! with its identities and every session family, so every device is signed out.
//!
//! `token/introspect` is for a Mini Program's own backend, not the SDK: the claims of a
//! live access token, `{}` for any other (§3.1 of docs/wire.md).

use super::error::{ApiError, json_response};
use super::jwt::{self, AccessClaims, Expiry};
use super::replies;
use super::request::{bearer, client_id, device_id, parse_json, query_param, read_body};
use super::secrets::{self, OpaqueToken, hash_token};
use super::state::{AppState, internal, store_failed, unix_now};
use super::store::{
    BindOutcome, Identity, NewFamily, ProviderGrant, Rotation, Successor, UserRecord,
};
use super::wechat::WxError;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use cloudbase_auth_core::capacity::{AVATAR_MAX, NAME_MAX, PROVIDER_TOKEN_MAX, REFRESH_TOKEN_MAX};
use cloudbase_auth_core::wire::{
    AnonymousSignInRequest, Endpoint, GRANT_REFRESH_TOKEN, HEADER_METHOD_OVERRIDE, IntrospectReply,
    PROVIDER_CODE_TYPE_OPEN_ID, ProfileUpdateRequest, ProviderTokenBody, ProviderTokenReply,
    ProviderTokenRequest, RefreshRequest, RevokeRequest, TOKEN_PARAM, TOKEN_TYPE_BEARER,
    is_token_safe,
};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

fn empty_object() -> Response {
    json_response(StatusCode::OK, &serde_json::json!({}))
}

/// Answers one request to `endpoint`.
pub(crate) async fn handle(
    state: Arc<AppState>,
    endpoint: Endpoint,
    peer: SocketAddr,
    request: Request,
) -> Response {
    match dispatch(&state, endpoint, peer, request).await {
        Ok(response) => response,
        Err(error) => {
            use axum::response::IntoResponse as _;
            error.into_response()
        }
    }
}

fn is_sign_in(endpoint: Endpoint) -> bool {
    matches!(
        endpoint,
        Endpoint::SignInAnonymously
            | Endpoint::ProviderToken
            | Endpoint::SignInWithProvider
            | Endpoint::SignInWeChatNoAuth
    )
}

async fn dispatch(
    state: &AppState,
    endpoint: Endpoint,
    peer: SocketAddr,
    request: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    if is_sign_in(endpoint) {
        rate_limit(state, peer, headers)?;
    }
    let query_client = client_id(&parts.uri)?;
    let body = read_body(headers, body).await?;
    match endpoint {
        Endpoint::SignInAnonymously => {
            let env = state.envs.for_sign_in(&required_client_id(query_client)?)?;
            sign_in_anonymously(state, &env, headers, parse_json(&body)?).await
        }
        Endpoint::ProviderToken => {
            let env = state.envs.for_sign_in(&required_client_id(query_client)?)?;
            provider_token(state, &env, parse_json(&body)?).await
        }
        Endpoint::SignInWithProvider => {
            let env = state.envs.for_sign_in(&required_client_id(query_client)?)?;
            let request: ProviderTokenBody<String> = parse_json(&body)?;
            sign_in_with_provider(state, &env, headers, &request.provider_token).await
        }
        Endpoint::SignInWeChatNoAuth => {
            let env = state.envs.for_sign_in(&required_client_id(query_client)?)?;
            let request: ProviderTokenBody<String> = parse_json(&body).map_err(|_| {
                ApiError::invalid_argument(
                    "signin/wechat/noauth needs {\"provider_token\"} from provider/token; \
                     this server has no WeChat web OAuth",
                )
            })?;
            sign_in_with_provider(state, &env, headers, &request.provider_token).await
        }
        Endpoint::Token => refresh(state, query_client, parse_json(&body)?).await,
        Endpoint::UserMe => {
            let (_, user) = signed_in(state, headers).await?;
            replies::user_reply(&user)
        }
        Endpoint::Revoke => {
            let env = required_client_id(query_client)?;
            state.envs.served(&env)?;
            if !state.envs.exists(&env, state.store.as_ref()).await? {
                return Err(ApiError::invalid_argument(format!(
                    "env {env} does not exist on this server (an env is created by its first sign-in)"
                )));
            }
            let request: RevokeRequest<String> = parse_json(&body)?;
            revoke(state, &env, &request.token).await
        }
        Endpoint::UserSignOut => {
            // A disabled user may still end its session.
            let (claims, _) = signed_in_even_disabled(state, headers).await?;
            // `{redirect_uri?, state?}`: any JSON object; nothing to redirect to here.
            let params: serde_json::Value = parse_json(&body)?;
            if !params.is_object() {
                return Err(ApiError::invalid_argument("body must be a JSON object"));
            }
            state
                .store
                .revoke_family(&claims.sid, unix_now())
                .await
                .map_err(|e| store_failed("sign-out", &e))?;
            tracing::info!(uid = %claims.sub, "signed out");
            Ok(empty_object())
        }
        Endpoint::TokenIntrospect => {
            // HTTP-SKILL passes the token as `?token=`; the docs page as the bearer.
            let token = match query_param(&parts.uri, TOKEN_PARAM)? {
                Some(token) => token,
                None => bearer(headers)?.to_owned(),
            };
            introspect(state, query_client.as_deref(), &token).await
        }
        Endpoint::ProviderBind => {
            let (_, user) = signed_in(state, headers).await?;
            let request: ProviderTokenBody<String> = parse_json(&body)?;
            bind(state, &user, &request.provider_token).await
        }
        Endpoint::UserProfile => {
            // `POST` only as the Mini Program adapter sends `PATCH`: with the override.
            let overridden = headers
                .get(HEADER_METHOD_OVERRIDE)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"PATCH"));
            if parts.method == axum::http::Method::POST && !overridden {
                return Err(ApiError::method_not_allowed());
            }
            let (_, user) = signed_in(state, headers).await?;
            let request: ProfileUpdateRequest<String> = parse_json(&body)?;
            update_profile(state, &user, request).await
        }
        Endpoint::DeleteMe => {
            let (claims, user) = signed_in(state, headers).await?;
            let deleted = state
                .store
                .delete_user(&user.uid)
                .await
                .map_err(|e| store_failed("deleting a user", &e))?;
            if !deleted {
                return Err(ApiError::unauthenticated("session revoked or user deleted"));
            }
            tracing::info!(uid = %claims.sub, "user deleted");
            Ok(empty_object())
        }
        _ => Err(ApiError::unimplemented()),
    }
}

/// `user/profile`: checks the new nickname (`name`) and avatar URL (`picture`) against
/// the core's capacities, stores them, answers with the updated user as `user/me` does.
async fn update_profile(
    state: &AppState,
    user: &UserRecord,
    request: ProfileUpdateRequest<String>,
) -> Result<Response, ApiError> {
    let ProfileUpdateRequest { name, picture, .. } = request;
    check_profile(name.as_deref(), picture.as_deref())?;
    let updated = state
        .store
        .update_profile(&user.uid, name.as_deref(), picture.as_deref(), unix_now())
        .await
        .map_err(|e| store_failed("updating a profile", &e))?
        .ok_or_else(|| ApiError::unauthenticated("session revoked or user deleted"))?;
    tracing::info!(uid = %updated.uid, "profile updated");
    replies::user_reply(&updated)
}

/// Checks a new nickname (`name`) and avatar URL (`picture`) against the core's
/// capacities: at least one given, a nickname of visible text, an http(s) avatar URL.
/// The emulator console's profile edit applies the same rules.
pub(crate) fn check_profile(name: Option<&str>, picture: Option<&str>) -> Result<(), ApiError> {
    if name.is_none() && picture.is_none() {
        return Err(ApiError::invalid_argument(
            "nothing to update: give name and/or picture",
        ));
    }
    if let Some(name) = name {
        if name.len() > NAME_MAX {
            return Err(ApiError::invalid_argument(format!(
                "nickname too long (at most {NAME_MAX} bytes)"
            )));
        }
        if name.trim().is_empty() || name.chars().any(char::is_control) {
            return Err(ApiError::invalid_argument(
                "nickname is empty or has control characters",
            ));
        }
    }
    if let Some(picture) = picture {
        if picture.len() > AVATAR_MAX {
            return Err(ApiError::invalid_argument(format!(
                "picture URL too long (at most {AVATAR_MAX} bytes)"
            )));
        }
        let lower = picture.to_ascii_lowercase();
        let rest = lower
            .strip_prefix("https://")
            .or_else(|| lower.strip_prefix("http://"));
        let host = rest.and_then(|r| r.split(['/', '?', '#']).next());
        if host.is_none_or(str::is_empty)
            || picture
                .chars()
                .any(|c| c.is_control() || c.is_whitespace() || matches!(c, '"' | '\\' | '<' | '>'))
        {
            return Err(ApiError::invalid_argument(
                "picture must be an http:// or https:// URL",
            ));
        }
    }
    Ok(())
}

fn rate_limit(state: &AppState, peer: SocketAddr, headers: &HeaderMap) -> Result<(), ApiError> {
    let now = Instant::now();
    if let Err(wait) = state.ip_limit.allow(&peer.ip().to_string(), now) {
        tracing::warn!(ip = %peer.ip(), "sign-in rate limit (per IP) reached");
        return Err(ApiError::resource_exhausted(
            "too many sign-in requests from this address; slow down",
            wait,
        ));
    }
    if let Some(device) = device_id(headers)
        && let Err(wait) = state.device_limit.allow(device, now)
    {
        tracing::warn!("sign-in rate limit (per device) reached");
        return Err(ApiError::resource_exhausted(
            "too many sign-in requests from this device; slow down",
            wait,
        ));
    }
    Ok(())
}

fn required_client_id(client_id: Option<String>) -> Result<String, ApiError> {
    client_id
        .ok_or_else(|| ApiError::invalid_argument("missing client_id query parameter (the env id)"))
}

/// A fresh first refresh token and its family record, started from the device the
/// request names (`x-device-id`, kept only when it looks like an id).
fn new_family(state: &AppState, headers: &HeaderMap) -> Result<(NewFamily, OpaqueToken), ApiError> {
    let token = OpaqueToken::generate().map_err(|e| internal("random", &e))?;
    let now_millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let id = secrets::new_family_id(now_millis).map_err(|e| internal("random", &e))?;
    let expires = unix_now().saturating_add(ttl_secs(state.config.refresh_token_ttl));
    let device = device_id(headers)
        .filter(|d| d.len() <= DEVICE_ID_MAX && is_token_safe(d))
        .map(str::to_owned);
    Ok((
        NewFamily::new(id, token.hash(), expires).with_device_id(device),
        token,
    ))
}

/// Longest device id kept with a session.
const DEVICE_ID_MAX: usize = 128;

fn ttl_secs(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

fn new_uid() -> Result<String, ApiError> {
    secrets::new_uid().map_err(|e| internal("random", &e))
}

async fn sign_in_anonymously(
    state: &AppState,
    env: &str,
    headers: &HeaderMap,
    request: AnonymousSignInRequest<String>,
) -> Result<Response, ApiError> {
    // `signInAnonymouslyInWx` sends a provider token: it must be valid, but an
    // anonymous user stays anonymous (binding is `user/provider/bind`'s job).
    if let Some(token) = &request.provider_token {
        take_grant(state, env, token).await?;
    }
    let now = unix_now();
    let user = UserRecord::new(new_uid()?, env.to_owned(), true, now);
    let (family, refresh) = new_family(state, headers)?;
    state
        .store
        .create_anonymous(&user, &family, now)
        .await
        .map_err(|e| store_failed("anonymous sign-in", &e))?;
    state.envs.signed_in(env);
    tracing::info!(uid = %user.uid, env, "anonymous sign-in");
    replies::credentials(state, &user, &family.id, &refresh)
}

async fn provider_token(
    state: &AppState,
    env: &str,
    request: ProviderTokenRequest<String>,
) -> Result<Response, ApiError> {
    let params = &request.provider_params;
    if params.provider_code_type != PROVIDER_CODE_TYPE_OPEN_ID {
        return Err(ApiError::invalid_argument(format!(
            "provider_code_type `{}` is not supported here (only `{PROVIDER_CODE_TYPE_OPEN_ID}`)",
            params.provider_code_type
        )));
    }
    let appid = params.appid.as_str();
    if request.provider_id != appid {
        return Err(ApiError::invalid_argument(
            "provider_id must be the Mini Program appid (the same as provider_params.appid)",
        ));
    }
    if !super::config::is_valid_appid(appid) {
        return Err(ApiError::invalid_argument(
            "appid is not a valid Mini Program appid",
        ));
    }
    let code = request.provider_code.as_str();
    if code.len() > PROVIDER_TOKEN_MAX || !is_token_safe(code) {
        return Err(ApiError::invalid_grant(
            "provider_code is not a wx.login code",
        ));
    }
    let wx = state
        .wechat
        .exchange(appid, code)
        .await
        .map_err(|e| match e {
            WxError::BadCode(_) => ApiError::invalid_grant(e.to_string()),
            WxError::RateLimited => {
                ApiError::resource_exhausted(e.to_string(), WxError::QUOTA_WINDOW)
            }
            WxError::UnknownApp => ApiError::provider_not_enabled(format!(
                "Mini Program {appid} is not configured on this server"
            )),
            WxError::Misconfigured(_) | WxError::Busy | WxError::Upstream(_) => {
                tracing::warn!(error = %e, "code2Session failed");
                ApiError::unavailable(e.to_string())
            }
        })?;
    let token = OpaqueToken::generate().map_err(|e| internal("random", &e))?;
    let ttl = state.config.provider_token_ttl;
    let grant = ProviderGrant::new(
        env.to_owned(),
        Identity::new(appid.to_owned(), wx.openid, wx.unionid),
        unix_now().saturating_add(ttl_secs(ttl)),
    );
    state
        .store
        .put_provider_grant(&token.hash(), &grant)
        .await
        .map_err(|e| store_failed("storing a provider token", &e))?;
    let mut reply = ProviderTokenReply::default();
    reply.provider_token = heapless::String::try_from(token.as_str())
        .map_err(|_| internal("provider token", &"exceeds capacity"))?;
    reply.expires_in = ttl.as_secs();
    tracing::info!(env, appid, "WeChat code exchanged");
    Ok(json_response(StatusCode::OK, &reply))
}

/// Takes a provider token of `env` once (a token of another env stays usable there).
async fn take_grant(state: &AppState, env: &str, token: &str) -> Result<ProviderGrant, ApiError> {
    let invalid = || ApiError::invalid_grant("provider token invalid, expired or already used");
    if token.len() > PROVIDER_TOKEN_MAX || !is_token_safe(token) {
        return Err(invalid());
    }
    state
        .store
        .take_provider_grant(&hash_token(token), env, unix_now())
        .await
        .map_err(|e| store_failed("reading a provider token", &e))?
        .ok_or_else(invalid)
}

async fn sign_in_with_provider(
    state: &AppState,
    env: &str,
    headers: &HeaderMap,
    token: &str,
) -> Result<Response, ApiError> {
    let grant = take_grant(state, env, token).await?;
    let (family, refresh) = new_family(state, headers)?;
    let user = state
        .store
        .sign_in_identity(env, &grant.identity, &new_uid()?, &family, unix_now())
        .await
        .map_err(|e| store_failed("WeChat sign-in", &e))?;
    if user.disabled_at.is_some() {
        tracing::info!(uid = %user.uid, env, "WeChat sign-in of a disabled user refused");
        return Err(ApiError::user_blocked());
    }
    state.envs.signed_in(env);
    tracing::info!(uid = %user.uid, env, "WeChat sign-in");
    replies::credentials(state, &user, &family.id, &refresh)
}

async fn refresh(
    state: &AppState,
    query_client: Option<String>,
    request: RefreshRequest<String>,
) -> Result<Response, ApiError> {
    if request.grant_type != GRANT_REFRESH_TOKEN {
        return Err(ApiError::invalid_argument(format!(
            "grant_type must be `{GRANT_REFRESH_TOKEN}`"
        )));
    }
    if query_client
        .as_deref()
        .is_some_and(|q| q != request.client_id)
    {
        return Err(ApiError::invalid_argument(
            "client_id in the query and in the body differ",
        ));
    }
    let env = request.client_id;
    state.envs.served(&env)?;
    let presented = request.refresh_token.as_str();
    // No refresh token of an env that does not exist can exist.
    if presented.len() > REFRESH_TOKEN_MAX
        || !is_token_safe(presented)
        || !state.envs.exists(&env, state.store.as_ref()).await?
    {
        return Err(ApiError::invalid_grant(
            "refresh token invalid, expired or revoked",
        ));
    }
    let next = OpaqueToken::generate().map_err(|e| internal("random", &e))?;
    let sealed = secrets::seal_successor(presented, &next)
        .ok_or_else(|| internal("sealing", &"successor is not 32 bytes"))?;
    let expires = unix_now().saturating_add(ttl_secs(state.config.refresh_token_ttl));
    let successor = Successor::new(next.hash(), sealed, expires);
    let grace = ttl_secs(state.config.refresh_grace);
    let rotation = state
        .store
        .rotate_refresh(&hash_token(presented), &env, &successor, unix_now(), grace)
        .await
        .map_err(|e| store_failed("refresh", &e))?;
    match rotation {
        Rotation::Rotated { family, user } => replies::credentials(state, &user, &family, &next),
        Rotation::Replayed {
            family,
            user,
            successor_hash,
            successor_sealed,
        } => {
            let same = secrets::unseal_successor(presented, &successor_sealed, &successor_hash)
                .ok_or_else(|| {
                    ApiError::invalid_grant("refresh token invalid, expired or revoked")
                })?;
            tracing::info!(uid = %user.uid, "refresh replayed within the grace window");
            replies::credentials(state, &user, &family, &same)
        }
        Rotation::UserDisabled => Err(ApiError::user_blocked()),
        Rotation::ReuseDetected => {
            tracing::warn!(env = %env, "rotated refresh token reused after the grace window; session revoked");
            Err(ApiError::invalid_grant(
                "refresh token was already used; the session has been revoked",
            ))
        }
        _ => Err(ApiError::invalid_grant(
            "refresh token invalid, expired or revoked",
        )),
    }
}

/// Verifies an access token with the keys of the store: a kid this server does not know
/// yet (a key added by `keys rotate` since it last read them) makes it re-read them once.
async fn verify_token(
    state: &AppState,
    token: &str,
    now: u64,
    expiry: Expiry,
) -> Result<AccessClaims, jwt::JwtError> {
    let issuer = &state.config.issuer;
    let keys = state.keys.current();
    // Revocation (`Expiry::Ignore`) is rare and wants expired tokens too: never cached.
    let lookup = match expiry {
        Expiry::Enforce => match state.verified.get(keys.as_ref(), token, now) {
            Ok(claims) => return Ok(claims),
            Err(lookup) => Some(lookup),
        },
        Expiry::Ignore => None,
    };
    let verified = match jwt::verify_keyed(keys.as_ref(), issuer, token, now, expiry) {
        Err(jwt::JwtError::UnknownKey) if state.keys.reread_for_unknown_kid().await => {
            jwt::verify_keyed(state.keys.current().as_ref(), issuer, token, now, expiry)
        }
        verified => verified,
    };
    let (kid, claims) = verified?;
    if let Some(lookup) = lookup {
        state.verified.insert(lookup, kid, &claims);
    }
    Ok(claims)
}

/// Verifies the bearer access token and loads its live session's user, who must not be
/// disabled.
async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(AccessClaims, UserRecord), ApiError> {
    let (claims, user) = signed_in_even_disabled(state, headers).await?;
    if user.disabled_at.is_some() {
        return Err(ApiError::user_blocked());
    }
    Ok((claims, user))
}

/// Verifies the bearer access token and loads its live session's user.
async fn signed_in_even_disabled(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(AccessClaims, UserRecord), ApiError> {
    let token = bearer(headers)?;
    let now = u64::try_from(unix_now()).unwrap_or(0);
    let claims = verify_token(state, token, now, Expiry::Enforce)
        .await
        .map_err(|e| ApiError::unauthenticated(e.to_string()))?;
    // The same rule as for a `client_id`: the token's env must be served here.
    state.envs.served(&claims.aud)?;
    let user = session_user(state, &claims)
        .await?
        .ok_or_else(|| ApiError::unauthenticated("session revoked or user deleted"))?;
    Ok((claims, user))
}

/// The user of the live session `claims` name, if the session is live (not signed out,
/// not revoked, its user not deleted). In an env that does not exist no session does
/// either, so the store is not asked.
async fn session_user(
    state: &AppState,
    claims: &AccessClaims,
) -> Result<Option<UserRecord>, ApiError> {
    if !state.envs.exists(&claims.aud, state.store.as_ref()).await? {
        return Ok(None);
    }
    Ok(state
        .store
        .session_user(&claims.sid)
        .await
        .map_err(|e| store_failed("loading a session", &e))?
        .filter(|u| u.uid == claims.sub && u.env == claims.aud))
}

/// `token/introspect`: the claims of a live access token, `{}` for any other (expired,
/// signed out, forged, of an env not served here, or of another `client_id` than the
/// one asked about), as CloudBase documents. Only a store failure is an error.
async fn introspect(
    state: &AppState,
    client: Option<&str>,
    token: &str,
) -> Result<Response, ApiError> {
    let now = u64::try_from(unix_now()).unwrap_or(0);
    let Ok(claims) = verify_token(state, token, now, Expiry::Enforce).await else {
        return Ok(empty_object());
    };
    if client.is_some_and(|c| c != claims.aud) || state.envs.served(&claims.aud).is_err() {
        return Ok(empty_object());
    }
    // A disabled user's token is not live.
    let Some(user) = session_user(state, &claims)
        .await?
        .filter(|u| u.disabled_at.is_none())
    else {
        return Ok(empty_object());
    };
    let mut reply = IntrospectReply::default();
    reply.token_type = replies::fit(TOKEN_TYPE_BEARER)?;
    reply.client_id = replies::fit(&user.env)?;
    reply.sub = replies::fit(&user.uid)?;
    reply.scope = replies::fit(&claims.scope)?;
    reply.exp = claims.exp;
    reply.iat = claims.iat;
    Ok(json_response(StatusCode::OK, &reply))
}

async fn revoke(state: &AppState, env: &str, token: &str) -> Result<Response, ApiError> {
    // RFC 7009: unknown or foreign tokens are not an error; nothing is revoked.
    let family = if token.contains('.') {
        let now = u64::try_from(unix_now()).unwrap_or(0);
        verify_token(state, token, now, Expiry::Ignore)
            .await
            .ok()
            .filter(|c| c.aud == env)
            .map(|c| c.sid)
    } else if token.len() <= REFRESH_TOKEN_MAX && is_token_safe(token) {
        state
            .store
            .family_of_refresh(&hash_token(token), env)
            .await
            .map_err(|e| store_failed("revoke", &e))?
    } else {
        None
    };
    if let Some(family) = family {
        let revoked = state
            .store
            .revoke_family(&family, unix_now())
            .await
            .map_err(|e| store_failed("revoke", &e))?;
        if revoked {
            tracing::info!(env, "session revoked");
        }
    }
    Ok(empty_object())
}

async fn bind(state: &AppState, user: &UserRecord, token: &str) -> Result<Response, ApiError> {
    let grant = take_grant(state, &user.env, token).await?;
    let outcome = state
        .store
        .bind_identity(&user.uid, &user.env, &grant.identity, unix_now())
        .await
        .map_err(|e| store_failed("bind", &e))?;
    match outcome {
        BindOutcome::Bound => {
            tracing::info!(uid = %user.uid, appid = %grant.identity.appid, "WeChat identity bound");
            Ok(empty_object())
        }
        BindOutcome::BoundElsewhere => Err(ApiError::already_exists(
            "this WeChat user is already bound to another account",
        )),
        BindOutcome::AppAlreadyLinked => Err(ApiError::failed_precondition(
            "this account is already bound to another WeChat user of this Mini Program",
        )),
        _ => Err(ApiError::unauthenticated("session revoked or user deleted")),
    }
}
