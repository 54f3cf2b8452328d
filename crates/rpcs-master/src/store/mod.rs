//! Storage for the master's services: a small transactional key-value
//! interface with memory and embedded (redb) implementations.
//!
//! Reads run on the caller's thread against a consistent snapshot. Writes are
//! closures submitted to the store, which runs them one at a time (so each is
//! atomic and isolated) and reports back only once the write is as durable as the
//! store's [`Durability`] promises. The embedded store runs many writers' closures
//! in one transaction and one fsync (group commit).

mod embedded;
mod memory;

pub use embedded::EmbeddedStore;
pub use memory::MemoryStore;

use rpcs_core::Fault;
use std::fmt;
use std::sync::Arc;
use tokio::sync::oneshot;

/// The tables the services keep their data in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Table {
    /// Stack name → stack length.
    Stacks,
    /// Stack name + index → item.
    StackItems,
    /// Stack name + lease id → leased item.
    Leases,
    /// Storage name → (empty).
    Storages,
    /// Storage name + parameter name → value.
    Params,
    /// Client name → session record.
    Clients,
    /// Client name + sequence number → queued message.
    Messages,
}

impl Table {
    /// Every table, for creating them up front.
    pub const ALL: [Table; 7] = [
        Table::Stacks,
        Table::StackItems,
        Table::Leases,
        Table::Storages,
        Table::Params,
        Table::Clients,
        Table::Messages,
    ];

    /// The table's name on disk.
    pub fn name(self) -> &'static str {
        match self {
            Table::Stacks => "stacks",
            Table::StackItems => "stack_items",
            Table::Leases => "leases",
            Table::Storages => "storages",
            Table::Params => "params",
            Table::Clients => "clients",
            Table::Messages => "messages",
        }
    }
}

/// A failure of the storage layer itself (not of a service rule).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The embedded database reported an error.
    #[error("storage failure: {0}")]
    Db(String),
    /// The store has shut down.
    #[error("the store is closed")]
    Closed,
    /// Stored bytes could not be decoded.
    #[error("corrupt stored record: {0}")]
    Corrupt(String),
}

impl From<StoreError> for Fault {
    fn from(e: StoreError) -> Fault {
        Fault::named("StorageError", e)
    }
}

/// Key-value pairs as a scan returns them, in key order.
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// The key of item `index` of the sequence `name` (a stack's items, a client's
/// messages): sequences are addressed by position, never scanned.
pub fn seq_key(name: &str, index: u64) -> Vec<u8> {
    key(&[name.as_bytes(), &index.to_be_bytes()])
}

/// The sequence name and position a [`seq_key`] was built from.
pub fn parse_seq_key(key: &[u8]) -> Option<(&str, u64)> {
    let name = first_part(key)?;
    let index = key
        .get(4 + name.len()..)?
        .try_into()
        .ok()
        .map(u64::from_be_bytes)?;
    Some((name, index))
}

/// Reading inside a transaction.
pub trait ReadTxn {
    /// The value under `key`.
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Up to `limit` entries whose keys start with `prefix`, in key order.
    fn scan(&self, table: Table, prefix: &[u8], limit: usize) -> Result<Entries, StoreError>;
    /// Item `index` of the sequence `name`.
    fn get_at(&self, table: Table, name: &str, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.get(table, &seq_key(name, index))
    }
}

/// Writing inside a transaction.
pub trait WriteTxn: ReadTxn {
    /// Sets `key` to `value`.
    fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<(), StoreError>;
    /// Removes `key`; whether it was there.
    fn delete(&mut self, table: Table, key: &[u8]) -> Result<bool, StoreError>;
    /// Sets item `index` of the sequence `name`.
    fn put_at(
        &mut self,
        table: Table,
        name: &str,
        index: u64,
        value: &[u8],
    ) -> Result<(), StoreError> {
        self.put(table, &seq_key(name, index), value)
    }
    /// Removes and returns item `index` of the sequence `name`.
    fn take_at(
        &mut self,
        table: Table,
        name: &str,
        index: u64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let k = seq_key(name, index);
        let value = self.get(table, &k)?;
        if value.is_some() {
            self.delete(table, &k)?;
        }
        Ok(value)
    }
    /// Removes every key starting with `prefix`; how many there were.
    fn delete_prefix(&mut self, table: Table, prefix: &[u8]) -> Result<usize, StoreError> {
        let mut removed = 0;
        loop {
            let batch = self.scan(table, prefix, 1024)?;
            if batch.is_empty() {
                return Ok(removed);
            }
            for (key, _) in batch {
                self.delete(table, &key)?;
                removed += 1;
            }
        }
    }
}

