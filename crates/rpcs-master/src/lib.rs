//! The rpcs master: shared named stacks, parameter storages and a client
//! provider, served over every protocol rpcs speaks.
//!
//! # Layout
//!
//! - [`backend`]: the state as the operations the services need, each atomic,
//!   so that a backend may keep it here or in a remote engine.
//! - [`services`]: one file per service (`stack`, `storage`, `provider`), each
//!   registering its methods on a method table and talking only to the backend.
//! - [`state`]: the stacks and leases as in-memory structures whose every
//!   operation is atomic (one buffer per stack, leases indexed by deadline and
//!   owner).
//! - [`journal`]: an append-only journal of records with group commit, over a
//!   real file or a simulated one whose unsynced writes a test can tear.
//! - [`local`]: the state in memory, journaled to a directory for the
//!   embedded backend (decide, apply, journal; snapshots and compaction).
//! - [`clock`]: the time the services stamp leases and sessions with
//!   (injectable, for tests), and how often waits look again.
//! - [`remote`]: the Redis backend, for masters that share their state.
//! - [`waiters`]: the callers blocked on a stack or a client, woken by name.
//! - [`metrics`]: the master's stacks, clients and store times on
//!   `GET /metrics`; [`traffic`]: items in and out per stack, for rates.
//! - [`master`]: [`Master`] ties the services to a backend, adds the original
//!   underscore names, and runs lease expiry and session clean-up.

pub mod backend;
pub mod clock;
pub mod journal;
pub mod local;
pub mod master;
pub mod metrics;
pub mod remote;
pub mod services;
pub mod state;
pub mod traffic;
pub mod waiters;

pub use backend::Backend;
pub use journal::Durability;
pub use master::{BackendConfig, Master, MasterConfig};
pub use services::Limits;
