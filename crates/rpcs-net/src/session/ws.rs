//! JSON-RPC over a WebSocket, on either side of a connection.
//!
//! Each text (or binary) message carries one JSON-RPC document: a call, a
//! notification, a batch, or an answer to a call this side made. Calls run
//! concurrently and are answered as they finish; either side can call the other.
//! A protocol error closes the socket with the close code RFC 6455 gives it:
//! 1007 for text that is not UTF-8, 1009 for a message over the limit, 1002 for
//! a framing error.
//!
//! Streaming: a client that calls `rpc.streaming(true)` gets the items of a
//! streaming method as they come, each a notification
//! `{"method":"rpc.item","params":{"id":CALL_ID,"item":ITEM}}`, and then the
//! call's response, whose result is the number of items sent (or an error
//! that ended the stream). Without it, as a client that knows nothing of this
//! expects, a streaming method answers one array of its items.

use super::idle::IdleTimer;
use super::{run_call, Call, Calls, FrameSink, Session, StreamLimits, Wire};
use crate::accept::stopped;
use futures_util::{SinkExt, StreamExt};
use rpcs_core::jsonrpc::{self, Id, Message, Params};
use rpcs_core::{Context, Fault, Principal, Reply, Value};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::WebSocketStream;
use tracing::debug;

pub(crate) const PROTOCOL: &str = "jsonrpc-ws";

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

/// Why the reader closes the socket, for the close frame the writer sends last.
type CloseReason = Arc<Mutex<Option<CloseFrame<'static>>>>;

/// The largest WebSocket frame the server writes; longer messages are fragmented.
const FRAGMENT: usize = 256 * 1024;

/// The most bytes a WebSocket's own write buffer may hold: a few fragments.
/// Pongs beyond it are not buffered (tungstenite keeps the latest only, as RFC
/// 6455 allows), so a client that pings and never reads costs no more.
pub(crate) const MAX_WRITE_BUFFER: usize = 4 * FRAGMENT;

/// The write half of a WebSocket: each frame is one text message, and the close
/// frame says why the connection ends.
struct WsSink<S> {
    sink: futures_util::stream::SplitSink<WebSocketStream<S>, WsMessage>,
    close: CloseReason,
}

impl<S> WsSink<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    /// Writes one message or fragment after flushing what is buffered (pongs the
    /// reader queued), so it always has room in the bounded write buffer.
    async fn put(&mut self, message: WsMessage) -> std::io::Result<()> {
        self.sink.flush().await.map_err(std::io::Error::other)?;
        self.sink.feed(message).await.map_err(std::io::Error::other)
    }
}

impl<S> FrameSink for WsSink<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    async fn write_batch(&mut self, frames: Vec<Vec<u8>>) -> std::io::Result<()> {
        for frame in frames {
            let text = String::from_utf8(frame).map_err(std::io::Error::other)?;
            if text.len() <= FRAGMENT {
                self.put(text.into()).await?;
                continue;
            }
            // A big message goes out in fragments, so the socket's write buffer
            // (and with it what a ping flood can make it hold) stays small.
            let bytes = text.into_bytes();
            let mut chunks = bytes.chunks(FRAGMENT).peekable();
            let mut opcode = OpCode::Data(Data::Text);
            while let Some(chunk) = chunks.next() {
                let last = chunks.peek().is_none();
                let frame = Frame::message(chunk.to_vec(), opcode, last);
                self.put(WsMessage::Frame(frame)).await?;
                opcode = OpCode::Data(Data::Continue);
            }
        }
        self.sink.flush().await.map_err(std::io::Error::other)
    }
    async fn close(&mut self) {
        let reason = self.close.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(frame) = reason {
            let _ = self.sink.send(WsMessage::Close(Some(frame))).await;
        }
        let _ = self.sink.close().await;
    }
}

