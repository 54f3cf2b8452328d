//! The stack operations of the local backends, each decided on the state read
//! only and recorded as the changes it makes.

use super::LocalBackend;
use crate::state::{Change, PopLimit};
use rpcs_core::Fault;

/// Checks that an encoded item can go to the caller (its protocol can carry it).
pub type Carry<'a> = &'a (dyn Fn(&[u8]) -> Result<(), Fault> + Send + Sync);

/// Keys to mark seen on a stack, each with the encoded item to push if the key
/// is new (`None` to push nothing).
pub type Claims = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// An item taken under a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    /// The lease's id, for `ack` and `release`.
    pub id: String,
    /// The item, encoded.
    pub item: Vec<u8>,
    /// When the item goes back unless acked, in milliseconds since the epoch.
    pub deadline_ms: i64,
}

fn not_found(name: &str) -> Fault {
    Fault::named("StackNotFoundError", format!("no stack named {name:?}"))
}

impl LocalBackend {
    /// Creates a stack; false if it existed.
    pub async fn create_stack(&self, name: String) -> Result<bool, Fault> {
        self.write(move |state| {
            if state.stacks.size(&name).is_some() {
                return Ok((false, vec![]));
            }
            Ok((true, vec![Change::CreateStack { name }]))
        })
        .await
    }

    /// Pushes encoded items in order (the last on top), creating the stack;
    /// returns the new size.
    pub async fn push(&self, name: String, items: Vec<Vec<u8>>) -> Result<u64, Fault> {
        self.write(move |state| {
            let size = state.stacks.size(&name).unwrap_or(0) + items.len() as u64;
            Ok((size, vec![Change::Push { name, items }]))
        })
        .await
    }

    /// Marks each key seen on the stack (creating it), pushing the item that
    /// goes with it, if any, when the key is new; whether each was new.
    pub async fn claim(&self, name: String, entries: Claims) -> Result<Vec<bool>, Fault> {
        self.write(move |state| {
            let keys: Vec<Vec<u8>> = entries.iter().map(|(k, _)| k.clone()).collect();
            let new = state.stacks.unseen(&name, &keys);
            let mut fresh = Vec::new();
            let mut items = Vec::new();
            for ((key, item), &is_new) in entries.into_iter().zip(&new) {
                if is_new {
                    fresh.push(key);
                    items.extend(item);
                }
            }
            let mut changes = Vec::new();
            if !fresh.is_empty() || state.stacks.size(&name).is_none() {
                changes.push(Change::MarkSeen {
                    name: name.clone(),
                    keys: fresh,
                });
            }
            if !items.is_empty() {
                changes.push(Change::Push { name, items });
            }
            Ok((new, changes))
        })
        .await
    }

    /// Pops up to `limit` items, top first, none unless `carry` takes them all;
    /// `None` if there is no such stack.
    pub async fn pop(
        &self,
        name: String,
        limit: PopLimit,
        carry: Carry<'_>,
    ) -> Result<Option<Vec<Vec<u8>>>, Fault> {
        let back = name.clone();
        let decide = move |state: &crate::state::State| {
            let Some(count) = state.stacks.would_pop(&name, limit, carry)? else {
                return Ok((None, vec![]));
            };
            let items = state.stacks.peek(&name, count);
            let changes = if count > 0 {
                vec![Change::Pop { name, count }]
            } else {
                vec![]
            };
            Ok((Some(items), changes))
        };
        // A cancelled pop puts its items back on top, in their order.
        let undo = move |items: Option<Vec<Vec<u8>>>| {
            let mut items = items.unwrap_or_default();
            items.reverse();
            vec![Change::Push { name: back, items }]
        };
        self.write_handing_over(decide, undo).await
    }

    /// Takes the top item under a lease of `lease_ms` from `now_ms`, held by
    /// `owner` (whose session's end gives it back), if `carry` takes it; `None`
    /// if the stack is missing or empty.
    pub async fn take(
        &self,
        name: String,
        lease_ms: i64,
        owner: Option<String>,
        now_ms: i64,
        carry: Carry<'_>,
    ) -> Result<Option<Taken>, Fault> {
        let back = name.clone();
        let decide = move |state: &crate::state::State| {
            let Some(item) = state.stacks.peek(&name, 1).pop() else {
                return Ok((None, vec![]));
            };
            carry(&item)?;
            let id = loop {
                let id = format!("{:016x}", fastrand::u64(..));
                if !state.stacks.lease_exists(&id) {
                    break id;
                }
            };
            let deadline_ms = now_ms.saturating_add(lease_ms);
            let taken = Taken {
                id: id.clone(),
                item,
                deadline_ms,
            };
            let change = Change::Take {
                name,
                id,
                deadline_ms,
                owner,
            };
            Ok((Some(taken), vec![change]))
        };
        // A cancelled take gives its item back at once.
        let undo = move |taken: Option<Taken>| {
            taken.map_or_else(Vec::new, |t| {
                vec![Change::Release {
                    name: back,
                    id: t.id,
                }]
            })
        };
        self.write_handing_over(decide, undo).await
    }

