//! The server: listeners sharing one dispatcher, with connection limits and
//! graceful shutdown.

use crate::{http, msgpack_rpc, zerorpc};
use rpcs_core::{xmlrpc, Dispatcher};
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

/// Limits and behaviour of a [`Server`]; every bound applies per request or per connection.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Connections served at once; further clients wait in the listen backlog.
    pub max_connections: usize,
    /// The largest request body accepted, as sent (compressed or not).
    pub max_request_bytes: usize,
    /// The largest request body accepted after decompression.
    pub max_decompressed_bytes: usize,
    /// Time allowed to receive a request's headers (also bounds an idle keep-alive wait).
    pub header_timeout: Duration,
    /// Time allowed to receive a request's body once its headers arrived.
    pub body_timeout: Duration,
    /// Replies larger than this are gzipped when the client accepts gzip.
    pub gzip_threshold: usize,
    /// The HTTP paths that serve RPC (POST only).
    pub rpc_paths: Vec<String>,
    /// Depth and size bounds for XML-RPC documents (the depth bounds every codec).
    pub xml_limits: xmlrpc::Limits,
    /// Calls one stream connection (MessagePack-RPC, WebSocket) may have running at once.
    pub max_in_flight: usize,
    /// The service name zerorpc's `_zerorpc_name` answers.
    pub service_name: String,
    /// zerorpc's heartbeat interval; a peer silent for two is gone.
    pub heartbeat: Duration,
    /// How long shutdown waits for in-flight requests before dropping them.
    pub shutdown_grace: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_connections: 1024,
            max_request_bytes: 16 << 20,
            max_decompressed_bytes: 16 << 20,
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(30),
            gzip_threshold: 1400,
            rpc_paths: vec!["/".into(), "/RPC2".into()],
            xml_limits: xmlrpc::Limits::default(),
            max_in_flight: 256,
            service_name: "rpcs".into(),
            heartbeat: zerorpc::DEFAULT_HEARTBEAT,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// A socket to serve on.
pub enum Listener {
    /// HTTP on TCP: XML-RPC and JSON-RPC on POST to the RPC paths.
    Http(TcpListener),
    /// MessagePack-RPC on TCP.
    MsgpackTcp(TcpListener),
    /// MessagePack-RPC on a Unix socket; the socket file is removed at shutdown.
    MsgpackUnix(UnixListener, PathBuf),
    /// zerorpc on a ZeroMQ ROUTER socket, bound and/or connected (reversed mode)
    /// to the endpoints listed.
    Zerorpc(Box<zeromq::RouterSocket>, Vec<String>),
}

impl Listener {
    /// Binds an HTTP listener.
    pub async fn http(addr: &str) -> io::Result<Listener> {
        Ok(Listener::Http(TcpListener::bind(addr).await?))
    }

    /// Binds a MessagePack-RPC listener on TCP.
    pub async fn msgpack_tcp(addr: &str) -> io::Result<Listener> {
        Ok(Listener::MsgpackTcp(TcpListener::bind(addr).await?))
    }

    /// Binds a MessagePack-RPC listener on a Unix socket. A stale socket file (one
    /// nobody answers on) is replaced; a live one is an error.
    pub async fn msgpack_unix(path: impl AsRef<Path>) -> io::Result<Listener> {
        let path = path.as_ref().to_owned();
        if path.exists() {
            if tokio::net::UnixStream::connect(&path).await.is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("{} is in use by another server", path.display()),
                ));
            }
            std::fs::remove_file(&path)?;
        }
        Ok(Listener::MsgpackUnix(UnixListener::bind(&path)?, path))
    }

    /// A zerorpc listener bound to every `binds` endpoint and connected to every
    /// `connects` one (the reversed mode, where the server connects to a client or
    /// queue that binds). Endpoints are ZeroMQ's: `tcp://HOST:PORT`, `ipc:///path`.
    pub async fn zerorpc(binds: &[String], connects: &[String]) -> io::Result<Listener> {
        use zeromq::Socket;
        let mut socket = zeromq::RouterSocket::new();
        let mut endpoints = Vec::new();
        for b in binds {
            let bound = socket
                .bind(b)
                .await
                .map_err(|e| io::Error::other(format!("bind {b}: {e}")))?;
            endpoints.push(bound.to_string());
        }
        for c in connects {
            socket
                .connect(c)
                .await
                .map_err(|e| io::Error::other(format!("connect {c}: {e}")))?;
            endpoints.push(c.clone());
        }
        if endpoints.is_empty() {
            return Err(io::Error::other(
                "a zerorpc listener needs an endpoint to bind or connect",
            ));
        }
        Ok(Listener::Zerorpc(Box::new(socket), endpoints))
    }

    /// The bound TCP address (useful after binding port 0); `None` for Unix sockets.
    pub fn local_addr(&self) -> io::Result<Option<std::net::SocketAddr>> {
        match self {
            Listener::Http(l) | Listener::MsgpackTcp(l) => l.local_addr().map(Some),
            Listener::MsgpackUnix(..) | Listener::Zerorpc(..) => Ok(None),
        }
    }

    /// The URL a client uses to reach this listener.
    pub fn url(&self) -> io::Result<String> {
        Ok(match self {
            Listener::Http(l) => format!("http://{}/", l.local_addr()?),
            Listener::MsgpackTcp(l) => format!("msgpack://{}", l.local_addr()?),
            Listener::MsgpackUnix(_, path) => format!("msgpack+unix://{}", path.display()),
            Listener::Zerorpc(_, endpoints) => endpoints.join(" "),
        })
    }
}

