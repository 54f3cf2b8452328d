//! The backend interface: the master's state as the operations the services
//! need, each atomic (it happens entirely or not at all), so that a backend
//! can keep the state in this process ([`LocalBackend`](crate::local::LocalBackend))
//! or in a remote engine that runs each operation as one script.
//!
//! Items, parameter values and messages cross it encoded (MessagePack), as
//! they are stored. The backend keeps the time leases and sessions are stamped
//! with (a shared engine's own clock, so masters sharing it agree), and wakes
//! the callers waiting on a stack or a client when it changes them, however
//! the change reached it.

pub use crate::local::{Carry, Claims, Taken};
pub use crate::state::PopLimit;
pub use crate::waiters::Waiters;

use rpcs_core::{Fault, Value};
use std::future::Future;
use std::pin::Pin;

/// The answer of a backend operation, on its way.
pub type Answer<'a, T> = Pin<Box<dyn Future<Output = Result<T, Fault>> + Send + 'a>>;

/// One logged-in client, as the provider shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The address it logged in from.
    pub host: String,
    /// When it logged in, in milliseconds since the epoch.
    pub login_ms: i64,
    /// When it was last seen.
    pub visit_ms: i64,
    /// Its last status, encoded.
    pub status: Vec<u8>,
    /// What it said about itself at login, encoded.
    pub info: Vec<u8>,
    /// How many messages wait for it.
    pub pending: u64,
}

