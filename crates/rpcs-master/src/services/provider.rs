//! The client provider: who is logged in, when each was last seen, and a
//! message queue per client.
//!
//! A client `login`s, then `visit`s regularly: each visit keeps the session alive,
//! records a status, and returns the next queued message (or nil). Sessions idle
//! longer than the session timeout are ended by `cleanUp` (which the master also
//! runs periodically); ending a session drops its queued messages and puts the
//! stack items it had leased back on their stacks. Unknown clients fault
//! `ClientNotFoundError`.

use super::{carriable, datetime, decode, method, Limits};
use crate::backend::{Backend, Session};
use crate::clock::Timing;
use rpcs_core::{Context, Fault, Map, MethodTable, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

/// The most messages queued for one client.
pub const MAX_QUEUE: usize = 100_000;

fn not_found(name: &str) -> Fault {
    Fault::named(
        "ClientNotFoundError",
        format!("no client named {name:?} is logged in"),
    )
}

/// What `getClient` shows of a session; `subscriptions` are the live ones for
/// the client.
fn public(name: &str, s: &Session, subscriptions: usize) -> Result<Value, Fault> {
    let mut m = Map::with_capacity(8);
    m.insert("name".into(), Value::String(name.to_owned()));
    m.insert("host".into(), Value::String(s.host.clone()));
    m.insert("loginTime".into(), datetime(s.login_ms));
    m.insert("lastVisit".into(), datetime(s.visit_ms));
    m.insert("status".into(), decode(&s.status)?);
    m.insert("info".into(), decode(&s.info)?);
    m.insert("pendingMessages".into(), Value::Int(s.pending as i64));
    m.insert("subscriptions".into(), Value::Int(subscriptions as i64));
    Ok(Value::Struct(m))
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
    backend: Arc<dyn Backend>,
    limits: Limits,
    session_timeout: Duration,
    timing: Timing,
    /// Live subscriptions.
    subscriptions: Mutex<Subscriptions>,
}

impl Provider {
    /// A provider over `backend` that ends sessions idle longer than
    /// `session_timeout`.
    pub fn new(
        backend: Arc<dyn Backend>,
        limits: Limits,
        session_timeout: Duration,
        timing: Timing,
    ) -> Provider {
        Provider {
            backend,
            limits,
            session_timeout,
            timing,
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
    /// its session alive. With `end_session`, the session ends when the
    /// connection closes (unless another subscription of the client is still
    /// live): a worker that dies gives its leased items back at once, not after
    /// the session timeout.
    pub async fn subscribe(
        self: &Arc<Self>,
        ctx: Context,
        name: String,
        confirm: bool,
        end_session: bool,
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
        if !self.has(name.clone()).await? {
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
            let waiting = svc.backend.client_waiters().wait_on(&name);
            let recheck = (!svc.backend.sees_every_change()).then_some(svc.timing.recheck);
            let mut closed = false;
            loop {
                let notified = waiting.notify.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                // A closed connection ends the subscription (and stops it keeping
                // the session alive).
                if ctx.peer_closed() {
                    closed = true;
                    break;
                }
                match svc.deliver(&ctx, &sub, &name, confirm).await {
                    Ok(true) => {}
                    Ok(false) | Err(_) => {
                        closed = ctx.peer_closed();
                        break;
                    }
                }
                tokio::select! {
                    _ = &mut notified => {}
                    _ = nap(recheck) => {}
                    _ = ctx.caller_gone() => {}
                    _ = &mut cancelled => break,
                }
            }
            // One that was unsubscribed first, or a client still subscribed on
            // another connection (a worker that reconnected), keeps its session.
            let last = {
                let mut subscriptions = svc.subscriptions();
                subscriptions.remove(&sub) && subscriptions.of(&name) == 0
            };
            if end_session && closed && last {
                svc.end_with_connection(&name).await;
            }
        });
        Ok(id)
    }

    /// Ends the session of a client whose connection closed.
    async fn end_with_connection(&self, name: &str) {
        match self.backend.logout(name.to_owned()).await {
            Ok(()) => tracing::info!(client = name, "session ended with its connection"),
            Err(f) => tracing::warn!(client = name, fault = %f, "session could not be ended"),
        }
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
            if !self.backend.seen(name.to_owned()).await? {
                return Ok(false);
            }
            let Some((seq, bytes)) = self.backend.peek_message(name.to_owned()).await? else {
                return Ok(true);
            };
            let args = (sub.to_owned(), name.to_owned(), decode(&bytes)?);
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
            self.backend.delivered(name.to_owned(), seq).await?;
        }
    }

    /// Logs a client in (again), keeping any queued messages of a live session.
    pub async fn login(&self, ctx: &Context, name: String, info: Value) -> Result<bool, Fault> {
        self.limits.check_name("client", &name)?;
        let info = self.limits.encode("info", &info)?;
        let host = ctx.peer.map(|p| p.ip().to_string()).unwrap_or_default();
        self.backend.login(name, host, info).await.map(|()| true)
    }

    /// Ends a client's session.
    pub async fn logout(&self, name: String) -> Result<bool, Fault> {
        self.backend.logout(name).await.map(|()| true)
    }

    /// Keeps the session alive, records `status` (when given) and returns the
    /// next queued message, or nil.
    pub async fn visit(
        &self,
        ctx: &Context,
        name: String,
        status: Option<Value>,
    ) -> Result<Value, Fault> {
        let status = match &status {
            Some(s) => Some(self.limits.encode("status", s)?),
            None => None,
        };
        // A message the caller's protocol cannot carry stays queued.
        let carry = |bytes: &[u8]| carriable(ctx, bytes);
        match self.backend.visit(name, status, &carry).await? {
            Some(bytes) => decode(&bytes),
            None => Ok(Value::Nil),
        }
    }

    /// Queues a message for one client.
    pub async fn send(&self, recipient: String, message: Value) -> Result<bool, Fault> {
        let encoded = self.limits.encode("message", &message)?;
        self.backend
            .send(recipient, encoded, MAX_QUEUE)
            .await
            .map(|()| true)
    }

    /// Queues a message for every logged-in client; returns how many got it.
    /// A caller confined to a namespace reaches only the clients in it.
    pub async fn broadcast(&self, ctx: &Context, message: Value) -> Result<u64, Fault> {
        let encoded = self.limits.encode("message", &message)?;
        let Some(prefix) = ctx.principal.as_ref().and_then(|p| p.prefix.clone()) else {
            return self.backend.broadcast(encoded, MAX_QUEUE).await;
        };
        // One send per client of the namespace: each is atomic, the whole is
        // not (a client that logs in meanwhile may miss it, as with a broadcast
        // that came a moment earlier).
        let mut reached = 0;
        for name in self.names().await? {
            if name.starts_with(&*prefix) {
                let sent = self.backend.send(name, encoded.clone(), MAX_QUEUE).await;
                reached += u64::from(sent.is_ok());
            }
        }
        Ok(reached)
    }

    /// Ends every session idle longer than the session timeout; returns how many.
    /// A session with a live subscription here is seen first: the subscription
    /// keeps it alive.
    pub async fn clean_up(&self) -> Result<u64, Fault> {
        let subscribed: Vec<String> = self.subscriptions().per_client.keys().cloned().collect();
        for name in subscribed {
            self.backend.seen(name).await?;
        }
        let timeout_ms = i64::try_from(self.session_timeout.as_millis()).unwrap_or(i64::MAX);
        let ended = self.backend.end_idle(timeout_ms).await?;
        if ended > 0 {
            tracing::info!(ended, "idle client sessions ended");
        }
        Ok(ended as u64)
    }

    /// Names of all logged-in clients, sorted.
    pub async fn names(&self) -> Result<Vec<String>, Fault> {
        let sessions = self.backend.sessions().await?;
        Ok(sessions.into_iter().map(|(n, _)| n).collect())
    }

    /// Every client's details, keyed by name.
    pub async fn all(&self) -> Result<Map, Fault> {
        let sessions = self.backend.sessions().await?;
        let subscriptions = self.subscriptions();
        sessions
            .iter()
            .map(|(n, s)| Ok((n.clone(), public(n, s, subscriptions.of(n))?)))
            .collect()
    }

    /// One client's details.
    pub async fn get(&self, name: String) -> Result<Value, Fault> {
        let session = self.backend.session(name.clone()).await?;
        let session = session.ok_or_else(|| not_found(&name))?;
        public(&name, &session, self.subscriptions().of(&name))
    }

    /// Whether the client is logged in.
    pub async fn has(&self, name: String) -> Result<bool, Fault> {
        Ok(self.backend.session(name).await?.is_some())
    }
}

/// Sleeps for `recheck`, or for ever when there is none.
async fn nap(recheck: Option<Duration>) {
    match recheck {
        Some(r) => tokio::time::sleep(r).await,
        None => std::future::pending().await,
    }
}

/// Registers the `provider.*` methods.
pub fn register(t: &mut MethodTable, svc: &Arc<Provider>) {
    method!(t, svc => s, Write, "provider.login",
        "Log a client in (again) with optional info; its host is recorded. Returns true.",
        |ctx: Context, name: String, info: Option<Value>| s.login(&ctx, name, info.unwrap_or_default()).await)
    .params(&["name", "info"]);
    method!(t, svc => s, Write, "provider.logout",
        "End a client's session: its queued messages are dropped and its leased stack items go back.",
        |name: String| s.logout(name).await)
    .params(&["name"]);
    method!(t, svc => s, Write, "provider.visit",
        "Keep a session alive and record a status; returns the next queued message, or nil.",
        |ctx: Context, name: String, status: Option<Value>| s.visit(&ctx, name, status).await)
    .params(&["name", "status"]);
    method!(t, svc => s, Write, "provider.sendMessage", "Queue a message for a logged-in client; returns true.",
        |recipient: String, message: Value| s.send(recipient, message).await)
    .params(&["recipient", "message"]);
    method!(t, svc => s, Write, "provider.broadcast", "Queue a message for every logged-in client; returns how many.",
        |ctx: Context, message: Value| s.broadcast(&ctx, message).await)
    .params(&["message"]);
    method!(t, svc => s, Read, "provider.getAllClientNames", "Names of all logged-in clients, sorted.",
        | | s.names().await);
    method!(t, svc => s, Read, "provider.getAllClients",
        "Every client's details (name, host, loginTime, lastVisit, status, info, pendingMessages) by name.",
        | | s.all().await);
    method!(t, svc => s, Read, "provider.getClient", "One client's details.",
        |name: String| s.get(name).await)
    .params(&["name"]);
    method!(t, svc => s, Read, "provider.hasClient", "Whether the client is logged in.",
        |name: String| s.has(name).await)
    .params(&["name"]);
    method!(t, svc => s, Write, "provider.subscribe",
        "Push the client's messages to this connection as they arrive, as provider.message(subscription, \
         client, message) notifications; returns the subscription id. With confirm, each message is a \
         request instead and leaves the queue only once the client answered it. With endSession, the \
         session ends when this connection closes. WebSocket and MessagePack-RPC only.",
        |ctx: Context, name: String, confirm: Option<bool>, end_session: Option<bool>|
            s.subscribe(ctx, name, confirm.unwrap_or(false), end_session.unwrap_or(false)).await)
    .params(&["name", "confirm", "endSession"]);
    method!(t, svc => s, Write, "provider.unsubscribe", "End a subscription; false if it was not live.",
        |id: String| Ok::<_, Fault>(s.unsubscribe(&id)))
    .params(&["id"]);
    method!(t, svc => s, Admin, "provider.cleanUp",
        "End every session idle longer than the session timeout; returns how many ended.",
        | | s.clean_up().await);
}
