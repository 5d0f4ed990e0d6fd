//! The model-based test of the session engine: one vocabulary for proptest and cargo-fuzz.
//!
//! A run starts a host with a [`Setup`] and applies a sequence of [`Op`]s (API calls;
//! good, error, garbage, late and duplicate replies; transport failures; time jumps
//! forwards and backwards; restarts from the stored snapshot, intact or corrupted;
//! server-side revocations and token policies) to the real engine, through the
//! `testing` harness with requests held and answered by hand, and to [`Model`]: a
//! reference model of what a **host observes**, written from the documented behaviour
//! (core/README.md, the docs of `Engine`, `Output`, `Completion`, `Error` and `Config`,
//! and docs/wire.md) in its own words. It names none of the engine's private types and
//! reads only the core's public constants (`config::*`, `capacity::*`).
//!
//! After every step the run checks that the host saw from the engine what the model
//! predicts: state changes, `SessionReplaced`, completions (which op, which result),
//! snapshots persisted (and what they hold) or cleared, the request put on the wire
//! (endpoint, credential, query, headers, body fields), whether a reply was taken, the
//! deadline; then [`check_invariants`].
//!
//! | file | concern |
//! |---|---|
//! | `ops.rs` | the vocabulary: [`Setup`], [`Op`] and its tables |
//! | `answer.rs` | how the model reads a reply, and how a call can fail |
//! | `state.rs` | the model's state (what a host could know) and its timers |
//! | `calls.rs` | what each `wx.cloud.auth()` call does |
//! | `flows.rs` | what each reply does: the documented request sequences |
//! | `world.rs` | engine and model side by side, one [`Op`] at a time |
//! | `compare.rs` | the step's outputs and request, engine against model |
//! | `invariants.rs` | [`check_invariants`], by concern |
//!
//! The proptest suite (`tests/model.rs`) generates the runs with weighted strategies;
//! the `engine_ops` fuzz target decodes them with `arbitrary` (feature `arbitrary`).
//! Both replay them with [`run_with`].

mod answer;
mod calls;
mod compare;
mod flows;
mod invariants;
mod ops;
mod state;
mod world;

pub use invariants::check_invariants;
pub use ops::{ERROR_NAMES, ERROR_STATUSES, GARBAGE_STATUSES, OPENIDS, Op, PROFILE_CHANGES, Setup};
pub use state::Model;
pub use world::{World, run_ops, run_with};

impl Default for World {
    fn default() -> Self {
        Self::new(Setup::default())
    }
}
