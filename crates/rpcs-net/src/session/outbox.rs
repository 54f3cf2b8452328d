//! A connection's outbox: encoded frames waiting to be written, and the task
//! that writes them.
//!
//! The outbox holds at most a byte budget of frames. A sender waits for room, so a
//! client that stops reading its answers stops the reading of its requests too
//! (backpressure) instead of growing the server's memory.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

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

/// A byte stream as a frame sink: frames are concatenated (MessagePack-RPC, ZMTP).
pub(crate) struct ByteSink<W>(pub W);

impl<W: AsyncWrite + Unpin + Send + 'static> FrameSink for ByteSink<W> {
    async fn write_batch(&mut self, frames: Vec<Vec<u8>>) -> std::io::Result<()> {
        if let [one] = frames.as_slice() {
            self.0.write_all(one).await?;
        } else {
            self.0.write_all(&frames.concat()).await?;
        }
        self.0.flush().await
    }
    async fn close(&mut self) {
        let _ = self.0.shutdown().await;
    }
}

/// A sink that counts the bytes written through it in the server's metrics
/// (the protocol's own bytes, without a transport's framing such as
/// WebSocket's or TLS's).
pub(crate) struct CountedSink<S> {
    pub inner: S,
    pub metrics: Arc<crate::metrics::Metrics>,
    pub protocol: &'static str,
}

impl<S: FrameSink> FrameSink for CountedSink<S> {
    async fn write_batch(&mut self, frames: Vec<Vec<u8>>) -> std::io::Result<()> {
        let n: usize = frames.iter().map(Vec::len).sum();
        self.inner.write_batch(frames).await?;
        self.metrics.record_bytes(self.protocol, 0, n);
        Ok(())
    }
    async fn close(&mut self) {
        self.inner.close().await;
    }
}

/// A frame to write, the room it holds in the budget, and who wants to know once
/// it is written (`true`) or lost.
struct Frame {
    bytes: Vec<u8>,
    room: Option<OwnedSemaphorePermit>,
    ack: Option<oneshot::Sender<bool>>,
}

/// The sending side of a connection's outbox. Cloning shares it.
#[derive(Clone)]
pub(crate) struct Outbox {
    tx: mpsc::Sender<Frame>,
    room: Arc<Semaphore>,
    budget: usize,
    stop: Arc<Notify>,
}

/// The most frames the writer coalesces into one write, in bytes.
const COALESCE: usize = 1 << 20;

impl Outbox {
    /// An outbox writing to `sink` from a task of its own, holding at most
    /// `budget` bytes of frames; a write that makes no progress for `stall` ends
    /// the connection (a peer that takes no answers at all is gone for all
    /// purposes). Returns the outbox and the writer task.
    pub(crate) fn start<S: FrameSink>(
        sink: S,
        budget: usize,
        stall: Option<Duration>,
    ) -> (Outbox, JoinHandle<()>) {
        let budget = budget.clamp(1, u32::MAX as usize);
        let (tx, frames) = mpsc::channel(1024);
        let stop = Arc::new(Notify::new());
        let writer = tokio::spawn(write_frames(sink, frames, stop.clone(), stall));
        let outbox = Outbox {
            tx,
            room: Arc::new(Semaphore::new(budget)),
            budget,
            stop,
        };
        (outbox, writer)
    }

    /// Whether the writer has stopped (the connection broke or finished).
    pub(crate) fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Resolves once the writer has stopped.
    pub(crate) async fn closed(&self) {
        self.tx.closed().await
    }

    /// Waits for room for `len` bytes; a frame larger than the whole budget
    /// takes all of it, so it goes out alone.
    async fn room(&self, len: usize) -> Option<OwnedSemaphorePermit> {
        let want = len.clamp(1, self.budget) as u32;
        // Usually there is room: take it without building the waiting futures.
        if let Ok(permit) = self.room.clone().try_acquire_many_owned(want) {
            return Some(permit);
        }
        let room = self.room.clone().acquire_many_owned(want);
        tokio::select! {
            permit = room => permit.ok(),
            // The writer is gone: nothing will ever free room.
            _ = self.tx.closed() => None,
        }
    }

    /// Waits until the outbox is not full (a call about to start will have
    /// somewhere to put its answer); false once the connection is gone.
    pub(crate) async fn wait_room(&self) -> bool {
        self.room(1).await.is_some()
    }

    /// Queues a frame, waiting for room; false once the connection is gone.
    pub(crate) async fn send(&self, bytes: Vec<u8>) -> bool {
        let Some(room) = self.room(bytes.len()).await else {
            return false;
        };
        let frame = Frame {
            bytes,
            room: Some(room),
            ack: None,
        };
        self.tx.send(frame).await.is_ok()
    }

    /// Queues a frame and waits until it is written; false if it was lost.
    pub(crate) async fn send_written(&self, bytes: Vec<u8>) -> bool {
        let Some(room) = self.room(bytes.len()).await else {
            return false;
        };
        let (ack, written) = oneshot::channel();
        let frame = Frame {
            bytes,
            room: Some(room),
            ack: Some(ack),
        };
        if self.tx.send(frame).await.is_err() {
            return false;
        }
        written.await.unwrap_or(false)
    }

    /// Tells the writer to write what is queued and stop, even while senders remain.
    pub(crate) fn finish(&self) {
        self.stop.notify_one();
    }
}

/// Writes queued frames until every sender is gone or the outbox finishes,
/// coalescing what is queued into one write, and acknowledges each frame.
async fn write_frames<S: FrameSink>(
    mut sink: S,
    mut frames: mpsc::Receiver<Frame>,
    stop: Arc<Notify>,
    stall: Option<Duration>,
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
        let mut size = first.bytes.len();
        let mut batch = vec![first];
        while size < COALESCE {
            match frames.try_recv() {
                Ok(more) => {
                    size += more.bytes.len();
                    batch.push(more);
                }
                Err(_) => break,
            }
        }
        let mut acks = Vec::new();
        let mut rooms = Vec::with_capacity(batch.len());
        let mut bytes = Vec::with_capacity(batch.len());
        for frame in batch {
            acks.extend(frame.ack);
            rooms.push(frame.room);
            bytes.push(frame.bytes);
        }
        let write = sink.write_batch(bytes);
        let ok = match stall {
            None => write.await.is_ok(),
            Some(limit) => matches!(tokio::time::timeout(limit, write).await, Ok(Ok(()))),
        };
        // The frames' room is free once they are written, not merely dequeued.
        drop(rooms);
        for ack in acks {
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
