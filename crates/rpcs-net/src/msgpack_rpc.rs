//! The MessagePack-RPC transport: listeners on TCP and Unix sockets (one
//! session over standard input and output is in [`crate::stdio`]). The
//! protocol itself (either side of a connection) is in
//! [`crate::session::msgpack`].

use crate::accept::{accept_loop, drain, tune_tcp, Slots};
use crate::server::{Endpoint, Listener, Shared};
use crate::session::msgpack::{start, PeerInfo};
use crate::session::StreamLimits;
use crate::tcp::TcpEndpoint;
use crate::tls::Tls;
use rpcs_core::BoxFuture;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, UnixListener};
use tokio::sync::watch;

impl Listener {
    /// Binds a MessagePack-RPC listener on TCP.
    pub async fn msgpack_tcp(addr: &str) -> io::Result<Listener> {
        Ok(Listener(Box::new(TcpEndpoint {
            listener: TcpListener::bind(addr).await?,
            scheme: "msgpack",
            path: "",
            serve: Arc::new(|shared, stream, peer, stop| {
                Box::pin(serve_tcp(shared, stream, peer, stop))
            }),
            // MessagePack-RPC has no way to say "busy" unasked: a refused
            // connection is just closed.
            busy: None,
        })))
    }

    /// Binds a MessagePack-RPC listener on TCP with TLS (`msgpack+tls://`).
    pub async fn msgpack_tls(addr: &str, tls: Arc<Tls>) -> io::Result<Listener> {
        Ok(Listener(Box::new(TcpEndpoint {
            listener: TcpListener::bind(addr).await?,
            scheme: "msgpack+tls",
            path: "",
            serve: crate::tls::handler(
                tls,
                Arc::new(|shared, stream, peer, stop| {
                    let (r, w) = tokio::io::split(stream);
                    Box::pin(serve_connection(shared, r, w, Some(peer), stop))
                }),
            ),
            busy: None,
        })))
    }

    /// Binds a MessagePack-RPC listener on a Unix socket. A stale socket file (one
    /// nobody answers on) is replaced; a live one is an error. The socket file is
    /// removed when the listener stops.
    pub async fn msgpack_unix(path: impl AsRef<Path>) -> io::Result<Listener> {
        let path = path.as_ref().to_owned();
        let listener = bind_unix(&path).await?;
        Ok(Listener(Box::new(Unix(listener, path))))
    }
}

/// Binds a Unix socket at `path`, replacing a stale socket file.
pub(crate) async fn bind_unix(path: &Path) -> io::Result<UnixListener> {
    if path.exists() {
        if tokio::net::UnixStream::connect(path).await.is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("{} is in use by another server", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    UnixListener::bind(path)
}

/// Serves one server-side connection until it ends, then lets its calls finish.
async fn serve_connection<R, W>(
    shared: Arc<Shared>,
    reader: R,
    writer: W,
    addr: Option<SocketAddr>,
    stop: watch::Receiver<bool>,
) where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let limits = StreamLimits::of(&shared.config);
    let peer = PeerInfo {
        addr,
        conn_id: shared.connection_id(),
        trusted: false,
    };
    let (_, done) = start(shared.calls(), reader, writer, limits, peer, stop);
    let _ = done.await;
}

/// Serves one accepted TCP connection.
async fn serve_tcp(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    stop: watch::Receiver<bool>,
) {
    tune_tcp(&stream, shared.config.tcp_keepalive);
    let (r, w) = stream.into_split();
    serve_connection(shared, r, w, Some(peer), stop).await;
}

struct Unix(UnixListener, PathBuf);

impl Drop for Unix {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.1);
    }
}

impl Endpoint for Unix {
    fn url(&self) -> String {
        format!("msgpack+unix://{}", self.1.display())
    }

    fn local_addr(&self) -> Option<SocketAddr> {
        None
    }

    fn serve(
        self: Box<Self>,
        shared: Arc<Shared>,
        slots: Arc<Slots>,
        stop: watch::Receiver<bool>,
    ) -> BoxFuture<()> {
        Box::pin(async move {
            let grace = shared.config.shutdown_grace;
            let serve = |(stream, _): (tokio::net::UnixStream, _), stop| {
                let (r, w) = stream.into_split();
                serve_connection(shared.clone(), r, w, None, stop)
            };
            let open = accept_loop(&slots, stop, || self.0.accept(), serve, drop).await;
            // Closing the socket (and removing its file) refuses new clients.
            drop(self);
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
            let (stream, _) = self.0.accept().await?;
            let (r, w) = stream.into_split();
            serve_connection(shared, r, w, None, stop).await;
            Ok(())
        })
    }
}
