//! Named LIFO stacks, with batch, blocking and leased (reliable) pops.
//!
//! `push` and `pushMany` create a stack that does not exist yet; every other
//! method faults `StackNotFoundError` for an unknown stack, and `pop` faults
//! `StackIndexError` on an empty one.
//!
//! A reliable consumer calls `take`, which moves the top item into a lease, and
//! `ack`s it when done. An item whose lease expires, or whose taker (a provider
//! client) logs out or is cleaned up, goes back on top of its stack.

use super::{decode, decode_u64, method, Limits, Waiters};
use crate::clock::Timing;
use crate::store::{self, first_part, key, prefix, Store, Table, WriteTxn};
use rpcs_core::{Context, Fault, Map, MethodTable, Value};
use std::sync::Arc;
use std::time::Duration;

/// The most leases one expiry pass handles.
const LEASE_SCAN: usize = 100_000;

fn not_found(name: &str) -> Fault {
    Fault::named("StackNotFoundError", format!("no stack named {name:?}"))
}

fn empty(name: &str) -> Fault {
    Fault::named("StackIndexError", format!("pop from empty stack {name:?}"))
}

fn lease_key(name: &str, id: &str) -> Vec<u8> {
    key(&[name.as_bytes(), id.as_bytes()])
}

/// The stack's length, or `None` if it does not exist.
fn length(txn: &dyn store::ReadTxn, name: &str) -> Result<Option<u64>, Fault> {
    match txn.get(Table::Stacks, name.as_bytes())? {
        Some(bytes) => decode_u64(&bytes).map(Some),
        None => Ok(None),
    }
}

fn set_length(txn: &mut dyn WriteTxn, name: &str, len: u64) -> Result<(), Fault> {
    txn.put(Table::Stacks, name.as_bytes(), &len.to_be_bytes())?;
    Ok(())
}

/// Pushes encoded items; creates the stack when missing. Returns the new length.
fn push_encoded(txn: &mut dyn WriteTxn, name: &str, items: &[Vec<u8>]) -> Result<u64, Fault> {
    let mut len = length(txn, name)?.unwrap_or(0);
    for item in items {
        txn.put_at(Table::StackItems, name, len, item)?;
        len += 1;
    }
    set_length(txn, name, len)?;
    Ok(len)
}

/// Deletes items `0..len` (by index: items are looked up, never scanned).
fn delete_items(txn: &mut dyn WriteTxn, name: &str, len: u64) -> Result<(), Fault> {
    for index in 0..len {
        txn.take_at(Table::StackItems, name, index)?;
    }
    Ok(())
}

/// Pops up to `n` items, top first, stopping once they reach `budget` encoded
/// bytes (the answer must stay small enough for every protocol to carry it);
/// `None` if the stack does not exist. Each item is decoded and offered to
/// `accept` (can the caller's protocol carry it?) before any is removed, so a
/// refusal takes nothing.
fn pop_checked(
    txn: &mut dyn WriteTxn,
    name: &str,
    n: u64,
    budget: usize,
    accept: &dyn Fn(&Value) -> Result<(), Fault>,
) -> Result<Option<Vec<Value>>, Fault> {
    let Some(len) = length(txn, name)? else {
        return Ok(None);
    };
    let mut items = Vec::with_capacity(n.min(len).min(1024) as usize);
    let mut bytes = 0usize;
    while (items.len() as u64) < n.min(len) && (items.is_empty() || bytes < budget) {
        let index = len - 1 - items.len() as u64;
        let raw = txn.get_at(Table::StackItems, name, index)?.ok_or_else(|| {
            Fault::from(store::StoreError::Corrupt(format!(
                "stack {name:?} lost item {index}"
            )))
        })?;
        bytes += raw.len();
        let item = decode(&raw)?;
        accept(&item)?;
        items.push(item);
    }
    let count = items.len() as u64;
    for index in len - count..len {
        txn.delete(Table::StackItems, &store::seq_key(name, index))?;
    }
    if count > 0 {
        set_length(txn, name, len - count)?;
    }
    Ok(Some(items))
}

