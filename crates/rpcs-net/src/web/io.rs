//! The socket under an HTTP connection, shared between hyper and the server.
//!
//! hyper closes a connection whose request head is too slow to arrive without a
//! word. The server keeps a second handle on the socket so that it can still
//! answer `408 Request Timeout` then, when part of a request had arrived (an idle
//! keep-alive connection is closed silently, as clients expect).
//!
//! It also bounds how long a write may wait: a client that stops reading its
//! answers (a slow-read attack) has its connection ended after the write
//! timeout, instead of holding its slot for ever.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

/// One handle on a shared TCP socket; hyper reads and writes through one.
pub(crate) struct SharedSocket {
    stream: Arc<TcpStream>,
    /// Bytes arrived since the last answer was written: a request is under way.
    mid_request: Arc<AtomicBool>,
    /// How long a write may wait for the client to take bytes.
    stall: Duration,
    /// When the write now waiting gives up.
    give_up: Option<Pin<Box<Sleep>>>,
}

impl SharedSocket {
    /// Two handles on `stream`: one for hyper, one for the server. A write that
    /// waits longer than `stall` fails.
    pub(crate) fn pair(stream: TcpStream, stall: Duration) -> (SharedSocket, SharedSocket) {
        let shared = SharedSocket {
            stream: Arc::new(stream),
            mid_request: Arc::new(AtomicBool::new(false)),
            stall,
            give_up: None,
        };
        let other = SharedSocket {
            stream: shared.stream.clone(),
            mid_request: shared.mid_request.clone(),
            stall,
            give_up: None,
        };
        (shared, other)
    }

    /// Whether part of a request has arrived and no answer was written since.
    pub(crate) fn mid_request(&self) -> bool {
        self.mid_request.load(Ordering::Relaxed)
    }

    /// Writes a short final answer if the socket takes it at once, then shuts
    /// the write side; never waits (the peer may not be reading).
    pub(crate) fn last_words(&self, bytes: &[u8]) {
        let _ = self.stream.try_write(bytes);
        let _ = socket2::SockRef::from(&*self.stream).shutdown(std::net::Shutdown::Write);
    }
}

impl AsyncRead for SharedSocket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            ready!(self.stream.poll_read_ready(cx))?;
            match self.stream.try_read(buf.initialize_unfilled()) {
                Ok(n) => {
                    if n > 0 {
                        self.mid_request.store(true, Ordering::Relaxed);
                    }
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                // The readiness was stale; try_read cleared it, so wait again.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl SharedSocket {
    /// The client takes no bytes: keep waiting, unless it has been too long.
    fn wait_or_give_up(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let stall = self.stall;
        let give_up = self
            .give_up
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(stall)));
        ready!(give_up.as_mut().poll(cx));
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client took no bytes for the write timeout",
        )))
    }
}

impl AsyncWrite for SharedSocket {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            if self.stream.poll_write_ready(cx)?.is_pending() {
                return self.wait_or_give_up(cx);
            }
            match self.stream.try_write(buf) {
                Ok(n) => {
                    self.give_up = None;
                    self.mid_request.store(false, Ordering::Relaxed);
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        let sock = socket2::SockRef::from(&*self.stream);
        Poll::Ready(match sock.shutdown(std::net::Shutdown::Write) {
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
            other => other,
        })
    }
}
