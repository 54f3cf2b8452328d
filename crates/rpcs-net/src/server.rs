//! The server: listeners sharing one dispatcher, with connection caps and
//! graceful shutdown.
//!
//! The server knows transports only through [`Endpoint`], the one serve
//! signature every transport implements; each transport module adds its own
//! constructors to [`Listener`] (`Listener::http`, `Listener::msgpack_tcp`, ...).

use crate::accept::Slots;
use crate::config::ServerConfig;
use crate::metrics::{Metrics, MetricsSource};
use crate::session::Calls;
use rpcs_core::auth::Access;
use rpcs_core::Value;
use rpcs_core::{BoxFuture, Dispatcher};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tracing::{info, warn};

/// What every connection handler shares.
pub(crate) struct Shared {
    pub(crate) dispatcher: Arc<Dispatcher>,
    pub(crate) config: ServerConfig,
    pub(crate) metrics: Arc<Metrics>,
    next_connection: AtomicU64,
    /// The server-wide connection cap, under which each listener has its own.
    slots: Arc<Semaphore>,
}

impl Shared {
    /// A fresh connection id.
    pub(crate) fn connection_id(&self) -> u64 {
        self.next_connection.fetch_add(1, Ordering::Relaxed)
    }

    /// The slots of a new listener named `url`.
    pub(crate) fn listener_slots(&self, url: &str) -> Arc<Slots> {
        Slots::new(
            self.slots.clone(),
            self.config.max_connections_per_listener,
            url,
            self.metrics.listener(url),
        )
    }

    /// The dispatcher under the call time limit.
    pub(crate) fn calls(&self) -> Calls {
        Calls {
            dispatcher: self.dispatcher.clone(),
            timeout: self.config.call_timeout,
            auth: self.config.auth.clone(),
            metrics: self.metrics.clone(),
        }
    }
}

/// A bound endpoint as a transport hands it to the server: the one serve
/// signature every transport implements.
pub(crate) trait Endpoint: Send + 'static {
    /// The URL a client uses to reach it.
    fn url(&self) -> String;
    /// The bound TCP address, if it is on TCP.
    fn local_addr(&self) -> Option<SocketAddr>;
    /// Serves connections, each holding a slot of `slots`, until `stop`; then
    /// drains them (up to the grace period) and returns.
    fn serve(
        self: Box<Self>,
        shared: Arc<Shared>,
        slots: Arc<Slots>,
        stop: watch::Receiver<bool>,
    ) -> BoxFuture<()>;
    /// Serves one connection until it ends (or `stop`), then returns.
    fn serve_one(
        self: Box<Self>,
        shared: Arc<Shared>,
        slots: Arc<Slots>,
        stop: watch::Receiver<bool>,
    ) -> BoxFuture<io::Result<()>>;
}

/// A socket to serve on; made by the transports' constructors
/// ([`Listener::http`], [`Listener::msgpack_tcp`], [`Listener::msgpack_unix`],
/// [`Listener::zerorpc`]).
pub struct Listener(pub(crate) Box<dyn Endpoint>);

impl Listener {
    /// The bound TCP address (useful after binding port 0); `None` for Unix
    /// sockets and zerorpc listeners.
    pub fn local_addr(&self) -> io::Result<Option<SocketAddr>> {
        Ok(self.0.local_addr())
    }

    /// The URL a client uses to reach this listener.
    pub fn url(&self) -> io::Result<String> {
        Ok(self.0.url())
    }
}

/// Adds `rpc.stats` to the table: the server's call, fault and connection
/// totals, for monitors that speak any protocol (`GET /metrics` has the
/// detail, on HTTP). The metrics it reads are made from the table, this
/// method included, so they are filled in afterwards.
fn add_stats_method(dispatcher: &mut Dispatcher) -> Arc<OnceLock<Arc<Metrics>>> {
    let metrics: Arc<OnceLock<Arc<Metrics>>> = Arc::default();
    let read = metrics.clone();
    dispatcher
        .table_mut()
        .register(
            "rpc.stats",
            "Return the server's totals: {calls, faults} answered since it started \
             (over every method and protocol) and the connections open now.",
            move || -> Value { read.get().map_or(Value::Nil, |m| m.totals()) },
        )
        .access(Access::Read);
    metrics
}

/// Serves one [`Dispatcher`] on any number of listeners.
///
/// Cloning is cheap; clones serve the same dispatcher and share the connection cap.
#[derive(Clone)]
pub struct Server {
    pub(crate) shared: Arc<Shared>,
}

impl Server {
    /// A server for `dispatcher` with the given limits.
    pub fn new(mut dispatcher: Dispatcher, config: ServerConfig) -> Server {
        if config.auth.is_some() {
            dispatcher.require_authentication();
        }
        let slots = Arc::new(Semaphore::new(config.max_connections.max(1)));
        let totals = add_stats_method(&mut dispatcher);
        let metrics = Arc::new(Metrics::new(dispatcher.table()));
        let _ = totals.set(metrics.clone());
        Server {
            shared: Arc::new(Shared {
                dispatcher: Arc::new(dispatcher),
                config,
                metrics,
                next_connection: AtomicU64::new(1),
                slots,
            }),
        }
    }

    /// Adds the application's own metrics to every `GET /metrics` (once: a
    /// second source is ignored).
    pub fn with_metrics_source(self, source: Arc<dyn MetricsSource>) -> Server {
        self.shared.metrics.set_source(source);
        self
    }

    /// The dispatcher being served.
    pub fn dispatcher(&self) -> &Dispatcher {
        &self.shared.dispatcher
    }

    /// The limits being applied.
    pub fn config(&self) -> &ServerConfig {
        &self.shared.config
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
        for Listener(endpoint) in listeners {
            let url = endpoint.url();
            info!(%url, "serving");
            let slots = self.shared.listener_slots(&url);
            tasks.spawn(endpoint.serve(self.shared.clone(), slots, stop_rx.clone()));
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

    /// Accepts one connection on `listener`, serves it until it closes (or
    /// `shutdown`), then returns: the one-shot mode.
    pub async fn serve_one(
        &self,
        listener: Listener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> io::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let Listener(endpoint) = listener;
        let slots = self.shared.listener_slots(&endpoint.url());
        let serve = endpoint.serve_one(self.shared.clone(), slots, stop_rx);
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