/// The write that puts popped items back on top of their stack, in their order
/// (for a pop whose caller went away before it got them).
fn put_back(name: String, items: Vec<Value>) -> store::WriteOp {
    Box::new(move |txn| {
        let encoded: Vec<Vec<u8>> = items.iter().rev().map(rpcs_core::msgpack::encode).collect();
        if let Err(e) = push_encoded(txn, &name, &encoded) {
            tracing::warn!(stack = %name, error = %e, "could not put back the items of a cancelled pop");
        }
        Box::new(|_| {})
    })
}

/// A leased item as stored.
struct Lease {
    item: Value,
    deadline_ms: i64,
    owner: Option<String>,
}

impl Lease {
    fn encode(&self, limits: &Limits) -> Result<Vec<u8>, Fault> {
        let mut m = Map::with_capacity(3);
        m.insert("item".into(), self.item.clone());
        m.insert("deadline".into(), Value::Int(self.deadline_ms));
        m.insert("owner".into(), self.owner.clone().into());
        // The item already passed the size check; the envelope adds a few bytes.
        let bytes = rpcs_core::msgpack::encode(&Value::Struct(m));
        if bytes.len() > limits.max_item_bytes + 256 {
            return Err(Fault::named("ItemTooLargeError", "leased item too large"));
        }
        Ok(bytes)
    }

    fn decode(bytes: &[u8]) -> Result<Lease, Fault> {
        let Value::Struct(mut m) = decode(bytes)? else {
            return Err(store::StoreError::Corrupt("lease is not a struct".into()).into());
        };
        Ok(Lease {
            item: m.swap_remove("item").unwrap_or_default(),
            deadline_ms: m.get("deadline").and_then(Value::as_i64).unwrap_or(0),
            owner: m.get("owner").and_then(Value::as_str).map(str::to_owned),
        })
    }
}

/// Puts leased items back on their stacks: those expired by `now_ms`, or those
/// held by `owner`. Returns how many went back.
pub fn requeue_leases(
    txn: &mut dyn WriteTxn,
    now_ms: Option<i64>,
    owner: Option<&str>,
) -> Result<usize, Fault> {
    let leases = txn.scan(Table::Leases, &[], LEASE_SCAN)?;
    let mut requeued = 0;
    for (k, v) in leases {
        let lease = Lease::decode(&v)?;
        let expired = now_ms.is_some_and(|now| lease.deadline_ms <= now);
        let owned = owner.is_some_and(|o| lease.owner.as_deref() == Some(o));
        if !(expired || owned) {
            continue;
        }
        let Some(stack) = first_part(&k).map(str::to_owned) else {
            continue;
        };
        txn.delete(Table::Leases, &k)?;
        push_encoded(txn, &stack, &[rpcs_core::msgpack::encode(&lease.item)])?;
        requeued += 1;
    }
    Ok(requeued)
}

/// The stack service.
pub struct Stacks {
    store: Arc<dyn Store>,
    limits: Limits,
    timing: Timing,
    waiters: Waiters,
}

impl Stacks {
    /// A stack service over `store`.
    pub fn new(store: Arc<dyn Store>, limits: Limits, timing: Timing) -> Stacks {
        Stacks {
            store,
            limits,
            timing,
            waiters: Waiters::default(),
        }
    }

    /// How many calls are blocked waiting for an item on `name` (tests use it
    /// to know a waiter is in place before they push).
    pub fn waiting(&self, name: &str) -> usize {
        self.waiters.waiting(name)
    }

    /// Wakes blocked pops on every stack (after leases went back).
    pub fn wake_all(&self) {
        self.waiters.wake_all();
    }

    /// Creates a stack; false if it already existed.
    pub async fn create(&self, name: String) -> Result<bool, Fault> {
        self.limits.check_name("stack", &name)?;
        store::write(&*self.store, move |txn| {
            if length(txn, &name)?.is_some() {
                return Ok(false);
            }
            set_length(txn, &name, 0)?;
            Ok(true)
        })
        .await
    }

    /// Pushes one item; returns the new size.
    pub async fn push(&self, name: String, item: Value) -> Result<u64, Fault> {
        self.push_many(name, vec![item]).await
    }