/// The master's state, operation by operation.
pub trait Backend: Send + Sync + 'static {
    /// Creates a stack; false if it existed.
    fn create_stack(&self, name: String) -> Answer<'_, bool>;
    /// Pushes encoded items in order (the last on top), creating the stack;
    /// the new size. Wakes the stack's waiters.
    fn push(&self, name: String, items: Vec<Vec<u8>>) -> Answer<'_, u64>;
    /// Marks each key seen on the stack (creating it), and pushes the item
    /// that goes with it, if any, when the key is new to the stack (not seen
    /// before, nor earlier in `entries`), in order; whether each was new.
    /// Wakes the stack's waiters. A stack forgets its keys only when removed.
    fn claim(&self, name: String, entries: Claims) -> Answer<'_, Vec<bool>>;
    /// Pops up to `limit` items, top first, none unless `carry` takes each;
    /// `None` if there is no such stack. Items a cancelled call would lose go
    /// back.
    fn pop<'a>(
        &'a self,
        name: String,
        limit: PopLimit,
        carry: Carry<'a>,
    ) -> Answer<'a, Option<Vec<Vec<u8>>>>;
    /// Takes the top item under a lease of `lease_ms`, held by `owner` (whose
    /// session's end gives it back), if `carry` takes it; `None` if the stack
    /// is missing or empty.
    fn take<'a>(
        &'a self,
        name: String,
        lease_ms: i64,
        owner: Option<String>,
        carry: Carry<'a>,
    ) -> Answer<'a, Option<Taken>>;
    /// Finishes a lease; false if it is not held.
    fn ack(&self, name: String, id: String) -> Answer<'_, bool>;
    /// Moves a lease's deadline to `lease_ms` from now; false if it is not
    /// held or already due.
    fn extend(&self, name: String, id: String, lease_ms: i64) -> Answer<'_, bool>;
    /// Gives a leased item back on top of its stack; false if the lease is not
    /// held. Wakes the stack's waiters.
    fn release(&self, name: String, id: String) -> Answer<'_, bool>;
    /// Gives back every item whose lease is due; how many stacks got items
    /// back. Wakes their waiters.
    fn expire(&self) -> Answer<'_, usize>;
    /// Removes every item (leases stay); how many there were.
    fn truncate(&self, name: String) -> Answer<'_, u64>;
    /// Deletes a stack with its items and leases.
    fn remove_stack(&self, name: String) -> Answer<'_, ()>;
    /// The number of items, `None` if there is no such stack.
    fn stack_size(&self, name: String) -> Answer<'_, Option<u64>>;
    /// How many of its items are under lease, `None` if there is no such stack.
    fn stack_leased(&self, name: String) -> Answer<'_, Option<u64>>;
    /// Every stack name, sorted.
    fn stack_names(&self) -> Answer<'_, Vec<String>>;

    /// Creates a storage; false if it existed.
    fn create_storage(&self, name: String) -> Answer<'_, bool>;
    /// Sets parameters (encoded values), creating the storage.
    fn set_params(&self, name: String, params: Vec<(String, Vec<u8>)>) -> Answer<'_, ()>;
    /// One parameter's encoded value (`None` if unset); `StorageNotFoundError`
    /// for an unknown storage.
    fn get_param(&self, name: String, param: String) -> Answer<'_, Option<Vec<u8>>>;
    /// Every parameter of a storage, in name order.
    fn params(&self, name: String) -> Answer<'_, Vec<(String, Vec<u8>)>>;
    /// Removes a parameter; false if it was not set.
    fn remove_param(&self, name: String, param: String) -> Answer<'_, bool>;
    /// Whether a storage of that name exists.
    fn storage_exists(&self, name: String) -> Answer<'_, bool>;
    /// How many parameters a storage has; `None` for an unknown storage.
    fn storage_size(&self, name: String) -> Answer<'_, Option<u64>>;
    /// Deletes a storage with its parameters.
    fn remove_storage(&self, name: String) -> Answer<'_, ()>;
    /// Every storage name, sorted.
    fn storage_names(&self) -> Answer<'_, Vec<String>>;
    /// Sets `param` to `new` if its value equals `expected` (nil matches
    /// unset); whether it was set.
    fn compare_and_set(
        &self,
        name: String,
        param: String,
        expected: Value,
        new: Vec<u8>,
    ) -> Answer<'_, bool>;
    /// Sets `param` if it is unset; whether it was set.
    fn set_if_absent(&self, name: String, param: String, value: Vec<u8>) -> Answer<'_, bool>;
    /// Adds `delta` to an integer parameter (unset counts as 0); the new value.
    fn increment(&self, name: String, param: String, delta: i64) -> Answer<'_, i64>;

    /// Reserves, by the backend's clock, the moment `interval_ms` after the
    /// last one reserved on `param` (an integer parameter holding it, in
    /// milliseconds since the epoch), or now if that is later; how many
    /// milliseconds from now it is. Creates the storage.
    fn reserve(&self, name: String, param: String, interval_ms: i64) -> Answer<'_, i64>;

    /// Logs a client in (a live session keeps its queue).
    fn login(&self, name: String, host: String, info: Vec<u8>) -> Answer<'_, ()>;
    /// Ends a client's session: its messages are dropped and its leased items
    /// go back. Wakes the stacks' and the client's waiters.
    fn logout(&self, name: String) -> Answer<'_, ()>;
    /// Ends every session not seen for `idle_ms`; how many ended.
    fn end_idle(&self, idle_ms: i64) -> Answer<'_, usize>;
    /// A visit: marks the client seen, records `status` when given, and takes
    /// its oldest message if `carry` takes it (given back if the call is
    /// cancelled).
    fn visit<'a>(
        &'a self,
        name: String,
        status: Option<Vec<u8>>,
        carry: Carry<'a>,
    ) -> Answer<'a, Option<Vec<u8>>>;
    /// Marks the client seen; false if it is not logged in.
    fn seen(&self, name: String) -> Answer<'_, bool>;
    /// Queues a message for one client unless its queue holds `max_queue`.
    /// Wakes the client's waiters.
    fn send(&self, name: String, message: Vec<u8>, max_queue: usize) -> Answer<'_, ()>;
    /// Queues a message for every client with room; how many got it.
    fn broadcast(&self, message: Vec<u8>, max_queue: usize) -> Answer<'_, u64>;
    /// The oldest message of `name` with its sequence number, not taken.
    fn peek_message(&self, name: String) -> Answer<'_, Option<(u64, Vec<u8>)>>;
    /// Takes message `seq` of `name` if it is still the oldest; false otherwise.
    fn delivered(&self, name: String, seq: u64) -> Answer<'_, bool>;
    /// One client's session.
    fn session(&self, name: String) -> Answer<'_, Option<Session>>;
    /// Every client's session, in name order.
    fn sessions(&self) -> Answer<'_, Vec<(String, Session)>>;

    /// The callers waiting for items on a stack, by its name.
    fn stack_waiters(&self) -> &Waiters;
    /// The callers waiting for a client's messages, by its name.
    fn client_waiters(&self) -> &Waiters;
    /// Whether every change reaches this process's waiters (no other process
    /// shares the state): waits then need no periodic recheck.
    fn sees_every_change(&self) -> bool;
    /// Background upkeep, run every second or so (compaction, for a journal).
    fn maintain(self: std::sync::Arc<Self>) -> Answer<'static, ()>;
    /// Makes everything acknowledged so far durable (before a test reopens the
    /// files, say).
    fn flush(&self) -> Answer<'_, ()>;
    /// At a graceful stop: makes everything durable and leaves the state
    /// quick to load (a journal compacts into a snapshot).
    fn shutdown(self: std::sync::Arc<Self>) -> Answer<'static, ()>;
}
