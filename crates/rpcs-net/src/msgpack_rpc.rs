//! MessagePack-RPC over TCP, Unix sockets and stdio.
//!
//! Requests are pipelined: each is answered as soon as it finishes, in any order,
//! and calls that must wait run concurrently (up to the per-connection limit), so
//! a slow call does not hold back the ones behind it. Handlers can call methods
//! the client registered on its side of the connection. A frame that is not valid
//! MessagePack ends that connection only (the stream cannot be resynchronised).

use crate::server::{accept_loop, stopped, Shared};
use crate::session::{run_call, ByteSink, Call, Session, Wire};
use bytes::BytesMut;
use rpcs_core::msgpack::{self, FrameLen};
use rpcs_core::msgpack_rpc::{self, RpcMessage};
use rpcs_core::{Dispatcher, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

const PROTOCOL: &str = "msgpack-rpc";

struct MsgpackWire;

impl Wire for MsgpackWire {
    fn request(&self, id: u32, method: &str, params: &[Value]) -> Vec<u8> {
        let mut out = Vec::new();
        msgpack_rpc::write_request(&mut out, id, method, params);
        out
    }
    fn notification(&self, method: &str, params: &[Value]) -> Vec<u8> {
        let mut out = Vec::new();
        msgpack_rpc::write_notification(&mut out, method, params);
        out
    }
}

/// Accepts TCP connections until shutdown, then drains them.
pub(crate) async fn serve_tcp(
    shared: Arc<Shared>,
    listener: TcpListener,
    stop: watch::Receiver<bool>,
) {
    let serve = |(stream, peer): (TcpStream, SocketAddr), permit, stop| {
        let shared = shared.clone();
        async move {
            let _ = stream.set_nodelay(true);
            let (reader, writer) = stream.into_split();
            serve_connection(shared, reader, writer, Some(peer), stop).await;
            drop(permit);
        }
    };
    accept_loop(&shared, stop, || listener.accept(), serve).await;
}

/// Accepts Unix-socket connections until shutdown, then drains them.
pub(crate) async fn serve_unix(
    shared: Arc<Shared>,
    listener: UnixListener,
    stop: watch::Receiver<bool>,
) {
    let serve = |(stream, _): (UnixStream, _), permit, stop| {
        let shared = shared.clone();
        async move {
            let (reader, writer) = stream.into_split();
            serve_connection(shared, reader, writer, None, stop).await;
            drop(permit);
        }
    };
    accept_loop(&shared, stop, || listener.accept(), serve).await;
}

/// Bounds on one stream connection.
#[derive(Debug, Clone)]
pub(crate) struct StreamLimits {
    /// The largest frame.
    pub max_frame: usize,
    /// Time allowed for the rest of a frame once it started.
    pub frame_timeout: std::time::Duration,
    /// The deepest nesting of values.
    pub max_depth: usize,
    /// Calls running at once.
    pub max_in_flight: usize,
}

impl StreamLimits {
    pub(crate) fn of(config: &crate::ServerConfig) -> StreamLimits {
        StreamLimits {
            max_frame: config.max_request_bytes,
            frame_timeout: config.body_timeout,
            max_depth: config.xml_limits.max_depth,
            max_in_flight: config.max_in_flight,
        }
    }
}

/// Serves one server-side connection until it ends, then lets its calls finish.
pub(crate) async fn serve_connection<R, W>(
    shared: Arc<Shared>,
    reader: R,
    writer: W,
    peer: Option<SocketAddr>,
    stop: watch::Receiver<bool>,
) where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let limits = StreamLimits::of(&shared.config);
    let conn_id = shared.connection_id();
    let (_, done) = start(
        shared.dispatcher.clone(),
        reader,
        writer,
        limits,
        peer,
        conn_id,
        stop,
    );
    let _ = done.await;
}

