//! Integration tests for rpcs-core, in one binary to keep link time down.

mod dispatch;
mod fuzz_regressions;
mod properties;
mod xmlrpc;

/// Runs a future that never waits (every plain handler, and async ones that do not
/// block) to completion without an async runtime.
pub use rpcs_fuzz_checks::ready;
