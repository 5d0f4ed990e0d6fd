//! The emulator console at [`CONSOLE_DIR`] (emulated WeChat mode only, like every
//! emulator route): a page to see and steer users, sessions and WeChat codes, like the
//! Firebase Auth Emulator's UI.
//!
//! Plain HTML, CSS and JavaScript from `adapters/server/console/`, embedded at compile
//! time. The files hold nothing secret: the page asks for the admin token once, keeps it
//! in `sessionStorage`, and everything it shows or changes goes through the admin routes
//! of [`crate::emulator_api`] with that token (docs/emulator.md).
//!
//! Every file is sent with `cache-control: no-cache`, `x-content-type-options: nosniff`,
//! `referrer-policy: no-referrer` and a strict Content Security Policy: same-origin
//! scripts, styles and requests only, no inline script or style, no `eval`, no framing.

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse as _, Redirect, Response};
use axum::routing::get;

/// `GET` redirects to [`CONSOLE_DIR`].
pub const CONSOLE_PATH: &str = "/console";
/// `GET`: the console page (also at `/console/index.html`).
pub const CONSOLE_DIR: &str = "/console/";

/// The console's files: path under [`CONSOLE_DIR`], content type, bytes.
pub const FILES: [(&str, &str, &[u8]); 4] = [
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("../console/index.html"),
    ),
    (
        "console.css",
        "text/css; charset=utf-8",
        include_bytes!("../console/console.css"),
    ),
    (
        "console.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../console/console.js"),
    ),
    (
        "icon.svg",
        "image/svg+xml",
        include_bytes!("../console/icon.svg"),
    ),
];

/// Same-origin scripts, styles and requests; nothing inline, no `eval`, no framing.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

fn file(content_type: &'static str, body: &'static [u8]) -> Response {
    let headers: [(HeaderName, HeaderValue); 5] = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ),
    ];
    (headers, body).into_response()
}

/// The console's routes.
pub(crate) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let mut router = Router::new().route(CONSOLE_PATH, get(|| async { Redirect::to(CONSOLE_DIR) }));
    for (name, content_type, body) in FILES {
        let serve = get(move || async move { file(content_type, body) });
        if name == "index.html" {
            router = router.route(CONSOLE_DIR, serve.clone());
        }
        router = router.route(&format!("{CONSOLE_DIR}{name}"), serve);
    }
    router
}
