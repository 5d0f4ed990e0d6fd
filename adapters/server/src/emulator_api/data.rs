//! The whole store (admin): export, import, reset.

use super::{require_admin, require_admin_change};
use crate::error::{ApiError, json_response};
use crate::request::{parse_json, read_body_up_to};
use crate::state::{AppState, internal, store_failed, unix_now};
use crate::transfer::{self, Export, ImportError};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse as _, Response};
use serde_json::json;
use std::sync::Arc;

/// Largest import document accepted (about 100,000 WeChat users).
const IMPORT_LIMIT: usize = 32 * 1024 * 1024;

/// `DELETE /emulator/v1/data` (admin): every user, session and code; `{}`.
pub(super) async fn reset(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let result = async {
        require_admin_change(&state, &headers)?;
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

/// `GET /emulator/v1/export` (admin): the export document.
pub(super) async fn export(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
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

/// `POST /emulator/v1/import` (admin): an export document, checked as `--import`
/// checks it and imported in one transaction; `{"imported": N}`. A refused document
/// is answered 400 `invalid_argument` listing every problem, and nothing is written.
pub(super) async fn import(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    request: Request,
) -> Response {
    let result = async {
        require_admin_change(&state, &headers)?;
        let body = read_body_up_to(&headers, request.into_body(), IMPORT_LIMIT).await?;
        let doc: Export = parse_json(&body)?;
        let imported = transfer::import_doc(state.store.as_ref(), &doc, unix_now())
            .await
            .map_err(|e| match e {
                ImportError::Store(e) => {
                    // A conflict the store found (a concurrent sign-in) or a real failure.
                    tracing::warn!(error = %e, "admin import refused by the store");
                    ApiError::failed_precondition(
                        "the store refused the import; nothing was imported (see the server log)",
                    )
                }
                other => ApiError::invalid_argument(other.to_string()),
            })?;
        for user in &doc.users {
            state.envs.imported(&user.env);
        }
        tracing::info!(users = imported, "users imported (admin)");
        Ok::<_, ApiError>(json_response(
            StatusCode::OK,
            &json!({"imported": imported}),
        ))
    }
    .await;
    result.unwrap_or_else(|e| e.into_response())
}
