//! MessagePack-RPC over a byte stream, on either side of a connection.
//!
//! Requests are pipelined: each is answered as soon as it finishes, in any order,
//! and calls that must wait run concurrently (up to the per-connection limit), so
//! a slow call does not hold back the ones behind it. Either side can call the
//! other. A frame that is not valid MessagePack ends the connection (the stream
//! cannot be resynchronised); a frame is measured before it is read, and one
//! announcing more than the limit is refused before anything is allocated.

use super::idle::IdleTimer;
use super::{run_call, ByteSink, Call, Calls, CountedSink, Session, StreamLimits, Wire, FLUSH_AT};
use crate::accept::stopped;
use bytes::BytesMut;
use rpcs_core::msgpack::{self, FrameLen};
use rpcs_core::msgpack_rpc::{self, RpcMessage};
use rpcs_core::{Fault, Principal, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

pub(crate) const PROTOCOL: &str = "msgpack-rpc";

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

/// Who the connection is with, for contexts and logs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PeerInfo {
    /// The peer's address, on TCP.
    pub addr: Option<SocketAddr>,
    /// The connection's id within this server (0 on a client).
    pub conn_id: u64,
    /// Whether the peer is trusted without authenticating (stdio's parent).
    pub trusted: bool,
}

/// What a read of the stream yielded.
enum Read {
    /// More bytes (or the end, when 0).
    Bytes(std::io::Result<usize>),
    /// The connection must close (stop, idle, or a frame too slow).
    Close,
}

/// Starts a connection (either side): a task reads messages, answering requests
/// from `dispatcher` and routing answers to the session's pending calls. Returns the
/// session (to call the peer) and the task, which ends when the connection does.
pub(crate) fn start<R, W>(
    calls: Calls,
    mut reader: R,
    writer: W,
    limits: StreamLimits,
    peer: PeerInfo,
    mut stop: watch::Receiver<bool>,
) -> (Arc<Session>, JoinHandle<()>)
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let sink = CountedSink {
        inner: ByteSink(writer),
        metrics: calls.metrics.clone(),
        protocol: PROTOCOL,
    };
    let (session, writer_task) = Session::start(sink, Box::new(MsgpackWire), &limits);
    if peer.trusted {
        session.set_principal(Arc::new(Principal::trusted("stdio")));
    }
    let handle = session.clone();
    let task = tokio::spawn(async move {
        let mut buf = BytesMut::new();
        let mut need = 1usize;
        let mut idle = limits.idle_timeout.map(IdleTimer::new);
        let opened = tokio::time::Instant::now();
        loop {
            let mut out = Vec::new();
            let closing = match answer_buffered(
                &calls, &session, &limits, peer, &mut buf, &mut need, &mut out,
            )
            .await
            {
                Ok(()) => false,
                Err(()) => true,
            };
            // Answers to the good messages before a bad one still go out.
            if !out.is_empty() && !session.send(out).await {
                break;
            }
            if closing {
                break;
            }
            make_room(&mut buf, need);
            let read = read_more(
                &mut reader,
                &mut buf,
                &session,
                &limits,
                peer,
                &mut stop,
                &mut idle,
            );
            let read = tokio::select! {
                r = read => r,
                () = session.await_auth(limits.auth_timeout, opened) => {
                    debug!(peer = ?peer.addr, "no authentication in time; closing");
                    Read::Close
                }
            };
            match read {
                Read::Bytes(Ok(0)) | Read::Bytes(Err(_)) | Read::Close => break,
                Read::Bytes(Ok(n)) => calls.metrics.record_bytes(PROTOCOL, n, 0),
            }
        }
        session.finish().await;
        drop(session);
        let _ = writer_task.await;
    });
    (handle, task)
}

/// Readies `buf` for the next read. An empty buffer that grew for a big frame
/// is let go, so a connection keeps no more memory than its current frame needs;
/// a fresh one starts small, since an idle connection should cost little.
fn make_room(buf: &mut BytesMut, need: usize) {
    if buf.is_empty() && buf.capacity() > 64 * 1024 {
        *buf = BytesMut::new();
    }
    let floor = if buf.is_empty() { 4 * 1024 } else { 8 * 1024 };
    buf.reserve(need.saturating_sub(buf.len()).clamp(floor, 1 << 20));
}

