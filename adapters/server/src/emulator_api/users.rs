//! Users (admin): the paged search of the console's table, one user with its live
//! sessions, profile edits, disable / enable, revoking every session, delete.

use super::{require_admin, require_admin_change};
use crate::auth_api::check_profile;
use crate::error::{ApiError, json_response};
use crate::request::{parse_json, read_body};
use crate::state::{AppState, store_failed, unix_now};
use crate::store::{UserQuery, UserRecord};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse as _, Response};
use cloudbase_auth_core::capacity::UID_MAX;
use cloudbase_auth_core::wire::is_token_safe;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

/// Largest page of [`super::USERS_PATH`].
pub(crate) const PAGE_MAX: usize = 500;
/// Longest search text.
const SEARCH_MAX: usize = 128;

fn answer(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(|e| e.into_response())
}

/// A uid from the path or the query: well formed, else 400.
fn checked_uid(uid: &str) -> Result<&str, ApiError> {
    if uid.is_empty() || uid.len() > UID_MAX || !is_token_safe(uid) {
        return Err(ApiError::invalid_argument("not a uid"));
    }
    Ok(uid)
}

fn no_user() -> ApiError {
    ApiError::not_found("no such user")
}

/// `GET /emulator/v1/users` (admin). Without `limit`: `{"users": [...]}`, every user
/// oldest first (`env=ID` keeps one env's). With `limit=1..=500`: one page ordered by
/// uid, after `after=UID`, matching `q=TEXT` (a uid prefix, an exact openid or an exact
/// nickname) when given: `{"users": [...], "next_after": UID | null}`.
pub(super) async fn list(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    answer(
        async {
            require_admin(&state, &headers)?;
            let params = Query::<HashMap<String, String>>::try_from_uri(&uri)
                .map(|Query(p)| p)
                .map_err(|_| ApiError::invalid_argument("malformed query string"))?;
            let Some(limit) = params.get("limit") else {
                if params.contains_key("q") || params.contains_key("after") {
                    return Err(ApiError::invalid_argument("q and after need limit"));
                }
                let mut users = state
                    .store
                    .list_users()
                    .await
                    .map_err(|e| store_failed("listing users", &e))?;
                if let Some(env) = params.get("env") {
                    users.retain(|u| &u.env == env);
                }
                return Ok(json_response(StatusCode::OK, &json!({"users": users})));
            };
            if params.contains_key("env") {
                return Err(ApiError::invalid_argument(
                    "env cannot be combined with limit",
                ));
            }
            let limit = limit
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=PAGE_MAX).contains(n))
                .ok_or_else(|| {
                    ApiError::invalid_argument(format!("limit must be 1..={PAGE_MAX}"))
                })?;
            let after = params
                .get("after")
                .map(|a| checked_uid(a).map(str::to_owned))
                .transpose()?;
            let text = params.get("q").map(|q| q.trim()).filter(|q| !q.is_empty());
            if let Some(q) = text
                && (q.len() > SEARCH_MAX || q.chars().any(char::is_control))
            {
                return Err(ApiError::invalid_argument(format!(
                    "q must be at most {SEARCH_MAX} bytes of visible text"
                )));
            }
            // One more than asked: whether a next page exists.
            let query = UserQuery::new(text.map(str::to_owned), after, limit + 1);
            let mut users = state
                .store
                .search_users(&query)
                .await
                .map_err(|e| store_failed("searching users", &e))?;
            let next_after = if users.len() > limit {
                users.truncate(limit);
                users.last().map(|u| u.uid.clone())
            } else {
                None
            };
            Ok(json_response(
                StatusCode::OK,
                &json!({"users": users, "next_after": next_after}),
            ))
        }
        .await,
    )
}

