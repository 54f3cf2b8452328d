//! Replays every committed fuzz input through its target's check: the hand-written
//! seeds (`fuzz/seeds/TARGET/`) and every input that once found a bug
//! (`fuzz/regressions/TARGET/`). These are the very checks libFuzzer runs, here on
//! stable and without sanitizers, so a fixed bug stays fixed.

use rpcs_fuzz_checks::{target, TARGETS};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn fuzz_dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz")
        .join(kind)
}

/// The entries of a directory, sorted; none if it does not exist.
fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(read) => read.map(|e| e.expect("a readable entry").path()).collect(),
        Err(_) => Vec::new(),
    };
    paths.sort();
    paths
}

/// Runs every input under `fuzz/KIND/TARGET/` and names the ones that fail.
fn replay(kind: &str) {
    let mut failures = Vec::new();
    let mut count = 0;
    for dir in entries(&fuzz_dir(kind)) {
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let target =
            target(name).unwrap_or_else(|| panic!("{} names no fuzz target", dir.display()));
        for input in entries(&dir) {
            let data = std::fs::read(&input).expect("a readable input");
            count += 1;
            if catch_unwind(AssertUnwindSafe(|| (target.check)(&data))).is_err() {
                failures.push(input.display().to_string());
            }
        }
    }
    assert!(count > 0, "no inputs under fuzz/{kind}");
    assert!(
        failures.is_empty(),
        "failing inputs:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_target_has_seeds() {
    for t in TARGETS {
        let dir = fuzz_dir("seeds").join(t.name);
        assert!(!entries(&dir).is_empty(), "{} has no seeds", t.name);
    }
}

#[test]
fn seeds_pass() {
    replay("seeds");
}

#[test]
fn regressions_pass() {
    replay("regressions");
}
