//! One session over standard input and output, for inetd, systemd socket
//! activation with `Accept=yes`, or a parent process that runs the server as
//! its child: MessagePack-RPC, or JSON-RPC with one document per line.
//!
//! The parent is trusted: the session has no idle timeout and, on a server
//! with tokens, runs with admin access without authenticating.

use crate::server::Server;
use crate::session::msgpack::PeerInfo;
use crate::session::{lines, msgpack, StreamLimits};
use rpcs_core::Principal;
use std::future::Future;
use std::io;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

impl Server {
    /// Serves one MessagePack-RPC session over standard input and output
    /// until the input ends or `shutdown` completes.
    pub async fn serve_stdio(&self, shutdown: impl Future<Output = ()> + Send) -> io::Result<()> {
        self.stdio_session(shutdown, |server, limits, stop| {
            let peer = PeerInfo {
                addr: None,
                conn_id: server.shared.connection_id(),
                trusted: true,
            };
            let io = (tokio::io::stdin(), tokio::io::stdout());
            msgpack::start(server.shared.calls(), io.0, io.1, limits, peer, stop).1
        })
        .await
    }

    /// Serves one JSON-RPC session over standard input and output, one
    /// document per line each way (calls, notifications, batches, and the
    /// answers to calls back into the parent), until the input ends or
    /// `shutdown` completes.
    pub async fn serve_stdio_jsonrpc(
        &self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> io::Result<()> {
        self.stdio_session(shutdown, |server, limits, stop| {
            let principal = Some(Arc::new(Principal::trusted("stdio")));
            let peer = lines::peer(principal, server.shared.connection_id());
            let io = (tokio::io::stdin(), tokio::io::stdout());
            lines::start(server.shared.calls(), io, limits, peer, stop).1
        })
        .await
    }

    /// Runs the session `start` makes with a parent's limits, until it ends
    /// or `shutdown` completes (then it finishes its calls first).
    async fn stdio_session<F>(
        &self,
        shutdown: impl Future<Output = ()> + Send,
        start: F,
    ) -> io::Result<()>
    where
        F: FnOnce(&Server, StreamLimits, watch::Receiver<bool>) -> JoinHandle<()>,
    {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut limits = StreamLimits::of(&self.shared.config);
        limits.idle_timeout = None;
        limits.auth_timeout = None;
        let session = start(self, limits, stop_rx);
        tokio::pin!(session);
        tokio::select! {
            _ = &mut session => {}
            _ = shutdown => {
                let _ = stop_tx.send(true);
                let _ = session.await;
            }
        }
        Ok(())
    }
}
