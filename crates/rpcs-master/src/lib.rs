//! The rpcs master: shared named stacks, parameter storages and a client
//! provider, served over every protocol rpcs speaks.
//!
//! # Layout
//!
//! - [`store`]: the transactional key-value store the services keep their state
//!   in, with [`MemoryStore`](store::MemoryStore) and the crash-safe
//!   [`EmbeddedStore`](store::EmbeddedStore) (redb, group commit).
//! - [`services`]: one file per service (`stack`, `storage`, `provider`), each
//!   registering its methods on a method table and talking only to the store.
//! - [`state`]: the stacks and leases as in-memory structures whose every
//!   operation is atomic (one buffer per stack, leases indexed by deadline and
//!   owner).
//! - [`journal`]: an append-only journal of records with group commit, over a
//!   real file or a simulated one whose unsynced writes a test can tear.
//! - [`local`]: the state in memory, journaled to a directory for the
//!   embedded backend (decide, apply, journal; snapshots and compaction).
//! - [`clock`]: the time the services stamp leases and sessions with
//!   (injectable, for tests), and how often waits look again.
//! - [`master`]: [`Master`] ties the services to a store, adds the original
//!   underscore names, and runs lease expiry and session clean-up.

pub mod clock;
pub mod journal;
pub mod local;
pub mod master;
pub mod services;
pub mod state;
pub mod store;

pub use master::{Backend, Master, MasterConfig};
pub use services::Limits;
pub use store::Durability;