/// Answers every complete message in `buf`, appending inline answers to `out`
/// (sent early when they grow large). `Err` when the connection must close.
async fn answer_buffered(
    calls: &Calls,
    session: &Arc<Session>,
    limits: &StreamLimits,
    peer: PeerInfo,
    buf: &mut BytesMut,
    need: &mut usize,
    out: &mut Vec<u8>,
) -> Result<(), ()> {
    while buf.len() >= *need {
        match msgpack::frame_len(buf, limits.max_depth) {
            Ok(FrameLen::NeedAtLeast(n) | FrameLen::Complete(n)) if n > limits.max_frame => {
                warn!(peer = ?peer.addr, size = n, "MessagePack-RPC frame over the size limit; closing");
                return Err(());
            }
            Ok(FrameLen::NeedAtLeast(n)) => *need = n,
            Ok(FrameLen::Complete(n)) => {
                let frame = buf.split_to(n);
                *need = 1;
                // The frame's structure is sound, so the stream stays in step
                // even when its content cannot be represented.
                match msgpack::decode(&frame, limits.max_depth) {
                    Ok(value) => handle_message(calls, session, peer, value, out).await,
                    Err(e) => refuse(&frame, e, out),
                }
                if out.len() >= FLUSH_AT {
                    let full = std::mem::take(out);
                    if !session.send(full).await {
                        return Err(());
                    }
                }
            }
            Err(e) => {
                debug!(peer = ?peer.addr, error = %e, "malformed MessagePack-RPC frame; closing");
                return Err(());
            }
        }
    }
    Ok(())
}

/// Reads more bytes: inside a frame the rest must come within the frame
/// timeout; between frames an idle connection is closed after the idle timeout.
async fn read_more<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
    session: &Arc<Session>,
    limits: &StreamLimits,
    peer: PeerInfo,
    stop: &mut watch::Receiver<bool>,
    idle: &mut Option<IdleTimer>,
) -> Read {
    if !buf.is_empty() {
        let timed = tokio::time::timeout(limits.frame_timeout, reader.read_buf(buf));
        return tokio::select! {
            r = timed => match r {
                Ok(r) => {
                    if let Some(idle) = idle {
                        idle.touch();
                    }
                    Read::Bytes(r)
                }
                Err(_) => {
                    debug!(peer = ?peer.addr, "MessagePack-RPC frame too slow to arrive; closing");
                    Read::Close
                }
            },
            _ = stopped(stop) => Read::Close,
        };
    }
    let Some(idle) = idle else {
        return tokio::select! {
            r = reader.read_buf(buf) => Read::Bytes(r),
            _ = stopped(stop) => Read::Close,
        };
    };
    loop {
        tokio::select! {
            r = reader.read_buf(buf) => {
                idle.touch();
                return Read::Bytes(r);
            }
            // Quiet for the whole timeout: close unless something still holds
            // the connection (a call, a subscription); else look again later.
            () = idle.quiet() => {
                if session.is_idle(1) {
                    debug!(peer = ?peer.addr, "idle MessagePack-RPC connection; closing");
                    return Read::Close;
                }
                idle.touch();
            }
            _ = stopped(stop) => return Read::Close,
        }
    }
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
        let fault = Fault::invalid_params(error.to_string());
        msgpack_rpc::write_response(out, msgid, &Err(fault));
    }
}

/// Handles one decoded message, appending any inline answer to `out`.
async fn handle_message(
    calls: &Calls,
    session: &Arc<Session>,
    peer: PeerInfo,
    value: Value,
    out: &mut Vec<u8>,
) {
    let ctx = || session.context(PROTOCOL, peer.addr, peer.conn_id);
    match msgpack_rpc::parse(value) {
        Ok(RpcMessage::Request {
            msgid,
            method,
            params,
        }) => {
            let call = Call::Positional(method, params);
            let answer = move |outcome: Result<Value, Fault>, out: &mut Vec<u8>| {
                msgpack_rpc::write_response(out, msgid, &outcome)
            };
            run_call(session, calls, ctx(), call, out, answer).await;
        }
        Ok(RpcMessage::Notification { method, params }) => {
            let call = Call::Positional(method, params);
            run_call(session, calls, ctx(), call, out, |_, _| {}).await;
        }
        Ok(RpcMessage::Response { msgid, outcome }) => {
            if !session.answer(msgid, outcome) {
                debug!(peer = ?peer.addr, msgid, "answer to no pending call");
            }
        }
        Err(bad) => match bad.msgid {
            Some(msgid) => msgpack_rpc::write_response(out, msgid, &Err(bad.fault)),
            None => debug!(peer = ?peer.addr, fault = %bad.fault, "ignoring an invalid message"),
        },
    }
}
