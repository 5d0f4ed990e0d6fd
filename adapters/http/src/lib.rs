//! # cloudbase-auth-http
//!
//! CloudBase Auth over real HTTP, around the sans-IO core (`cloudbase-auth-core`).
//!
//! * Feature **`server`** (default): [`server::Server`], a local CloudBase-compatible
//!   auth server on an embedded SQLite store with an emulated WeChat `code2Session`,
//!   and the `cloudbase-auth serve` command ([`cli`]). Every CloudBase path, JSON
//!   shape and header name comes from the core; this crate only adds the server's own
//!   things (the store, the JWT claims, the WeChat emulator and the admin routes).
//! * Feature **`client`** (default): the Rust session over HTTP and the
//!   `login`/`whoami`/`token`/`logout`/`status` commands (see [`client`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use cloudbase_auth_http::server::{ServeConfig, Server};
//! let mut config = ServeConfig::new("./.cloudbase-auth");
//! config.listen = "127.0.0.1:0".parse()?;
//! let server = Server::start(config).await?;
//! println!("listening on http://{}", server.local_addr());
//! server.shutdown().await?;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

#[cfg(feature = "server")]
pub mod cli;
#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "server")]
pub mod server;
