//! JSON-RPC over WebSocket, on the HTTP port by upgrade.
//!
//! Each text (or binary) message carries one JSON-RPC document: a call, a
//! notification, a batch, or an answer to a call the server made. Calls run
//! concurrently and are answered as they finish; handlers can call methods the
//! client offers, and send it notifications (subscriptions).

use crate::http::answer_message;
use crate::server::{stopped, Shared};
use crate::session::{run_call, Call, FrameSink, Session, Wire};
use futures_util::{SinkExt, StreamExt};
use http::header::{
    HeaderValue, CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION,
    UPGRADE,
};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::TokioIo;
use rpcs_core::jsonrpc::{self, Message, Params};
use rpcs_core::{Dispatcher, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::WebSocketStream;
use tracing::debug;

const PROTOCOL: &str = "jsonrpc-ws";

struct JsonWire;

impl Wire for JsonWire {
    fn request(&self, id: u32, method: &str, params: &[Value]) -> Vec<u8> {
        jsonrpc::encode_request(Some(&id.into()), method, params)
    }
    fn notification(&self, method: &str, params: &[Value]) -> Vec<u8> {
        jsonrpc::encode_request(None, method, params)
    }
}

/// The write half of a WebSocket: each frame is one text message.
struct WsSink<S>(futures_util::stream::SplitSink<WebSocketStream<S>, WsMessage>);

impl<S> FrameSink for WsSink<S>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    async fn write_batch(&mut self, frames: Vec<Vec<u8>>) -> std::io::Result<()> {
        for frame in frames {
            let text = String::from_utf8(frame).map_err(std::io::Error::other)?;
            self.0
                .feed(text.into())
                .await
                .map_err(std::io::Error::other)?;
        }
        self.0.flush().await.map_err(std::io::Error::other)
    }
    async fn close(&mut self) {
        let _ = self.0.close().await;
    }
}

/// Whether the request asks to upgrade to a WebSocket.
pub(crate) fn is_upgrade(req: &Request<Incoming>) -> bool {
    let has = |name, token: &str| {
        req.headers().get_all(name).iter().any(|v| {
            v.to_str()
                .map(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
                .unwrap_or(false)
        })
    };
    has(CONNECTION, "upgrade") && has(UPGRADE, "websocket")
}

/// Answers the upgrade request and starts the session once the connection switched.
pub(crate) fn upgrade(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    peer: SocketAddr,
    conn_id: u64,
    stop: watch::Receiver<bool>,
) -> Response<Full<Bytes>> {
    let version_ok = req
        .headers()
        .get(SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v.as_bytes() == b"13");
    let Some(key) = req.headers().get(SEC_WEBSOCKET_KEY).cloned() else {
        return status(StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key");
    };
    if !version_ok {
        let mut resp = status(
            StatusCode::UPGRADE_REQUIRED,
            "WebSocket version 13 required",
        );
        resp.headers_mut()
            .insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        return resp;
    }
    let accept = derive_accept_key(key.as_bytes());
    tokio::spawn(async move {
        match hyper::upgrade::on(req).await {
            Ok(upgraded) => {
                let limit = shared.config.max_request_bytes;
                let config = WebSocketConfig {
                    max_message_size: Some(limit),
                    max_frame_size: Some(limit),
                    ..WebSocketConfig::default()
                };
                let ws = WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    Role::Server,
                    Some(config),
                )
                .await;
                let max = shared.config.max_in_flight;
                let (_, task) = start(
                    shared.dispatcher.clone(),
                    ws,
                    Some(peer),
                    conn_id,
                    max,
                    stop,
                );
                let _ = task.await;
            }
            Err(e) => debug!(%peer, error = %e, "WebSocket upgrade failed"),
        }
    });
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = resp.headers_mut();
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        headers.insert(SEC_WEBSOCKET_ACCEPT, v);
    }
    resp
}

fn status(code: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(format!("{text}\n"))));
    *resp.status_mut() = code;
    resp
}

