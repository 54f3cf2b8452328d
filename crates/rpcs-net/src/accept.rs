//! Connection accounting, the one accept path of every transport.
//!
//! Each connection holds a slot of its listener and one of the server from the
//! moment it is accepted until its task ends (a WebSocket that an HTTP connection
//! upgraded to included), and that task lives in the listener's set, so shutdown
//! drains it. A connection beyond either cap is refused at once, with a word where
//! the protocol has one, instead of waiting unserved in the backlog.

use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tracing::{debug, warn};

use crate::metrics::ListenerStats;

/// The slots of one listener, under the server's.
pub(crate) struct Slots {
    global: Arc<Semaphore>,
    local: Arc<Semaphore>,
    listener: String,
    stats: Arc<ListenerStats>,
    /// When a refusal was last logged (milliseconds since `start`), so a flood
    /// of refused connections logs once a second, not once per connection.
    last_warning: AtomicU64,
    start: Instant,
}

/// A held slot: dropping it frees the listener's and the server's.
pub(crate) struct Slot {
    _local: OwnedSemaphorePermit,
    _global: OwnedSemaphorePermit,
    stats: Arc<ListenerStats>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.stats.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Slots {
    /// Slots for a listener (named `listener` in logs) allowing `per_listener`
    /// connections, each also taking one of `global`.
    pub(crate) fn new(
        global: Arc<Semaphore>,
        per_listener: usize,
        listener: &str,
        stats: Arc<ListenerStats>,
    ) -> Arc<Slots> {
        Arc::new(Slots {
            global,
            local: Arc::new(Semaphore::new(per_listener.max(1))),
            listener: listener.to_owned(),
            stats,
            last_warning: AtomicU64::new(u64::MAX),
            start: Instant::now(),
        })
    }

    /// A slot, if both caps allow one more connection.
    pub(crate) fn try_take(&self) -> Option<Slot> {
        let Ok(local) = self.local.clone().try_acquire_owned() else {
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        let Ok(global) = self.global.clone().try_acquire_owned() else {
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
            self.refused("the server");
            return None;
        };
        Some(self.slot(local, global))
    }

    /// Waits for a slot (the one-shot mode serves one connection and may wait).
    pub(crate) async fn take(&self) -> Option<Slot> {
        let local = self.local.clone().acquire_owned().await.ok()?;
        let global = self.global.clone().acquire_owned().await.ok()?;
        Some(self.slot(local, global))
    }

    fn slot(&self, local: OwnedSemaphorePermit, global: OwnedSemaphorePermit) -> Slot {
        self.stats.accepted.fetch_add(1, Ordering::Relaxed);
        self.stats.open.fetch_add(1, Ordering::Relaxed);
        Slot {
            _local: local,
            _global: global,
            stats: self.stats.clone(),
        }
    }

    fn refused(&self, whose: &str) {
        let now = self.start.elapsed().as_millis() as u64;
        let last = self.last_warning.load(Ordering::Relaxed);
        if last != u64::MAX && now.saturating_sub(last) < 1000 {
            return;
        }
        self.last_warning.store(now, Ordering::Relaxed);
        warn!(listener = %self.listener, "connection cap of {whose} reached; refusing connections");
    }
}

/// Accepts connections with `accept` until shutdown and runs `serve` on each
/// that gets a slot (the slot is held until `serve` returns); a connection that
/// gets none goes to `refuse`, which may say why before it is closed. Returns the
/// connections still open, for the caller to [`drain`] once it has closed the
/// listening socket (so that new clients are refused, not left in the backlog).
pub(crate) async fn accept_loop<C, A, AF, S, SF, R>(
    slots: &Slots,
    mut stop: watch::Receiver<bool>,
    mut accept: A,
    serve: S,
    refuse: R,
) -> JoinSet<()>
where
    A: FnMut() -> AF,
    AF: Future<Output = io::Result<C>>,
    S: Fn(C, watch::Receiver<bool>) -> SF,
    SF: Future<Output = ()> + Send + 'static,
    R: Fn(C),
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
        match slots.try_take() {
            Some(slot) => {
                let served = serve(conn, stop.clone());
                conns.spawn(async move {
                    served.await;
                    drop(slot);
                });
            }
            None => {
                if slots.local.available_permits() == 0 {
                    slots.refused("this listener");
                }
                refuse(conn);
            }
        }
        while conns.try_join_next().is_some() {}
    }
    conns
}

/// Waits for `tasks` to finish, up to `grace`; dropping the set aborts the rest.
pub(crate) async fn drain(mut tasks: JoinSet<()>, grace: Duration) {
    let all = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(grace, all).await.is_err() {
        warn!(
            ?grace,
            remaining = tasks.len(),
            "connections still open after the grace period; dropping them"
        );
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

/// Sets up an accepted or connected TCP socket: no Nagle delay (RPC messages are
/// small and latency-bound), and keepalive probes after `keepalive` of silence,
/// so a peer that vanished without a word is found and its slot freed.
pub(crate) fn tune_tcp(stream: &tokio::net::TcpStream, keepalive: Option<Duration>) {
    let _ = stream.set_nodelay(true);
    if let Some(idle) = keepalive {
        let probes = socket2::TcpKeepalive::new()
            .with_time(idle)
            .with_interval(Duration::from_secs(10))
            .with_retries(6);
        let _ = socket2::SockRef::from(stream).set_tcp_keepalive(&probes);
    }
}
