//! The stacks and their leased items, in memory.
//!
//! Every operation is atomic by construction: it checks everything that can
//! fail (the stack exists, each item can be carried to the caller) before it
//! changes anything, and the changes themselves cannot fail.

use super::items::Items;
use super::leases::{Lease, Leases};
use rpcs_core::Fault;
use rustc_hash::FxHashSet;
use std::collections::BTreeMap;

/// Checks that an encoded item can go to the caller (its protocol can carry it).
pub type Accept<'a> = &'a dyn Fn(&[u8]) -> Result<(), Fault>;

fn not_found(name: &str) -> Fault {
    Fault::named("StackNotFoundError", format!("no stack named {name:?}"))
}

/// What `pop` takes.
#[derive(Debug, Clone, Copy)]
pub struct PopLimit {
    /// The most items.
    pub count: usize,
    /// Stop adding items once they reach this many bytes (the first always goes).
    pub budget: usize,
}

/// Every stack, by name, and every lease.
#[derive(Debug, Default, Clone)]
pub struct Stacks {
    stacks: BTreeMap<String, Items>,
    leases: Leases,
    /// The keys each stack has seen (`stack.pushNew`, `stack.markSeen`).
    seen: BTreeMap<String, FxHashSet<Vec<u8>>>,
}

impl Stacks {
    /// No stacks.
    pub fn new() -> Stacks {
        Stacks::default()
    }

    /// Creates an empty stack; false if one of that name exists.
    pub fn create(&mut self, name: &str) -> bool {
        if self.stacks.contains_key(name) {
            return false;
        }
        self.stacks.insert(name.to_owned(), Items::new());
        true
    }

    /// Pushes items in order (the last on top), creating the stack if missing;
    /// returns the new size.
    pub fn push(&mut self, name: &str, items: &[Vec<u8>]) -> u64 {
        let stack = self.stack_mut(name);
        for item in items {
            stack.push(item);
        }
        stack.len() as u64
    }

    /// Whether each of `keys` is new to the stack: not seen before, and not
    /// earlier in `keys` itself.
    pub fn unseen(&self, name: &str, keys: &[Vec<u8>]) -> Vec<bool> {
        let seen = self.seen.get(name);
        let mut batch = FxHashSet::default();
        keys.iter()
            .map(|k| !seen.is_some_and(|s| s.contains(k)) && batch.insert(k.as_slice()))
            .collect()
    }

    /// Marks keys seen on the stack, creating it if missing.
    pub fn mark_seen(&mut self, name: &str, keys: &[Vec<u8>]) {
        self.stack_mut(name);
        let set = self.seen.entry(name.to_owned()).or_default();
        set.extend(keys.iter().cloned());
    }

    /// How many keys the stack has seen.
    pub fn seen_count(&self, name: &str) -> usize {
        self.seen.get(name).map_or(0, FxHashSet::len)
    }

    /// Every stack's seen keys, in name order (for snapshots).
    pub fn seen(&self) -> impl Iterator<Item = (&String, &FxHashSet<Vec<u8>>)> {
        self.seen.iter()
    }

    /// Pops up to `limit.count` items, top first, none unless `accept` takes
    /// every one of them. `None` if the stack does not exist.
    pub fn pop(
        &mut self,
        name: &str,
        limit: PopLimit,
        accept: Accept<'_>,
    ) -> Result<Option<Vec<Vec<u8>>>, Fault> {
        let Some(count) = self.would_pop(name, limit, accept)? else {
            return Ok(None);
        };
        Ok(self.stacks.get_mut(name).map(|s| s.pop_many(count)))
    }

    /// How many items [`Stacks::pop`] would take, without taking them.
    pub fn would_pop(
        &self,
        name: &str,
        limit: PopLimit,
        accept: Accept<'_>,
    ) -> Result<Option<usize>, Fault> {
        let Some(stack) = self.stacks.get(name) else {
            return Ok(None);
        };
        let mut count = 0;
        let mut bytes = 0;
        for item in stack.peek(limit.count) {
            if count > 0 && bytes >= limit.budget {
                break;
            }
            accept(item)?;
            bytes += item.len();
            count += 1;
        }
        Ok(Some(count))
    }

    /// The top `n` items of `name`, top first, without taking them.
    pub fn peek(&self, name: &str, n: usize) -> Vec<Vec<u8>> {
        self.stacks
            .get(name)
            .map(|s| s.peek(n).map(<[u8]>::to_vec).collect())
            .unwrap_or_default()
    }

