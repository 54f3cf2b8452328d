//! Runnable examples for rpcs.
//!
//! # Layout
//!
//! - [`seed`]: the classic example functions (`add`, `addtogether`, `quadratic`,
//!   `remote_repr`) and the roulette wheel (`spin`, `spinList`) as one method table.
//! - `src/bin/example-server.rs`: serves that table (`cargo run -p rpcs-examples --bin example-server`).
//! - `src/bin/bare-http.rs`: a bare hyper server answering a constant reply, the
//!   HTTP baseline for `bench/xmlrpc.sh`.

pub mod seed;
pub mod wheel;
