//! The zerorpc server: each peer connection (a client's DEALER, or a queue) is
//! served on its own, like a ZeroMQ ROUTER, with limits per peer.
//!
//! Each request runs as a task, at most `max_in_flight` per peer (a request
//! beyond that is answered `ERR LimitExceeded` at once, so the reader keeps
//! reading the heartbeats and credits of the calls already running). Its answer
//! is `OK [result]` or `ERR [name, message, traceback]`; a streaming method sends
//! `STREAM item` events, each spending a credit the client granted, then
//! `STREAM_DONE`. While a call runs, the server heartbeats its channel and
//! cancels the call if the client falls silent. Malformed events and events for
//! unknown channels are dropped. Answers wait in the peer's outbox, whose byte
//! budget stops the reading of a peer that does not read its answers.

use super::builtins::builtin;
use super::{err_args, message, new_id};
use crate::accept::{accept_loop, drain, stopped, Slots};
use crate::auth::Attempt;
use crate::server::Shared;
use crate::session::idle::IdleTimer;
use crate::session::{ByteSink, Calls, CountedSink, Outbox};
use crate::zmtp::endpoint::{connect, Bound, Endpoint, Halves};
use crate::zmtp::{self, handshake, ConnError, Incoming, Reader};
use bytes::Bytes;
use rpcs_core::zerorpc::{self, names, Event, Id};
use rpcs_core::{Context, Fault, Principal, Reply, Value};
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};
use tokio::io::AsyncRead;
use tokio::sync::{watch, Notify, Semaphore};
use tokio::task::JoinSet;
use tracing::debug;

const PROTOCOL: &str = "zerorpc";

/// What the server says about itself, for the `_zerorpc_*` built-ins.
pub(crate) struct ZerorpcConfig {
    /// The service name `_zerorpc_name` answers.
    pub name: String,
    /// The heartbeat interval.
    pub heartbeat: Duration,
}

/// Serves every bound endpoint (accepting peers) and every connected one (the
/// reversed mode: keeps connecting) until shutdown.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    slots: Arc<Slots>,
    bound: Vec<Bound>,
    connects: Vec<(String, Endpoint)>,
    stop: watch::Receiver<bool>,
) {
    let mut tasks = JoinSet::new();
    for b in bound {
        let (shared, slots, stop) = (shared.clone(), slots.clone(), stop.clone());
        tasks.spawn(async move {
            let grace = shared.config.shutdown_grace;
            let keepalive = shared.config.tcp_keepalive;
            let serve = |(halves, peer): (Halves, String), stop| {
                serve_peer(shared.clone(), halves, peer, stop)
            };
            let open = accept_loop(&slots, stop, || b.accept(keepalive), serve, drop).await;
            drop(b);
            drain(open, grace).await;
        });
    }
    for (text, endpoint) in connects {
        tasks.spawn(keep_connected(shared.clone(), text, endpoint, stop.clone()));
    }
    while tasks.join_next().await.is_some() {}
}

