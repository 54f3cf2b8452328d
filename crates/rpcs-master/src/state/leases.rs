//! Leased stack items, indexed three ways: by id (ack, release), by deadline
//! (expiry costs what expires, not what is held) and by owner (a logout costs
//! that client's leases only). No index has a cap past which leases are missed.

use std::collections::{BTreeSet, HashMap, HashSet};

/// One leased item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The stack it came from and goes back to.
    pub stack: String,
    /// The item, encoded.
    pub item: Vec<u8>,
    /// When it goes back unless acked, in milliseconds since the epoch.
    pub deadline_ms: i64,
    /// The provider client holding it: its session's end gives the item back.
    pub owner: Option<String>,
}

/// Every lease, by id.
#[derive(Debug, Default, Clone)]
pub struct Leases {
    by_id: HashMap<String, Lease>,
    by_deadline: BTreeSet<(i64, String)>,
    by_owner: HashMap<String, HashSet<String>>,
    by_stack: HashMap<String, HashSet<String>>,
}

impl Leases {
    /// No leases.
    pub fn new() -> Leases {
        Leases::default()
    }

    /// How many leases are held.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether none are.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Whether `id` is held.
    pub fn contains(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }

    /// Records a lease under `id`. Ids are drawn at random from 64 bits and the
    /// caller draws again on a clash; a reused id replaces the lease it named.
    pub fn insert(&mut self, id: String, lease: Lease) {
        if let Some(old) = self.by_id.get(&id).map(|l| l.stack.clone()) {
            self.remove(&old, &id);
        }
        self.by_deadline.insert((lease.deadline_ms, id.clone()));
        if let Some(owner) = &lease.owner {
            self.by_owner
                .entry(owner.clone())
                .or_default()
                .insert(id.clone());
        }
        self.by_stack
            .entry(lease.stack.clone())
            .or_default()
            .insert(id.clone());
        self.by_id.insert(id, lease);
    }

    /// The lease `id` of `stack`, if held.
    pub fn get(&self, stack: &str, id: &str) -> Option<&Lease> {
        self.by_id.get(id).filter(|l| l.stack == stack)
    }

    /// Ends the lease `id` of `stack` and returns it.
    pub fn remove(&mut self, stack: &str, id: &str) -> Option<Lease> {
        self.get(stack, id)?;
        let lease = self.by_id.remove(id)?;
        self.by_deadline.remove(&(lease.deadline_ms, id.to_owned()));
        if let Some(owner) = &lease.owner {
            forget(&mut self.by_owner, owner, id);
        }
        forget(&mut self.by_stack, &lease.stack, id);
        Some(lease)
    }

    /// Moves the deadline of lease `id` of `stack`; false if it is not held.
    pub fn set_deadline(&mut self, stack: &str, id: &str, deadline_ms: i64) -> bool {
        let Some(lease) = self.by_id.get_mut(id).filter(|l| l.stack == stack) else {
            return false;
        };
        self.by_deadline.remove(&(lease.deadline_ms, id.to_owned()));
        lease.deadline_ms = deadline_ms;
        self.by_deadline.insert((deadline_ms, id.to_owned()));
        true
    }

    /// The ids of the leases whose deadline is at or before `now_ms`, soonest
    /// first.
    pub fn expired(&self, now_ms: i64) -> Vec<String> {
        self.by_deadline
            .iter()
            .take_while(|(deadline, _)| *deadline <= now_ms)
            .map(|(_, id)| id.clone())
            .collect()
    }

    /// The ids of the leases `owner` holds.
    pub fn owned_by(&self, owner: &str) -> Vec<String> {
        ids(&self.by_owner, owner)
    }

    /// The ids of the leases on items of `stack`.
    pub fn of_stack(&self, stack: &str) -> Vec<String> {
        ids(&self.by_stack, stack)
    }

    /// How many items of `stack` are under lease.
    pub fn count_of_stack(&self, stack: &str) -> usize {
        self.by_stack.get(stack).map_or(0, HashSet::len)
    }

    /// The lease `id`, whatever its stack.
    pub fn by_id(&self, id: &str) -> Option<&Lease> {
        self.by_id.get(id)
    }

    /// Every lease, in no particular order (for snapshots).
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Lease)> {
        self.by_id.iter()
    }
}

fn ids(index: &HashMap<String, HashSet<String>>, key: &str) -> Vec<String> {
    let mut ids: Vec<String> = index
        .get(key)
        .map(|set| set.iter().cloned().collect())
        .unwrap_or_default();
    // A fixed order, so that replaying the same operations gives the same state.
    ids.sort();
    ids
}

fn forget(index: &mut HashMap<String, HashSet<String>>, key: &str, id: &str) {
    if let Some(set) = index.get_mut(key) {
        set.remove(id);
        if set.is_empty() {
            index.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(stack: &str, deadline_ms: i64, owner: Option<&str>) -> Lease {
        Lease {
            stack: stack.into(),
            item: b"item".to_vec(),
            deadline_ms,
            owner: owner.map(str::to_owned),
        }
    }

    #[test]
    fn expiry_finds_only_what_is_due_in_deadline_order() {
        let mut leases = Leases::new();
        leases.insert("late".into(), lease("s", 300, None));
        leases.insert("soon".into(), lease("s", 100, None));
        leases.insert("now".into(), lease("s", 200, None));
        assert_eq!(leases.expired(99), Vec::<String>::new());
        assert_eq!(leases.expired(200), vec!["soon", "now"]);
    }

    #[test]
    fn removal_leaves_no_trace_in_any_index() {
        let mut leases = Leases::new();
        leases.insert("a".into(), lease("s", 100, Some("worker")));
        assert!(
            leases.remove("other-stack", "a").is_none(),
            "a lease belongs to its stack"
        );
        assert_eq!(
            leases.remove("s", "a"),
            Some(lease("s", 100, Some("worker")))
        );
        assert!(leases.is_empty());
        assert!(leases.expired(i64::MAX).is_empty());
        assert!(leases.owned_by("worker").is_empty());
        assert!(leases.of_stack("s").is_empty());
        assert!(leases.by_owner.is_empty() && leases.by_stack.is_empty());
    }

    #[test]
    fn owners_and_stacks_see_their_own_leases() {
        let mut leases = Leases::new();
        leases.insert("1".into(), lease("s", 100, Some("w1")));
        leases.insert("2".into(), lease("t", 100, Some("w1")));
        leases.insert("3".into(), lease("s", 100, Some("w2")));
        leases.insert("4".into(), lease("s", 100, None));
        assert_eq!(leases.owned_by("w1"), vec!["1", "2"]);
        assert_eq!(leases.of_stack("s"), vec!["1", "3", "4"]);
        assert_eq!(leases.len(), 4);
    }

    #[test]
    fn many_leases_are_all_found_past_any_scan_limit() {
        let mut leases = Leases::new();
        for i in 0..150_000 {
            leases.insert(format!("{i:08}"), lease("s", i, None));
        }
        assert_eq!(leases.expired(149_999).len(), 150_000);
    }
}