/// Called once the transaction that ran a write has committed (or failed to).
pub type Completion = Box<dyn FnOnce(Result<(), &StoreError>) + Send>;

/// A write: runs inside a transaction and returns what to do once it is durable.
pub type WriteOp = Box<dyn FnOnce(&mut dyn WriteTxn) -> Completion + Send>;

/// What an acknowledged write survives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// An acknowledged write is on stable storage: it survives a process kill and
    /// a power loss. Concurrent writers share one fsync (group commit).
    #[default]
    Strict,
    /// Writes are acknowledged once applied and flushed to stable storage at least
    /// every second: a crash loses at most the last second of acknowledged writes.
    Relaxed,
}

impl fmt::Display for Durability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Durability::Strict => "strict",
            Durability::Relaxed => "relaxed",
        })
    }
}

/// A transactional store.
pub trait Store: Send + Sync + 'static {
    /// Runs `f` against a consistent snapshot.
    fn read(&self, f: &mut dyn FnMut(&dyn ReadTxn)) -> Result<(), StoreError>;
    /// Queues a write. Its completion runs after the commit.
    fn submit(&self, op: WriteOp);
    /// Runs a write at once on the caller's thread, when this store can (its
    /// writes need no commit to wait for); `None` when writes must be queued.
    fn write_inline(&self, f: &mut dyn FnMut(&mut dyn WriteTxn)) -> Option<Result<(), StoreError>> {
        let _ = f;
        None
    }
    /// Flushes everything acknowledged so far to stable storage.
    fn sync(&self) -> Result<(), StoreError>;
}

/// Runs a read and returns its result.
pub fn read<R>(
    store: &dyn Store,
    f: impl FnOnce(&dyn ReadTxn) -> Result<R, Fault>,
) -> Result<R, Fault> {
    let mut f = Some(f);
    let mut out = None;
    store.read(&mut |txn| {
        if let Some(f) = f.take() {
            out = Some(f(txn));
        }
    })?;
    out.unwrap_or_else(|| Err(Fault::internal("read did not run")))
}

/// Runs a write and returns its result once the write is durable.
///
/// A write that fails with a fault must not have written anything: services
/// check first and write after.
pub async fn write<R, F>(store: &dyn Store, f: F) -> Result<R, Fault>
where
    R: Send + 'static,
    F: FnOnce(&mut dyn WriteTxn) -> Result<R, Fault> + Send + 'static,
{
    run_write(store, None, f, None::<fn(R) -> WriteOp>).await
}

/// Runs a write that hands something over to its caller (a pop), like
/// [`write`]. If the caller is gone once the write is durable (its call was
/// cancelled: a time limit, a client that went silent), `undo` gets the result
/// back and returns the write that puts it back, so nothing taken is lost to a
/// cancelled call.
pub async fn write_handing_over<R, F, U>(store: &Arc<dyn Store>, f: F, undo: U) -> Result<R, Fault>
where
    R: Send + 'static,
    F: FnOnce(&mut dyn WriteTxn) -> Result<R, Fault> + Send + 'static,
    U: FnOnce(R) -> WriteOp + Send + 'static,
{
    run_write(&**store, Some(store), f, Some(undo)).await
}

/// A result on its way to the caller: unless the caller takes it, dropping it
/// (wherever that happens) runs the write that undoes it.
struct Handover<R> {
    value: Option<R>,
    undo: Option<Box<dyn FnOnce(R) -> WriteOp + Send>>,
    store: Arc<dyn Store>,
}

