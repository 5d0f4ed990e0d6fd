//! The router: CloudBase endpoints from the core's table, health and JWKS, the
//! emulator routes and the browser demo at `/demo/` (emulated mode only), and the
//! middleware every request passes: CORS, a log line without secrets, and a deadline.

use super::auth_api;
use super::console;
use super::demo;
use super::emulator_api;
use super::error::{ApiError, json_response};
use super::state::AppState;
use axum::Router;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderName, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse as _, Response};
use axum::routing::{MethodFilter, get, on};
use cloudbase_auth_core::wire::{
    self, DEFAULT_API_PATH, Endpoint, HEADER_ACCEPT_LANGUAGE, HEADER_AUTHORIZATION,
    HEADER_CONTENT_TYPE, HEADER_DEVICE_ID, HEADER_METHOD_OVERRIDE, HEADER_REQUEST_ID,
    HEADER_SDK_VERSION,
};
pub use cloudbase_auth_server_api::JWKS_PATH;
use cloudbase_auth_server_api::{HEALTH_PATH, Health};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower_http::cors::{Any, CorsLayer};

/// Builds the whole application.
pub(crate) fn router(state: Arc<AppState>) -> Router {
    let mut app = Router::new();
    for endpoint in Endpoint::ALL {
        let filter = match endpoint.method() {
            wire::Method::Get => MethodFilter::GET,
            wire::Method::Post => MethodFilter::POST,
            // The Mini Program adapter sends PATCH as POST + x-http-method-override.
            wire::Method::Patch => MethodFilter::PATCH.or(MethodFilter::POST),
            wire::Method::Delete => MethodFilter::DELETE,
            _ => continue,
        };
        let path = format!("{DEFAULT_API_PATH}{}", endpoint.path());
        app = app.route(
            &path,
            on(
                filter,
                move |State(state): State<Arc<AppState>>,
                      ConnectInfo(peer): ConnectInfo<SocketAddr>,
                      request: Request| {
                    auth_api::handle(state, endpoint, peer, request)
                },
            ),
        );
    }
    app = app
        .route(
            HEALTH_PATH,
            get(|| async { json_response(StatusCode::OK, &Health::ok()) }),
        )
        .route(
            JWKS_PATH,
            get(|State(state): State<Arc<AppState>>| async move {
                json_response(
                    StatusCode::OK,
                    &state.keys.current().jwks(super::state::unix_now()),
                )
            }),
        );
    if state.emulator.is_some() {
        app = app
            .merge(emulator_api::routes())
            .merge(demo::routes())
            .merge(console::routes());
    }
    let deadline = state.config.request_timeout;
    app.fallback(|| async { ApiError::not_found("no such endpoint").into_response() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed().into_response() })
        .layer(middleware::from_fn_with_state(deadline, enforce_deadline))
        .layer(middleware::from_fn(log_request))
        .layer(cors())
        .with_state(state)
}

/// The request headers a CloudBase client sends (and CORS allows).
pub(crate) const CLIENT_HEADERS: [&str; 7] = [
    HEADER_AUTHORIZATION,
    HEADER_CONTENT_TYPE,
    HEADER_DEVICE_ID,
    HEADER_REQUEST_ID,
    HEADER_SDK_VERSION,
    HEADER_ACCEPT_LANGUAGE,
    HEADER_METHOD_OVERRIDE,
];

/// Browsers may call every endpoint from any origin; no cookies are involved.
fn cors() -> CorsLayer {
    let headers = CLIENT_HEADERS.map(HeaderName::from_static);
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers(headers)
        // `Retry-After` is not CORS-safelisted: a page could not read it otherwise.
        .expose_headers([
            HeaderName::from_static(HEADER_REQUEST_ID),
            axum::http::header::RETRY_AFTER,
        ])
        .max_age(Duration::from_secs(600))
}

async fn enforce_deadline(
    State(deadline): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    match tokio::time::timeout(deadline, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!("request deadline exceeded");
            ApiError::deadline_exceeded().into_response()
        }
    }
}

/// A request id is logged only if it looks like one (it is client-chosen text).
fn loggable_request_id(request: &Request) -> Option<String> {
    let id = request.headers().get(HEADER_REQUEST_ID)?.to_str().ok()?;
    (id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .then(|| id.to_owned())
}

/// One line per request: method, route (never the query string, which carries WeChat
/// secrets and codes, and never an unmatched path, which may carry anything), status,
/// milliseconds.
async fn log_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "<unmatched>".to_owned(), |p| p.as_str().to_owned());
    let request_id = loggable_request_id(&request);
    let response = next.run(request).await;
    tracing::info!(
        target: "cloudbase_auth::http",
        method = %method,
        route = %route,
        status = response.status().as_u16(),
        ms = started.elapsed().as_millis() as u64,
        request_id = request_id.as_deref().unwrap_or("-"),
        "request"
    );
    response
}