    /// Pushes items in order (the last ends on top); returns the new size.
    pub async fn push_many(&self, name: String, items: Vec<Value>) -> Result<u64, Fault> {
        self.limits.check_name("stack", &name)?;
        self.limits.check_batch(items.len())?;
        let encoded = items
            .iter()
            .map(|item| self.limits.encode("item", item))
            .collect::<Result<Vec<_>, _>>()?;
        let key = name.clone();
        let len = store::write(&*self.store, move |txn| push_encoded(txn, &name, &encoded)).await?;
        self.waiters.wake(&key);
        Ok(len)
    }

    /// Pops the top item for the caller of `ctx`.
    pub async fn pop(&self, ctx: &Context, name: String) -> Result<Value, Fault> {
        let mut items = self.pop_upto(ctx, name.clone(), 1, true).await?;
        items.pop().ok_or_else(|| empty(&name))
    }

    /// Pops up to `n` items, top first: fewer if the stack runs out or once they
    /// reach the answer budget.
    pub async fn pop_many(&self, ctx: &Context, name: String, n: i64) -> Result<Vec<Value>, Fault> {
        let n = u64::try_from(n)
            .map_err(|_| Fault::named("ValueError", "count must not be negative"))?;
        self.limits.check_batch(n as usize)?;
        self.pop_upto(ctx, name, n, true).await
    }

    /// Pops up to `n` items, none of them unless the caller's protocol can carry
    /// them all (an item is never taken to be lost on the way).
    async fn pop_upto(
        &self,
        ctx: &Context,
        name: String,
        n: u64,
        must_exist: bool,
    ) -> Result<Vec<Value>, Fault> {
        self.limits.check_name("stack", &name)?;
        let ctx = ctx.clone();
        let accept = move |v: &Value| ctx.check_carriable(v);
        let budget = self.limits.max_answer_bytes;
        // The write hands the name back with the items, for a put-back to use.
        let pop = move |txn: &mut dyn WriteTxn| {
            let items = match pop_checked(txn, &name, n, budget, &accept)? {
                Some(items) => items,
                None if must_exist => return Err(not_found(&name)),
                None => Vec::new(),
            };
            Ok((name, items))
        };
        let undo = |(name, items)| put_back(name, items);
        let (_, items) = store::write_handing_over(&self.store, pop, undo).await?;
        Ok(items)
    }

    /// Pops the top item, waiting up to `timeout` seconds for one to arrive
    /// (a missing stack counts as empty); `StackIndexError` if none came.
    pub async fn pop_wait(
        &self,
        ctx: &Context,
        name: String,
        timeout: f64,
    ) -> Result<Value, Fault> {
        let wait = self.limits.wait(timeout)?;
        self.wait_for(ctx, &name, wait, || async {
            let mut items = self.pop_upto(ctx, name.clone(), 1, false).await?;
            Ok(items.pop())
        })
        .await
    }

    /// Runs `attempt` until it yields something or `wait` has passed, sleeping
    /// between attempts until a push on `name` (or a periodic recheck). A wait
    /// whose caller's connection has closed ends there: nobody is left to get
    /// the item, and the connection's slot must not stay taken until `wait` ends.
    async fn wait_for<T, F, Fut>(
        &self,
        ctx: &Context,
        name: &str,
        wait: Duration,
        mut attempt: F,
    ) -> Result<T, Fault>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<Option<T>, Fault>>,
    {
        let deadline = tokio::time::Instant::now() + wait;
        let waiting = self.waiters.wait_on(name);
        // Only stream connections can tell that their caller has gone.
        let gone = || ctx.peer_calls.is_some() && ctx.peer_closed();
        loop {
            let notified = waiting.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if gone() {
                return Err(Fault::named("ConnectionError", "the caller has gone"));
            }
            if let Some(found) = attempt().await? {
                return Ok(found);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(empty(name));
            }
            let nap = (deadline - now).min(self.timing.recheck);
            let _ = tokio::time::timeout(nap, notified).await;
        }
    }