    /// Moves the top item into a lease `id` (which must be new), if `accept`
    /// takes it. `None` if the stack is missing or empty.
    pub fn take(
        &mut self,
        name: &str,
        id: String,
        deadline_ms: i64,
        owner: Option<String>,
        accept: Accept<'_>,
    ) -> Result<Option<Vec<u8>>, Fault> {
        let Some(stack) = self.stacks.get_mut(name) else {
            return Ok(None);
        };
        let Some(top) = stack.peek(1).next() else {
            return Ok(None);
        };
        accept(top)?;
        let item = stack.pop().unwrap_or_default();
        let lease = Lease {
            stack: name.to_owned(),
            item: item.clone(),
            deadline_ms,
            owner,
        };
        self.leases.insert(id, lease);
        Ok(Some(item))
    }

    /// Whether lease `id` is held, whatever its stack (for drawing a new id).
    pub fn lease_exists(&self, id: &str) -> bool {
        self.leases.contains(id)
    }

    /// Finishes lease `id` of stack `name`; false if it is not held.
    pub fn ack(&mut self, name: &str, id: &str) -> bool {
        self.leases.remove(name, id).is_some()
    }

    /// Moves the deadline of lease `id` of stack `name`; false if it is not held.
    pub fn extend(&mut self, name: &str, id: &str, deadline_ms: i64) -> bool {
        self.leases.set_deadline(name, id, deadline_ms)
    }

    /// Puts the item of lease `id` back on top of its stack now; false if the
    /// lease is not held.
    pub fn release(&mut self, name: &str, id: &str) -> bool {
        match self.leases.remove(name, id) {
            Some(lease) => {
                self.give_back(lease);
                true
            }
            None => false,
        }
    }

    /// Puts back every item whose lease is due by `now_ms`; returns the stacks
    /// that got items back (to wake their waiters).
    pub fn expire(&mut self, now_ms: i64) -> Vec<String> {
        let due = self.leases.expired(now_ms);
        self.requeue(due)
    }

    /// Puts back every item `owner` holds (its session ended); returns the
    /// stacks that got items back.
    pub fn release_owned(&mut self, owner: &str) -> Vec<String> {
        let owned = self.leases.owned_by(owner);
        self.requeue(owned)
    }

    /// Removes every item (leases stay); returns how many there were.
    pub fn truncate(&mut self, name: &str) -> Result<u64, Fault> {
        let stack = self.stacks.get_mut(name).ok_or_else(|| not_found(name))?;
        let n = stack.len() as u64;
        stack.clear();
        Ok(n)
    }

    /// Deletes a stack with its items and leases.
    pub fn remove(&mut self, name: &str) -> Result<(), Fault> {
        self.stacks.remove(name).ok_or_else(|| not_found(name))?;
        self.seen.remove(name);
        for id in self.leases.of_stack(name) {
            self.leases.remove(name, &id);
        }
        Ok(())
    }

    /// The number of items on `name`, `None` if there is no such stack.
    pub fn size(&self, name: &str) -> Option<u64> {
        self.stacks.get(name).map(|s| s.len() as u64)
    }

    /// How many items of `name` are under lease, `None` if there is no such stack.
    pub fn leased(&self, name: &str) -> Option<u64> {
        self.stacks.get(name)?;
        Some(self.leases.count_of_stack(name) as u64)
    }

    /// Every stack name, sorted.
    pub fn names(&self) -> Vec<String> {
        self.stacks.keys().cloned().collect()
    }

    /// The leases, for reading.
    pub fn leases(&self) -> &Leases {
        &self.leases
    }

