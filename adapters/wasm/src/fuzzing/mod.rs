//! The body of the `wasm_abi` cargo-fuzz target (`fuzz/fuzz_targets/wasm_abi.rs`):
//! arbitrary call sequences and byte buffers through the exports, compiled natively,
//! with the pointers, lengths, times, statuses and request ids a hostile or buggy JS
//! facade could pass. The same checks run in this crate's tests, on the committed
//! corpus and on proptest-generated steps.
//!
//! Host builds only, for this crate's tests or a `--cfg fuzzing` build: the wasm32
//! module does not contain it.
//!
//! * [`grammar`]: the steps an input stands for, and how bytes decode into them;
//!   [`encode`] writes them back.
//! * `server`: the fake CloudBase server's canned replies.
//! * `harness`: runs steps (places arguments, calls exports, follows the clock).
//! * `checks`: the ABI contract, checked after every call.
//! * [`seeds`]: the committed seed corpus.
//!
//! # Properties
//!
//! Never a panic; and after every call, the contract of the crate docs: finite return
//! values of the documented range per export; a negative return is `-(class * 256 +
//! sub)` and the error record in the exchange buffer says the same, with the documented
//! sub-codes of its class; a host-value (`ARG`) error exactly when a host value is bad
//! (`NOT_DRAINED` for every input before the drain, which then changes no read;
//! otherwise one of the bad values' codes, e.g. `RANGE` for any `(ptr, len)` outside the
//! exchange buffer); well-formed records, each laid out as its `abi` layout says (every
//! `str` inside the buffer, UTF-8 for text, the snapshot canonical base64; kinds, states,
//! completions and booleans in range); state-change records that chain and end at
//! `cba_login_state()` when the drain ends; completions only for ids an export returned,
//! once each; at most [`MAX_POLLS`] polls before the timeout kind; a restore refused as
//! corrupt queues a state change and a clear-storage output; a session (and a user)
//! exactly in the anonymous and WeChat states.

mod checks;
mod encode;
pub mod grammar;
mod harness;
mod seeds;
mod server;

pub use encode::encode;
pub use grammar::{Step, decode};
pub use seeds::seeds;

/// Steps run per input, at most.
pub const MAX_STEPS: usize = 256;

/// Polls that may return something other than the timeout kind after an input (the
/// engine's queue holds at most a handful of outputs per input; this bound only catches
/// a queue that never drains).
pub const MAX_POLLS: u32 = 64;

/// Host time of a fresh harness (Unix ms, November 2023).
pub const T0: u64 = 1_700_000_000_000;

/// The env id the harness initialises with ([`grammar::Text::Good`] for `env`).
pub const ENV: &str = "fuzz-env-1a2b";

/// The Mini Program appId ([`grammar::Text::Good`] for `appid`).
pub const APPID: &str = "wx0123456789abcdef";

/// The fuzz target's body: runs the steps `data` encodes (see [`grammar`]) on a fresh
/// engine (`cba_reset`), checking the ABI contract after every call, then drains.
/// Panics on a broken property; returns quietly otherwise.
///
/// The exports share one static engine: callers in the same process must not run
/// exports concurrently (tests take a lock).
pub fn wasm_abi(data: &[u8]) {
    run(&decode(data));
}

/// Runs `steps` as [`wasm_abi`] runs the steps of its input.
pub fn run(steps: &[Step]) {
    let mut h = harness::Harness::new();
    for s in steps.iter().take(MAX_STEPS) {
        h.step(s);
    }
    // The drain rule holds at the end of every input too.
    h.drain();
}