    /// Takes the top item under a lease of `lease` seconds, waiting up to
    /// `timeout` seconds for one. `client` names the provider session that holds
    /// it: when that session ends, the item goes back.
    pub async fn take(
        &self,
        ctx: &Context,
        name: String,
        lease: f64,
        timeout: f64,
        client: Option<String>,
    ) -> Result<Value, Fault> {
        self.limits.check_name("stack", &name)?;
        if !(lease > 0.0 && lease <= 7.0 * 86_400.0) {
            return Err(Fault::named(
                "ValueError",
                "lease must be between 0 and 604800 seconds",
            ));
        }
        let wait = self.limits.wait(timeout)?;
        let client = client.filter(|c| !c.is_empty());
        let lease_ms = (lease * 1000.0) as i64;
        self.wait_for(ctx, &name, wait, || {
            let name = name.clone();
            let client = client.clone();
            let limits = self.limits.clone();
            let timing = self.timing.clone();
            let ctx = ctx.clone();
            async move {
                store::write(&*self.store, move |txn| {
                    let accept = |v: &Value| ctx.check_carriable(v);
                    let Some(mut items) = pop_checked(txn, &name, 1, usize::MAX, &accept)? else {
                        return Ok(None);
                    };
                    let Some(item) = items.pop() else {
                        return Ok(None);
                    };
                    let id = format!("{:016x}", fastrand::u64(..));
                    let deadline_ms = timing.now_ms() + lease_ms;
                    let lease = Lease {
                        item,
                        deadline_ms,
                        owner: client,
                    };
                    txn.put(
                        Table::Leases,
                        &lease_key(&name, &id),
                        &lease.encode(&limits)?,
                    )?;
                    let mut out = Map::with_capacity(3);
                    out.insert("id".into(), Value::String(id));
                    out.insert("item".into(), lease.item);
                    out.insert("deadline".into(), super::datetime(deadline_ms));
                    Ok(Some(Value::Struct(out)))
                })
                .await
            }
        })
        .await
    }

    /// Finishes a leased item; false if the lease is unknown (acked, released or expired).
    pub async fn ack(&self, name: String, id: String) -> Result<bool, Fault> {
        store::write(&*self.store, move |txn| {
            Ok(txn.delete(Table::Leases, &lease_key(&name, &id))?)
        })
        .await
    }

    /// Gives a leased item back at once (on top of its stack); false if the lease is unknown.
    pub async fn release(&self, name: String, id: String) -> Result<bool, Fault> {
        let key_name = name.clone();
        let released = store::write(&*self.store, move |txn| {
            let k = lease_key(&name, &id);
            let Some(bytes) = txn.get(Table::Leases, &k)? else {
                return Ok(false);
            };
            let lease = Lease::decode(&bytes)?;
            txn.delete(Table::Leases, &k)?;
            push_encoded(txn, &name, &[rpcs_core::msgpack::encode(&lease.item)])?;
            Ok(true)
        })
        .await?;
        if released {
            self.waiters.wake(&key_name);
        }
        Ok(released)
    }

    /// Puts expired leases back; returns how many.
    pub async fn expire_leases(&self) -> Result<usize, Fault> {
        let now = self.timing.now_ms();
        let n = store::write(&*self.store, move |txn| {
            requeue_leases(txn, Some(now), None)
        })
        .await?;
        if n > 0 {
            self.wake_all();
        }
        Ok(n)
    }

    /// The number of items.
    pub fn size(&self, name: &str) -> Result<u64, Fault> {
        store::read(&*self.store, |txn| {
            length(txn, name)?.ok_or_else(|| not_found(name))
        })
    }

    /// Whether a stack of that name exists.
    pub fn exists(&self, name: &str) -> Result<bool, Fault> {
        store::read(&*self.store, |txn| Ok(length(txn, name)?.is_some()))
    }

    /// Every stack name, sorted.
    pub fn names(&self) -> Result<Vec<String>, Fault> {
        store::read(&*self.store, |txn| {
            let entries = txn.scan(Table::Stacks, &[], usize::MAX)?;
            Ok(entries
                .into_iter()
                .map(|(k, _)| String::from_utf8_lossy(&k).into_owned())
                .collect())
        })
    }