impl<R> Handover<R> {
    fn take(mut self) -> R {
        self.undo = None;
        self.value
            .take()
            .expect("a handover holds its value until taken")
    }
}

impl<R> Drop for Handover<R> {
    fn drop(&mut self) {
        if let (Some(value), Some(undo)) = (self.value.take(), self.undo.take()) {
            self.store.submit(undo(value));
        }
    }
}

/// Runs `f` in a write and returns its result once durable. With `undo` (and
/// the store to run it on), a committed result that does not reach the caller
/// is undone; a failed commit took nothing.
async fn run_write<R, F, U>(
    store: &dyn Store,
    back: Option<&Arc<dyn Store>>,
    f: F,
    undo: Option<U>,
) -> Result<R, Fault>
where
    R: Send + 'static,
    F: FnOnce(&mut dyn WriteTxn) -> Result<R, Fault> + Send + 'static,
    U: FnOnce(R) -> WriteOp + Send + 'static,
{
    let mut f = Some(f);
    let mut result = None;
    // A write run at once on this thread cannot be cancelled half way: it
    // needs no undo.
    let inline = store.write_inline(&mut |txn| {
        if let Some(f) = f.take() {
            result = Some(f(txn));
        }
    });
    if let Some(done) = inline {
        done?;
        return result.unwrap_or_else(|| Err(Fault::internal("write did not run")));
    }
    let Some(f) = f else {
        return Err(Fault::internal("write ran twice"));
    };
    let arm = back.cloned().zip(undo).map(|(store, undo)| {
        move |value: R| Handover {
            value: Some(value),
            undo: Some(Box::new(undo) as Box<dyn FnOnce(R) -> WriteOp + Send>),
            store,
        }
    });
    let (tx, rx) = oneshot::channel();
    store.submit(Box::new(move |txn| {
        let result = f(txn);
        Box::new(move |commit: Result<(), &StoreError>| {
            let result = match commit {
                Ok(()) => result,
                Err(e) if result.is_ok() => Err(Fault::named("StorageError", e)),
                Err(_) => result,
            };
            // Only a committed result is armed; if the caller is gone, it is
            // dropped here (or in the channel) and undoes itself.
            let outcome = match (result, arm) {
                (Ok(value), Some(arm)) => Ok(Delivery::Armed(arm(value))),
                (Ok(value), None) => Ok(Delivery::Plain(value)),
                (Err(fault), _) => Err(fault),
            };
            let _ = tx.send(outcome);
        })
    }));
    match rx.await {
        Ok(Ok(Delivery::Armed(handover))) => Ok(handover.take()),
        Ok(Ok(Delivery::Plain(value))) => Ok(value),
        Ok(Err(fault)) => Err(fault),
        Err(_) => Err(Fault::from(StoreError::Closed)),
    }
}

/// A queued write's result on its way back, armed to undo itself or not.
enum Delivery<R> {
    Armed(Handover<R>),
    Plain(R),
}

/// Builds keys: every part but the last is length-prefixed, so no name can run
/// into the next part, and keys sharing a prefix sort by their last part's bytes.
pub fn key(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 4).sum());
    if let Some((last, init)) = parts.split_last() {
        for part in init {
            out.extend_from_slice(&(part.len() as u32).to_be_bytes());
            out.extend_from_slice(part);
        }
        out.extend_from_slice(last);
    }
    out
}

/// The prefix shared by every key whose first part is `name`.
pub fn prefix(name: &str) -> Vec<u8> {
    key(&[name.as_bytes(), b""])
}

/// The first part of a key built by [`key`], as a string.
pub fn first_part(key: &[u8]) -> Option<&str> {
    let len = u32::from_be_bytes(key.get(..4)?.try_into().ok()?) as usize;
    std::str::from_utf8(key.get(4..4 + len)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_do_not_run_together() {
        assert_ne!(key(&[b"ab", b"c"]), key(&[b"a", b"bc"]));
        assert!(key(&[b"a", b"x"]).starts_with(&prefix("a")));
        assert!(!key(&[b"ab", b"x"]).starts_with(&prefix("a")));
        assert_eq!(first_part(&key(&[b"name", b"rest"])), Some("name"));
    }
}
