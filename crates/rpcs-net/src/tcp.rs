//! The endpoint of every transport that listens on TCP: one accept path, one
//! one-shot mode, only the connection handler differs.

use crate::accept::{accept_loop, drain, Slots};
use crate::server::{Endpoint, Shared};
use rpcs_core::BoxFuture;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Serves one accepted connection until it ends (a closure, so that a TLS
/// listener's handler can hold its certificate).
pub(crate) type ServeTcp = Arc<
    dyn Fn(Arc<Shared>, TcpStream, SocketAddr, watch::Receiver<bool>) -> BoxFuture<()>
        + Send
        + Sync,
>;

/// A TCP listener and what its transport does with each connection.
pub(crate) struct TcpEndpoint {
    /// The bound socket.
    pub listener: TcpListener,
    /// The URL scheme clients use (`http`, `msgpack`).
    pub scheme: &'static str,
    /// What follows the address in the URL (`/` for HTTP).
    pub path: &'static str,
    /// The connection handler.
    pub serve: ServeTcp,
    /// What a connection refused at the caps is told, if the protocol lets the
    /// server speak first.
    pub busy: Option<&'static [u8]>,
}

impl Endpoint for TcpEndpoint {
    fn url(&self) -> String {
        match self.listener.local_addr() {
            Ok(addr) => format!("{}://{addr}{}", self.scheme, self.path),
            Err(_) => format!("{}://?{}", self.scheme, self.path),
        }
    }

    fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    fn serve(
        self: Box<Self>,
        shared: Arc<Shared>,
        slots: Arc<Slots>,
        stop: watch::Receiver<bool>,
    ) -> BoxFuture<()> {
        Box::pin(async move {
            let grace = shared.config.shutdown_grace;
            let handler = self.serve.clone();
            let serve = |(stream, peer), stop| handler(shared.clone(), stream, peer, stop);
            let busy = self.busy;
            let refuse = |(stream, _): (TcpStream, SocketAddr)| {
                if let Some(words) = busy {
                    // A fresh socket's send buffer takes a few bytes at once.
                    let _ = stream.try_write(words);
                }
            };
            let listener = self.listener;
            let open = accept_loop(&slots, stop, || listener.accept(), serve, refuse).await;
            drop(listener);
            drain(open, grace).await;
        })
    }

    fn serve_one(
        self: Box<Self>,
        shared: Arc<Shared>,
        slots: Arc<Slots>,
        stop: watch::Receiver<bool>,
    ) -> BoxFuture<io::Result<()>> {
        Box::pin(async move {
            let _slot = slots.take().await;
            let (stream, peer) = self.listener.accept().await?;
            (self.serve)(shared, stream, peer, stop).await;
            Ok(())
        })
    }
}
