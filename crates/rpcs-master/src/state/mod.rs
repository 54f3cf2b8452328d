//! The master's state as plain in-memory structures, with every operation on it
//! atomic: an operation checks all that can fail before it changes anything.
//!
//! This is the model every local backend keeps (the memory backend as it is,
//! the embedded one with a log of the operations applied to it): one
//! contiguous buffer per stack, leases indexed by id, deadline, owner and
//! stack, storages as sorted maps of encoded values, sessions indexed by their
//! last visit.

pub mod change;
pub mod clients;
pub mod items;
pub mod leases;
pub mod snapshot;
pub mod stacks;
pub mod storages;

pub use change::Change;
pub use clients::{Client, Clients};
pub use items::Items;
pub use leases::{Lease, Leases};
pub use stacks::{Accept, PopLimit, Stacks};
pub use storages::Storages;

/// Everything the master holds.
#[derive(Debug, Default, Clone)]
pub struct State {
    /// The stacks and their leases.
    pub stacks: Stacks,
    /// The parameter storages.
    pub storages: Storages,
    /// The provider's sessions.
    pub clients: Clients,
}
