//! What a stream connection carries both ways, on either side (server or
//! client): the outbox its frames go through, the calls this side made to the
//! peer and waits answers for, and the calls in flight.
//!
//! The protocols that run over it: [`msgpack`] (MessagePack-RPC over a byte
//! stream) and [`json`] (JSON-RPC), over a WebSocket ([`ws`]) or one
//! document per line ([`lines`], for stdio).

pub(crate) mod idle;
pub(crate) mod json;
pub(crate) mod lines;
pub(crate) mod msgpack;
pub(crate) mod outbox;
pub(crate) mod ws;

pub(crate) use outbox::{ByteSink, CountedSink, FrameSink, Outbox};

use crate::auth::{Attempt, Authenticator, AUTH_METHODS};
use crate::metrics::Metrics;
use rpcs_core::{
    BoxFuture, CallResult, Context, Dispatcher, Fault, Peer, PeerCall, Principal, Reply, Value,
};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

/// How a protocol writes the messages a session sends on its own.
pub(crate) trait Wire: Send + Sync + 'static {
    /// A request with an id.
    fn request(&self, id: u32, method: &str, params: &[Value]) -> Vec<u8>;
    /// A notification.
    fn notification(&self, method: &str, params: &[Value]) -> Vec<u8>;
}

/// How long a call to the peer waits for its answer.
const PEER_CALL_TIMEOUT: Duration = Duration::from_secs(300);

/// Inline answers are sent once they reach this many bytes, so a long pipeline
/// of requests never piles up answers in memory.
pub(crate) const FLUSH_AT: usize = 64 * 1024;

type Pending = Mutex<HashMap<u32, oneshot::Sender<Result<Value, Fault>>>>;

/// Bounds on one stream connection.
#[derive(Debug, Clone)]
pub(crate) struct StreamLimits {
    /// The largest frame (message) read.
    pub max_frame: usize,
    /// Time allowed for the rest of a frame once it started.
    pub frame_timeout: Duration,
    /// A connection silent this long with nothing in flight is closed (`None`:
    /// never, as on a client's own connection).
    pub idle_timeout: Option<Duration>,
    /// The deepest nesting of values.
    pub max_depth: usize,
    /// Calls running at once (and calls to the peer awaiting answers).
    pub max_in_flight: usize,
    /// Bytes of frames waiting to be written.
    pub max_queued_bytes: usize,
    /// A write that makes no progress for this long ends the connection.
    pub write_timeout: Option<Duration>,
    /// The most bytes of answers one batch may produce before its other calls
    /// are refused unrun.
    pub max_batch_answer: usize,
    /// A connection not authenticated this long after it opened is closed
    /// (`None`: no authentication is asked for).
    pub auth_timeout: Option<Duration>,
}

impl StreamLimits {
    /// The bounds a server applies.
    pub(crate) fn of(config: &crate::ServerConfig) -> StreamLimits {
        StreamLimits {
            max_frame: config.max_request_bytes,
            frame_timeout: config.body_timeout,
            idle_timeout: Some(config.idle_timeout),
            max_depth: config.xml_limits.max_depth,
            max_in_flight: config.max_in_flight,
            max_queued_bytes: config.max_queued_bytes,
            write_timeout: Some(config.write_timeout),
            max_batch_answer: config.max_batch_answer_bytes,
            auth_timeout: config.auth.as_ref().map(|_| config.auth_timeout),
        }
    }

    /// The bounds a client applies to its own connection.
    pub(crate) fn client(max_response: usize, timeout: Duration) -> StreamLimits {
        StreamLimits {
            max_frame: max_response,
            frame_timeout: timeout,
            idle_timeout: None,
            max_depth: 64,
            // A client's own calls may be many; this bounds the server's calls back.
            max_in_flight: 1 << 16,
            max_queued_bytes: 1 << 20,
            write_timeout: None,
            max_batch_answer: max_response,
            auth_timeout: None,
        }
    }
}

/// One connection's shared state.
pub(crate) struct Session {
    outbox: Outbox,
    pending: Pending,
    next_id: AtomicU32,
    wire: Box<dyn Wire>,
    in_flight: Arc<Semaphore>,
    max_in_flight: usize,
    closed: AtomicBool,
    /// Woken when the session is closed.
    closing: tokio::sync::Notify,
    /// Who the peer authenticated as (by a first `auth` call, or before the
    /// session started, as a WebSocket upgrade's header does).
    principal: Mutex<Option<Arc<Principal>>>,
}

/// The connection ended before the peer answered.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Gone;

