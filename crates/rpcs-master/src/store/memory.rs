//! An in-memory store: for tests and for masters that need no durability.

use super::{Entries, ReadTxn, Store, StoreError, Table, WriteOp, WriteTxn};
use std::collections::BTreeMap;
use std::sync::Mutex;

type Data = BTreeMap<(Table, Vec<u8>), Vec<u8>>;

/// Keeps everything in one ordered map behind a lock; writes apply at once.
#[derive(Default)]
pub struct MemoryStore {
    data: Mutex<Data>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }
}

struct Txn<'a>(&'a mut Data);

fn scan(data: &Data, table: Table, prefix: &[u8], limit: usize) -> Entries {
    data.range((table, prefix.to_vec())..)
        .take_while(|((t, k), _)| *t == table && k.starts_with(prefix))
        .take(limit)
        .map(|((_, k), v)| (k.clone(), v.clone()))
        .collect()
}

impl ReadTxn for Txn<'_> {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.0.get(&(table, key.to_vec())).cloned())
    }
    fn scan(&self, table: Table, prefix: &[u8], limit: usize) -> Result<Entries, StoreError> {
        Ok(scan(self.0, table, prefix, limit))
    }
}

impl WriteTxn for Txn<'_> {
    fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.0.insert((table, key.to_vec()), value.to_vec());
        Ok(())
    }
    fn delete(&mut self, table: Table, key: &[u8]) -> Result<bool, StoreError> {
        Ok(self.0.remove(&(table, key.to_vec())).is_some())
    }
}

impl Store for MemoryStore {
    fn read(&self, f: &mut dyn FnMut(&dyn ReadTxn)) -> Result<(), StoreError> {
        let mut data = self.data.lock().unwrap_or_else(|p| p.into_inner());
        f(&Txn(&mut data));
        Ok(())
    }

    fn submit(&self, op: WriteOp) {
        let completion = {
            let mut data = self.data.lock().unwrap_or_else(|p| p.into_inner());
            op(&mut Txn(&mut data))
        };
        completion(Ok(()));
    }

    fn sync(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
