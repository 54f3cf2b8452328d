//! The checks behind every rpcs fuzz target, as plain functions of bytes.
//!
//! libFuzzer drives them from `fuzz/targets` (nightly, sanitizer coverage); the
//! ordinary test suite of `rpcs-core` replays the committed seeds and regression
//! inputs through the very same functions on stable, and its property tests feed
//! them bytes from a fixed-seed generator. Each check asserts properties of the
//! codecs (round trips, agreement between two readers, one answer per call), so
//! a failed assertion, like any panic, is a finding.
//!
//! # Layout
//!
//! - [`targets`]: one module per target, generated from the files in
//!   `src/targets/` (a new target is one new file there); [`TARGETS`] lists them.
//! - [`gen`]: building [`Value`](rpcs_core::Value)s and other inputs from fuzz bytes.
//! - [`mapping`]: what each codec is documented to do to a value (the expected
//!   side of every round trip), and a comparison that treats NaN as NaN.
//! - [`seeded`]: a tiny fixed-seed byte generator for property tests.

pub mod gen;
pub mod mapping;
pub mod seeded;

/// One fuzz target: its name (the file name in `src/targets/`, the directory
/// name under `fuzz/seeds/` and `fuzz/regressions/`) and its check.
#[derive(Clone, Copy)]
pub struct Target {
    /// The target's name.
    pub name: &'static str,
    /// Runs the target's properties on one input; panics on a violation.
    pub check: fn(&[u8]),
}

include!(concat!(env!("OUT_DIR"), "/targets.rs"));

/// The target of that name.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// Runs a future that is ready at once (every handler the checks register),
/// polling it once with a waker that does nothing.
pub fn ready<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(output) => output,
        std::task::Poll::Pending => panic!("a handler that never waits was not ready"),
    }
}
