//! The zerorpc server: a ROUTER socket serving the dispatcher.
//!
//! Each request runs as a task. Its answer is `OK [result]` or `ERR [name,
//! message, traceback]`; a streaming method sends `STREAM item` events, each
//! spending a credit the client granted, then `STREAM_DONE`. While a call runs, the
//! server heartbeats its channel and cancels the call if the client falls silent.
//! Malformed events and events for unknown channels are dropped; they never affect
//! other clients.

use super::{err_args, message, new_id, payload};
use crate::server::{stopped, Shared};
use bytes::Bytes;
use rpcs_core::zerorpc::{self, names, Event, Id};
use rpcs_core::{Context, Fault, Map, Reply, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch, Notify};
use tracing::debug;
use zeromq::{RouterSocket, SocketRecv, SocketSend, ZmqMessage};

const PROTOCOL: &str = "zerorpc";

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

type Channels = Arc<Mutex<HashMap<(Bytes, Id), Arc<Channel>>>>;

/// What the server knows about itself, for the `_zerorpc_*` built-ins.
pub(crate) struct ZerorpcConfig {
    /// The service name `_zerorpc_name` answers.
    pub name: String,
    /// The heartbeat interval.
    pub heartbeat: Duration,
}

/// Serves `socket` until shutdown.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    socket: RouterSocket,
    config: ZerorpcConfig,
    mut stop: watch::Receiver<bool>,
) {
    let (mut send, mut recv) = socket.split();
    let (tx, mut rx) = mpsc::channel::<ZmqMessage>(1024);
    let writer = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            if let Err(e) = send.send(m).await {
                debug!(error = %e, "zerorpc send failed");
            }
        }
    });
    let config = Arc::new(config);
    let channels: Channels = Arc::new(Mutex::new(HashMap::new()));
    loop {
        let msg = tokio::select! {
            m = recv.recv() => m,
            _ = stopped(&mut stop) => break,
        };
        let msg = match msg {
            Ok(m) => m,
            Err(e) => {
                debug!(error = %e, "zerorpc receive failed");
                continue;
            }
        };
        let (Some(identity), Some(body)) = (msg.get(0).cloned(), payload(&msg).cloned()) else {
            continue;
        };
        // Frames before the payload (identity, delimiter) go back in front of replies.
        let prefix: Vec<Bytes> = msg.iter().take(msg.len() - 1).cloned().collect();
        let event = match zerorpc::decode(&body) {
            Ok(e) => e,
            Err(e) => {
                refuse(&tx, &prefix, &body, &e).await;
                continue;
            }
        };
        match &event.response_to {
            Some(channel) => on_channel(&channels, identity, channel, &event),
            None => open_channel(&shared, &config, &channels, &tx, identity, prefix, event),
        }
    }
    // Calls in flight finish (up to the grace period); their answers still go out.
    let grace = shared.config.shutdown_grace;
    let deadline = Instant::now() + grace;
    while !channels
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .is_empty()
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(tx);
    let _ = tokio::time::timeout(grace, writer).await;
}

/// Answers a request whose arguments cannot be decoded with `ERR` (its head is
/// readable); drops anything else that is malformed.
async fn refuse(
    tx: &mpsc::Sender<ZmqMessage>,
    prefix: &[Bytes],
    body: &[u8],
    error: &rpcs_core::msgpack::DecodeError,
) {
    match zerorpc::decode_head(body) {
        Some((channel, None, name)) => {
            let fault =
                Fault::invalid_params(format!("cannot read the arguments of {name}: {error}"));
            let event = Event::on_channel(new_id(), channel, names::ERR, err_args(&fault));
            let _ = tx.send(message(prefix, &event)).await;
        }
        _ => debug!(%error, "dropping a malformed zerorpc event"),
    }
}

/// An event on an open channel: heartbeats and credit grants.
fn on_channel(channels: &Channels, identity: Bytes, channel: &Id, event: &Event) {
    let found = channels
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&(identity, channel.clone()))
        .cloned();
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
fn open_channel(
    shared: &Arc<Shared>,
    config: &Arc<ZerorpcConfig>,
    channels: &Channels,
    tx: &mpsc::Sender<ZmqMessage>,
    identity: Bytes,
    prefix: Vec<Bytes>,
    event: Event,
) {
    let key = (identity, event.message_id.clone());
    let ch = Arc::new(Channel {
        credits: AtomicI64::new(1),
        more: Notify::new(),
        last_seen: Mutex::new(Instant::now()),
    });
    channels
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key.clone(), ch.clone());
    let (shared, config, channels, tx) =
        (shared.clone(), config.clone(), channels.clone(), tx.clone());
    tokio::spawn(async move {
        let out = Out {
            tx,
            prefix,
            channel: event.message_id.clone(),
        };
        let call = run(&shared, &config, &out, &ch, event);
        let heartbeat = beat(&out, &ch, config.heartbeat);
        tokio::select! {
            _ = call => {}
            _ = heartbeat => debug!("zerorpc client went silent; call cancelled"),
        }
        channels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key);
    });
}

