//! The ABI contract (`crate::fuzzing`'s checks, after every call) on the committed fuzz
//! inputs and on generated call sequences that proptest shrinks to a minimal failing
//! one.

use super::fresh;
use crate::fuzzing::{self, Step};
use cloudbase_auth_testkit::corpus;
use proptest::prelude::*;

const REGENERATE: &str = "cargo test -p cloudbase-auth-wasm -- --ignored write_wasm_abi_seeds";

/// Every committed seed and crash input passes the target's body (crash inputs: each a
/// bug that must stay fixed).
#[test]
fn fuzz_corpus_and_regressions_pass() {
    let _g = fresh();
    let n = corpus::replay("corpus", "wasm_abi", fuzzing::wasm_abi);
    assert!(n >= 5, "the seed corpus is missing ({n} inputs)");
    corpus::replay("regressions", "wasm_abi", fuzzing::wasm_abi);
}

/// The committed seeds are what `fuzzing::seeds` writes, and decode back to the same
/// bytes (the encoder writes the format the target reads).
#[test]
fn fuzz_seeds_match_the_committed_corpus() {
    let seeds = fuzzing::seeds();
    assert!((5..=10).contains(&seeds.len()));
    for (name, bytes) in &seeds {
        assert_eq!(
            &fuzzing::encode(&fuzzing::decode(bytes)),
            bytes,
            "{name} does not decode back"
        );
    }
    corpus::assert_seeds_committed("wasm_abi", &seeds, REGENERATE);
}

/// Rewrites `fuzz/corpus/wasm_abi/` from `fuzzing::seeds()`.
#[test]
#[ignore = "writes the seed corpus (REGENERATE)"]
fn write_wasm_abi_seeds() {
    corpus::write_seeds("wasm_abi", &fuzzing::seeds());
}

/// One step from arbitrary bytes: what the target's input grammar makes of them, so
/// every step the fuzzer can reach can be generated, and shrinking simplifies each
/// step's bytes on its own.
fn step() -> impl Strategy<Value = Step> {
    proptest::collection::vec(any::<u8>(), 1..48).prop_filter_map("no step", |bytes| {
        fuzzing::decode(&bytes).into_iter().next()
    })
}

/// Call sequences: generated steps alone, or a committed seed (which gets past init and
/// sign-in) with generated steps put in or put over some of its own.
fn steps() -> impl Strategy<Value = Vec<Step>> {
    let seeds: Vec<Vec<Step>> = fuzzing::seeds()
        .iter()
        .map(|(_, bytes)| fuzzing::decode(bytes))
        .collect();
    let n = seeds.len();
    let spliced = (
        0..n,
        proptest::collection::vec((any::<prop::sample::Index>(), any::<bool>(), step()), 1..8),
    )
        .prop_map(move |(seed, edits)| {
            let mut steps = seeds[seed].clone();
            for (at, replace, s) in edits {
                let i = at.index(steps.len() + 1);
                if replace && i < steps.len() {
                    steps[i] = s;
                } else {
                    steps.insert(i, s);
                }
            }
            steps
        });
    prop_oneof![proptest::collection::vec(step(), 1..96), spliced]
}

proptest! {
    /// Whatever the host calls with whatever values, every call keeps the ABI contract:
    /// return values in their documented ranges, error records that match them,
    /// host-value errors exactly for bad values, the drain rule, well-formed records
    /// laid out as declared, completions only for issued ids (see `crate::fuzzing`).
    #[test]
    fn every_call_keeps_the_abi_contract(steps in steps()) {
        let _g = fresh();
        fuzzing::run(&steps);
    }

    /// The encoder is the decoder's inverse on whatever the decoder reads.
    #[test]
    fn fuzz_encoding_round_trips(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        let steps = fuzzing::decode(&data);
        prop_assert_eq!(fuzzing::decode(&fuzzing::encode(&steps)), steps);
    }
}