/// `GET /emulator/v1/users/{uid}` (admin): `{"user": {...}, "sessions": [{id,
/// device_id, created_at, last_used_at}]}`.
pub(super) async fn detail(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(uid): Path<String>,
) -> Response {
    answer(
        async {
            require_admin(&state, &headers)?;
            let (user, sessions) = state
                .store
                .user_detail(checked_uid(&uid)?, unix_now())
                .await
                .map_err(|e| store_failed("loading a user", &e))?
                .ok_or_else(no_user)?;
            Ok(json_response(
                StatusCode::OK,
                &json!({"user": user, "sessions": sessions}),
            ))
        }
        .await,
    )
}

/// The body of a profile edit (the same fields and rules as `user/profile`).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileEdit {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    picture: Option<String>,
}

/// `PATCH /emulator/v1/users/{uid}` (admin): `{"name"?, "picture"?}` → `{"user"}`.
pub(super) async fn edit_profile(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(uid): Path<String>,
    request: Request,
) -> Response {
    answer(
        async {
            require_admin_change(&state, &headers)?;
            let uid = checked_uid(&uid)?;
            let body = read_body(&headers, request.into_body()).await?;
            let edit: ProfileEdit = parse_json(&body)?;
            check_profile(edit.name.as_deref(), edit.picture.as_deref())?;
            let user = state
                .store
                .update_profile(
                    uid,
                    edit.name.as_deref(),
                    edit.picture.as_deref(),
                    unix_now(),
                )
                .await
                .map_err(|e| store_failed("updating a profile", &e))?
                .ok_or_else(no_user)?;
            tracing::info!(uid, "profile edited (admin)");
            Ok(user_reply(&user))
        }
        .await,
    )
}

fn user_reply(user: &UserRecord) -> Response {
    json_response(StatusCode::OK, &json!({ "user": user }))
}

async fn set_disabled(
    state: &AppState,
    headers: &HeaderMap,
    uid: &str,
    disabled: bool,
) -> Result<Response, ApiError> {
    require_admin_change(state, headers)?;
    let uid = checked_uid(uid)?;
    let user = state
        .store
        .set_disabled(uid, disabled, unix_now())
        .await
        .map_err(|e| store_failed("disabling a user", &e))?
        .ok_or_else(no_user)?;
    tracing::info!(uid, disabled, "user disabled or enabled (admin)");
    Ok(user_reply(&user))
}

/// `POST /emulator/v1/users/{uid}/disable` (admin): `{"user"}` with `disabled_at`.
pub(super) async fn disable(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(uid): Path<String>,
) -> Response {
    answer(set_disabled(&state, &headers, &uid, true).await)
}

/// `POST /emulator/v1/users/{uid}/enable` (admin): `{"user"}` without `disabled_at`.
pub(super) async fn enable(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(uid): Path<String>,
) -> Response {
    answer(set_disabled(&state, &headers, &uid, false).await)
}

/// `DELETE /emulator/v1/users/{uid}/sessions` (admin): `{"revoked": N}`.
pub(super) async fn revoke_sessions(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(uid): Path<String>,
) -> Response {
    answer(
        async {
            require_admin_change(&state, &headers)?;
            let uid = checked_uid(&uid)?;
            let revoked = state
                .store
                .revoke_user_sessions(uid, unix_now())
                .await
                .map_err(|e| store_failed("revoking sessions", &e))?
                .ok_or_else(no_user)?;
            tracing::info!(uid, revoked, "sessions revoked (admin)");
            Ok(json_response(
                StatusCode::OK,
                &json!({ "revoked": revoked }),
            ))
        }
        .await,
    )
}

/// `DELETE /emulator/v1/users/{uid}` (admin): `{}`.
pub(super) async fn delete(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(uid): Path<String>,
) -> Response {
    answer(
        async {
            require_admin_change(&state, &headers)?;
            let uid = checked_uid(&uid)?;
            let deleted = state
                .store
                .delete_user(uid)
                .await
                .map_err(|e| store_failed("deleting a user", &e))?;
            if !deleted {
                return Err(no_user());
            }
            tracing::info!(uid, "user deleted (admin)");
            Ok(json_response(StatusCode::OK, &json!({})))
        }
        .await,
    )
}
