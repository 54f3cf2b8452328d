//! What stream connections share: a queue of frames to write (and the task that
//! writes them), the calls this side has made to the peer and waits answers for,
//! and the calls in flight.

use rpcs_core::{BoxFuture, Context, Dispatcher, Fault, Peer, PeerCall, Value};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, Notify, OwnedSemaphorePermit, Semaphore};
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

type Pending = Mutex<HashMap<u32, oneshot::Sender<Result<Value, Fault>>>>;

/// A frame to write, and who wants to know once it is written (`true`) or lost.
pub(crate) struct Frame {
    bytes: Vec<u8>,
    ack: Option<oneshot::Sender<bool>>,
}

/// Where a connection's writer puts frames.
pub(crate) trait FrameSink: Send + 'static {
    /// Writes a batch of frames, in order.
    fn write_batch(
        &mut self,
        frames: Vec<Vec<u8>>,
    ) -> impl Future<Output = std::io::Result<()>> + Send;
    /// Closes the write side.
    fn close(&mut self) -> impl Future<Output = ()> + Send;
}

/// A byte stream as a frame sink: frames are concatenated (MessagePack-RPC).
pub(crate) struct ByteSink<W>(pub W);

impl<W: AsyncWrite + Unpin + Send + 'static> FrameSink for ByteSink<W> {
    async fn write_batch(&mut self, frames: Vec<Vec<u8>>) -> std::io::Result<()> {
        let bytes = frames.concat();
        self.0.write_all(&bytes).await?;
        self.0.flush().await
    }
    async fn close(&mut self) {
        let _ = self.0.shutdown().await;
    }
}

/// One connection's shared state.
pub(crate) struct Session {
    out: mpsc::Sender<Frame>,
    /// Tells the writer to finish once the connection has ended.
    writer_stop: Arc<Notify>,
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
    /// A session whose frames go to `sink` (written by a task of its own),
    /// allowing `max_in_flight` calls at once. Returns the session and the writer.
    pub(crate) fn start<S: FrameSink>(
        sink: S,
        wire: Box<dyn Wire>,
        max_in_flight: usize,
    ) -> (Arc<Session>, JoinHandle<()>) {
        let (out, frames) = mpsc::channel(1024);
        let writer_stop = Arc::new(Notify::new());
        let writer = tokio::spawn(write_frames(sink, frames, writer_stop.clone()));
        let session = Arc::new(Session {
            out,
            writer_stop,
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU32::new(1),
            wire,
            in_flight: Arc::new(Semaphore::new(max_in_flight.max(1))),
            closed: AtomicBool::new(false),
        });
        (session, writer)
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
        let (ack, written) = oneshot::channel();
        let frame = Frame {
            bytes: self.wire.notification(method, params),
            ack: Some(ack),
        };
        self.out.send(frame).await.map_err(|_| Gone)?;
        match written.await {
            Ok(true) => Ok(()),
            _ => Err(Gone),
        }
    }

    fn forget(&self, id: u32) {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }

    /// Queues a frame for writing; false once the connection is gone.
    pub(crate) async fn send(&self, bytes: Vec<u8>) -> bool {
        self.out.send(Frame { bytes, ack: None }).await.is_ok()
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

    /// Ends the connection: fails waiting calls, lets the calls in flight finish
    /// (their answers are still written), then stops the writer even if something
    /// (a subscription) still holds the session.
    pub(crate) async fn finish(&self, max_in_flight: usize) {
        self.close();
        self.drain(max_in_flight).await;
        self.writer_stop.notify_one();
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
    fn is_closed(&self) -> bool {
        self.0.is_closed()
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

/// Writes queued frames until every sender is gone or the session finishes,
/// coalescing what is queued into one write, and acknowledges each frame.
async fn write_frames<S: FrameSink>(
    mut sink: S,
    mut frames: mpsc::Receiver<Frame>,
    stop: Arc<Notify>,
) {
    let mut stopping = false;
    loop {
        let first = if stopping {
            frames.try_recv().ok()
        } else {
            tokio::select! {
                biased;
                f = frames.recv() => f,
                _ = stop.notified() => {
                    stopping = true;
                    frames.try_recv().ok()
                }
            }
        };
        let Some(first) = first else { break };
        let mut batch = vec![first];
        let mut size = batch[0].bytes.len();
        while size < 1 << 20 {
            match frames.try_recv() {
                Ok(more) => {
                    size += more.bytes.len();
                    batch.push(more);
                }
                Err(_) => break,
            }
        }
        let (bytes, acks): (Vec<_>, Vec<_>) = batch.into_iter().map(|f| (f.bytes, f.ack)).unzip();
        let ok = sink.write_batch(bytes).await.is_ok();
        for ack in acks.into_iter().flatten() {
            let _ = ack.send(ok);
        }
        if !ok {
            break;
        }
    }
    // Anything still queued is lost: tell whoever waits.
    frames.close();
    while let Ok(f) = frames.try_recv() {
        if let Some(ack) = f.ack {
            let _ = ack.send(false);
        }
    }
    sink.close().await;
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
