//! JSON-RPC over any transport that carries whole documents both ways: a
//! WebSocket (see [`super::ws`]) or a byte stream with one document per line
//! (see [`super::lines`]), on either side of a connection.
//!
//! Each document is a call, a notification, a batch, or an answer to a call
//! this side made. Calls run concurrently and are answered as they finish;
//! either side can call the other.
//!
//! Streaming: a client that calls `rpc.streaming(true)` gets the items of a
//! streaming method as they come, each a notification
//! `{"method":"rpc.item","params":{"id":CALL_ID,"item":ITEM}}`, and then the
//! call's response, whose result is the number of items sent (or an error
//! that ended the stream). Without it, as a client that knows nothing of this
//! expects, a streaming method answers one array of its items.

use super::idle::IdleTimer;
use super::{run_call, Call, Calls, CountedSink, FrameSink, Session, StreamLimits, Wire};
use crate::accept::stopped;
use futures_util::StreamExt;
use rpcs_core::jsonrpc::{self, Id, Message, Params};
use rpcs_core::{Context, Fault, Principal, Reply, Value};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::debug;

/// The call that turns streaming on (or off) for the connection.
pub(crate) const STREAMING_METHOD: &str = "rpc.streaming";

/// The notification that carries one item of a streamed call.
pub(crate) const ITEM_METHOD: &str = "rpc.item";

struct JsonWire;

impl Wire for JsonWire {
    fn request(&self, id: u32, method: &str, params: &[Value]) -> Vec<u8> {
        jsonrpc::encode_request(Some(&Id::from(id)), method, params)
    }
    fn notification(&self, method: &str, params: &[Value]) -> Vec<u8> {
        jsonrpc::encode_request(None, method, params)
    }
}

/// Where a session's documents come from.
pub(crate) trait Documents: Send + 'static {
    /// The next document; `None` once the peer has finished or the transport
    /// broke; `Some(Err(fault))` for one that could not be read but after
    /// which the transport goes on (it is answered as an error with a null id).
    fn next(&mut self) -> impl Future<Output = Option<Result<Vec<u8>, Fault>>> + Send;
    /// The session closes because the peer did not authenticate in time.
    fn auth_timed_out(&mut self);
}

/// Who a session serves, and how it names its protocol (in metrics and logs).
pub(crate) struct Peer {
    pub protocol: &'static str,
    pub addr: Option<SocketAddr>,
    pub conn_id: u64,
    /// Who the peer already authenticated as, if anyone (a WebSocket's upgrade
    /// header, stdio's trusted parent).
    pub principal: Option<Arc<Principal>>,
}

/// Starts a JSON-RPC session (either side) over `documents` and `sink`: a task
/// reads documents, answering calls with `calls` and routing answers to the
/// session's pending calls. Returns the session (to call the peer) and the
/// task, which ends with the transport.
pub(crate) fn start<K: FrameSink, D: Documents>(
    calls: Calls,
    sink: K,
    mut documents: D,
    limits: StreamLimits,
    peer: Peer,
    mut stop: watch::Receiver<bool>,
) -> (Arc<Session>, JoinHandle<()>) {
    let sink = CountedSink {
        inner: sink,
        metrics: calls.metrics.clone(),
        protocol: peer.protocol,
    };
    let (session, writer) = Session::start(sink, Box::new(JsonWire), &limits);
    if let Some(principal) = peer.principal {
        session.set_principal(principal);
    }
    let handle = session.clone();
    let task = tokio::spawn(async move {
        let reader = Reader {
            calls,
            session: session.clone(),
            limits,
            protocol: peer.protocol,
            peer: peer.addr,
            conn_id: peer.conn_id,
            streaming: AtomicBool::new(false),
        };
        let mut idle = reader.limits.idle_timeout.map(IdleTimer::new);
        let opened = tokio::time::Instant::now();
        loop {
            let doc = tokio::select! {
                d = next_document(&mut documents, &reader, &mut idle) => d,
                _ = stopped(&mut stop) => break,
                () = session.await_auth(reader.limits.auth_timeout, opened) => {
                    debug!(peer = ?reader.peer, "no authentication in time; closing");
                    documents.auth_timed_out();
                    break;
                }
            };
            match doc {
                None => break,
                Some(Ok(bytes)) => {
                    reader
                        .calls
                        .metrics
                        .record_bytes(reader.protocol, bytes.len(), 0);
                    reader.document(&bytes).await;
                }
                Some(Err(fault)) => {
                    let answer = jsonrpc::encode_response(&Id::null(), &Err(fault), false);
                    reader.session.send(answer).await;
                }
            }
        }
        drop(reader);
        session.finish().await;
        drop(session);
        let _ = writer.await;
    });
    (handle, task)
}

