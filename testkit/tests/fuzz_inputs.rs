//! Replays every fuzz input kept in the repository through the function its target
//! calls: crash inputs under `fuzz/regressions/<target>/` (each one a bug that must stay
//! fixed) and the seed corpora under `fuzz/corpus/<target>/`.

use cloudbase_auth_testkit::corpus::{self, fuzz_dir};
use cloudbase_auth_testkit::{fuzz_engine_ops, fuzz_response_parse, fuzz_snapshot_decode};

/// A target's name and the function its fuzz target calls.
type Target = (&'static str, fn(&[u8]));

const TARGETS: [Target; 3] = [
    ("snapshot_decode", fuzz_snapshot_decode),
    ("response_parse", fuzz_response_parse),
    ("engine_ops", fuzz_engine_ops),
];

/// Runs every input of `fuzz/<kind>/<target>/` of the core's targets.
fn replay(kind: &str) -> usize {
    TARGETS
        .iter()
        .map(|(target, run)| corpus::replay(kind, target, run))
        .sum()
}

#[test]
fn regressions_stay_fixed() {
    let n = replay("regressions");
    println!("replayed {n} regression inputs");
}

#[test]
fn seed_corpora_pass() {
    let n = replay("corpus");
    assert!(n > 0, "no seed corpus found under {}", fuzz_dir().display());
    println!("replayed {n} corpus inputs");
}

/// The names of `fuzz/<sub>/*` (files of `fuzz_targets/` without `.rs`, or directories).
fn names(sub: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(fuzz_dir().join(sub)) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .map(|e| e.expect("readable directory").path())
        .filter_map(|p| Some(p.file_stem()?.to_string_lossy().into_owned()))
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    names
}

/// Every target has seeds, and every seed or regression directory belongs to a target
/// (the server's and the wasm exports' are replayed by those crates' unit tests).
#[test]
fn every_target_has_a_seed_corpus() {
    let targets = names("fuzz_targets");
    assert!(targets.len() >= TARGETS.len(), "{targets:?}");
    for t in &targets {
        assert!(
            !corpus::inputs("corpus", t).is_empty(),
            "fuzz target {t} has no seeds in fuzz/corpus/{t}/"
        );
    }
    for kind in ["corpus", "regressions"] {
        for dir in names(kind) {
            assert!(
                targets.contains(&dir),
                "fuzz/{kind}/{dir}/ names no target in fuzz/fuzz_targets/"
            );
        }
    }
}
