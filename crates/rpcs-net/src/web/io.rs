//! The socket under an HTTP connection, shared between hyper and the server.
//!
//! hyper closes a connection whose request head is too slow to arrive without a
//! word. The server keeps a second handle on the socket so that it can still
//! answer `408 Request Timeout` then, when part of a request had arrived (an idle
//! keep-alive connection is closed silently, as clients expect).

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// One handle on a shared TCP socket; hyper reads and writes through one.
pub(crate) struct SharedSocket {
    stream: Arc<TcpStream>,
    /// Bytes arrived since the last answer was written: a request is under way.
    mid_request: Arc<AtomicBool>,
}

impl SharedSocket {
    /// Two handles on `stream`: one for hyper, one for the server.
    pub(crate) fn pair(stream: TcpStream) -> (SharedSocket, SharedSocket) {
        let shared = SharedSocket {
            stream: Arc::new(stream),
            mid_request: Arc::new(AtomicBool::new(false)),
        };
        let other = SharedSocket {
            stream: shared.stream.clone(),
            mid_request: shared.mid_request.clone(),
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

impl AsyncWrite for SharedSocket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.stream.poll_write_ready(cx))?;
            match self.stream.try_write(buf) {
                Ok(n) => {
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