impl Session {
    /// A session whose frames go to `sink` (written by a task of its own) within
    /// the limits. Returns the session and the writer.
    pub(crate) fn start<S: FrameSink>(
        sink: S,
        wire: Box<dyn Wire>,
        limits: &StreamLimits,
    ) -> (Arc<Session>, JoinHandle<()>) {
        let (outbox, writer) = Outbox::start(sink, limits.max_queued_bytes, limits.write_timeout);
        let max_in_flight = limits.max_in_flight.max(1);
        let session = Arc::new(Session {
            outbox,
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU32::new(1),
            wire,
            in_flight: Arc::new(Semaphore::new(max_in_flight)),
            max_in_flight,
            closed: AtomicBool::new(false),
            closing: tokio::sync::Notify::new(),
            principal: Mutex::new(None),
        });
        (session, writer)
    }

    /// Whether the connection has ended.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire) || self.outbox.is_closed()
    }

    /// Resolves once the connection has ended: closed by its reader, or its
    /// writer stopped.
    pub(crate) async fn closed(&self) {
        loop {
            let closing = self.closing.notified();
            tokio::pin!(closing);
            closing.as_mut().enable();
            if self.is_closed() {
                return;
            }
            tokio::select! {
                _ = closing => {}
                _ = self.outbox.closed() => {}
            }
        }
    }

    /// Whether nothing holds the connection open: no call in flight, no call to
    /// the peer waiting, and nobody but `readers` holding the session (every call
    /// and every subscription holds it through its context).
    pub(crate) fn is_idle(self: &Arc<Self>, readers: usize) -> bool {
        Arc::strong_count(self) <= readers
            && self.in_flight.available_permits() == self.max_in_flight
            && self.pending().is_empty()
    }

    fn pending(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<u32, oneshot::Sender<Result<Value, Fault>>>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Calls a method on the peer and waits (up to `timeout`) for its answer.
    pub(crate) async fn request(
        &self,
        method: &str,
        params: &[Value],
        timeout: Duration,
    ) -> Result<Result<Value, Fault>, RequestError> {
        if self.is_closed() {
            return Err(RequestError::Gone);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut pending = self.pending();
            if pending.len() >= self.max_in_flight {
                return Err(RequestError::TooMany);
            }
            pending.insert(id, tx);
        }
        let frame = self.wire.request(id, method, params);
        if !self.send(frame).await {
            self.forget(id);
            return Err(RequestError::Gone);
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(_)) => Err(RequestError::Gone),
            Err(_) => {
                self.forget(id);
                Err(RequestError::Timeout)
            }
        }
    }

    /// Sends a notification and waits until it is written to the connection, so a
    /// caller that must not lose it (a subscription) knows it left.
    pub(crate) async fn notification(&self, method: &str, params: &[Value]) -> Result<(), Gone> {
        if self.is_closed() {
            return Err(Gone);
        }
        let frame = self.wire.notification(method, params);
        match self.outbox.send_written(frame).await {
            true => Ok(()),
            false => Err(Gone),
        }
    }

    fn forget(&self, id: u32) {
        self.pending().remove(&id);
    }

    /// Queues a frame for writing, waiting for room; false once the connection is gone.
    pub(crate) async fn send(&self, bytes: Vec<u8>) -> bool {
        self.outbox.send(bytes).await
    }

    /// Delivers the peer's answer to one of our calls; false if no call waits for it.
    pub(crate) fn answer(&self, id: u32, outcome: Result<Value, Fault>) -> bool {
        let waiter = self.pending().remove(&id);
        match waiter {
            Some(tx) => tx.send(outcome).is_ok(),
            None => false,
        }
    }

    /// Fails every call still waiting for the peer (the connection ended).
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.closing.notify_waiters();
        self.pending().clear();
    }

    /// A context for a call arriving on this session.
    pub(crate) fn context(
        self: &Arc<Self>,
        protocol: &'static str,
        peer: Option<std::net::SocketAddr>,
        conn_id: u64,
    ) -> Context {
        let mut ctx = Context::new(protocol, peer, conn_id);
        ctx.peer_calls = Some(Peer(Arc::new(Handle(self.clone()))));
        ctx.principal = self.principal();
        ctx
    }

    /// Who the peer authenticated as, if it did.
    pub(crate) fn principal(&self) -> Option<Arc<Principal>> {
        self.principal
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Makes every call from now on run as `principal`.
    pub(crate) fn set_principal(&self, principal: Arc<Principal>) {
        *self.principal.lock().unwrap_or_else(|p| p.into_inner()) = Some(principal);
    }

    /// Completes when the peer has not authenticated within `limit` of
    /// `started` (the connection should then close); never completes once it
    /// has, or when no authentication is asked for (`None`). Cancel-safe: the
    /// read loops race it against each read.
    pub(crate) async fn await_auth(&self, limit: Option<Duration>, started: tokio::time::Instant) {
        let Some(limit) = limit else {
            return std::future::pending().await;
        };
        if self.principal().is_some() {
            return std::future::pending().await;
        }
        tokio::time::sleep_until(started + limit).await;
    }

    /// Waits for room for one more call in flight.
    pub(crate) async fn slot(&self) -> Option<OwnedSemaphorePermit> {
        self.in_flight.clone().acquire_owned().await.ok()
    }

    /// Ends the connection: fails waiting calls, lets the calls in flight finish
    /// (their answers are still written), then stops the writer even if something
    /// (a subscription) still holds the session.
    pub(crate) async fn finish(&self) {
        self.close();
        let _ = self.in_flight.acquire_many(self.max_in_flight as u32).await;
        self.outbox.finish();
    }
}

