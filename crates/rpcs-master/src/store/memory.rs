//! An in-memory store: for tests and for masters that need no durability.

use super::{
    parse_seq_key, seq_key, Entries, ReadTxn, Store, StoreError, Table, WriteOp, WriteTxn,
};
use rustc_hash::FxHashMap;
use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::sync::Mutex;

/// Items of one sequence by position: a stack grows and shrinks at the back, a
/// message queue is read from the front, so a deque with a base offset holds
/// either without per-item keys.
#[derive(Default)]
struct Seq {
    base: u64,
    items: VecDeque<Option<Vec<u8>>>,
}

impl Seq {
    fn get(&self, index: u64) -> Option<&Vec<u8>> {
        let i = usize::try_from(index.checked_sub(self.base)?).ok()?;
        self.items.get(i)?.as_ref()
    }

    fn put(&mut self, index: u64, value: Vec<u8>) {
        if self.items.is_empty() {
            self.base = index;
        }
        while index < self.base {
            self.items.push_front(None);
            self.base -= 1;
        }
        let i = (index - self.base) as usize;
        while self.items.len() <= i {
            self.items.push_back(None);
        }
        self.items[i] = Some(value);
    }

    fn take(&mut self, index: u64) -> Option<Vec<u8>> {
        let i = usize::try_from(index.checked_sub(self.base)?).ok()?;
        let value = self.items.get_mut(i)?.take();
        while matches!(self.items.back(), Some(None)) {
            self.items.pop_back();
        }
        while matches!(self.items.front(), Some(None)) {
            self.items.pop_front();
            self.base += 1;
        }
        value
    }
}

/// The tables: stack items and messages as sequences, the others as ordered maps.
#[derive(Default)]
struct Data {
    seqs: [FxHashMap<String, Seq>; 7],
    sorted: [BTreeMap<Vec<u8>, Vec<u8>>; 7],
}

fn is_seq(table: Table) -> bool {
    matches!(table, Table::StackItems | Table::Messages)
}

/// Keeps everything in memory behind one lock; writes apply at once.
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

impl ReadTxn for Txn<'_> {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if is_seq(table) {
            return match parse_seq_key(key) {
                Some((name, index)) => self.get_at(table, name, index),
                None => Ok(None),
            };
        }
        Ok(self.0.sorted[table as usize].get(key).cloned())
    }

    fn scan(&self, table: Table, prefix: &[u8], limit: usize) -> Result<Entries, StoreError> {
        let t = table as usize;
        if is_seq(table) {
            // Correct but slow; the services address sequences by position.
            let mut out: Entries = self.0.seqs[t]
                .iter()
                .flat_map(|(name, seq)| {
                    seq.items.iter().enumerate().filter_map(move |(i, v)| {
                        v.as_ref()
                            .map(|v| (seq_key(name, seq.base + i as u64), v.clone()))
                    })
                })
                .filter(|(k, _)| k.starts_with(prefix))
                .collect();
            out.sort();
            out.truncate(limit);
            return Ok(out);
        }
        Ok(self.0.sorted[t]
            .range::<[u8], _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn get_at(&self, table: Table, name: &str, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        if !is_seq(table) {
            return self.get(table, &seq_key(name, index));
        }
        Ok(self.0.seqs[table as usize]
            .get(name)
            .and_then(|s| s.get(index))
            .cloned())
    }
}

impl WriteTxn for Txn<'_> {
    fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        if is_seq(table) {
            let (name, index) = parse_seq_key(key)
                .ok_or_else(|| StoreError::Corrupt("not a sequence key".into()))?;
            let name = name.to_owned();
            return self.put_at(table, &name, index, value);
        }
        // Overwrite in place when the key exists: no allocation for the key.
        let map = &mut self.0.sorted[table as usize];
        if let Some(old) = map.get_mut(key) {
            old.clear();
            old.extend_from_slice(value);
        } else {
            map.insert(key.to_vec(), value.to_vec());
        }
        Ok(())
    }

    fn delete(&mut self, table: Table, key: &[u8]) -> Result<bool, StoreError> {
        if is_seq(table) {
            return match parse_seq_key(key) {
                Some((name, index)) => {
                    let name = name.to_owned();
                    Ok(self.take_at(table, &name, index)?.is_some())
                }
                None => Ok(false),
            };
        }
        Ok(self.0.sorted[table as usize].remove(key).is_some())
    }

    fn put_at(
        &mut self,
        table: Table,
        name: &str,
        index: u64,
        value: &[u8],
    ) -> Result<(), StoreError> {
        if !is_seq(table) {
            return self.put(table, &seq_key(name, index), value);
        }
        let seqs = &mut self.0.seqs[table as usize];
        match seqs.get_mut(name) {
            Some(seq) => seq.put(index, value.to_vec()),
            None => seqs
                .entry(name.to_owned())
                .or_default()
                .put(index, value.to_vec()),
        }
        Ok(())
    }

    fn take_at(
        &mut self,
        table: Table,
        name: &str,
        index: u64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        if !is_seq(table) {
            return Ok(self.0.sorted[table as usize].remove(&seq_key(name, index)));
        }
        let seqs = &mut self.0.seqs[table as usize];
        let Some(seq) = seqs.get_mut(name) else {
            return Ok(None);
        };
        let value = seq.take(index);
        if seq.items.is_empty() {
            seqs.remove(name);
        }
        Ok(value)
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

    fn write_inline(&self, f: &mut dyn FnMut(&mut dyn WriteTxn)) -> Option<Result<(), StoreError>> {
        let mut data = self.data.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut Txn(&mut data));
        Some(Ok(()))
    }

    fn sync(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_work_as_stacks_and_queues() {
        let mut seq = Seq::default();
        for i in 0..5 {
            seq.put(i, vec![i as u8]);
        }
        assert_eq!(seq.take(4), Some(vec![4]));
        assert_eq!(seq.take(0), Some(vec![0]));
        assert_eq!(seq.base, 1);
        assert_eq!(seq.get(2), Some(&vec![2]));
        assert_eq!(seq.get(0), None);
        assert_eq!(seq.take(2), Some(vec![2]));
        assert_eq!(seq.items.len(), 3);
        seq.put(10, vec![10]);
        assert_eq!(seq.get(10), Some(&vec![10]));
        assert_eq!(seq.take(1), Some(vec![1]));
        assert_eq!(seq.take(3), Some(vec![3]));
        assert_eq!(seq.base, 10);
        assert_eq!(seq.take(10), Some(vec![10]));
        assert!(seq.items.is_empty());
        seq.put(7, vec![7]);
        assert_eq!(seq.base, 7);
    }
}