    /// Finishes a lease; false if it is not held.
    pub async fn ack(&self, name: String, id: String) -> Result<bool, Fault> {
        self.write(move |state| {
            if state.stacks.leases().get(&name, &id).is_none() {
                return Ok((false, vec![]));
            }
            Ok((true, vec![Change::Ack { name, id }]))
        })
        .await
    }

    /// Moves a lease's deadline to `lease_ms` after `now_ms`; false if the
    /// lease is not held or already due.
    pub async fn extend(
        &self,
        name: String,
        id: String,
        lease_ms: i64,
        now_ms: i64,
    ) -> Result<bool, Fault> {
        self.write(move |state| {
            let held = state.stacks.leases().get(&name, &id);
            if held.is_none_or(|l| l.deadline_ms <= now_ms) {
                return Ok((false, vec![]));
            }
            let deadline_ms = now_ms.saturating_add(lease_ms);
            Ok((
                true,
                vec![Change::Extend {
                    name,
                    id,
                    deadline_ms,
                }],
            ))
        })
        .await
    }

    /// Gives a leased item back on top of its stack; false if the lease is not held.
    pub async fn release(&self, name: String, id: String) -> Result<bool, Fault> {
        self.write(move |state| {
            if state.stacks.leases().get(&name, &id).is_none() {
                return Ok((false, vec![]));
            }
            Ok((true, vec![Change::Release { name, id }]))
        })
        .await
    }

    /// Gives back every item whose lease is due by `now_ms`; the stacks that
    /// got items back.
    pub async fn expire(&self, now_ms: i64) -> Result<Vec<String>, Fault> {
        self.write(move |state| {
            let leases = state.stacks.leases();
            let mut stacks: Vec<String> = leases
                .expired(now_ms)
                .iter()
                .filter_map(|id| leases.by_id(id).map(|l| l.stack.clone()))
                .collect();
            if stacks.is_empty() {
                return Ok((stacks, vec![]));
            }
            stacks.sort();
            stacks.dedup();
            Ok((stacks, vec![Change::Expire { now_ms }]))
        })
        .await
    }

    /// Removes every item (leases stay); how many there were.
    pub async fn truncate(&self, name: String) -> Result<u64, Fault> {
        self.write(move |state| {
            let size = state.stacks.size(&name).ok_or_else(|| not_found(&name))?;
            Ok((size, vec![Change::Truncate { name }]))
        })
        .await
    }

    /// Deletes a stack with its items and leases.
    pub async fn remove_stack(&self, name: String) -> Result<(), Fault> {
        self.write(move |state| {
            state.stacks.size(&name).ok_or_else(|| not_found(&name))?;
            Ok(((), vec![Change::RemoveStack { name }]))
        })
        .await
    }

    /// The number of items, `None` if there is no such stack.
    pub fn stack_size(&self, name: &str) -> Option<u64> {
        self.read(|state| state.stacks.size(name))
    }

    /// How many items of `name` are under lease, `None` if there is no such stack.
    pub fn stack_leased(&self, name: &str) -> Option<u64> {
        self.read(|state| state.stacks.leased(name))
    }

