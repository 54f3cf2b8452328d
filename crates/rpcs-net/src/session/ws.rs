//! JSON-RPC over a WebSocket, on either side of a connection: each text (or
//! binary) message carries one document (the session is [`super::json`]).
//! A protocol error closes the socket with the close code RFC 6455 gives it:
//! 1007 for text that is not UTF-8, 1009 for a message over the limit, 1002 for
//! a framing error.

use super::json::{self, Documents, Peer};
use super::{Calls, FrameSink, Session, StreamLimits};
use futures_util::{SinkExt, StreamExt};
use rpcs_core::{Fault, Principal};
use std::net::SocketAddr;
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

/// The read half of a WebSocket as documents.
struct WsDocuments<S> {
    stream: futures_util::stream::SplitStream<WebSocketStream<S>>,
    close: CloseReason,
}

impl<S> Documents for WsDocuments<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    async fn next(&mut self) -> Option<Result<Vec<u8>, Fault>> {
        loop {
            return match self.stream.next().await? {
                Ok(WsMessage::Text(t)) => Some(Ok(t.as_bytes().to_vec())),
                Ok(WsMessage::Binary(b)) => Some(Ok(b.to_vec())),
                Ok(WsMessage::Close(_)) => None,
                // Pings are answered by tungstenite itself.
                Ok(_) => continue,
                Err(e) => {
                    debug!(error = %e, "WebSocket error; closing");
                    *self.close.lock().unwrap_or_else(|p| p.into_inner()) = close_frame(&e);
                    None
                }
            };
        }
    }

    fn auth_timed_out(&mut self) {
        *self.close.lock().unwrap_or_else(|p| p.into_inner()) = Some(CloseFrame {
            code: CloseCode::Policy,
            reason: "authentication required".into(),
        });
    }
}

/// Starts a WebSocket session (either side); see [`json::start`].
/// `principal` is who the peer already authenticated as (by the upgrade's header).
pub(crate) fn start<S>(
    calls: Calls,
    ws: WebSocketStream<S>,
    limits: StreamLimits,
    (addr, conn_id): (Option<SocketAddr>, u64),
    principal: Option<Arc<Principal>>,
    stop: watch::Receiver<bool>,
) -> (Arc<Session>, JoinHandle<()>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sink, stream) = ws.split();
    let close: CloseReason = Arc::default();
    let sink = WsSink {
        sink,
        close: close.clone(),
    };
    let documents = WsDocuments { stream, close };
    let peer = Peer {
        protocol: PROTOCOL,
        addr,
        conn_id,
        principal,
    };
    json::start(calls, sink, documents, limits, peer, stop)
}
