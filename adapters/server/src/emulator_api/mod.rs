//! Routes mounted only in emulated WeChat mode (404 in real mode): WeChat's own
//! `GET /sns/jscode2session`, the code minting endpoint a test's stand-in `wx.login`
//! calls, and the admin routes behind the console (bearer admin token, compared in
//! constant time; docs/emulator.md lists every route with its request and reply).
//!
//! * `wechat`: WeChat's side (code2Session, login codes, recent exchanges);
//! * `users`: users (paged search, one user, profile, disable, sessions, delete);
//! * `data`: the whole store (export, import, reset).
//!
//! Every admin route that changes something also refuses requests another origin's page
//! sends (`same_origin`): the admin token lives in the console's `sessionStorage`,
//! and no other page may act with it.

mod data;
mod users;
mod wechat;

use super::error::ApiError;
use super::request::bearer;
use super::secrets::ct_eq;
use super::state::AppState;
use super::wechat::JSCODE2SESSION_PATH;
use axum::Router;
use axum::http::{HeaderMap, header};
use axum::routing::{any, delete, get, post};
use cloudbase_auth_server_api::LOGIN_CODE_PATH;
use std::sync::Arc;

/// `GET` (admin): every user, optionally `?env=ID`; with `?limit=N` one page of users
/// ordered by uid (`after=UID`, `q=TEXT`), and `next_after`.
pub const USERS_PATH: &str = "/emulator/v1/users";
/// `GET` (admin): one user with its live sessions; `PATCH`: its nickname and avatar;
/// `DELETE`: the user with its identities and sessions.
pub const USER_PATH: &str = "/emulator/v1/users/{uid}";
/// `POST` (admin): disables the user.
pub const USER_DISABLE_PATH: &str = "/emulator/v1/users/{uid}/disable";
/// `POST` (admin): enables the user again.
pub const USER_ENABLE_PATH: &str = "/emulator/v1/users/{uid}/enable";
/// `DELETE` (admin): revokes every session of the user.
pub const USER_SESSIONS_PATH: &str = "/emulator/v1/users/{uid}/sessions";
/// `POST` (admin): mints a `wx.login` code for an appid and openid.
pub const WECHAT_CODES_PATH: &str = "/emulator/v1/wechat/codes";
/// `GET` (admin): the recent `code2Session` exchanges, newest first.
pub const WECHAT_EXCHANGES_PATH: &str = "/emulator/v1/wechat/exchanges";
/// `DELETE` (admin): every user, session and code.
pub const DATA_PATH: &str = "/emulator/v1/data";
/// `GET` (admin): the export document (what `--import` reads).
pub const EXPORT_PATH: &str = "/emulator/v1/export";
/// `POST` (admin): imports an export document (as `--import` does).
pub const IMPORT_PATH: &str = "/emulator/v1/import";

/// The emulator's routes.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(JSCODE2SESSION_PATH, any(wechat::jscode2session))
        .route(LOGIN_CODE_PATH, post(wechat::login_code))
        .route(WECHAT_CODES_PATH, post(wechat::mint_code))
        .route(WECHAT_EXCHANGES_PATH, get(wechat::exchanges))
        .route(USERS_PATH, get(users::list))
        .route(
            USER_PATH,
            get(users::detail)
                .patch(users::edit_profile)
                .delete(users::delete),
        )
        .route(USER_DISABLE_PATH, post(users::disable))
        .route(USER_ENABLE_PATH, post(users::enable))
        .route(USER_SESSIONS_PATH, delete(users::revoke_sessions))
        .route(DATA_PATH, delete(data::reset))
        .route(EXPORT_PATH, get(data::export))
        .route(IMPORT_PATH, post(data::import))
}

/// Checks the bearer admin token (constant-time compare).
fn require_admin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let presented = bearer(headers)?;
    match &state.admin_token {
        Some(token) if ct_eq(token.as_bytes(), presented.as_bytes()) => Ok(()),
        _ => Err(ApiError::unauthenticated("admin token required")),
    }
}

/// The checks of an admin route that changes something: the admin token, and a request
/// from this server's own origin (or from no page at all, such as curl or a test).
fn require_admin_change(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    same_origin(headers)?;
    require_admin(state, headers)
}

/// Refuses a request a browser sent from a page of another origin: `Sec-Fetch-Site`
/// (sent by current browsers) must be `same-origin` or `none` (typed by the user), and
/// an `Origin` must name this server's own `Host`.
pub(crate) fn same_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    let refuse = || {
        ApiError::permission_denied("admin changes are accepted from this server's own pages only")
    };
    if let Some(site) = headers.get("sec-fetch-site") {
        let site = site.as_bytes();
        if site != b"same-origin" && site != b"none" {
            return Err(refuse());
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .ok_or_else(refuse)?;
        let origin = origin.to_str().map_err(|_| refuse())?;
        let own = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .is_some_and(|rest| rest.eq_ignore_ascii_case(host));
        if !own {
            return Err(refuse());
        }
    }
    Ok(())
}