    /// Every stack name, sorted.
    pub fn stack_names(&self) -> Vec<String> {
        self.read(|state| state.stacks.names())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::dir::SimDir;
    use crate::journal::Durability;
    use std::sync::Arc;

    fn any(_: &[u8]) -> Result<(), Fault> {
        Ok(())
    }

    const ALL: PopLimit = PopLimit {
        count: usize::MAX,
        budget: usize::MAX,
    };

    fn journaled() -> (SimDir, LocalBackend) {
        let dir = SimDir::new();
        let b = LocalBackend::open(Arc::new(dir.clone()), Durability::Strict).unwrap();
        (dir, b)
    }

    /// A journaled backend whose stack `s` holds 1, 2, 3 (3 on top).
    async fn journaled_with_123() -> (SimDir, LocalBackend) {
        let (dir, b) = journaled();
        let items = vec![b"1".to_vec(), b"2".to_vec(), b"3".to_vec()];
        b.push("s".into(), items).await.unwrap();
        (dir, b)
    }

    fn reopened(dir: &SimDir) -> LocalBackend {
        LocalBackend::open(Arc::new(dir.clone()), Durability::Strict).unwrap()
    }

    #[tokio::test]
    async fn a_refused_item_stays_on_its_stack() {
        let (_, b) = journaled();
        b.push("s".into(), vec![b"x".to_vec()]).await.unwrap();
        let refuse = |_: &[u8]| Err(Fault::named("UnrepresentableError", "no"));
        assert!(b.pop("s".into(), ALL, &refuse).await.is_err());
        assert!(b.take("s".into(), 1000, None, 0, &refuse).await.is_err());
        assert_eq!(b.stack_size("s"), Some(1));
    }

    #[tokio::test]
    async fn leases_and_pops_survive_a_restart_as_they_were() {
        let (dir, b) = journaled_with_123().await;
        let taken = b
            .take("s".into(), 500, Some("w".into()), 1000, &any)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (taken.item.as_slice(), taken.deadline_ms),
            (&b"3"[..], 1500)
        );
        let popped = b
            .pop(
                "s".into(),
                PopLimit {
                    count: 1,
                    budget: usize::MAX,
                },
                &any,
            )
            .await
            .unwrap();
        assert_eq!(popped, Some(vec![b"2".to_vec()]));
        b.close();
        drop(b);
        let b = reopened(&dir);
        assert_eq!(b.stack_size("s"), Some(1));
        assert_eq!(b.expire(1499).await.unwrap(), Vec::<String>::new());
        assert_eq!(b.expire(1500).await.unwrap(), vec!["s"]);
        assert_eq!(
            b.pop("s".into(), ALL, &any).await.unwrap(),
            Some(vec![b"3".to_vec(), b"1".to_vec()])
        );
        assert!(
            !b.ack("s".into(), taken.id).await.unwrap(),
            "an expired lease is gone"
        );
    }

    #[tokio::test]
    async fn a_pop_cancelled_before_it_is_durable_puts_its_items_back() {
        let (dir, b) = journaled_with_123().await;
        b.commit_on_the_writer_only();
        let journal = dir.disk("journal-0000000000000000");
        journal.hold_syncs(true);
        let two = PopLimit {
            count: 2,
            budget: usize::MAX,
        };
        // The pop applies, then waits for its sync, which never comes: cut short.
        let cut =
            tokio::time::timeout(std::time::Duration::ZERO, b.pop("s".into(), two, &any)).await;
        assert!(cut.is_err(), "the pop finished before its sync");
        assert_eq!(b.stack_size("s"), Some(3), "the items are back");
        journal.hold_syncs(false);
        let all = PopLimit {
            count: 9,
            budget: usize::MAX,
        };
        let order = b.pop("s".into(), all, &any).await.unwrap();
        assert_eq!(
            order,
            Some(vec![b"3".to_vec(), b"2".to_vec(), b"1".to_vec()])
        );
        b.push("s".into(), vec![b"x".to_vec()]).await.unwrap();
        journal.hold_syncs(true);
        let cut = tokio::time::timeout(
            std::time::Duration::ZERO,
            b.take("s".into(), 1000, None, 0, &any),
        )
        .await;
        assert!(cut.is_err());
        journal.hold_syncs(false);
        assert_eq!(b.stack_size("s"), Some(1), "the taken item is back");
        assert!(b.read(|state| state.stacks.leases().is_empty()));
    }

    #[tokio::test]
    async fn operations_that_change_nothing_write_nothing() {
        let (dir, b) = journaled();
        assert!(b.create_stack("s".into()).await.unwrap());
        assert!(!b.create_stack("s".into()).await.unwrap());
        assert_eq!(b.pop("s".into(), ALL, &any).await.unwrap(), Some(vec![]));
        assert_eq!(b.pop("none".into(), ALL, &any).await.unwrap(), None);
        assert!(!b.release("s".into(), "nope".into()).await.unwrap());
        assert!(b.truncate("none".into()).await.is_err());
        b.close();
        let journal = crate::journal::dir::Dir::read(&dir, "journal-0000000000000000")
            .unwrap()
            .unwrap();
        let (records, _) = crate::journal::record::read_all(&journal);
        assert_eq!(records.len(), 1, "only the create was journaled");
    }
}