    /// Removes every item; returns how many there were.
    pub async fn truncate(&self, name: String) -> Result<u64, Fault> {
        store::write(&*self.store, move |txn| {
            let len = length(txn, &name)?.ok_or_else(|| not_found(&name))?;
            delete_items(txn, &name, len)?;
            set_length(txn, &name, 0)?;
            Ok(len)
        })
        .await
    }

    /// Deletes a stack with its items and leases.
    pub async fn remove(&self, name: String) -> Result<bool, Fault> {
        store::write(&*self.store, move |txn| {
            let len = length(txn, &name)?.ok_or_else(|| not_found(&name))?;
            delete_items(txn, &name, len)?;
            txn.delete_prefix(Table::Leases, &prefix(&name))?;
            txn.delete(Table::Stacks, name.as_bytes())?;
            Ok(true)
        })
        .await
    }
}

/// Registers the `stack.*` methods.
pub fn register(t: &mut MethodTable, svc: &Arc<Stacks>) {
    method!(t, svc => s, "stack.create", "Create the named stack; true if it was created, false if it existed.",
        |name: String| s.create(name).await)
    .params(&["name"]);
    method!(t, svc => s, "stack.push", "Push an item on the named stack (created if missing); returns the new size.",
        |name: String, item: Value| s.push(name, item).await)
    .params(&["name", "item"]);
    method!(t, svc => s, "stack.pushMany", "Push several items in order, the last on top; returns the new size.",
        |name: String, items: Vec<Value>| s.push_many(name, items).await)
    .params(&["name", "items"]);
    method!(t, svc => s, "stack.pop", "Pop the top item; faults StackIndexError when the stack is empty.",
        |ctx: Context, name: String| s.pop(&ctx, name).await)
    .params(&["name"]);
    method!(t, svc => s, "stack.popMany", "Pop up to n items, top first; fewer when the stack runs out or once they reach the answer budget (4 MiB by default).",
        |ctx: Context, name: String, n: i64| s.pop_many(&ctx, name, n).await)
    .params(&["name", "n"]);
    method!(t, svc => s, "stack.popWait",
        "Pop the top item, waiting up to timeout seconds for one; faults StackIndexError if none arrives.",
        |ctx: Context, name: String, timeout: f64| s.pop_wait(&ctx, name, timeout).await)
    .params(&["name", "timeout"]);
    method!(t, svc => s, "stack.take",
        "Take the top item under a lease: returns {id, item, deadline}. Ack it when done, or it goes back \
         when the lease (default 60 s) expires or the named provider client's session ends. Waits up to \
         timeout seconds (default 0) for an item; faults StackIndexError if none.",
        |ctx: Context, name: String, lease: Option<f64>, timeout: Option<f64>, client: Option<String>|
            s.take(&ctx, name, lease.unwrap_or(60.0), timeout.unwrap_or(0.0), client).await)
    .params(&["name", "lease", "timeout", "client"]);
    method!(t, svc => s, "stack.ack", "Finish a leased item; false if the lease is unknown or expired.",
        |name: String, id: String| s.ack(name, id).await)
    .params(&["name", "id"]);
    method!(t, svc => s, "stack.release", "Give a leased item back on top of its stack now; false if the lease is unknown.",
        |name: String, id: String| s.release(name, id).await)
    .params(&["name", "id"]);
    method!(t, svc => s, "stack.getSize", "The number of items on the named stack.",
        |name: String| s.size(&name))
    .params(&["name"]);
    method!(t, svc => s, "stack.isEmpty", "Whether the named stack has no items.",
        |name: String| s.size(&name).map(|n| n == 0))
    .params(&["name"]);
    method!(t, svc => s, "stack.truncate", "Remove every item; returns how many were removed.",
        |name: String| s.truncate(name).await)
    .params(&["name"]);
    method!(t, svc => s, "stack.remove", "Delete the named stack with its items and leases.",
        |name: String| s.remove(name).await)
    .params(&["name"]);
    method!(t, svc => s, "stack.hasStack", "Whether a stack of that name exists.",
        |name: String| s.exists(&name))
    .params(&["name"]);
    method!(t, svc => s, "stack.getAllNames", "The names of all stacks, sorted.",
        | | s.names());
}