/// Where a channel's events go.
struct Out {
    tx: mpsc::Sender<ZmqMessage>,
    prefix: Vec<Bytes>,
    channel: Id,
}

impl Out {
    async fn send(&self, name: &str, args: Value) {
        let event = Event::on_channel(new_id(), self.channel.clone(), name, args);
        let _ = self.tx.send(message(&self.prefix, &event)).await;
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

async fn run(shared: &Shared, config: &ZerorpcConfig, out: &Out, ch: &Channel, event: Event) {
    let params = match event.args {
        Value::Array(items) => items,
        Value::Nil => Vec::new(),
        other => vec![other],
    };
    if let Some(answer) = builtin(shared, config, &event.name, &params) {
        return finish(out, answer).await;
    }
    let ctx = Context::new(PROTOCOL, None, shared.connection_id());
    match shared
        .dispatcher
        .call_streaming(&ctx, &event.name, params)
        .await
    {
        Ok(Reply::Value(v)) => finish(out, Ok(v)).await,
        Err(f) => finish(out, Err(f)).await,
        Ok(Reply::Stream(mut stream)) => {
            while let Some(item) = std::future::poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
                if !ch.spend(config.heartbeat).await {
                    return;
                }
                match item {
                    Ok(v) => out.send(names::STREAM, v).await,
                    Err(f) => return out.send(names::ERR, err_args(&f)).await,
                }
            }
            if ch.spend(config.heartbeat).await {
                out.send(names::STREAM_DONE, Value::Nil).await;
            }
        }
    }
}

async fn finish(out: &Out, outcome: Result<Value, Fault>) {
    match outcome {
        Ok(v) => out.send(names::OK, Value::Array(vec![v])).await,
        Err(f) => out.send(names::ERR, err_args(&f)).await,
    }
}

/// The `_zerorpc_*` built-ins, answered from the method table.
fn builtin(
    shared: &Shared,
    config: &ZerorpcConfig,
    name: &str,
    params: &[Value],
) -> Option<Result<Value, Fault>> {
    let table = shared.dispatcher.table();
    let method_arg = || {
        let name = params.first().and_then(Value::as_str).unwrap_or("");
        table
            .get(name)
            .ok_or_else(|| Fault::named("NameError", format!("no method {name:?}")))
    };
    let args_of = |m: &rpcs_core::Method| -> Vec<Value> {
        m.params()
            .iter()
            .map(|p| {
                let mut a = Map::new();
                a.insert("name".into(), Value::String(p.name.clone()));
                Value::Struct(a)
            })
            .collect()
    };
    Some(match name {
        "_zerorpc_list" => Ok(Value::Array(
            table.method_names().map(Value::from).collect(),
        )),
        "_zerorpc_name" => Ok(Value::String(config.name.clone())),
        "_zerorpc_ping" => Ok(Value::Array(vec![
            "pong".into(),
            Value::String(config.name.clone()),
        ])),
        "_zerorpc_help" => method_arg().map(|m| {
            if m.doc().is_empty() {
                Value::Nil
            } else {
                Value::String(m.doc().to_owned())
            }
        }),
        "_zerorpc_args" => method_arg().map(|m| {
            Value::Array(
                m.params()
                    .iter()
                    .map(|p| Value::String(p.name.clone()))
                    .collect(),
            )
        }),
        "_zerorpc_inspect" => {
            let mut methods = Map::new();
            for m in table.methods() {
                let mut info = Map::new();
                info.insert("args".into(), Value::Array(args_of(m)));
                info.insert("doc".into(), Value::String(m.doc().to_owned()));
                methods.insert(m.name().to_owned(), Value::Struct(info));
            }
            let mut doc = Map::new();
            doc.insert("name".into(), Value::String(config.name.clone()));
            doc.insert("methods".into(), Value::Struct(methods));
            Ok(Value::Struct(doc))
        }
        _ => return None,
    })
}