/// Starts a WebSocket session (either side): a task reads documents, answering
/// calls from `dispatcher` and routing answers to the session's pending calls.
/// Returns the session (to call the peer) and the task, which ends with the socket.
pub(crate) fn start<S>(
    dispatcher: Arc<Dispatcher>,
    ws: WebSocketStream<S>,
    peer: Option<SocketAddr>,
    conn_id: u64,
    max_in_flight: usize,
    mut stop: watch::Receiver<bool>,
) -> (Arc<Session>, JoinHandle<()>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sink, mut stream) = ws.split();
    let (session, writer) = Session::start(WsSink(sink), Box::new(JsonWire), max_in_flight);
    let handle = session.clone();
    let task = tokio::spawn(async move {
        loop {
            let msg = tokio::select! {
                m = stream.next() => m,
                _ = stopped(&mut stop) => break,
            };
            let bytes = match msg {
                Some(Ok(WsMessage::Text(t))) => t.as_bytes().to_vec(),
                Some(Ok(WsMessage::Binary(b))) => b.to_vec(),
                Some(Ok(WsMessage::Close(_))) | None => break,
                Some(Ok(_)) => continue,
                Some(Err(e)) => {
                    debug!(?peer, error = %e, "WebSocket error; closing");
                    break;
                }
            };
            handle_document(&dispatcher, &session, peer, conn_id, &bytes).await;
        }
        session.finish(max_in_flight).await;
        drop(session);
        let _ = writer.await;
    });
    (handle, task)
}

async fn handle_document(
    dispatcher: &Arc<Dispatcher>,
    session: &Arc<Session>,
    peer: Option<SocketAddr>,
    conn_id: u64,
    bytes: &[u8],
) {
    match jsonrpc::decode(bytes) {
        jsonrpc::Incoming::Single(Message::Response { id, outcome }) => {
            let answered = id
                .as_u64()
                .and_then(|i| u32::try_from(i).ok())
                .is_some_and(|i| session.answer(i, outcome));
            if !answered {
                debug!(?peer, %id, "answer to no pending call");
            }
        }
        jsonrpc::Incoming::Single(Message::Call(call)) => {
            let ctx = session.context(PROTOCOL, peer, conn_id);
            let (id, v1) = (call.id, call.v1);
            let run = match call.params {
                Params::Positional(p) => Call::Positional(call.method, p),
                Params::Named(n) => Call::Named(call.method, n),
            };
            let mut out = Vec::new();
            run_call(
                session,
                dispatcher.clone(),
                ctx,
                run,
                &mut out,
                move |outcome, out| {
                    if let Some(id) = id {
                        out.extend(jsonrpc::encode_response(&id, &outcome, v1));
                    }
                },
            )
            .await;
            if !out.is_empty() {
                session.send(out).await;
            }
        }
        jsonrpc::Incoming::Single(invalid @ Message::Invalid { .. }) => {
            let ctx = session.context(PROTOCOL, peer, conn_id);
            if let Some(answer) = answer_message(dispatcher, &ctx, invalid).await {
                session.send(answer).await;
            }
        }
        jsonrpc::Incoming::Batch(items) => {
            // A batch runs as a task of its own: its calls may call back into the
            // client, whose answers this reader must stay free to read.
            let Some(permit) = session.slot().await else {
                return;
            };
            let ctx = session.context(PROTOCOL, peer, conn_id);
            let (dispatcher, session) = (dispatcher.clone(), session.clone());
            tokio::spawn(async move {
                let mut answers = Vec::new();
                for m in items {
                    if let Message::Response { id, outcome } = m {
                        if let Some(i) = id.as_u64().and_then(|i| u32::try_from(i).ok()) {
                            session.answer(i, outcome);
                        }
                        continue;
                    }
                    if let Some(answer) = answer_message(&dispatcher, &ctx, m).await {
                        answers.push(answer);
                    }
                }
                if let Some(frame) = jsonrpc::encode_batch(answers) {
                    session.send(frame).await;
                }
                drop(permit);
            });
        }
    }
}
