//! Replays every fuzz input kept in the repository through the function its target
//! calls: crash inputs under `fuzz/regressions/<target>/` (each one a bug that must stay
//! fixed) and the seed corpora under `fuzz/corpus/<target>/`.

use std::path::{Path, PathBuf};

use cloudbase_auth_testkit::{fuzz_engine_ops, fuzz_response_parse, fuzz_snapshot_decode};

/// A target's name and the function its fuzz target calls.
type Target = (&'static str, fn(&[u8]));

const TARGETS: [Target; 3] = [
    ("snapshot_decode", fuzz_snapshot_decode),
    ("response_parse", fuzz_response_parse),
    ("engine_ops", fuzz_engine_ops),
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of `dir` (not hidden ones such as `.gitkeep`), sorted.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("readable directory").path())
        .filter(|p| p.is_file())
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    files
}

/// Runs every input of `fuzz/<kind>/<target>/`; panics after the last one, listing
/// every input that failed (each failure's own panic message is printed above).
fn replay(kind: &str) -> usize {
    let mut n = 0;
    let mut failed = Vec::new();
    for (target, run) in TARGETS {
        let dir = fuzz_dir().join(kind).join(target);
        for file in inputs(&dir) {
            let data = std::fs::read(&file).expect("readable input");
            if std::panic::catch_unwind(|| run(&data)).is_err() {
                failed.push(format!("{target}: {}", file.display()));
            }
            n += 1;
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {n} inputs fail:\n{}",
        failed.len(),
        failed.join("\n")
    );
    n
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
            !inputs(&fuzz_dir().join("corpus").join(t)).is_empty(),
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
