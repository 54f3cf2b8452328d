//! Named LIFO stacks, with batch, blocking and leased (reliable) pops.
//!
//! `push` and `pushMany` create a stack that does not exist yet; every other
//! method faults `StackNotFoundError` for an unknown stack, and `pop` faults
//! `StackIndexError` on an empty one.
//!
//! A reliable consumer calls `take`, which moves the top item into a lease, and
//! `ack`s it when done. An item whose lease expires, or whose taker (a provider
//! client) logs out or is cleaned up, goes back on top of its stack.

use super::{carriable, decode, method, Limits};
use crate::backend::{Backend, PopLimit};
use crate::clock::Timing;
use crate::traffic::Traffic;
use rpcs_core::{Context, Fault, Map, MethodTable, Value};
use std::sync::Arc;
use std::time::Duration;

/// A lease in seconds as milliseconds, refused outside (0, a week].
fn lease_ms(lease: f64) -> Result<i64, Fault> {
    if !(lease > 0.0 && lease <= MAX_LEASE_SECS) {
        return Err(Fault::named(
            "ValueError",
            "lease must be between 0 and 604800 seconds",
        ));
    }
    Ok((lease * 1000.0) as i64)
}

fn not_found(name: &str) -> Fault {
    Fault::named("StackNotFoundError", format!("no stack named {name:?}"))
}

fn empty(name: &str) -> Fault {
    Fault::named("StackIndexError", format!("pop from empty stack {name:?}"))
}

/// The longest lease, in seconds: a week.
const MAX_LEASE_SECS: f64 = 7.0 * 86_400.0;

/// The stack service.
pub struct Stacks {
    backend: Arc<dyn Backend>,
    limits: Limits,
    timing: Timing,
    traffic: Arc<Traffic>,
}

impl Stacks {
    /// A stack service over `backend`.
    pub fn new(backend: Arc<dyn Backend>, limits: Limits, timing: Timing) -> Stacks {
        Stacks {
            backend,
            limits,
            timing,
            traffic: Arc::new(Traffic::new()),
        }
    }

    /// Items in and out per stack through this service.
    pub fn traffic(&self) -> &Arc<Traffic> {
        &self.traffic
    }

    /// How many calls are blocked waiting for an item on `name` (tests use it
    /// to know a waiter is in place before they push).
    pub fn waiting(&self, name: &str) -> usize {
        self.backend.stack_waiters().waiting(name)
    }

    /// Creates a stack; false if it already existed.
    pub async fn create(&self, name: String) -> Result<bool, Fault> {
        self.limits.check_name("stack", &name)?;
        self.backend.create_stack(name).await
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
        let n = encoded.len() as u64;
        let size = self.backend.push(name.clone(), encoded).await?;
        self.traffic.added(&name, n);
        Ok(size)
    }

    /// Pushes each item whose key the stack has not seen, in order, marking
    /// the keys seen; whether each item was pushed. Without keys, an item is
    /// its own key.
    pub async fn push_new(
        &self,
        name: String,
        items: Vec<Value>,
        keys: Option<Vec<Value>>,
    ) -> Result<Vec<bool>, Fault> {
        self.limits.check_name("stack", &name)?;
        self.limits.check_batch(items.len())?;
        if keys.as_ref().is_some_and(|k| k.len() != items.len()) {
            return Err(Fault::named(
                "ValueError",
                "keys must be as many as items, one for each",
            ));
        }
        let mut entries = Vec::with_capacity(items.len());
        for (n, item) in items.iter().enumerate() {
            let item = self.limits.encode("item", item)?;
            let key = match &keys {
                Some(keys) => self.limits.encode("key", &keys[n])?,
                None => item.clone(),
            };
            entries.push((key, Some(item)));
        }
        let pushed = self.backend.claim(name.clone(), entries).await?;
        let n = pushed.iter().filter(|&&p| p).count() as u64;
        self.traffic.added(&name, n);
        Ok(pushed)
    }