    /// Every stack with its items, in name order (for snapshots).
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Items)> {
        self.stacks.iter()
    }

    /// Puts back a stack read from a snapshot.
    pub fn restore_stack(&mut self, name: String, items: Items) {
        self.stacks.insert(name, items);
    }

    /// Puts back a lease read from a snapshot.
    pub fn restore_lease(&mut self, id: String, lease: Lease) {
        self.leases.insert(id, lease);
    }

    fn stack_mut(&mut self, name: &str) -> &mut Items {
        if !self.stacks.contains_key(name) {
            self.stacks.insert(name.to_owned(), Items::new());
        }
        self.stacks
            .get_mut(name)
            .expect("the stack was just made sure of")
    }

    fn requeue(&mut self, ids: Vec<String>) -> Vec<String> {
        let mut touched = Vec::new();
        for id in ids {
            let Some(stack) = self.leases.by_id(&id).map(|l| l.stack.clone()) else {
                continue;
            };
            if let Some(lease) = self.leases.remove(&stack, &id) {
                self.give_back(lease);
                if !touched.contains(&stack) {
                    touched.push(stack);
                }
            }
        }
        touched
    }

    /// Puts a leased item back on top of its stack (recreated if it was
    /// truncated away; a removed stack took its leases with it).
    fn give_back(&mut self, lease: Lease) {
        self.stack_mut(&lease.stack).push(&lease.item);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn any(_: &[u8]) -> Result<(), Fault> {
        Ok(())
    }

    fn items(list: &[&str]) -> Vec<Vec<u8>> {
        list.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    const ALL: PopLimit = PopLimit {
        count: usize::MAX,
        budget: usize::MAX,
    };

    #[test]
    fn a_refused_item_takes_nothing() {
        let mut stacks = Stacks::new();
        stacks.push("s", &items(&["ok", "bad", "ok2"]));
        let refuse_bad = |item: &[u8]| {
            if item == b"bad" {
                Err(Fault::named("UnrepresentableError", "no"))
            } else {
                Ok(())
            }
        };
        assert!(stacks.pop("s", ALL, &refuse_bad).is_err());
        assert_eq!(stacks.size("s"), Some(3));
        assert!(stacks
            .take("s", "id".into(), 0, None, &|_| Err(Fault::internal("no")))
            .is_err());
        assert_eq!(stacks.size("s"), Some(3));
        assert!(stacks.leases().is_empty());
    }

    #[test]
    fn pop_stops_at_the_budget_but_always_takes_one() {
        let mut stacks = Stacks::new();
        stacks.push("s", &items(&["aaaa", "bbbb", "cccc"]));
        let small = PopLimit {
            count: 3,
            budget: 6,
        };
        assert_eq!(
            stacks.pop("s", small, &any).unwrap(),
            Some(items(&["cccc", "bbbb"]))
        );
        let tiny = PopLimit {
            count: 3,
            budget: 0,
        };
        assert_eq!(stacks.pop("s", tiny, &any).unwrap(), Some(items(&["aaaa"])));
        assert_eq!(stacks.pop("missing", ALL, &any).unwrap(), None);
    }

    #[test]
    fn a_lease_goes_back_on_release_expiry_or_its_owners_end() {
        let mut stacks = Stacks::new();
        stacks.push("s", &items(&["1", "2", "3"]));
        stacks.take("s", "a".into(), 100, None, &any).unwrap();
        stacks
            .take("s", "b".into(), 500, Some("w".into()), &any)
            .unwrap();
        stacks.take("s", "c".into(), 500, None, &any).unwrap();
        assert_eq!(stacks.size("s"), Some(0));
        assert!(stacks.release("s", "c"));
        assert!(!stacks.release("s", "c"), "a lease goes back once");
        assert_eq!(stacks.expire(100), vec!["s"]);
        assert_eq!(stacks.release_owned("w"), vec!["s"]);
        assert_eq!(
            stacks.pop("s", ALL, &any).unwrap(),
            Some(items(&["2", "3", "1"]))
        );
        assert!(stacks.leases().is_empty());
    }

    #[test]
    fn an_acked_lease_never_comes_back() {
        let mut stacks = Stacks::new();
        stacks.push("s", &items(&["x"]));
        assert_eq!(
            stacks
                .take("s", "a".into(), 10, Some("w".into()), &any)
                .unwrap(),
            Some(b"x".to_vec())
        );
        assert!(!stacks.ack("other", "a"));
        assert!(stacks.ack("s", "a"));
        assert!(stacks.expire(i64::MAX).is_empty());
        assert!(stacks.release_owned("w").is_empty());
        assert_eq!(stacks.size("s"), Some(0));
    }

    #[test]
    fn removing_a_stack_drops_its_leases_too() {
        let mut stacks = Stacks::new();
        stacks.push("s", &items(&["x", "y"]));
        stacks.take("s", "a".into(), 10, None, &any).unwrap();
        stacks.remove("s").unwrap();
        assert!(stacks.leases().is_empty());
        assert!(stacks.expire(i64::MAX).is_empty());
        assert_eq!(stacks.size("s"), None);
        assert!(stacks.remove("s").is_err());
        assert!(stacks.truncate("s").is_err());
    }
}