/// The next document; `None` also when the connection has been idle (silent,
/// nothing in flight, nothing holding it) for the idle timeout.
async fn next_document<D: Documents>(
    documents: &mut D,
    reader: &Reader,
    idle: &mut Option<IdleTimer>,
) -> Option<Result<Vec<u8>, Fault>> {
    let Some(idle) = idle else {
        return documents.next().await;
    };
    loop {
        tokio::select! {
            d = documents.next() => {
                idle.touch();
                return d;
            }
            // The reader and this session's own reference hold it.
            () = idle.quiet() => {
                if reader.session.is_idle(2) {
                    debug!(peer = ?reader.peer, "idle connection; closing");
                    return None;
                }
                idle.touch();
            }
        }
    }
}

/// What reading documents needs.
struct Reader {
    calls: Calls,
    session: Arc<Session>,
    limits: StreamLimits,
    protocol: &'static str,
    peer: Option<SocketAddr>,
    conn_id: u64,
    /// The client asked for streamed items (`rpc.streaming`).
    streaming: AtomicBool,
}

impl Reader {
    fn context(&self) -> Context {
        self.session.context(self.protocol, self.peer, self.conn_id)
    }

    async fn document(&self, bytes: &[u8]) {
        match jsonrpc::decode(bytes) {
            jsonrpc::Incoming::Single(Message::Response { id, outcome }) => {
                self.answer(&id, outcome);
            }
            jsonrpc::Incoming::Single(Message::Call(call)) => self.call(call).await,
            jsonrpc::Incoming::Single(other) => {
                let ctx = self.context();
                if let Some(answer) = answer_message(&self.calls, &ctx, other).await {
                    self.session.send(answer).await;
                }
            }
            jsonrpc::Incoming::Batch(items) => self.batch(items).await,
        }
    }

    fn answer(&self, id: &Id, outcome: Result<Value, Fault>) {
        let answered = id
            .as_u64()
            .and_then(|i| u32::try_from(i).ok())
            .is_some_and(|i| self.session.answer(i, outcome));
        if !answered {
            debug!(peer = ?self.peer, %id, "answer to no pending call");
        }
    }

    async fn call(&self, call: jsonrpc::Call) {
        if call.method == STREAMING_METHOD {
            return self.set_streaming(call).await;
        }
        let ctx = self.context();
        if let Some(id) = &call.id {
            if self.streaming.load(Ordering::Relaxed) && self.calls.streams(&ctx, &call.method) {
                return self.stream(id.clone(), call, ctx).await;
            }
        }
        let (id, v1) = (call.id, call.v1);
        let run = match call.params {
            Params::Positional(p) => Call::Positional(call.method, p),
            Params::Named(n) => Call::Named(call.method, n),
        };
        let answer = move |outcome: Result<Value, Fault>, out: &mut Vec<u8>| {
            if let Some(id) = id {
                jsonrpc::write_response(out, &id, &outcome, v1);
            }
        };
        let mut out = Vec::new();
        run_call(&self.session, &self.calls, ctx, run, &mut out, answer).await;
        if !out.is_empty() {
            self.session.send(out).await;
        }
    }

    /// `rpc.streaming(on = true)`: whether this connection's streaming calls
    /// send their items as they come. Answers the setting.
    async fn set_streaming(&self, call: jsonrpc::Call) {
        let on = match &call.params {
            Params::Positional(p) => p.first().cloned(),
            Params::Named(n) => n.get("on").cloned(),
        };
        let outcome = match on {
            None | Some(Value::Nil) => Ok(true),
            Some(Value::Bool(on)) => Ok(on),
            Some(_) => Err(Fault::invalid_params(
                "rpc.streaming takes one boolean: whether to stream items",
            )),
        };
        if let Ok(on) = outcome {
            self.streaming.store(on, Ordering::Relaxed);
        }
        if let Some(id) = call.id {
            let answer = outcome.map(Value::Bool);
            let frame = jsonrpc::encode_response(&id, &answer, call.v1);
            self.session.send(frame).await;
        }
    }

    /// A streaming call, as a task of its own: its items as `rpc.item`
    /// notifications, then the response (the number of items). A client that
    /// goes away ends the stream (and whatever produces it).
    async fn stream(&self, id: Id, call: jsonrpc::Call, ctx: Context) {
        let run = match call.params {
            Params::Positional(p) => Call::Positional(call.method, p),
            Params::Named(n) => Call::Named(call.method, n),
        };
        // As for any call that waits: started only while its answers have
        // somewhere to go and a slot is free.
        if !self.session.outbox.wait_room().await {
            return;
        }
        let Some(permit) = self.session.slot().await else {
            return;
        };
        let (calls, session, v1) = (self.calls.clone(), self.session.clone(), call.v1);
        tokio::spawn(async move {
            let outcome = match calls.run_streaming(&ctx, run).await {
                Ok(Reply::Value(v)) => Ok(v),
                Err(fault) => Err(fault),
                Ok(Reply::Stream(mut stream)) => {
                    let mut sent = 0i64;
                    loop {
                        match stream.next().await {
                            None => break Ok(Value::Int(sent)),
                            Some(Err(fault)) => break Err(fault),
                            Some(Ok(item)) => {
                                if !session.send(item_notification(&id, &item)).await {
                                    return;
                                }
                                sent += 1;
                            }
                        }
                    }
                }
            };
            session
                .send(jsonrpc::encode_response(&id, &outcome, v1))
                .await;
            drop(permit);
        });
    }

