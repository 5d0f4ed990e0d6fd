//! # cloudbase-auth-testkit
//!
//! The test vocabulary of the workspace, written once and used by both the proptest
//! suite and the cargo-fuzz targets (`fuzz/`, outside the workspace):
//!
//! * [`model`]: the host settings [`Setup`] and operation type [`Op`], the reference
//!   [`Model`] of what a host observes, the [`World`] that drives engine and model side
//!   by side, [`check_invariants`] and [`run_with`]. The property test
//!   (`tests/model.rs`) draws a `Setup` and `Vec<Op>` with proptest strategies; the
//!   `engine_ops` fuzz target decodes them with `arbitrary` (feature `arbitrary`).
//! * [`fuzz`]: the body of every fuzz target as a public function
//!   ([`fuzz_snapshot_decode`], [`fuzz_response_parse`], `fuzz_engine_ops`), so each
//!   target is a one-liner and every crash input replays in a plain `cargo test`
//!   (`tests/fuzz_inputs.rs` walks `fuzz/regressions/` and `fuzz/corpus/`).
//! * [`snapshot_file`]: an independent reader/writer of the documented snapshot
//!   layout (test oracle and seed writer).
//! * [`seeds`]: the seed corpora, made from real messages.
//! * [`corpus`]: the committed fuzz inputs: replaying, checking and writing them (also
//!   used by the server's and the wasm crate's fuzz bodies).
//!
//! Not published; for this workspace's tests only.

pub mod alloc;
pub mod corpus;
pub mod fuzz;
pub mod model;
pub mod seeds;
pub mod snapshot_file;

#[cfg(feature = "arbitrary")]
pub use fuzz::fuzz_engine_ops;
pub use fuzz::{fuzz_response_parse, fuzz_snapshot_decode};
pub use model::{Model, Op, Setup, World, check_invariants, run_ops, run_with};