/// Starts a connection (either side): a task reads messages, answering requests
/// from `dispatcher` and routing answers to the session's pending calls. Returns the
/// session (to call the peer) and the task, which ends when the connection does.
pub(crate) fn start<R, W>(
    dispatcher: Arc<Dispatcher>,
    mut reader: R,
    writer: W,
    limits: StreamLimits,
    peer: Option<SocketAddr>,
    conn_id: u64,
    mut stop: watch::Receiver<bool>,
) -> (Arc<Session>, JoinHandle<()>)
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (session, writer_task) = Session::start(
        ByteSink(writer),
        Box::new(MsgpackWire),
        limits.max_in_flight,
    );
    let handle = session.clone();
    let task = tokio::spawn(async move {
        let mut buf = BytesMut::with_capacity(64 * 1024);
        let mut need = 1usize;
        loop {
            // Answer every complete message in the buffer; batch the inline answers.
            let mut out = Vec::new();
            let mut closing = false;
            while buf.len() >= need {
                match msgpack::frame_len(&buf, limits.max_depth) {
                    Ok(FrameLen::NeedAtLeast(n)) if n > limits.max_frame => {
                        warn!(
                            ?peer,
                            size = n,
                            "MessagePack-RPC frame over the size limit; closing"
                        );
                        closing = true;
                        break;
                    }
                    Ok(FrameLen::NeedAtLeast(n)) => need = n,
                    Ok(FrameLen::Complete(n)) if n > limits.max_frame => {
                        warn!(
                            ?peer,
                            size = n,
                            "MessagePack-RPC frame over the size limit; closing"
                        );
                        closing = true;
                        break;
                    }
                    Ok(FrameLen::Complete(n)) => {
                        let frame = buf.split_to(n);
                        need = 1;
                        // The frame's structure is sound, so the stream stays in step
                        // even when its content cannot be represented.
                        match msgpack::decode(&frame, limits.max_depth) {
                            Ok(value) => {
                                handle_message(
                                    &dispatcher,
                                    &session,
                                    peer,
                                    conn_id,
                                    value,
                                    &mut out,
                                )
                                .await
                            }
                            Err(e) => refuse(&frame, e, &mut out),
                        }
                    }
                    Err(e) => {
                        debug!(?peer, error = %e, "malformed MessagePack-RPC frame; closing");
                        closing = true;
                        break;
                    }
                }
            }
            // Answers to the good messages before a bad one still go out.
            if !out.is_empty() && !session.send(out).await {
                break;
            }
            if closing {
                break;
            }
            buf.reserve(need.saturating_sub(buf.len()).clamp(8 * 1024, 1 << 20));
            let read = if buf.is_empty() {
                tokio::select! {
                    r = reader.read_buf(&mut buf) => r,
                    _ = stopped(&mut stop) => break,
                }
            } else {
                // Inside a frame: the rest must come within the frame timeout.
                let timed = tokio::time::timeout(limits.frame_timeout, reader.read_buf(&mut buf));
                tokio::select! {
                    r = timed => match r {
                        Ok(r) => r,
                        Err(_) => {
                            debug!(?peer, "MessagePack-RPC frame too slow to arrive; closing");
                            break;
                        }
                    },
                    _ = stopped(&mut stop) => break,
                }
            };
            match read {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        session.finish(limits.max_in_flight).await;
        drop(session);
        let _ = writer_task.await;
    });
    (handle, task)
}

/// Answers a complete frame whose value cannot be represented (an integer beyond
/// 64 bits, an unknown extension, a date past year 9999): an error when it is a
/// request whose msgid can be read, nothing otherwise.
fn refuse(frame: &[u8], error: msgpack::DecodeError, out: &mut Vec<u8>) {
    let msgid = match frame {
        [0x94, 0x00, id @ 0x00..=0x7f, ..] => Some(u32::from(*id)),
        [0x94, 0x00, 0xcc, id, ..] => Some(u32::from(*id)),
        [0x94, 0x00, 0xcd, a, b, ..] => Some(u32::from(u16::from_be_bytes([*a, *b]))),
        [0x94, 0x00, 0xce, a, b, c, d, ..] => Some(u32::from_be_bytes([*a, *b, *c, *d])),
        _ => None,
    };
    if let Some(msgid) = msgid {
        let fault = rpcs_core::Fault::invalid_params(error.to_string());
        msgpack_rpc::write_response(out, msgid, &Err(fault));
    }
}

/// Handles one decoded message, appending any inline answer to `out`.
async fn handle_message(
    dispatcher: &Arc<Dispatcher>,
    session: &Arc<Session>,
    peer: Option<SocketAddr>,
    conn_id: u64,
    value: Value,
    out: &mut Vec<u8>,
) {
    match msgpack_rpc::parse(value) {
        Ok(RpcMessage::Request {
            msgid,
            method,
            params,
        }) => {
            let ctx = session.context(PROTOCOL, peer, conn_id);
            let call = Call::Positional(method, params);
            run_call(
                session,
                dispatcher.clone(),
                ctx,
                call,
                out,
                move |outcome, out| msgpack_rpc::write_response(out, msgid, &outcome),
            )
            .await;
        }
        Ok(RpcMessage::Notification { method, params }) => {
            let ctx = session.context(PROTOCOL, peer, conn_id);
            let call = Call::Positional(method, params);
            run_call(session, dispatcher.clone(), ctx, call, out, |_, _| {}).await;
        }
        Ok(RpcMessage::Response { msgid, outcome }) => {
            if !session.answer(msgid, outcome) {
                debug!(?peer, msgid, "answer to no pending call");
            }
        }
        Err(bad) => match bad.msgid {
            Some(msgid) => msgpack_rpc::write_response(out, msgid, &Err(bad.fault)),
            None => debug!(?peer, fault = %bad.fault, "ignoring an invalid message"),
        },
    }
}