/// What every connection handler shares.
pub(crate) struct Shared {
    pub(crate) dispatcher: Arc<Dispatcher>,
    pub(crate) config: ServerConfig,
    next_connection: AtomicU64,
    slots: Arc<Semaphore>,
}

impl Shared {
    pub(crate) fn connection_id(&self) -> u64 {
        self.next_connection.fetch_add(1, Ordering::Relaxed)
    }
}

/// Serves one [`Dispatcher`] on any number of listeners.
///
/// Cloning is cheap; clones serve the same dispatcher and share the connection cap.
#[derive(Clone)]
pub struct Server {
    shared: Arc<Shared>,
}

impl Server {
    /// A server for `dispatcher` with the given limits.
    pub fn new(dispatcher: Dispatcher, config: ServerConfig) -> Server {
        let slots = Arc::new(Semaphore::new(config.max_connections.max(1)));
        Server {
            shared: Arc::new(Shared {
                dispatcher: Arc::new(dispatcher),
                config,
                next_connection: AtomicU64::new(1),
                slots,
            }),
        }
    }

    /// The dispatcher being served.
    pub fn dispatcher(&self) -> &Dispatcher {
        &self.shared.dispatcher
    }

    /// Serves every listener until `shutdown` completes, then stops accepting,
    /// lets in-flight requests finish (up to the grace period) and returns.
    pub async fn run(
        &self,
        listeners: Vec<Listener>,
        shutdown: impl Future<Output = ()> + Send,
    ) -> io::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        for listener in listeners {
            let shared = self.shared.clone();
            let stop = stop_rx.clone();
            info!(url = %listener.url()?, "serving");
            match listener {
                Listener::Http(l) => {
                    tasks.spawn(http::serve(shared, l, stop));
                }
                Listener::MsgpackTcp(l) => {
                    tasks.spawn(msgpack_rpc::serve_tcp(shared, l, stop));
                }
                Listener::MsgpackUnix(l, path) => {
                    tasks.spawn(async move {
                        msgpack_rpc::serve_unix(shared, l, stop).await;
                        let _ = std::fs::remove_file(path);
                    });
                }
                Listener::Zerorpc(socket, _) => {
                    let config = zerorpc::server::ZerorpcConfig {
                        name: self.shared.config.service_name.clone(),
                        heartbeat: self.shared.config.heartbeat,
                    };
                    tasks.spawn(zerorpc::server::serve(shared, *socket, config, stop));
                }
            }
        }
        shutdown.await;
        info!("shutting down");
        let _ = stop_tx.send(true);
        while let Some(res) = tasks.join_next().await {
            if let Err(e) = res {
                warn!(error = %e, "listener task failed");
            }
        }
        Ok(())
    }
}