/// Why a request to the peer got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestError {
    /// The connection ended.
    Gone,
    /// No answer within the timeout.
    Timeout,
    /// Too many calls to the peer are already waiting.
    TooMany,
}

/// A session handle that owns its reference, for `'static` peer-call futures.
struct Handle(Arc<Session>);

impl PeerCall for Handle {
    fn is_closed(&self) -> bool {
        self.0.is_closed()
    }

    fn closed(&self) -> BoxFuture<()> {
        let session = self.0.clone();
        Box::pin(async move { session.closed().await })
    }

    fn call(&self, method: &str, params: Vec<Value>) -> BoxFuture<Result<Value, Fault>> {
        let session = self.0.clone();
        let method = method.to_owned();
        Box::pin(async move {
            match session.request(&method, &params, PEER_CALL_TIMEOUT).await {
                Ok(outcome) => outcome,
                Err(RequestError::Gone) => Err(gone()),
                Err(RequestError::Timeout) => Err(Fault::new(
                    Fault::LIMIT_EXCEEDED,
                    "the peer did not answer in time",
                )),
                Err(RequestError::TooMany) => Err(Fault::new(
                    Fault::LIMIT_EXCEEDED,
                    "too many calls to the peer are waiting for answers",
                )),
            }
        })
    }

    fn notify(&self, method: &str, params: Vec<Value>) -> BoxFuture<Result<(), Fault>> {
        let session = self.0.clone();
        let method = method.to_owned();
        Box::pin(async move {
            session
                .notification(&method, &params)
                .await
                .map_err(|_| gone())
        })
    }
}

fn gone() -> Fault {
    Fault::named("ConnectionError", "the connection to the peer is closed")
}

/// The dispatcher, with the call time limit applied to every call it runs.
#[derive(Clone)]
pub(crate) struct Calls {
    /// The methods.
    pub dispatcher: Arc<Dispatcher>,
    /// The longest one call may run.
    pub timeout: Option<Duration>,
    /// The tokens a stream's `auth` call is checked against (`None`: the
    /// server asks for none, and `auth` is an ordinary method name).
    pub auth: Option<Arc<Authenticator>>,
    /// Where each answered call is counted.
    pub metrics: Arc<Metrics>,
}

impl Calls {
    /// Runs one call under the time limit, and counts it.
    pub(crate) async fn run(&self, ctx: &Context, call: Call) -> CallResult {
        let started = Instant::now();
        let stats = match &call {
            Call::Positional(method, _) | Call::Named(method, _) => self.metrics.method(method),
        };
        let outcome = self.run_timed(ctx, call).await;
        stats.record(ctx.protocol, outcome.is_err(), started.elapsed());
        outcome
    }

    async fn run_timed(&self, ctx: &Context, call: Call) -> CallResult {
        match self.timeout {
            None => self.dispatch(ctx, call).await,
            // Boxed, so that the common case carries no timer in its future.
            Some(limit) => Box::pin(tokio::time::timeout(limit, self.dispatch(ctx, call)))
                .await
                .unwrap_or_else(|_| Err(call_timed_out(limit))),
        }
    }

    /// Runs one call keeping a streaming method's items as a stream; the time
    /// limit bounds the start only (the items go on for as long as the peer
    /// takes them, as over zerorpc). Counted when it starts.
    pub(crate) async fn run_streaming(&self, ctx: &Context, call: Call) -> Result<Reply, Fault> {
        let started = Instant::now();
        let (method, params) = match call {
            Call::Positional(method, params) => (method, Ok(params)),
            Call::Named(method, named) => {
                let params = match self.dispatcher.table().get(&method) {
                    Some(m) => m.positional(named),
                    None => Ok(Vec::new()),
                };
                (method, params)
            }
        };
        let stats = self.metrics.method(&method);
        let reply = match params {
            Ok(params) => {
                let start = self.dispatcher.call_streaming(ctx, &method, params);
                match self.timeout {
                    None => start.await,
                    Some(limit) => Box::pin(tokio::time::timeout(limit, start))
                        .await
                        .unwrap_or_else(|_| Err(call_timed_out(limit))),
                }
            }
            Err(fault) => Err(fault),
        };
        stats.record(ctx.protocol, reply.is_err(), started.elapsed());
        reply
    }

