//! The socket under an HTTP connection, with a second handle for the server.
//!
//! hyper closes a connection whose request head is too slow to arrive without a
//! word. The server keeps a second handle on the socket (a duplicate of its file
//! descriptor) so that it can still answer `408 Request Timeout` then, when part
//! of a request had arrived (an idle keep-alive connection is closed silently,
//! as clients expect).
//!
//! It also bounds how long a write may wait: a client that stops reading its
//! answers (a slow-read attack) has its connection ended after the write
//! timeout, instead of holding its slot for ever.
//!
//! Reads and writes go straight to tokio's `TcpStream` (or the TLS stream over it), which reads into
//! hyper's buffer without initializing it first (doing that here once cost a
//! memset of the whole buffer on every read).

use std::future::Future;
use std::io::{self, Write};
use std::net::Shutdown;
use std::os::fd::AsFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

/// The socket as hyper reads and writes it: a TCP stream, or TLS over one.
pub(crate) struct HttpSocket<S = TcpStream> {
    stream: S,
    /// Bytes arrived since the last answer was written: a request is under way.
    mid_request: Arc<AtomicBool>,
    /// How long a write may wait for the client to take bytes.
    stall: Duration,
    /// When the write now waiting gives up.
    give_up: Option<Pin<Box<Sleep>>>,
}

/// The server's own handle on the socket, for a last answer.
pub(crate) struct LastWords {
    socket: std::net::TcpStream,
    mid_request: Arc<AtomicBool>,
}

impl<S> HttpSocket<S> {
    /// A socket with no second handle (under TLS a raw last answer would be
    /// garbage to the client). A write that waits longer than `stall` fails.
    pub(crate) fn new(stream: S, stall: Duration) -> HttpSocket<S> {
        HttpSocket {
            stream,
            mid_request: Arc::new(AtomicBool::new(false)),
            stall,
            give_up: None,
        }
    }
}

impl HttpSocket {
    /// The socket for hyper and the server's handle on it. A write that waits
    /// longer than `stall` fails.
    pub(crate) fn pair(stream: TcpStream, stall: Duration) -> io::Result<(HttpSocket, LastWords)> {
        // The duplicate shares the socket's file status, non-blocking included,
        // so writing through it never waits.
        let socket = std::net::TcpStream::from(stream.as_fd().try_clone_to_owned()?);
        let mid_request = Arc::new(AtomicBool::new(false));
        let ours = LastWords {
            socket,
            mid_request: mid_request.clone(),
        };
        let theirs = HttpSocket {
            stream,
            mid_request,
            stall,
            give_up: None,
        };
        Ok((theirs, ours))
    }
}

impl LastWords {
    /// Whether part of a request has arrived and no answer was written since.
    pub(crate) fn mid_request(&self) -> bool {
        self.mid_request.load(Ordering::Relaxed)
    }

    /// Writes a short final answer if the socket takes it at once, then shuts
    /// the write side; never waits (the peer may not be reading).
    pub(crate) fn say(&self, bytes: &[u8]) {
        let _ = (&self.socket).write(bytes);
        let _ = self.socket.shutdown(Shutdown::Write);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for HttpSocket<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.stream).poll_read(cx, buf))?;
        if buf.filled().len() > before {
            self.mid_request.store(true, Ordering::Relaxed);
        }
        Poll::Ready(Ok(()))
    }
}

impl<S> HttpSocket<S> {
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

impl<S: AsyncWrite + Unpin> AsyncWrite for HttpSocket<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.stream).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                self.give_up = None;
                self.mid_request.store(false, Ordering::Relaxed);
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => self.wait_or_give_up(cx),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match ready!(Pin::new(&mut self.stream).poll_shutdown(cx)) {
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Poll::Ready(Ok(())),
            other => Poll::Ready(other),
        }
    }
}
