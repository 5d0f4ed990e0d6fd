//! Requests through the server's router in-process (no socket), shared by the `server`
//! criterion bench and the `router_requests` example: the replies must be 200s.

use axum::body::{Body, to_bytes};
use axum::http::{Method, Response};
use cloudbase_auth_core::testing::ENV;
use cloudbase_auth_core::wire::{
    Credentials, DEFAULT_API_PATH, Endpoint, GRANT_REFRESH_TOKEN, RefreshRequest,
};
use cloudbase_auth_server::testing::InProcess;
use tower::ServiceExt as _;

/// Largest reply body read back.
const BODY_MAX: usize = 64 * 1024;

/// The status and body of `response`.
pub async fn read(response: Response<Body>) -> (u16, Vec<u8>) {
    let status = response.status().as_u16();
    let body = to_bytes(response.into_body(), BODY_MAX)
        .await
        .expect("a body within BODY_MAX");
    (status, body.to_vec())
}

/// Sends `method path` through `app`'s router; the reply, which must be a 200.
pub async fn send(
    app: &InProcess,
    method: Method,
    path: &str,
    bearer: Option<&str>,
    body: &str,
) -> Vec<u8> {
    let request = InProcess::request(method, path, bearer, body);
    let response = app.router().oneshot(request).await.expect("infallible");
    let (status, body) = read(response).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    body
}

/// `endpoint`'s path with the env as `client_id`.
pub fn path(endpoint: Endpoint) -> String {
    format!("{DEFAULT_API_PATH}{}?client_id={ENV}", endpoint.path())
}

/// An anonymous sign-in: its credentials.
pub async fn sign_in(app: &InProcess) -> Credentials {
    let body = send(
        app,
        Method::POST,
        &path(Endpoint::SignInAnonymously),
        None,
        "{}",
    )
    .await;
    Credentials::parse(&body).expect("credentials")
}

/// A refresh with `refresh_token`: the rotated refresh token.
pub async fn refresh(app: &InProcess, refresh_token: &str) -> String {
    let request = RefreshRequest::new(ENV, "", GRANT_REFRESH_TOKEN, refresh_token);
    let body = serde_json::to_string(&request).expect("serializes");
    let reply = send(app, Method::POST, &path(Endpoint::Token), None, &body).await;
    let credentials = Credentials::parse(&reply).expect("credentials");
    credentials
        .refresh_token
        .expect("a rotated refresh token")
        .as_str()
        .to_owned()
}