    /// Whether `method` streams, for a caller who may learn it (one who
    /// need not authenticate, or has).
    pub(crate) fn streams(&self, ctx: &Context, method: &str) -> bool {
        let d = &self.dispatcher;
        (ctx.principal.is_some() || !d.requires_authentication())
            && d.table().get(method).is_some_and(|m| m.is_stream())
    }

    async fn dispatch(&self, ctx: &Context, call: Call) -> CallResult {
        let d = &self.dispatcher;
        match call {
            Call::Positional(method, params) => d.call(ctx, &method, params).await,
            Call::Named(method, named) => d.call_named(ctx, &method, named).await,
        }
    }
}

/// The fault of a call that ran past the time limit.
pub(crate) fn call_timed_out(limit: Duration) -> Fault {
    Fault::new(
        Fault::LIMIT_EXCEEDED,
        format!("the call ran longer than the limit of {limit:?}"),
    )
}

/// Runs one call: polls it once at once, so calls that need not wait are answered
/// inline (and their answers batched), and runs the others as tasks.
/// `finish` turns the outcome into the frame to send (or none).
pub(crate) async fn run_call<F>(
    session: &Arc<Session>,
    calls: &Calls,
    ctx: Context,
    call: Call,
    inline_out: &mut Vec<u8>,
    finish: F,
) where
    F: FnOnce(Result<Value, Fault>, &mut Vec<u8>) + Send + 'static,
{
    if let Some(outcome) = log_in(session, calls, &ctx, &call) {
        return finish(outcome, inline_out);
    }
    let calls = calls.clone();
    let mut fut: Pin<Box<dyn Future<Output = Result<Value, Fault>> + Send>> =
        Box::pin(async move { calls.run(&ctx, call).await });
    let first = std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await;
    match first {
        Poll::Ready(outcome) => finish(outcome, inline_out),
        Poll::Pending => {
            // A call that must wait starts only while its answer has somewhere
            // to go: a client that reads nothing gets no more calls run, each
            // holding its answer in memory.
            if !session.outbox.wait_room().await {
                return;
            }
            let Some(permit) = session.slot().await else {
                return;
            };
            let session = session.clone();
            tokio::spawn(async move {
                let outcome = fut.await;
                let mut frame = Vec::new();
                finish(outcome, &mut frame);
                if !frame.is_empty() {
                    session.send(frame).await;
                }
                drop(permit);
            });
        }
    }
}

/// Answers a stream's `auth` call when the server asks for authentication:
/// on success every later call on the connection runs as the token's
/// principal, and the answer is the token's name and access level. `None`
/// when `call` is not an `auth` call.
fn log_in(session: &Session, calls: &Calls, ctx: &Context, call: &Call) -> Option<CallResult> {
    let auth = calls.auth.as_ref()?;
    let method = match call {
        Call::Positional(method, _) | Call::Named(method, _) => method,
    };
    if !AUTH_METHODS.contains(&method.as_str()) {
        return None;
    }
    let named;
    let params: &[Value] = match call {
        Call::Positional(_, params) => params,
        Call::Named(_, map) => {
            let name = map.get("name").cloned();
            let secret = map.get("secret").cloned().unwrap_or(Value::Nil);
            named = name.into_iter().chain([secret]).collect::<Vec<_>>();
            &named
        }
    };
    let peer = ctx.peer.map_or_else(
        || format!("connection {}", ctx.connection_id),
        |a| a.to_string(),
    );
    let attempt = Attempt {
        peer: &peer,
        protocol: ctx.protocol,
    };
    Some(auth.check_call(params, attempt).map(|principal| {
        session.set_principal(principal.clone());
        let mut answer = rpcs_core::Map::new();
        answer.insert("name".into(), Value::from(&*principal.name));
        answer.insert("access".into(), Value::from(principal.access.as_str()));
        Value::Struct(answer)
    }))
}

/// A call as the session runs it.
pub(crate) enum Call {
    /// Method and positional parameters.
    Positional(String, Vec<Value>),
    /// Method and named parameters.
    Named(String, rpcs_core::Map),
}