/// The close frame answering a read error, when the protocol has a code for it.
fn close_frame(error: &WsError) -> Option<CloseFrame<'static>> {
    let (code, reason) = match error {
        WsError::Utf8 => (CloseCode::Invalid, "text is not valid UTF-8"),
        WsError::Capacity(CapacityError::MessageTooLong { .. }) => {
            (CloseCode::Size, "message too big")
        }
        WsError::Capacity(_) => (CloseCode::Size, "frame too big"),
        WsError::Protocol(_) => (CloseCode::Protocol, "protocol error"),
        _ => return None,
    };
    Some(CloseFrame {
        code,
        reason: reason.into(),
    })
}

/// Starts a WebSocket session (either side): a task reads documents, answering
/// calls with `calls` and routing answers to the session's pending calls.
/// Returns the session (to call the peer) and the task, which ends with the socket.
/// `principal` is who the peer already authenticated as (by the upgrade's header).
pub(crate) fn start<S>(
    calls: Calls,
    ws: WebSocketStream<S>,
    limits: StreamLimits,
    (peer, conn_id): (Option<SocketAddr>, u64),
    principal: Option<Arc<Principal>>,
    mut stop: watch::Receiver<bool>,
) -> (Arc<Session>, JoinHandle<()>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sink, mut stream) = ws.split();
    let close: CloseReason = Arc::default();
    let sink = WsSink {
        sink,
        close: close.clone(),
    };
    let (session, writer) = Session::start(sink, Box::new(JsonWire), &limits);
    if let Some(principal) = principal {
        session.set_principal(principal);
    }
    let handle = session.clone();
    let task = tokio::spawn(async move {
        let reader = Reader {
            calls,
            session: session.clone(),
            limits,
            peer,
            conn_id,
            streaming: AtomicBool::new(false),
        };
        let mut idle = reader.limits.idle_timeout.map(IdleTimer::new);
        let opened = tokio::time::Instant::now();
        loop {
            let msg = tokio::select! {
                m = next_message(&mut stream, &reader, &mut idle) => m,
                _ = stopped(&mut stop) => break,
                () = session.await_auth(reader.limits.auth_timeout, opened) => {
                    debug!(?peer, "no authentication in time; closing");
                    *close.lock().unwrap_or_else(|p| p.into_inner()) = Some(CloseFrame {
                        code: CloseCode::Policy,
                        reason: "authentication required".into(),
                    });
                    break;
                }
            };
            let bytes = match msg {
                Some(Ok(WsMessage::Text(t))) => t.as_bytes().to_vec(),
                Some(Ok(WsMessage::Binary(b))) => b.to_vec(),
                Some(Ok(WsMessage::Close(_))) | None => break,
                Some(Ok(_)) => continue,
                Some(Err(e)) => {
                    debug!(?peer, error = %e, "WebSocket error; closing");
                    *close.lock().unwrap_or_else(|p| p.into_inner()) = close_frame(&e);
                    break;
                }
            };
            reader.document(&bytes).await;
        }
        drop(reader);
        session.finish().await;
        drop(session);
        let _ = writer.await;
    });
    (handle, task)
}

/// The next message; `None` also when the connection has been idle (silent,
/// nothing in flight, nothing holding it) for the idle timeout.
async fn next_message<S>(
    stream: &mut futures_util::stream::SplitStream<WebSocketStream<S>>,
    reader: &Reader,
    idle: &mut Option<IdleTimer>,
) -> Option<Result<WsMessage, WsError>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Some(idle) = idle else {
        return stream.next().await;
    };
    loop {
        tokio::select! {
            m = stream.next() => {
                idle.touch();
                return m;
            }
            // The reader and this session's own reference hold it.
            () = idle.quiet() => {
                if reader.session.is_idle(2) {
                    debug!(peer = ?reader.peer, "idle WebSocket; closing");
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
    peer: Option<SocketAddr>,
    conn_id: u64,
    /// The client asked for streamed items (`rpc.streaming`).
    streaming: AtomicBool,
}

impl Reader {
    fn context(&self) -> Context {
        self.session.context(PROTOCOL, self.peer, self.conn_id)
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
