//! What stream connections share: a queue of frames to write, the calls this
//! side has made to the peer and waits answers for, and the calls in flight.

use rpcs_core::{BoxFuture, Context, Dispatcher, Fault, Peer, PeerCall, Value};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

/// How a protocol writes the messages a session sends on its own.
pub(crate) trait Wire: Send + Sync + 'static {
    /// A request with an id.
    fn request(&self, id: u32, method: &str, params: &[Value]) -> Vec<u8>;
    /// A notification.
    fn notification(&self, method: &str, params: &[Value]) -> Vec<u8>;
}

/// How long a call to the peer waits for its answer.
const PEER_CALL_TIMEOUT: Duration = Duration::from_secs(300);

type Pending = Mutex<HashMap<u32, oneshot::Sender<Result<Value, Fault>>>>;

/// One connection's shared state.
pub(crate) struct Session {
    out: mpsc::Sender<Vec<u8>>,
    pending: Pending,
    next_id: AtomicU32,
    wire: Box<dyn Wire>,
    in_flight: Arc<Semaphore>,
    closed: AtomicBool,
}

/// The connection ended before the peer answered.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Gone;

impl Session {
    /// A session writing through `out`, allowing `max_in_flight` calls at once.
    pub(crate) fn new(
        out: mpsc::Sender<Vec<u8>>,
        wire: Box<dyn Wire>,
        max_in_flight: usize,
    ) -> Arc<Session> {
        Arc::new(Session {
            out,
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU32::new(1),
            wire,
            in_flight: Arc::new(Semaphore::new(max_in_flight.max(1))),
            closed: AtomicBool::new(false),
        })
    }

    /// Whether the connection has ended.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire) || self.out.is_closed()
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
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, tx);
        let frame = self.wire.request(id, method, params);
        if self.out.send(frame).await.is_err() {
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

    /// Sends a notification.
    pub(crate) async fn notification(&self, method: &str, params: &[Value]) -> Result<(), Gone> {
        if self.is_closed() {
            return Err(Gone);
        }
        let frame = self.wire.notification(method, params);
        self.out.send(frame).await.map_err(|_| Gone)
    }

    fn forget(&self, id: u32) {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }

    /// Queues a frame for writing; false once the connection is gone.
    pub(crate) async fn send(&self, frame: Vec<u8>) -> bool {
        self.out.send(frame).await.is_ok()
    }

    /// Delivers the peer's answer to one of our calls; false if no call waits for it.
    pub(crate) fn answer(&self, id: u32, outcome: Result<Value, Fault>) -> bool {
        let waiter = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        match waiter {
            Some(tx) => tx.send(outcome).is_ok(),
            None => false,
        }
    }

    /// Fails every call still waiting for the peer (the connection ended).
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
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
        ctx
    }

    /// Waits for room for one more call in flight.
    pub(crate) async fn slot(&self) -> Option<OwnedSemaphorePermit> {
        self.in_flight.clone().acquire_owned().await.ok()
    }

    /// Waits until every call in flight has finished.
    pub(crate) async fn drain(&self, max: usize) {
        let _ = self.in_flight.acquire_many(max.max(1) as u32).await;
    }
}

/// Why a request to the peer got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestError {
    /// The connection ended.
    Gone,
    /// No answer within the timeout.
    Timeout,
}

/// A session handle that owns its reference, for `'static` peer-call futures.
struct Handle(Arc<Session>);

impl PeerCall for Handle {
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

/// Writes queued frames until every sender is gone, coalescing what is queued
/// into one write.
pub(crate) async fn write_frames<W: AsyncWrite + Unpin>(
    mut writer: W,
    mut frames: mpsc::Receiver<Vec<u8>>,
) {
    let mut buf = Vec::with_capacity(16 * 1024);
    while let Some(frame) = frames.recv().await {
        buf.extend_from_slice(&frame);
        while buf.len() < 1 << 20 {
            match frames.try_recv() {
                Ok(more) => buf.extend_from_slice(&more),
                Err(_) => break,
            }
        }
        if writer.write_all(&buf).await.is_err() {
            break;
        }
        if writer.flush().await.is_err() {
            break;
        }
        buf.clear();
    }
    let _ = writer.shutdown().await;
}

/// Runs one call: polls it once at once, so calls that need not wait are answered
/// inline (and their answers batched), and runs the others as tasks.
/// `finish` turns the outcome into the frame to send (or none).
pub(crate) async fn run_call<F>(
    session: &Arc<Session>,
    dispatcher: Arc<Dispatcher>,
    ctx: Context,
    call: Call,
    inline_out: &mut Vec<u8>,
    finish: F,
) where
    F: FnOnce(Result<Value, Fault>, &mut Vec<u8>) + Send + 'static,
{
    let mut fut: Pin<Box<dyn Future<Output = Result<Value, Fault>> + Send>> =
        Box::pin(async move {
            match call {
                Call::Positional(method, params) => dispatcher.call(&ctx, &method, params).await,
                Call::Named(method, named) => dispatcher.call_named(&ctx, &method, named).await,
            }
        });
    let first = std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await;
    match first {
        Poll::Ready(outcome) => finish(outcome, inline_out),
        Poll::Pending => {
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

/// A call as the session runs it.
pub(crate) enum Call {
    /// Method and positional parameters.
    Positional(String, Vec<Value>),
    /// Method and named parameters.
    Named(String, rpcs_core::Map),
}