    /// Marks keys seen on the stack without pushing anything; whether each
    /// was new.
    pub async fn mark_seen(&self, name: String, keys: Vec<Value>) -> Result<Vec<bool>, Fault> {
        self.limits.check_name("stack", &name)?;
        self.limits.check_batch(keys.len())?;
        let entries = keys
            .iter()
            .map(|k| Ok((self.limits.encode("key", k)?, None)))
            .collect::<Result<Vec<_>, Fault>>()?;
        self.backend.claim(name, entries).await
    }

    /// Pops the top item for the caller of `ctx`.
    pub async fn pop(&self, ctx: &Context, name: String) -> Result<Value, Fault> {
        let mut items = self.pop_upto(ctx, name.clone(), 1, true).await?;
        items.pop().ok_or_else(|| empty(&name))
    }

    /// Pops up to `n` items, top first: fewer if the stack runs out or once they
    /// reach the answer budget.
    pub async fn pop_many(&self, ctx: &Context, name: String, n: i64) -> Result<Vec<Value>, Fault> {
        let n = usize::try_from(n)
            .map_err(|_| Fault::named("ValueError", "count must not be negative"))?;
        self.limits.check_batch(n)?;
        self.pop_upto(ctx, name, n, true).await
    }

    /// Pops up to `n` items, none of them unless the caller's protocol can carry
    /// them all (an item is never taken to be lost on the way).
    async fn pop_upto(
        &self,
        ctx: &Context,
        name: String,
        n: usize,
        must_exist: bool,
    ) -> Result<Vec<Value>, Fault> {
        self.limits.check_name("stack", &name)?;
        let limit = PopLimit {
            count: n,
            budget: self.limits.max_answer_bytes,
        };
        let carry = |bytes: &[u8]| carriable(ctx, bytes);
        match self.backend.pop(name.clone(), limit, &carry).await? {
            Some(items) => {
                self.traffic.removed(&name, items.len() as u64);
                items.iter().map(|b| decode(b)).collect()
            }
            None if must_exist => Err(not_found(&name)),
            None => Ok(Vec::new()),
        }
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
    /// between attempts until the backend wakes `name` (with a periodic recheck
    /// only on a backend that does not see every change). A wait whose
    /// caller's connection closes ends then: nobody is left to get the item,
    /// and the connection's slot must not stay taken until `wait` ends.
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
        let recheck = (!self.backend.sees_every_change()).then_some(self.timing.recheck);
        let waiting = self.backend.stack_waiters().wait_on(name);
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
            let left = deadline - now;
            let nap = recheck.map_or(left, |r| left.min(r));
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep(nap) => {}
                _ = ctx.caller_gone() => {}
            }
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
        let lease_ms = lease_ms(lease)?;
        let client = client.filter(|c| !c.is_empty());
        if let Some(c) = &client {
            self.limits.check_name("client", c)?;
        }
        let wait = self.limits.wait(timeout)?;
        let carry = |bytes: &[u8]| carriable(ctx, bytes);
        self.wait_for(ctx, &name, wait, || async {
            let taken = self
                .backend
                .take(name.clone(), lease_ms, client.clone(), &carry)
                .await?;
            let Some(taken) = taken else {
                return Ok(None);
            };
            self.traffic.removed(&name, 1);
            let mut out = Map::with_capacity(3);
            out.insert("id".into(), Value::String(taken.id));
            out.insert("item".into(), decode(&taken.item)?);
            out.insert("deadline".into(), super::datetime(taken.deadline_ms));
            Ok(Some(Value::Struct(out)))
        })
        .await
    }

    /// Finishes a leased item; false if the lease is unknown (acked, released or expired).
    pub async fn ack(&self, name: String, id: String) -> Result<bool, Fault> {
        self.backend.ack(name, id).await
    }

    /// Moves a lease's deadline to `lease` seconds from now, for work that
    /// takes longer than its first lease; false if the lease is unknown or
    /// has run out.
    pub async fn extend(&self, name: String, id: String, lease: f64) -> Result<bool, Fault> {
        self.backend.extend(name, id, lease_ms(lease)?).await
    }

    /// Gives a leased item back at once (on top of its stack); false if the lease is unknown.
    pub async fn release(&self, name: String, id: String) -> Result<bool, Fault> {
        let back = self.backend.release(name.clone(), id).await?;
        if back {
            self.traffic.added(&name, 1);
        }
        Ok(back)
    }

    /// Puts expired leases back; returns on how many stacks.
    pub async fn expire_leases(&self) -> Result<usize, Fault> {
        self.backend.expire().await
    }

    /// The number of items.
    pub async fn size(&self, name: String) -> Result<u64, Fault> {
        let size = self.backend.stack_size(name.clone()).await?;
        size.ok_or_else(|| not_found(&name))
    }

    /// The number of items under lease.
    pub async fn leased(&self, name: String) -> Result<u64, Fault> {
        let leased = self.backend.stack_leased(name.clone()).await?;
        leased.ok_or_else(|| not_found(&name))
    }

    /// A stack's numbers: items, leased items, and items in and out through
    /// this master since it started.
    pub async fn stats(&self, name: String) -> Result<Map, Fault> {
        self.limits.check_name("stack", &name)?;
        let size = self.size(name.clone()).await?;
        let leased = self.backend.stack_leased(name.clone()).await?.unwrap_or(0);
        let (added, removed) = self.traffic.of(&name);
        let int = |n: u64| Value::Int(i64::try_from(n).unwrap_or(i64::MAX));
        let mut out = Map::with_capacity(4);
        out.insert("size".into(), int(size));
        out.insert("leased".into(), int(leased));
        out.insert("itemsIn".into(), int(added));
        out.insert("itemsOut".into(), int(removed));
        Ok(out)
    }

    /// Whether a stack of that name exists.
    pub async fn exists(&self, name: String) -> Result<bool, Fault> {
        Ok(self.backend.stack_size(name).await?.is_some())
    }

    /// Every stack name, sorted.
    pub async fn names(&self) -> Result<Vec<String>, Fault> {
        self.backend.stack_names().await
    }

    /// Removes every item; returns how many there were.
    pub async fn truncate(&self, name: String) -> Result<u64, Fault> {
        self.backend.truncate(name).await
    }

    /// Deletes a stack with its items and leases.
    pub async fn remove(&self, name: String) -> Result<bool, Fault> {
        self.backend.remove_stack(name.clone()).await?;
        self.traffic.forget(&name);
        Ok(true)
    }
}

