//! The client provider: who is logged in, when each was last seen, and a
//! message queue per client.
//!
//! A client `login`s, then `visit`s regularly: each visit keeps the session alive,
//! records a status, and returns the next queued message (or nil). Sessions idle
//! longer than the session timeout are ended by `cleanUp` (which the master also
//! runs periodically); ending a session drops its queued messages and puts the
//! stack items it had leased back on their stacks. Unknown clients fault
//! `ClientNotFoundError`.

use super::{datetime, decode, method, stack, Limits, Waiters};
use crate::clock::Timing;
use crate::store::{self, ReadTxn, Store, Table, WriteTxn};
use rpcs_core::{Context, Fault, Map, MethodTable, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

/// The most messages queued for one client.
pub const MAX_QUEUE: u64 = 100_000;

fn not_found(name: &str) -> Fault {
    Fault::named(
        "ClientNotFoundError",
        format!("no client named {name:?} is logged in"),
    )
}

/// A session as stored.
struct Session {
    host: String,
    login_ms: i64,
    visit_ms: i64,
    status: Value,
    info: Value,
    /// Sequence number of the next message to deliver.
    head: u64,
    /// Sequence number the next message will get.
    tail: u64,
}

impl Session {
    fn encode(&self) -> Vec<u8> {
        let mut m = Map::with_capacity(7);
        m.insert("host".into(), Value::String(self.host.clone()));
        m.insert("login".into(), Value::Int(self.login_ms));
        m.insert("visit".into(), Value::Int(self.visit_ms));
        m.insert("status".into(), self.status.clone());
        m.insert("info".into(), self.info.clone());
        m.insert("head".into(), Value::Int(self.head as i64));
        m.insert("tail".into(), Value::Int(self.tail as i64));
        rpcs_core::msgpack::encode(&Value::Struct(m))
    }

    fn decode(bytes: &[u8]) -> Result<Session, Fault> {
        let Value::Struct(mut m) = decode(bytes)? else {
            return Err(store::StoreError::Corrupt("session is not a struct".into()).into());
        };
        let int = |m: &Map, k: &str| m.get(k).and_then(Value::as_i64).unwrap_or(0);
        Ok(Session {
            host: m
                .get("host")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            login_ms: int(&m, "login"),
            visit_ms: int(&m, "visit"),
            head: int(&m, "head").max(0) as u64,
            tail: int(&m, "tail").max(0) as u64,
            status: m.swap_remove("status").unwrap_or_default(),
            info: m.swap_remove("info").unwrap_or_default(),
        })
    }

    /// What `getClient` shows; `subscriptions` are the live ones for the client.
    fn public(&self, name: &str, subscriptions: usize) -> Value {
        let mut m = Map::with_capacity(8);
        m.insert("name".into(), Value::String(name.to_owned()));
        m.insert("host".into(), Value::String(self.host.clone()));
        m.insert("loginTime".into(), datetime(self.login_ms));
        m.insert("lastVisit".into(), datetime(self.visit_ms));
        m.insert("status".into(), self.status.clone());
        m.insert("info".into(), self.info.clone());
        m.insert(
            "pendingMessages".into(),
            Value::Int((self.tail - self.head) as i64),
        );
        m.insert("subscriptions".into(), Value::Int(subscriptions as i64));
        Value::Struct(m)
    }
}

fn load(txn: &dyn ReadTxn, name: &str) -> Result<Option<Session>, Fault> {
    match txn.get(Table::Clients, name.as_bytes())? {
        Some(bytes) => Session::decode(&bytes).map(Some),
        None => Ok(None),
    }
}

fn save(txn: &mut dyn WriteTxn, name: &str, s: &Session) -> Result<(), Fault> {
    txn.put(Table::Clients, name.as_bytes(), &s.encode())?;
    Ok(())
}

/// Queues an encoded message; false if the queue is full.
fn enqueue(
    txn: &mut dyn WriteTxn,
    name: &str,
    s: &mut Session,
    message: &[u8],
) -> Result<bool, Fault> {
    if s.tail - s.head >= MAX_QUEUE {
        return Ok(false);
    }
    txn.put_at(Table::Messages, name, s.tail, message)?;
    s.tail += 1;
    save(txn, name, s)?;
    Ok(true)
}

/// The write that gives back a message a visit took when the visitor went away
/// before it got it: at the head of the queue again if nothing else was taken
/// since, else at its end.
fn requeue(name: String, taken: Option<(u64, Vec<u8>)>) -> store::WriteOp {
    Box::new(move |txn| {
        if let Some((seq, bytes)) = taken {
            let mut put = || -> Result<(), Fault> {
                let Some(mut s) = load(txn, &name)? else {
                    return Ok(());
                };
                if s.head == seq + 1 {
                    txn.put_at(Table::Messages, &name, seq, &bytes)?;
                    s.head = seq;
                    save(txn, &name, &s)
                } else {
                    enqueue(txn, &name, &mut s, &bytes).map(|_| ())
                }
            };
            if let Err(e) = put() {
                tracing::warn!(client = %name, error = %e, "could not give back the message of a cancelled visit");
            }
        }
        Box::new(|_| {})
    })
}

/// Ends a session: drops it and its messages, requeues its leases.
fn end_session(txn: &mut dyn WriteTxn, name: &str) -> Result<(), Fault> {
    if let Some(s) = load(txn, name)? {
        // Messages are looked up by sequence number, never scanned.
        for seq in s.head..s.tail {
            txn.take_at(Table::Messages, name, seq)?;
        }
    }
    txn.delete(Table::Clients, name.as_bytes())?;
    stack::requeue_leases(txn, None, Some(name))?;
    Ok(())
}

fn all_sessions(txn: &dyn ReadTxn) -> Result<Vec<(String, Session)>, Fault> {
    txn.scan(Table::Clients, &[], usize::MAX)?
        .into_iter()
        .map(|(k, v)| {
            Ok((
                String::from_utf8_lossy(&k).into_owned(),
                Session::decode(&v)?,
            ))
        })
        .collect()
}

/// Live subscriptions by id (dropping the sender ends one), and how many each
/// connection holds.
#[derive(Default)]
struct Subscriptions {
    live: HashMap<String, Live>,
    per_connection: HashMap<u64, usize>,
    per_client: HashMap<String, usize>,
}

/// One live subscription: how to end it, whose it is, and which connection's.
struct Live {
    _cancel: oneshot::Sender<()>,
    client: String,
    conn: u64,
}

/// Counts one more (or one less) under `key`, forgetting keys that reach zero.
fn count<K: std::hash::Hash + Eq>(map: &mut HashMap<K, usize>, key: K, up: bool) {
    let n = map.entry(key).or_default();
    if up {
        *n += 1;
        return;
    }
    *n = n.saturating_sub(1);
    if *n == 0 {
        map.retain(|_, n| *n > 0);
    }
}

impl Subscriptions {
    /// Records a subscription of connection `conn`, refusing one beyond `max`.
    fn add(
        &mut self,
        id: &str,
        cancel: oneshot::Sender<()>,
        client: &str,
        conn: u64,
        max: usize,
    ) -> Result<(), Fault> {
        if self.per_connection.get(&conn).copied().unwrap_or(0) >= max {
            return Err(Fault::named(
                "LimitExceeded",
                format!("this connection already holds {max} subscriptions"),
            ));
        }
        count(&mut self.per_connection, conn, true);
        count(&mut self.per_client, client.to_owned(), true);
        let live = Live {
            _cancel: cancel,
            client: client.to_owned(),
            conn,
        };
        self.live.insert(id.to_owned(), live);
        Ok(())
    }

    /// Ends a subscription; false if it was not live.
    fn remove(&mut self, id: &str) -> bool {
        let Some(live) = self.live.remove(id) else {
            return false;
        };
        count(&mut self.per_connection, live.conn, false);
        count(&mut self.per_client, live.client, false);
        true
    }

    /// How many live subscriptions `client` has.
    fn of(&self, client: &str) -> usize {
        self.per_client.get(client).copied().unwrap_or(0)
    }
}

/// The provider service.
pub struct Provider {
    store: Arc<dyn Store>,
    limits: Limits,
    session_timeout: Duration,
    timing: Timing,
    stacks: Arc<stack::Stacks>,
    /// Wakes subscriptions when a client gets a message.
    waiters: Waiters,
    /// Live subscriptions.
    subscriptions: Mutex<Subscriptions>,
}

impl Provider {
    /// A provider over `store` that ends sessions idle longer than `session_timeout`.
    /// `stacks` is woken when ended sessions give leased items back.
    pub fn new(
        store: Arc<dyn Store>,
        limits: Limits,
        session_timeout: Duration,
        timing: Timing,
        stacks: Arc<stack::Stacks>,
    ) -> Provider {
        Provider {
            store,
            limits,
            session_timeout,
            timing,
            stacks,
            waiters: Waiters::default(),
            subscriptions: Mutex::default(),
        }
    }

    /// Pushes the client's messages to the caller as they arrive, as
    /// `provider.message(subscription, client, message)` notifications, until the
    /// connection closes, the session ends or `unsubscribe`. Needs a connection the
    /// server can write to (WebSocket or MessagePack-RPC). A message leaves the queue
    /// only once its notification is written to the connection; TCP cannot tell
    /// whether a client that has just closed read it, so with `confirm` each
    /// message is a request instead and leaves the queue only once the client
    /// answered (at least once: one may arrive twice). A live subscription keeps
    /// its session alive.
    pub async fn subscribe(
        self: &Arc<Self>,
        ctx: Context,
        name: String,
        confirm: bool,
    ) -> Result<String, Fault> {
        if ctx.peer_calls.is_none() {
            return Err(Fault::named(
                "CallbackError",
                format!(
                    "subscriptions need a connection the server can write to (WebSocket or \
                     MessagePack-RPC), not {}",
                    ctx.protocol
                ),
            ));
        }
        if !self.has(&name)? {
            return Err(not_found(&name));
        }
        let id = format!("{:016x}", fastrand::u64(..));
        let (cancel, mut cancelled) = oneshot::channel();
        let max = self.limits.max_subscriptions;
        self.subscriptions()
            .add(&id, cancel, &name, ctx.connection_id, max)?;
        let svc = self.clone();
        let sub = id.clone();
        tokio::spawn(async move {
            let waiting = svc.waiters.wait_on(&name);
            loop {
                let notified = waiting.notify.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                // A closed connection ends the subscription (and stops it keeping
                // the session alive).
                if ctx.peer_closed() {
                    break;
                }
                match svc.deliver(&ctx, &sub, &name, confirm).await {
                    Ok(true) => {}
                    Ok(false) | Err(_) => break,
                }
                tokio::select! {
                    _ = &mut notified => {}
                    _ = tokio::time::sleep(svc.timing.recheck) => {}
                    _ = &mut cancelled => break,
                }
            }
            svc.subscriptions().remove(&sub);
        });
        Ok(id)
    }

    fn subscriptions(&self) -> std::sync::MutexGuard<'_, Subscriptions> {
        self.subscriptions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Ends a subscription; false if it was not live.
    pub fn unsubscribe(&self, id: &str) -> bool {
        self.subscriptions().remove(id)
    }

    /// Sends the client's queued messages; false once the subscription must end
    /// (the session ended or the connection is gone).
    async fn deliver(
        &self,
        ctx: &Context,
        sub: &str,
        name: &str,
        confirm: bool,
    ) -> Result<bool, Fault> {
        loop {
            let key = name.to_owned();
            let now = self.timing.now_ms();
            let next = store::write(&*self.store, move |txn| {
                let Some(mut s) = load(txn, &key)? else {
                    return Ok(None);
                };
                s.visit_ms = now;
                save(txn, &key, &s)?;
                if s.head >= s.tail {
                    return Ok(Some(None));
                }
                let message = match txn.get_at(Table::Messages, &key, s.head)? {
                    Some(bytes) => decode(&bytes)?,
                    None => Value::Nil,
                };
                Ok(Some(Some((s.head, message))))
            })
            .await?;
            let (seq, message) = match next {
                None => return Ok(false),
                Some(None) => return Ok(true),
                Some(Some(m)) => m,
            };
            let args = (sub.to_owned(), name.to_owned(), message);
            let delivered = if confirm {
                // Any answer, even a fault, shows the client received it.
                match ctx.call_peer("provider.message", args).await {
                    Ok(_) => true,
                    Err(f) => {
                        f.name() != Some("ConnectionError") && f.code != Fault::LIMIT_EXCEEDED
                    }
                }
            } else {
                ctx.notify_peer("provider.message", args).await.is_ok()
            };
            if !delivered {
                return Ok(false);
            }
            let key = name.to_owned();
            store::write(&*self.store, move |txn| {
                let Some(mut s) = load(txn, &key)? else {
                    return Ok(());
                };
                if s.head == seq {
                    txn.take_at(Table::Messages, &key, seq)?;
                    s.head += 1;
                    save(txn, &key, &s)?;
                }
                Ok(())
            })
            .await?;
        }
    }

    /// Logs a client in (again), keeping any queued messages of a live session.
    pub async fn login(&self, ctx: &Context, name: String, info: Value) -> Result<bool, Fault> {
        self.limits.check_name("client", &name)?;
        self.limits.encode("info", &info)?;
        let host = ctx.peer.map(|p| p.ip().to_string()).unwrap_or_default();
        let now = self.timing.now_ms();
        store::write(&*self.store, move |txn| {
            let session = match load(txn, &name)? {
                Some(mut s) => {
                    s.host = host;
                    s.info = info;
                    s.visit_ms = now;
                    s
                }
                None => Session {
                    host,
                    login_ms: now,
                    visit_ms: now,
                    status: Value::Nil,
                    info,
                    head: 0,
                    tail: 0,
                },
            };
            save(txn, &name, &session)?;
            Ok(true)
        })
        .await
    }

    /// Ends a client's session.
    pub async fn logout(&self, name: String) -> Result<bool, Fault> {
        store::write(&*self.store, move |txn| {
            if load(txn, &name)?.is_none() {
                return Err(not_found(&name));
            }
            end_session(txn, &name)?;
            Ok(true)
        })
        .await?;
        self.stacks.wake_all();
        Ok(true)
    }

    /// Keeps the session alive, records `status` (when given) and returns the
    /// next queued message, or nil.
    pub async fn visit(
        &self,
        ctx: &Context,
        name: String,
        status: Option<Value>,
    ) -> Result<Value, Fault> {
        if let Some(s) = &status {
            self.limits.encode("status", s)?;
        }
        let ctx = ctx.clone();
        let now = self.timing.now_ms();
        let client = name.clone();
        let visit = move |txn: &mut dyn WriteTxn| {
            let mut s = load(txn, &name)?.ok_or_else(|| not_found(&name))?;
            s.visit_ms = now;
            if let Some(status) = status {
                s.status = status;
            }
            let mut taken = None;
            if s.head < s.tail {
                if let Some(bytes) = txn.get_at(Table::Messages, &name, s.head)? {
                    let message = decode(&bytes)?;
                    // A message the caller's protocol cannot carry stays queued.
                    ctx.check_carriable(&message)?;
                    txn.take_at(Table::Messages, &name, s.head)?;
                    taken = Some((s.head, bytes));
                }
                s.head += 1;
            }
            save(txn, &name, &s)?;
            Ok(taken)
        };
        let undo = move |taken: Option<(u64, Vec<u8>)>| requeue(client, taken);
        let taken = store::write_handing_over(&self.store, visit, undo).await?;
        match taken {
            Some((_, bytes)) => decode(&bytes),
            None => Ok(Value::Nil),
        }
    }

    /// Queues a message for one client.
    pub async fn send(&self, recipient: String, message: Value) -> Result<bool, Fault> {
        let encoded = self.limits.encode("message", &message)?;
        let wake = recipient.clone();
        let sent = store::write(&*self.store, move |txn| {
            let mut s = load(txn, &recipient)?.ok_or_else(|| not_found(&recipient))?;
            if !enqueue(txn, &recipient, &mut s, &encoded)? {
                return Err(Fault::named(
                    "QueueFullError",
                    format!("client {recipient:?} has {MAX_QUEUE} unread messages"),
                ));
            }
            Ok(true)
        })
        .await?;
        self.waiters.wake(&wake);
        Ok(sent)
    }

    /// Queues a message for every logged-in client; returns how many got it.
    pub async fn broadcast(&self, message: Value) -> Result<u64, Fault> {
        let encoded = self.limits.encode("message", &message)?;
        let (sent, names) = store::write(&*self.store, move |txn| {
            let mut sent = 0;
            let mut names = Vec::new();
            for (name, mut s) in all_sessions(txn)? {
                if enqueue(txn, &name, &mut s, &encoded)? {
                    sent += 1;
                    names.push(name);
                }
            }
            Ok((sent, names))
        })
        .await?;
        for name in names {
            self.waiters.wake(&name);
        }
        Ok(sent)
    }

    /// Ends every session idle longer than the session timeout; returns how many.
    pub async fn clean_up(&self) -> Result<u64, Fault> {
        let timeout_ms = self.session_timeout.as_millis() as i64;
        let cutoff = self.timing.now_ms() - timeout_ms;
        let ended = store::write(&*self.store, move |txn| {
            let mut ended = 0;
            for (name, s) in all_sessions(txn)? {
                if s.visit_ms < cutoff {
                    end_session(txn, &name)?;
                    ended += 1;
                }
            }
            Ok(ended)
        })
        .await?;
        if ended > 0 {
            tracing::info!(ended, "idle client sessions ended");
            self.stacks.wake_all();
        }
        Ok(ended)
    }

    /// Names of all logged-in clients, sorted.
    pub fn names(&self) -> Result<Vec<String>, Fault> {
        store::read(&*self.store, |txn| {
            Ok(all_sessions(txn)?.into_iter().map(|(n, _)| n).collect())
        })
    }

    /// Every client's details, keyed by name.
    pub fn all(&self) -> Result<Map, Fault> {
        store::read(&*self.store, |txn| {
            Ok(all_sessions(txn)?
                .into_iter()
                .map(|(n, s)| {
                    let public = s.public(&n, self.subscriptions().of(&n));
                    (n, public)
                })
                .collect())
        })
    }

    /// One client's details.
    pub fn get(&self, name: &str) -> Result<Value, Fault> {
        store::read(&*self.store, |txn| {
            load(txn, name)?
                .map(|s| s.public(name, self.subscriptions().of(name)))
                .ok_or_else(|| not_found(name))
        })
    }

    /// Whether the client is logged in.
    pub fn has(&self, name: &str) -> Result<bool, Fault> {
        store::read(&*self.store, |txn| Ok(load(txn, name)?.is_some()))
    }
}

/// Registers the `provider.*` methods.
pub fn register(t: &mut MethodTable, svc: &Arc<Provider>) {
    method!(t, svc => s, "provider.login",
        "Log a client in (again) with optional info; its host is recorded. Returns true.",
        |ctx: Context, name: String, info: Option<Value>| s.login(&ctx, name, info.unwrap_or_default()).await)
    .params(&["name", "info"]);
    method!(t, svc => s, "provider.logout",
        "End a client's session: its queued messages are dropped and its leased stack items go back.",
        |name: String| s.logout(name).await)
    .params(&["name"]);
    method!(t, svc => s, "provider.visit",
        "Keep a session alive and record a status; returns the next queued message, or nil.",
        |ctx: Context, name: String, status: Option<Value>| s.visit(&ctx, name, status).await)
    .params(&["name", "status"]);
    method!(t, svc => s, "provider.sendMessage", "Queue a message for a logged-in client; returns true.",
        |recipient: String, message: Value| s.send(recipient, message).await)
    .params(&["recipient", "message"]);
    method!(t, svc => s, "provider.broadcast", "Queue a message for every logged-in client; returns how many.",
        |message: Value| s.broadcast(message).await)
    .params(&["message"]);
    method!(t, svc => s, "provider.getAllClientNames", "Names of all logged-in clients, sorted.",
        | | s.names());
    method!(t, svc => s, "provider.getAllClients",
        "Every client's details (name, host, loginTime, lastVisit, status, info, pendingMessages) by name.",
        | | s.all());
    method!(t, svc => s, "provider.getClient", "One client's details.",
        |name: String| s.get(&name))
    .params(&["name"]);
    method!(t, svc => s, "provider.hasClient", "Whether the client is logged in.",
        |name: String| s.has(&name))
    .params(&["name"]);
    method!(t, svc => s, "provider.subscribe",
        "Push the client's messages to this connection as they arrive, as provider.message(subscription, \
         client, message) notifications; returns the subscription id. With confirm, each message is a \
         request instead and leaves the queue only once the client answered it. WebSocket and \
         MessagePack-RPC only.",
        |ctx: Context, name: String, confirm: Option<bool>| s.subscribe(ctx, name, confirm.unwrap_or(false)).await)
    .params(&["name", "confirm"]);
    method!(t, svc => s, "provider.unsubscribe", "End a subscription; false if it was not live.",
        |id: String| Ok::<_, Fault>(s.unsubscribe(&id)))
    .params(&["id"]);
    method!(t, svc => s, "provider.cleanUp",
        "End every session idle longer than the session timeout; returns how many ended.",
        | | s.clean_up().await);
}
