//! The browser demo of the wasm adapter at [`DEMO_PATH`] (emulated WeChat mode only).
//!
//! A page with a button per `cloud.auth()` operation that runs the JS facade and the
//! core in WebAssembly (`adapters/wasm/js/index.js` and `cloudbase_auth.wasm`) against
//! this server, on the same origin. The four files are embedded at compile time, so the
//! binary serves them from anywhere; rebuild after `scripts/build-wasm.sh`.
//!
//! Mounted with the emulator routes only: the page's WeChat buttons mint their `wx.login`
//! codes from `POST /emulator/v1/wechat/login-code`, and a server in real mode is a
//! deployment that has no use for a development page.
//!
//! Every file is sent with `cache-control: no-cache`, `x-content-type-options: nosniff`
//! and a Content Security Policy that allows same-origin scripts and requests and
//! WebAssembly compilation (`'wasm-unsafe-eval'`) but no `eval` and no inline script —
//! the facade needs neither, as in a Mini Program.

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse as _, Redirect, Response};
use axum::routing::get;

/// `GET` redirects to [`DEMO_DIR`].
pub const DEMO_PATH: &str = "/demo";
/// `GET`: the demo page (also at `/demo/index.html`).
pub const DEMO_DIR: &str = "/demo/";

/// The demo's files: path under [`DEMO_DIR`], content type, bytes.
pub const FILES: [(&str, &str, &[u8]); 4] = [
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("../../wasm/demo/index.html"),
    ),
    (
        "demo.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../wasm/demo/demo.js"),
    ),
    (
        "index.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../wasm/js/index.js"),
    ),
    (
        "cloudbase_auth.wasm",
        "application/wasm",
        include_bytes!("../../wasm/js/cloudbase_auth.wasm"),
    ),
];

/// Same-origin scripts, requests and styles; WebAssembly compilation but no `eval`.
const CSP: &str = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; \
     connect-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn file(content_type: &'static str, body: &'static [u8]) -> Response {
    let headers: [(HeaderName, HeaderValue); 4] = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ),
    ];
    (headers, body).into_response()
}

/// The demo's routes.
pub(crate) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let mut router = Router::new().route(DEMO_PATH, get(|| async { Redirect::to(DEMO_DIR) }));
    for (name, content_type, body) in FILES {
        let serve = get(move || async move { file(content_type, body) });
        if name == "index.html" {
            router = router.route(DEMO_DIR, serve.clone());
        }
        router = router.route(&format!("{DEMO_DIR}{name}"), serve);
    }
    router
}