    /// A batch runs as a task of its own: its calls may call back into the
    /// client, whose answers this reader must stay free to read.
    async fn batch(&self, items: Vec<Message>) {
        let Some(permit) = self.session.slot().await else {
            return;
        };
        let ctx = self.context();
        let (calls, session) = (self.calls.clone(), self.session.clone());
        let limit = self.limits.max_batch_answer;
        tokio::spawn(async move {
            let mut answers = Vec::new();
            let mut messages = Vec::with_capacity(items.len());
            for m in items {
                match m {
                    Message::Response { id, outcome } => {
                        if let Some(i) = id.as_u64().and_then(|i| u32::try_from(i).ok()) {
                            session.answer(i, outcome);
                        }
                    }
                    other => messages.push(other),
                }
            }
            if !messages.is_empty() {
                answers = answer_batch(&calls, &ctx, messages, limit).await;
            }
            if let Some(frame) = jsonrpc::encode_batch(answers) {
                session.send(frame).await;
            }
            drop(permit);
        });
    }
}

/// The `rpc.item` notification carrying one item of the call `id`.
fn item_notification(id: &Id, item: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"method\":\"");
    out.extend_from_slice(ITEM_METHOD.as_bytes());
    out.extend_from_slice(b"\",\"params\":{\"id\":");
    out.extend_from_slice(id.as_json().as_bytes());
    out.extend_from_slice(b",\"item\":");
    // Writing JSON into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut out, &rpcs_core::json::to_json(item));
    out.extend_from_slice(b"}}");
    out
}

/// Runs one message; the encoded response, unless it was a notification.
pub(crate) async fn answer_message(calls: &Calls, ctx: &Context, m: Message) -> Option<Vec<u8>> {
    match m {
        Message::Call(call) => {
            let run = match call.params {
                Params::Positional(p) => Call::Positional(call.method, p),
                Params::Named(n) => Call::Named(call.method, n),
            };
            let outcome = calls.run(ctx, run).await;
            let id = call.id?;
            Some(jsonrpc::encode_response(&id, &outcome, call.v1))
        }
        Message::Invalid { id, fault } => Some(jsonrpc::encode_response(&id, &Err(fault), false)),
        Message::RefusedNotification { method, fault } => {
            debug!(peer = ?ctx.peer, %method, error = %fault, "notification refused");
            None
        }
        Message::Response { id, .. } => Some(jsonrpc::encode_response(
            &id,
            &Err(Fault::invalid_request("a response is not a call")),
            false,
        )),
    }
}

/// Answers a batch's messages in order. Once the answers reach `limit` bytes in
/// all, the calls left are not run: each gets a limit error instead, so one
/// batch holds at most `limit` bytes plus one answer. (A call that ran is always
/// answered in full: cutting its answer could lose what it took, a popped item.)
pub(crate) async fn answer_batch(
    calls: &Calls,
    ctx: &Context,
    items: Vec<Message>,
    limit: usize,
) -> Vec<Vec<u8>> {
    let mut answers = Vec::with_capacity(items.len());
    let mut total = 0usize;
    for m in items {
        if total >= limit {
            if let Some(id) = message_id(&m) {
                let fault = Fault::new(
                    Fault::LIMIT_EXCEEDED,
                    format!("not run: the batch's answers exceed the limit of {limit} bytes"),
                );
                answers.push(jsonrpc::encode_response(&id, &Err(fault), false));
            }
            continue;
        }
        if let Some(answer) = answer_message(calls, ctx, m).await {
            total += answer.len() + 1;
            answers.push(answer);
        }
    }
    answers
}

/// The id a message would be answered with; `None` for a notification.
fn message_id(m: &Message) -> Option<Id> {
    match m {
        Message::Call(c) => c.id.clone(),
        Message::Invalid { id, .. } | Message::Response { id, .. } => Some(id.clone()),
        Message::RefusedNotification { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_names_its_call() {
        let frame = item_notification(&Id::from(7u32), &Value::from("tick 1"));
        let json: serde_json::Value = serde_json::from_slice(&frame).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"jsonrpc": "2.0", "method": "rpc.item",
                               "params": {"id": 7, "item": "tick 1"}})
        );
        let Message::Call(call) = (match jsonrpc::decode(&frame) {
            jsonrpc::Incoming::Single(m) => m,
            other => panic!("{other:?}"),
        }) else {
            panic!("not a notification");
        };
        assert_eq!((call.id, call.method.as_str()), (None, ITEM_METHOD));
    }
}
