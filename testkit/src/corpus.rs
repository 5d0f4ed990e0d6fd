//! The fuzz inputs committed under `fuzz/`: seed corpora (`corpus/<target>/`) and crash
//! regressions (`regressions/<target>/`). Every crate that holds a target's body replays
//! them in its `cargo test`, checks and writes its seeds, with these helpers.

use std::panic::{RefUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

/// A named seed input.
pub type Seed = (&'static str, Vec<u8>);

/// The repository's `fuzz/` directory.
pub fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of `fuzz/<kind>/<target>/` (`kind`: `corpus` or `regressions`), hidden
/// ones (`.gitkeep`) left out, sorted; none if the directory does not exist.
pub fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(fuzz_dir().join(kind).join(target)) else {
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

/// Runs `body` on every input of `fuzz/<kind>/<target>/`; panics after the last one,
/// listing every input that failed (each failure's own panic message is printed
/// above). How many inputs ran.
pub fn replay(kind: &str, target: &str, body: impl Fn(&[u8]) + RefUnwindSafe) -> usize {
    let files = inputs(kind, target);
    let failed: Vec<String> = files
        .iter()
        .filter(|file| {
            let data = std::fs::read(file).expect("readable input");
            catch_unwind(|| body(&data)).is_err()
        })
        .map(|file| format!("{target}: {}", file.display()))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} inputs fail:\n{}",
        failed.len(),
        files.len(),
        failed.join("\n")
    );
    files.len()
}

/// Writes `seeds` to `fuzz/corpus/<target>/` (the ignored `write_*` tests call this).
pub fn write_seeds(target: &str, seeds: &[Seed]) {
    let dir = fuzz_dir().join("corpus").join(target);
    std::fs::create_dir_all(&dir).expect("create corpus dir");
    for (name, bytes) in seeds {
        std::fs::write(dir.join(name), bytes).expect("write seed");
    }
}

/// Asserts that `fuzz/corpus/<target>/` holds exactly `seeds`' bytes under their names;
/// `regenerate` is the command that rewrites them.
pub fn assert_seeds_committed(target: &str, seeds: &[Seed], regenerate: &str) {
    for (name, bytes) in seeds {
        let file = fuzz_dir().join("corpus").join(target).join(name);
        let committed = std::fs::read(&file).unwrap_or_default();
        assert!(
            committed == *bytes,
            "{} is not what the seed code writes; regenerate: {regenerate}",
            file.display()
        );
    }
}