impl Server {
    /// Serves one MessagePack-RPC session over standard input and output (for
    /// inetd, systemd socket activation with `Accept=yes`, or a parent process),
    /// until the input ends or `shutdown` completes.
    pub async fn serve_stdio(&self, shutdown: impl Future<Output = ()> + Send) -> io::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let shared = self.shared.clone();
        let session = msgpack_rpc::serve_connection(
            shared,
            tokio::io::stdin(),
            tokio::io::stdout(),
            None,
            stop_rx,
        );
        tokio::pin!(session);
        tokio::select! {
            _ = &mut session => {}
            _ = shutdown => {
                let _ = stop_tx.send(true);
                session.await;
            }
        }
        Ok(())
    }

    /// Accepts one connection on `listener`, serves it until it closes (or
    /// `shutdown`), then returns: the one-shot mode.
    pub async fn serve_one(
        &self,
        listener: Listener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> io::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let shared = self.shared.clone();
        let permit = shared
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| io::Error::other("server closed"))?;
        let serve = async move {
            match listener {
                Listener::Http(l) => {
                    let (stream, peer) = l.accept().await?;
                    http::serve_connection(shared, stream, peer, stop_rx, permit).await;
                }
                Listener::MsgpackTcp(l) => {
                    let (stream, peer) = l.accept().await?;
                    let _ = stream.set_nodelay(true);
                    let (r, w) = stream.into_split();
                    msgpack_rpc::serve_connection(shared, r, w, Some(peer), stop_rx).await;
                }
                Listener::MsgpackUnix(l, path) => {
                    let (stream, _) = l.accept().await?;
                    let (r, w) = stream.into_split();
                    msgpack_rpc::serve_connection(shared, r, w, None, stop_rx).await;
                    let _ = std::fs::remove_file(path);
                }
                Listener::Zerorpc(..) => {
                    return Err(io::Error::other(
                        "the one-shot mode needs a connection: use HTTP or MessagePack-RPC",
                    ))
                }
            }
            Ok::<(), io::Error>(())
        };
        tokio::pin!(serve);
        tokio::select! {
            r = &mut serve => r,
            _ = shutdown => {
                let _ = stop_tx.send(true);
                match tokio::time::timeout(self.shared.config.shutdown_grace, serve).await {
                    Ok(r) => r,
                    Err(_) => Ok(()),
                }
            }
        }
    }
}

/// Accepts connections with `accept` until shutdown, each while a connection slot
/// is free, and runs `serve` on each (it owns the slot until it returns); then
/// waits for open connections to finish, up to the grace period.
pub(crate) async fn accept_loop<C, A, AF, S, SF>(
    shared: &Shared,
    mut stop: watch::Receiver<bool>,
    mut accept: A,
    serve: S,
) where
    A: FnMut() -> AF,
    AF: Future<Output = io::Result<C>>,
    S: Fn(C, tokio::sync::OwnedSemaphorePermit, watch::Receiver<bool>) -> SF,
    SF: Future<Output = ()> + Send + 'static,
{
    let mut conns = JoinSet::new();
    loop {
        let conn = tokio::select! {
            accepted = accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            _ = stopped(&mut stop) => break,
        };
        // The slot is taken per connection, not per listener: at the cap, an
        // accepted connection waits here until another one ends.
        let Some(permit) = acquire_slot(shared, &mut stop).await else {
            break;
        };
        conns.spawn(serve(conn, permit, stop.clone()));
        while conns.try_join_next().is_some() {}
    }
    let grace = shared.config.shutdown_grace;
    let all = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(grace, all).await.is_err() {
        warn!(
            ?grace,
            "connections still open after the grace period; dropping them"
        );
    }
}

/// Waits for a connection slot, or for shutdown (then `None`).
pub(crate) async fn acquire_slot(
    shared: &Shared,
    stop: &mut watch::Receiver<bool>,
) -> Option<tokio::sync::OwnedSemaphorePermit> {
    tokio::select! {
        permit = shared.slots.clone().acquire_owned() => permit.ok(),
        _ = stopped(stop) => None,
    }
}

/// Completes once shutdown was requested.
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    while !*stop.borrow_and_update() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}

/// Logs an accept error and pauses briefly when it is a resource shortage
/// (too many open files), so the loop does not spin.
pub(crate) async fn accept_failed(e: io::Error) {
    debug!(error = %e, "accept failed");
    if e.raw_os_error() == Some(24) || e.raw_os_error() == Some(23) {
        warn!("out of file descriptors; pausing accept");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A future that completes on SIGINT (Ctrl-C) or SIGTERM: the usual trigger for
/// [`Server::run`]'s shutdown.
///
/// The handlers are installed when this is called, not when the future is first
/// polled, so call it before announcing the server: a signal that arrives from then
/// on stops the server gracefully instead of killing the process.
pub fn shutdown_signal() -> io::Result<std::pin::Pin<Box<dyn Future<Output = ()> + Send>>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        Ok(Box::pin(async move {
            tokio::select! {
                _ = interrupt.recv() => {},
                _ = terminate.recv() => {},
            }
        }))
    }
    #[cfg(not(unix))]
    {
        Ok(Box::pin(async {
            let _ = tokio::signal::ctrl_c().await;
        }))
    }
}
