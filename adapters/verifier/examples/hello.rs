//! A Mini Program's own backend: `GET /hello` answers `hello, <uid>` to a caller with a
//! valid access token of the env, and 401 (a CloudBase error body) to anyone else.
//!
//! ```text
//! cargo run --release -p cloudbase-auth -- serve
//! cargo run --release -p cloudbase-auth-verifier --features axum --example hello
//! ```
//!
//! Settings (environment): `CLOUDBASE_AUTH_SERVER` (default `http://127.0.0.1:8787`),
//! `CLOUDBASE_ENV` (default `local-dev`, the env the `cloudbase-auth` client commands use), `HELLO_LISTEN` (default `127.0.0.1:3000`).

use axum::Router;
use axum::routing::get;
use cloudbase_auth_verifier::{Claims, LoginKind, Verifier};

async fn hello(claims: Claims) -> String {
    let how = match (claims.login, &claims.openid) {
        (LoginKind::WeChat, Some(openid)) => format!("WeChat user, openid {openid}"),
        (LoginKind::WeChat, None) => "WeChat user".to_owned(),
        (LoginKind::Anonymous, _) => "anonymous".to_owned(),
        _ => "signed in".to_owned(),
    };
    format!("hello, {} ({how})\n", claims.uid)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let var = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    let server = var("CLOUDBASE_AUTH_SERVER", "http://127.0.0.1:8787");
    let env = var("CLOUDBASE_ENV", "local-dev");
    let listen = var("HELLO_LISTEN", "127.0.0.1:3000");

    let verifier = Verifier::builder(server.as_str(), env.as_str()).build()?;
    let app = Router::new()
        .route("/hello", get(hello))
        .with_state(verifier);
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    eprintln!(
        "hello: http://{}/hello (tokens of env {env} from {server})",
        listener.local_addr()?
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