/// The reversed mode: connects to a client or queue that binds, and again
/// (with backoff) whenever the connection ends, until shutdown.
async fn keep_connected(
    shared: Arc<Shared>,
    text: String,
    endpoint: Endpoint,
    mut stop: watch::Receiver<bool>,
) {
    let mut pause = Duration::from_millis(100);
    loop {
        let peer_stop = stop.clone();
        let attempt = async {
            match connect(&endpoint, shared.config.tcp_keepalive).await {
                Ok(halves) => {
                    serve_peer(shared.clone(), halves, text.clone(), peer_stop).await;
                    true
                }
                Err(e) => {
                    debug!(endpoint = %text, error = %e, "zerorpc connect failed");
                    false
                }
            }
        };
        tokio::select! {
            served = attempt => if served { pause = Duration::from_millis(100) },
            _ = stopped(&mut stop) => return,
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stopped(&mut stop) => return,
        }
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

/// One open channel, as the reader and the call's task share it.
struct Channel {
    credits: AtomicI64,
    more: Notify,
    last_seen: Mutex<Instant>,
}

impl Channel {
    fn seen(&self) {
        *self.last_seen.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    fn silent_for(&self) -> Duration {
        self.last_seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elapsed()
    }

    /// Spends one credit, waiting for a grant when there is none; false if the
    /// client fell silent meanwhile.
    async fn spend(&self, heartbeat: Duration) -> bool {
        loop {
            let granted = self.more.notified();
            tokio::pin!(granted);
            granted.as_mut().enable();
            if self.credits.fetch_sub(1, Ordering::AcqRel) > 0 {
                return true;
            }
            self.credits.fetch_add(1, Ordering::AcqRel);
            if self.silent_for() > heartbeat * 2 {
                return false;
            }
            let _ = tokio::time::timeout(heartbeat, granted).await;
        }
    }
}

/// One peer connection's state.
struct Peer {
    shared: Arc<Shared>,
    config: Arc<ZerorpcConfig>,
    calls: Calls,
    outbox: Outbox,
    channels: Mutex<HashMap<Id, Arc<Channel>>>,
    in_flight: Arc<Semaphore>,
    conn_id: u64,
    /// The peer's address, for the log lines.
    name: String,
}

impl Peer {
    fn channels(&self) -> std::sync::MutexGuard<'_, HashMap<Id, Arc<Channel>>> {
        self.channels.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn is_idle(&self) -> bool {
        self.channels().is_empty()
    }
}

/// Serves one peer connection: the handshake, then its events until it closes,
/// falls idle or shutdown (when the calls in flight still finish and answer).
async fn serve_peer(
    shared: Arc<Shared>,
    (reader, mut writer): Halves,
    name: String,
    mut stop: watch::Receiver<bool>,
) {
    let config = &shared.config;
    let limits = zmtp::Limits {
        max_message: config.max_request_bytes,
        handshake: config.handshake_timeout,
        message: config.body_timeout,
    };
    let mut reader = Reader::new(reader, limits);
    if let Err(e) = handshake(&mut reader, &mut writer, "ROUTER").await {
        debug!(peer = %name, error = %e, "zerorpc handshake failed");
        if let ConnError::Incompatible { .. } = e {
            zmtp::refuse(&mut writer, &e.to_string()).await;
        }
        return;
    }
    let stall = Some(config.write_timeout);
    let sink = CountedSink {
        inner: ByteSink(writer),
        metrics: shared.metrics.clone(),
        protocol: PROTOCOL,
    };
    let (outbox, writer_task) = Outbox::start(sink, config.max_queued_bytes, stall);
    let peer = Arc::new(Peer {
        config: Arc::new(ZerorpcConfig {
            name: config.service_name.clone(),
            heartbeat: config.heartbeat,
        }),
        calls: shared.calls(),
        outbox,
        channels: Mutex::new(HashMap::new()),
        in_flight: Arc::new(Semaphore::new(config.max_in_flight.max(1))),
        conn_id: shared.connection_id(),
        shared: shared.clone(),
        name: name.clone(),
    });
    let mut calls = JoinSet::new();
    let mut idle = IdleTimer::new(config.idle_timeout);
    let stopping = loop {
        let next = tokio::select! {
            n = next_event(&mut reader, &peer, &mut idle) => n,
            _ = stopped(&mut stop) => break true,
        };
        match next {
            Some(Ok(Incoming::Message(frames))) => {
                let n = frames.iter().map(Bytes::len).sum();
                shared.metrics.record_bytes(PROTOCOL, n, 0);
                on_message(&peer, frames, &mut calls).await;
            }
            Some(Ok(Incoming::Ping(pong))) => {
                peer.outbox.send(zmtp::command(&pong)).await;
            }
            Some(Err(e)) => {
                debug!(peer = %name, error = %e, "zerorpc peer gone");
                break false;
            }
            None => {
                debug!(peer = %name, "idle zerorpc peer; closing");
                break false;
            }
        }
        while calls.try_join_next().is_some() {}
    };
    if stopping {
        // Calls in flight finish and their answers still go out.
        drain(calls, shared.config.shutdown_grace).await;
    } else {
        // Nobody is left to answer: the peer's calls are cancelled.
        calls.abort_all();
    }
    peer.outbox.finish();
    drop(peer);
    let _ = writer_task.await;
}

/// The next event; `None` once the peer has been silent for the idle timeout
/// with no call open.
async fn next_event<R: AsyncRead + Unpin>(
    reader: &mut Reader<R>,
    peer: &Peer,
    idle: &mut IdleTimer,
) -> Option<Result<Incoming, ConnError>> {
    while reader.between_messages() {
        tokio::select! {
            r = reader.wait_data() => {
                idle.touch();
                match r {
                    Ok(()) => break,
                    Err(e) => return Some(Err(e)),
                }
            }
            () = idle.quiet() => {
                if peer.is_idle() {
                    return None;
                }
                idle.touch();
            }
        }
    }
    Some(reader.next().await)
}

/// One message from the peer: a request opens a channel, anything else belongs
/// to one.
async fn on_message(peer: &Arc<Peer>, frames: Vec<Bytes>, calls: &mut JoinSet<()>) {
    // Frames before the event (routing identities, the delimiter) go back in
    // front of every answer.
    let Some((body, prefix)) = frames.split_last() else {
        return;
    };
    let event = match zerorpc::decode(body) {
        Ok(e) => e,
        Err(e) => return refuse(peer, prefix, body, &e).await,
    };
    match &event.response_to {
        Some(channel) => on_channel(peer, channel, &event),
        None => open_channel(peer, prefix.to_vec(), event, calls).await,
    }
}

/// Answers a request whose arguments cannot be decoded with `ERR` (its head is
/// readable); drops anything else that is malformed.
async fn refuse(
    peer: &Peer,
    prefix: &[Bytes],
    body: &[u8],
    error: &rpcs_core::msgpack::DecodeError,
) {
    match zerorpc::decode_head(body) {
        Some((channel, None, name)) => {
            let fault =
                Fault::invalid_params(format!("cannot read the arguments of {name}: {error}"));
            let event = Event::on_channel(new_id(), channel, names::ERR, err_args(&fault));
            peer.outbox.send(message(prefix, &event)).await;
        }
        _ => debug!(%error, "dropping a malformed zerorpc event"),
    }
}

/// An event on an open channel: heartbeats and credit grants.
fn on_channel(peer: &Peer, channel: &Id, event: &Event) {
    let found = peer.channels().get(channel).cloned();
    let Some(ch) = found else {
        debug!(name = %event.name, "event for an unknown zerorpc channel");
        return;
    };
    ch.seen();
    if event.name == names::MORE {
        let n = event
            .args
            .as_array()
            .and_then(|a| a.first())
            .and_then(Value::as_i64)
            .unwrap_or(0)
            .clamp(0, 1 << 20);
        ch.credits.fetch_add(n, Ordering::AcqRel);
        ch.more.notify_waiters();
    }
}

/// A request: runs the call as a task that answers, heartbeats and streams.
async fn open_channel(peer: &Arc<Peer>, prefix: Vec<Bytes>, event: Event, calls: &mut JoinSet<()>) {
    let out = Out {
        peer: peer.clone(),
        prefix,
        channel: event.message_id.clone(),
    };
    let Ok(permit) = peer.in_flight.clone().try_acquire_owned() else {
        let fault = Fault::named(
            "LimitExceeded",
            format!(
                "{} calls are already running on this connection",
                peer.shared.config.max_in_flight
            ),
        );
        return out.send(names::ERR, err_args(&fault)).await;
    };
    // A call starts only while its answer has somewhere to go: a client that
    // reads nothing gets no more calls run, each holding its answer.
    if !peer.outbox.wait_room().await {
        return;
    }
    let ch = Arc::new(Channel {
        credits: AtomicI64::new(1),
        more: Notify::new(),
        last_seen: Mutex::new(Instant::now()),
    });
    let key = event.message_id.clone();
    peer.channels().insert(key.clone(), ch.clone());
    let mut call: std::pin::Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(async move {
        let heartbeat = out.peer.config.heartbeat;
        tokio::select! {
            _ = run(&out, &ch, event) => {}
            _ = beat(&out, &ch, heartbeat) => debug!("zerorpc client went silent; call cancelled"),
        }
        out.peer.channels().remove(&key);
        drop(permit);
    });
    // A call that needs no waiting is answered here, before the next request is
    // read, so a flood of them is paced by the client's reading.
    let first = std::future::poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx))).await;
    if first.is_pending() {
        calls.spawn(call);
    }
}

