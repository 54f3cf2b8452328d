//! The libFuzzer entry point for every rpcs fuzz target.
//!
//! One binary serves all targets; `RPCS_FUZZ_TARGET` names the one to run (a
//! file name in `fuzz/checks/src/targets/`). `scripts/fuzz.sh` sets it.

#![no_main]

use rpcs_fuzz_checks::{target, TARGETS};
use std::sync::OnceLock;

/// The chosen target's check, looked up once.
fn chosen() -> fn(&[u8]) {
    static CHECK: OnceLock<fn(&[u8])> = OnceLock::new();
    *CHECK.get_or_init(|| {
        let names: Vec<&str> = TARGETS.iter().map(|t| t.name).collect();
        let name = std::env::var("RPCS_FUZZ_TARGET").unwrap_or_default();
        match target(&name) {
            Some(t) => t.check,
            None => panic!("set RPCS_FUZZ_TARGET to one of {names:?}"),
        }
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| chosen()(data));
