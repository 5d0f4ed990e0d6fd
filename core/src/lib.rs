//! # cloudbase-auth-core
//!
//! The session engine of CloudBase Auth for WeChat Mini Programs — the
//! `wx.cloud.init({env})` → `wx.cloud.auth()` flow — as a deterministic state machine:
//! no IO, no clock, no allocation, no `unsafe`, no panics on any input. Hosts (the HTTP
//! adapter, the wasm facade, test harnesses) move bytes and time; every CloudBase path,
//! header, JSON field and decision lives here.
//!
//! ## Contract
//!
//! * **Inputs** are methods: `init`, `restore`, the `wx.cloud.auth()` operations
//!   (`get_login_state`, `sign_in_anonymously`, `sign_in_with_wechat`, `get_user_info`,
//!   `sign_out`, `link_wechat`, `update_profile`, `delete_account`), `handle_response`, `handle_transport_error`,
//!   `handle_timeout`. Each carries `now_ms`: wall-clock milliseconds (Unix epoch, so
//!   snapshots survive restarts). Time going backwards is ignored.
//! * **Outputs** are drained with [`Engine::poll_output`] until it returns
//!   [`Output::Timeout`] — after *every* input, before the next one (str0m's rule; a
//!   debug assertion enforces it).
//! * **Entropy** comes from the host as a seed at `init` (Mini Programs have no
//!   synchronous secure random source).
//!
//! ## Run loop
//!
//! ```
//! use cloudbase_auth_core::{Config, Engine, Output, capacity::POLL_BUFFER_MIN};
//! let mut engine = Engine::new();
//! let mut buf = [0u8; POLL_BUFFER_MIN];
//! engine.init(1_700_000_000_000, Config::new("my-env-1a2b"), [7; 16]).unwrap();
//! // After every input, drain until `Timeout` (here: the `Initialized` state change).
//! while !matches!(engine.poll_output(&mut buf).unwrap(), Output::Timeout(_)) {}
//! let op = engine.sign_in_anonymously(1_700_000_000_000).unwrap();
//! loop {
//!     match engine.poll_output(&mut buf).unwrap() {
//!         Output::Transmit(req) => { /* send req.method, origin + req.path, req.headers(), req.body;
//!                                      then engine.handle_response(now, req.request, status, body) */ }
//!         Output::PersistSnapshot(bytes) => { /* store bytes */ }
//!         Output::Timeout(_deadline) => break, // sleep until the deadline or the next input
//!         _other => { /* state changes, completions, clear storage */ }
//!     }
//! }
//! # let _ = op;
//! ```
//!
//! ## Modules
//!
//! [`engine`] (the state machine: host API, task flows, replies, timers), [`state`]
//! (login states and the transition table), [`wire`] (endpoints, JSON shapes, the reply
//! codec, request writing), [`snapshot`] (stored bytes, postcard format), [`capacity`] (every
//! bound), [`error`] (typed errors with a [`Disposition`]), `testing` (feature
//! `testing`: the harness). The protocol they speak is docs/wire.md.

#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

// Unit tests run on the host with std (format!, println!); the library never sees it.
#[cfg(test)]
#[macro_use]
extern crate std;

pub mod base64;
pub mod capacity;
pub mod code;
pub mod config;
pub mod engine;
pub mod error;
pub mod output;
mod rng;
pub mod session;
pub mod snapshot;
pub mod state;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod wire;

pub use config::Config;
pub use engine::Engine;
pub use error::{
    ApiMisuse, Disposition, Error, ErrorText, ServerError, ServerErrorKind, SnapshotError,
    TransportError, WireError,
};
pub use output::{Completion, Delivery, OpId, Output, RequestId, Transmit};
pub use session::{SessionView, UserView};
pub use state::LoginState;
