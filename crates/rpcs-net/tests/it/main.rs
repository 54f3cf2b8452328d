//! Integration tests for rpcs-net over real sockets on 127.0.0.1.

mod auth;
mod client;
mod http_server;
mod limits;
mod streams;
mod tls;
mod zerorpc;

use rpcs_core::{Context, Dispatcher, Fault, MethodTable, Value};
use rpcs_net::{Listener, Server, ServerConfig};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;

/// A running test server; dropping `stop` shuts it down.
pub struct Running {
    pub addr: SocketAddr,
    pub url: String,
    pub stop: Option<oneshot::Sender<()>>,
    pub task: JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Requests shutdown and waits for the server to return.
    pub async fn shutdown(mut self) {
        let _ = self.stop.take().map(|s| s.send(()));
        self.task.await.unwrap().unwrap();
    }
}

pub fn table() -> MethodTable {
    let mut t = MethodTable::new();
    t.register("add", "Add.", |a: i64, b: i64| a + b);
    t.register("echo", "Echo.", |v: Value| v);
    t.register("conn", "The caller's connection id.", |ctx: Context| {
        ctx.connection_id
    });
    t.register("fail", "Fails.", || -> Result<(), Fault> {
        Err(Fault::named("StackIndexError", "empty"))
    });
    t.register_async(
        "sleep",
        "Sleeps for ms milliseconds.",
        |ms: u64| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            ms
        },
    );
    t
}

/// A method `gate` that says when it has started and returns only once let
/// go: the way a test holds a call in flight without guessing at durations.
#[derive(Clone, Default)]
pub struct Gate {
    started: Arc<Notify>,
    open: Arc<Notify>,
}

impl Gate {
    /// Adds `gate()` to `t`.
    pub fn register(&self, t: &mut MethodTable) {
        let gate = self.clone();
        t.register_async("gate", "Waits until the test lets it go.", move || {
            let gate = gate.clone();
            async move {
                gate.started.notify_one();
                gate.open.notified().await;
                true
            }
        });
    }

    /// Waits until a `gate` call is running.
    pub async fn started(&self) {
        self.started.notified().await;
    }

    /// Lets one `gate` call finish.
    pub fn open(&self) {
        self.open.notify_one();
    }
}

/// The task serving a test server, and the way to stop it.
pub type Serving = (oneshot::Sender<()>, JoinHandle<std::io::Result<()>>);

/// Serves `table` on `listeners` until the returned sender fires (or drops).
pub fn serve(listeners: Vec<Listener>, table: MethodTable, config: ServerConfig) -> Serving {
    let server = Server::new(Dispatcher::new(table), config);
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        server
            .run(listeners, async {
                let _ = rx.await;
            })
            .await
    });
    (tx, task)
}

pub async fn start(config: ServerConfig) -> Running {
    start_with(config, table()).await
}

/// Serves `t` over HTTP.
pub async fn start_with(config: ServerConfig, t: MethodTable) -> Running {
    let listener = Listener::http("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().unwrap();
    let (tx, task) = serve(vec![listener], t, config);
    Running {
        addr,
        url: format!("http://{addr}/"),
        stop: Some(tx),
        task,
    }
}
