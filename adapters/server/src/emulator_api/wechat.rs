//! WeChat's side of the emulator: `GET /sns/jscode2session` as WeChat answers it, the
//! login code a test's stand-in `wx.login` mints, the console's code minting (admin)
//! and its list of recent exchanges (admin).

use super::{require_admin, require_admin_change};
use crate::error::{ApiError, json_response};
use crate::request::{parse_json, read_body};
use crate::secrets::{b64url, random_bytes};
use crate::state::{AppState, internal, store_failed};
use crate::wechat::{MintError, WeChatEmulator, errcode};
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse as _, Response};
use cloudbase_auth_server_api::{LoginCodeReply, LoginCodeRequest};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

fn wechat_error(code: i64) -> Response {
    let message = match code {
        errcode::MISSING_APPID => "appid missing",
        errcode::MISSING_SECRET => "appsecret missing",
        errcode::MISSING_CODE => "missing code",
        errcode::BAD_GRANT_TYPE => "invalid grant_type",
        errcode::BAD_APPID => "invalid appid",
        errcode::BAD_SECRET => "invalid appsecret",
        errcode::INVALID_CODE => "invalid code",
        errcode::CODE_USED => "code been used",
        errcode::QUOTA => "api minute-quota reach limit  mustslower  retry next minute",
        errcode::REQUIRE_GET => "require GET method",
        errcode::BLOCKED => "high risk user login blocked",
        _ => "system error",
    };
    let rid = random_bytes::<6>().map(|b| b64url(&b)).unwrap_or_default();
    // WeChat answers errors with HTTP 200 and a JSON body.
    json_response(
        StatusCode::OK,
        &json!({"errcode": code, "errmsg": format!("{message}, rid: {rid}")}),
    )
}

/// WeChat's code2Session contract (GET only, query parameters).
pub(super) async fn jscode2session(
    State(state): State<Arc<AppState>>,
    request: Request,
) -> Response {
    let Some(emulator) = &state.emulator else {
        return ApiError::not_found("no such endpoint").into_response();
    };
    if request.method() != axum::http::Method::GET {
        return wechat_error(errcode::REQUIRE_GET);
    }
    let params = Query::<HashMap<String, String>>::try_from_uri(request.uri())
        .map(|Query(p)| p)
        .unwrap_or_default();
    let get = |k: &str| params.get(k).map(String::as_str);
    match emulator
        .jscode2session(
            get("appid"),
            get("secret"),
            get("js_code"),
            get("grant_type"),
        )
        .await
    {
        Ok(exchanged) => {
            let session_key = match random_bytes::<16>() {
                Ok(b) => base64::Engine::encode(&base64::engine::general_purpose::STANDARD, b),
                Err(_) => return wechat_error(errcode::BUSY),
            };
            let mut reply = json!({"openid": exchanged.user.openid, "session_key": session_key});
            if let Some(unionid) = exchanged.user.unionid {
                reply["unionid"] = json!(unionid);
            }
            json_response(StatusCode::OK, &reply)
        }
        Err(code) => wechat_error(code),
    }
}

/// Mints a code for `req`, answered as [`LoginCodeReply`].
async fn mint(
    state: &AppState,
    emulator: &WeChatEmulator,
    req: &LoginCodeRequest,
) -> Result<Response, ApiError> {
    let (code, openid) = emulator
        .mint(
            &req.appid,
            req.openid.as_deref(),
            req.unionid.as_deref(),
            req.fault,
        )
        .await
        .map_err(|e| match e {
            // The oldest outstanding code expires within one code lifetime.
            MintError::Full => {
                ApiError::resource_exhausted(e.to_string(), state.config.wechat.emulator_code_ttl)
            }
            MintError::Random => internal("minting a code", &e),
            MintError::Store(e) => store_failed("minting a code", &e),
            MintError::UnknownApp => ApiError::provider_not_enabled(e.to_string()),
            MintError::BadAppid | MintError::BadOpenid => ApiError::invalid_argument(e.to_string()),
        })?;
    Ok(json_response(
        StatusCode::OK,
        &LoginCodeReply::new(code, openid),
    ))
}

/// `POST /emulator/v1/wechat/login-code` (what a stand-in `wx.login` calls):
/// [`LoginCodeRequest`] → [`LoginCodeReply`].
pub(super) async fn login_code(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    request: Request,
) -> Response {
    let Some(emulator) = &state.emulator else {
        return ApiError::not_found("no such endpoint").into_response();
    };
    let result = async {
        let body = read_body(&headers, request.into_body()).await?;
        let req: LoginCodeRequest = parse_json(&body)?;
        mint(&state, emulator, &req).await
    }
    .await;
    result.unwrap_or_else(|e| e.into_response())
}

/// `POST /emulator/v1/wechat/codes` (admin): the console's `wx.login` for a chosen
/// appid and openid; the same body and reply as the login-code route.
pub(super) async fn mint_code(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    request: Request,
) -> Response {
    let Some(emulator) = &state.emulator else {
        return ApiError::not_found("no such endpoint").into_response();
    };
    let result = async {
        require_admin_change(&state, &headers)?;
        let body = read_body(&headers, request.into_body()).await?;
        let req: LoginCodeRequest = parse_json(&body)?;
        let reply = mint(&state, emulator, &req).await?;
        tracing::info!(appid = %req.appid, "wx.login code minted from the console");
        Ok::<_, ApiError>(reply)
    }
    .await;
    result.unwrap_or_else(|e| e.into_response())
}

/// `GET /emulator/v1/wechat/exchanges` (admin): `{"exchanges": [{at, appid, openid,
/// errcode}]}`, newest first.
pub(super) async fn exchanges(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let Some(emulator) = &state.emulator else {
        return ApiError::not_found("no such endpoint").into_response();
    };
    match require_admin(&state, &headers) {
        Ok(()) => json_response(
            StatusCode::OK,
            &json!({"exchanges": emulator.recent_exchanges()}),
        ),
        Err(e) => e.into_response(),
    }
}
