//! # cloudbase-auth-client
//!
//! The HTTP client host of the core (`cloudbase-auth-core`): a Rust [`Session`] over real
//! HTTP, a [`FileStore`] for its snapshot, and the `cloudbase-auth` commands `login`,
//! `link`, `whoami`, `token`, `logout` and `status` ([`commands`]). It shares nothing
//! with the server but the core and the server's own routes
//! (`cloudbase-auth-server-api`): no axum, sqlx or HTTP server in its dependencies.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use cloudbase_auth_client::{FileStore, Session, SessionConfig};
//!
//! let server = "http://127.0.0.1:8787";
//! let store = FileStore::open(FileStore::default_dir().unwrap(), server, "local-dev")?;
//! let session = Session::open(SessionConfig::new(server, "local-dev"), store).await?;
//! session.sign_in_anonymously().await?;
//! let token = session.access_token().await?; // refreshed first when due
//! println!("{} {}", token.token_type, token.access_token);
//! session.close().await?; // finishes a refresh in flight, releases the profile lock
//! # Ok(()) }
//! ```
//!
//! The session holds no protocol knowledge: the core writes every request (path, headers,
//! JSON body) and reads every reply; this crate moves the bytes with reqwest (rustls),
//! keeps time with tokio, and stores the snapshot bytes the core hands out.

#![forbid(unsafe_code)]

pub mod commands;
pub mod session;
pub mod store;

pub use session::{
    ClientError, Restored, Session, SessionConfig, SessionInfo, SignedOut, Status, UserInfo,
};
pub use store::{FileStore, MemoryStore, OpenError, SnapshotStore};