/// Where a channel's events go.
struct Out {
    peer: Arc<Peer>,
    prefix: Vec<Bytes>,
    channel: Id,
}

impl Out {
    async fn send(&self, name: &str, args: Value) {
        let event = Event::on_channel(new_id(), self.channel.clone(), name, args);
        self.peer.outbox.send(message(&self.prefix, &event)).await;
    }
}

/// Heartbeats the channel; returns once the client has been silent too long.
async fn beat(out: &Out, ch: &Channel, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        if ch.silent_for() > every * 2 {
            return;
        }
        out.send(names::HEARTBEAT, Value::Array(vec![Value::Int(0)]))
            .await;
    }
}

async fn run(out: &Out, ch: &Channel, event: Event) {
    let peer = &out.peer;
    let params = match event.args {
        Value::Array(items) => items,
        Value::Nil => Vec::new(),
        other => vec![other],
    };
    let principal = match peer.authenticate(event.auth.as_deref()) {
        Ok(principal) => principal,
        Err(fault) => return finish(out, Err(fault)).await,
    };
    if let Some(answer) = builtin(&peer.shared.dispatcher, &peer.config, &event.name, &params) {
        return finish(out, answer).await;
    }
    let mut ctx = Context::new(PROTOCOL, None, peer.conn_id);
    ctx.principal = principal;
    let dispatcher = &peer.calls.dispatcher;
    let started = std::time::Instant::now();
    let reply = peer
        .shared_limited(dispatcher.call_streaming(&ctx, &event.name, params))
        .await;
    // A stream counts when it starts: its items can go on for as long as the
    // client keeps asking.
    let stats = peer.calls.metrics.method(&event.name);
    stats.record(PROTOCOL, reply.is_err(), started.elapsed());
    match reply {
        Ok(Reply::Value(v)) => finish(out, Ok(v)).await,
        Err(f) => finish(out, Err(f)).await,
        Ok(Reply::Stream(mut stream)) => {
            let heartbeat = peer.config.heartbeat;
            while let Some(item) = std::future::poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
                if !ch.spend(heartbeat).await {
                    return;
                }
                match item {
                    Ok(v) => out.send(names::STREAM, v).await,
                    Err(f) => return out.send(names::ERR, err_args(&f)).await,
                }
            }
            if ch.spend(heartbeat).await {
                out.send(names::STREAM_DONE, Value::Nil).await;
            }
        }
    }
}

impl Peer {
    /// Who a request's `auth` header key makes its caller: zerorpc has no
    /// connection-level security, so each request carries the secret.
    fn authenticate(&self, secret: Option<&str>) -> Result<Option<Arc<Principal>>, Fault> {
        let Some(auth) = &self.shared.config.auth else {
            return Ok(None);
        };
        let Some(secret) = secret else {
            return Err(Fault::not_authenticated());
        };
        let attempt = Attempt {
            peer: &self.name,
            protocol: PROTOCOL,
        };
        auth.check(None, secret, attempt).map(Some)
    }

    /// Bounds the start of a call by the call time limit.
    async fn shared_limited<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, Fault>>,
    ) -> Result<T, Fault> {
        match self.calls.timeout {
            None => call.await,
            Some(limit) => tokio::time::timeout(limit, call)
                .await
                .unwrap_or_else(|_| Err(crate::session::call_timed_out(limit))),
        }
    }
}

async fn finish(out: &Out, outcome: Result<Value, Fault>) {
    match outcome {
        Ok(v) => out.send(names::OK, Value::Array(vec![v])).await,
        Err(f) => out.send(names::ERR, err_args(&f)).await,
    }
}