/// Registers the `stack.*` methods.
pub fn register(t: &mut MethodTable, svc: &Arc<Stacks>) {
    method!(t, svc => s, Write, "stack.create", "Create the named stack; true if it was created, false if it existed.",
        |name: String| s.create(name).await)
    .params(&["name"]);
    method!(t, svc => s, Write, "stack.push", "Push an item on the named stack (created if missing); returns the new size.",
        |name: String, item: Value| s.push(name, item).await)
    .params(&["name", "item"]);
    method!(t, svc => s, Write, "stack.pushMany", "Push several items in order, the last on top; returns the new size.",
        |name: String, items: Vec<Value>| s.push_many(name, items).await)
    .params(&["name", "items"]);
    method!(t, svc => s, Write, "stack.pushNew",
        "Push, in order, each item whose key (the item itself unless keys are given, one per item) the \
         stack has never seen, marking it seen, all at once; returns for each item whether it was pushed. \
         A stack forgets its keys only when it is removed.",
        |name: String, items: Vec<Value>, keys: Option<Vec<Value>>| s.push_new(name, items, keys).await)
    .params(&["name", "items", "keys"]);
    method!(t, svc => s, Write, "stack.markSeen",
        "Mark keys seen on the stack without pushing anything (so stack.pushNew skips them); returns for \
         each key whether it was new.",
        |name: String, keys: Vec<Value>| s.mark_seen(name, keys).await)
    .params(&["name", "keys"]);
    method!(t, svc => s, Write, "stack.pop", "Pop the top item; faults StackIndexError when the stack is empty.",
        |ctx: Context, name: String| s.pop(&ctx, name).await)
    .params(&["name"]);
    method!(t, svc => s, Write, "stack.popMany", "Pop up to n items, top first; fewer when the stack runs out or once they reach the answer budget (4 MiB by default).",
        |ctx: Context, name: String, n: i64| s.pop_many(&ctx, name, n).await)
    .params(&["name", "n"]);
    method!(t, svc => s, Write, "stack.popWait",
        "Pop the top item, waiting up to timeout seconds for one; faults StackIndexError if none arrives.",
        |ctx: Context, name: String, timeout: f64| s.pop_wait(&ctx, name, timeout).await)
    .params(&["name", "timeout"]);
    method!(t, svc => s, Write, "stack.take",
        "Take the top item under a lease: returns {id, item, deadline}. Ack it when done, or it goes back \
         when the lease (default 60 s) expires or the named provider client's session ends. Waits up to \
         timeout seconds (default 0) for an item; faults StackIndexError if none.",
        |ctx: Context, name: String, lease: Option<f64>, timeout: Option<f64>, client: Option<String>|
            s.take(&ctx, name, lease.unwrap_or(60.0), timeout.unwrap_or(0.0), client).await)
    .params(&["name", "lease", "timeout", "client"]);
    method!(t, svc => s, Write, "stack.ack", "Finish a leased item; false if the lease is unknown or expired.",
        |name: String, id: String| s.ack(name, id).await)
    .params(&["name", "id"]);
    method!(t, svc => s, Write, "stack.extend",
        "Renew a lease: its item now goes back lease seconds (default 60) from now unless acked. \
         False if the lease is unknown or has already run out.",
        |name: String, id: String, lease: Option<f64>| s.extend(name, id, lease.unwrap_or(60.0)).await)
    .params(&["name", "id", "lease"]);
    method!(t, svc => s, Write, "stack.release", "Give a leased item back on top of its stack now; false if the lease is unknown.",
        |name: String, id: String| s.release(name, id).await)
    .params(&["name", "id"]);
    method!(t, svc => s, Read, "stack.getSize", "The number of items on the named stack.",
        |name: String| s.size(name).await)
    .params(&["name"]);
    method!(t, svc => s, Read, "stack.getLeaseCount",
        "The number of the named stack's items under lease (taken, neither acked nor back yet).",
        |name: String| s.leased(name).await)
    .params(&["name"]);
    method!(t, svc => s, Read, "stack.getStats",
        "The named stack's numbers: {size, leased, itemsIn, itemsOut}; itemsIn counts items pushed or \
         released back and itemsOut items popped or taken, through this master since it started (for rates).",
        |name: String| s.stats(name).await)
    .params(&["name"]);
    method!(t, svc => s, Read, "stack.isEmpty", "Whether the named stack has no items.",
        |name: String| s.size(name).await.map(|n| n == 0))
    .params(&["name"]);
    method!(t, svc => s, Write, "stack.truncate", "Remove every item; returns how many were removed.",
        |name: String| s.truncate(name).await)
    .params(&["name"]);
    method!(t, svc => s, Write, "stack.remove", "Delete the named stack with its items and leases.",
        |name: String| s.remove(name).await)
    .params(&["name"]);
    method!(t, svc => s, Read, "stack.hasStack", "Whether a stack of that name exists.",
        |name: String| s.exists(name).await)
    .params(&["name"]);
    method!(t, svc => s, Read, "stack.getAllNames", "The names of all stacks, sorted.",
        | | s.names().await);
}
