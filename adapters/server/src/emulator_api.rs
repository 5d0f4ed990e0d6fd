//! Routes mounted only in emulated WeChat mode: WeChat's own `GET /sns/jscode2session`,
//! the code minting endpoint a test's stand-in `wx.login` calls, and the admin routes
//! (list users, reset, export; bearer admin token).

use super::error::{ApiError, json_response};
use super::request::{bearer, parse_json, read_body};
use super::secrets::{b64url, ct_eq, random_bytes};
use super::state::{AppState, internal, store_failed};
use super::transfer;
use super::wechat::{JSCODE2SESSION_PATH, MintError, errcode};
use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse as _, Response};
use axum::routing::{any, delete, get, post};
use cloudbase_auth_server_api::{LOGIN_CODE_PATH, LoginCodeReply, LoginCodeRequest};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

/// `GET` (admin): users, optionally `?env=ID`.
pub const USERS_PATH: &str = "/emulator/v1/users";
/// `DELETE` (admin): every user, session and code.
pub const DATA_PATH: &str = "/emulator/v1/data";
/// `GET` (admin): the export document (what `--import` reads).
pub const EXPORT_PATH: &str = "/emulator/v1/export";

/// The emulator's routes.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(JSCODE2SESSION_PATH, any(jscode2session))
        .route(LOGIN_CODE_PATH, post(login_code))
        .route(USERS_PATH, get(list_users))
        .route(DATA_PATH, delete(reset))
        .route(EXPORT_PATH, get(export))
}

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
async fn jscode2session(State(state): State<Arc<AppState>>, request: Request) -> Response {
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

/// Mints a `wx.login` code ([`LOGIN_CODE_PATH`]): [`LoginCodeRequest`] →
/// [`LoginCodeReply`].
async fn login_code(
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
                MintError::Full => ApiError::resource_exhausted(
                    e.to_string(),
                    state.config.wechat.emulator_code_ttl,
                ),
                MintError::Random => internal("minting a code", &e),
                MintError::Store(e) => store_failed("minting a code", &e),
                MintError::UnknownApp => ApiError::provider_not_enabled(e.to_string()),
                MintError::BadAppid | MintError::BadOpenid => {
                    ApiError::invalid_argument(e.to_string())
                }
            })?;
        Ok::<_, ApiError>(json_response(
            StatusCode::OK,
            &LoginCodeReply::new(code, openid),
        ))
    }
    .await;
    result.unwrap_or_else(|e| e.into_response())
}

fn require_admin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let presented = bearer(headers)?;
    match &state.admin_token {
        Some(token) if ct_eq(token.as_bytes(), presented.as_bytes()) => Ok(()),
        _ => Err(ApiError::unauthenticated("admin token required")),
    }
}

async fn list_users(State(state): State<Arc<AppState>>, headers: HeaderMap, uri: Uri) -> Response {
    let result = async {
        require_admin(&state, &headers)?;
        let params = Query::<HashMap<String, String>>::try_from_uri(&uri)
            .map(|Query(p)| p)
            .map_err(|_| ApiError::invalid_argument("malformed query string"))?;
        let mut users = state
            .store
            .list_users()
            .await
            .map_err(|e| store_failed("listing users", &e))?;
        if let Some(env) = params.get("env") {
            users.retain(|u| &u.env == env);
        }
        Ok::<_, ApiError>(json_response(StatusCode::OK, &json!({"users": users})))
    }
    .await;
    result.unwrap_or_else(|e| e.into_response())
}

async fn reset(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let result = async {
        require_admin(&state, &headers)?;
        state
            .store
            .reset()
            .await
            .map_err(|e| store_failed("reset", &e))?;
        if let Some(emulator) = &state.emulator {
            emulator.clear();
        }
        tracing::info!("all users, sessions and codes deleted (admin reset)");
        Ok::<_, ApiError>(json_response(StatusCode::OK, &json!({})))
    }
    .await;
    result.unwrap_or_else(|e| e.into_response())
}

async fn export(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let result = async {
        require_admin(&state, &headers)?;
        let doc = transfer::export(state.store.as_ref())
            .await
            .map_err(|e| internal("export", &e))?;
        Ok::<_, ApiError>(json_response(StatusCode::OK, &doc))
    }
    .await;
    result.unwrap_or_else(|e| e.into_response())
}
