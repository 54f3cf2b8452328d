//! A DEALER socket for clients: messages go out to the connected peers in turn
//! and come in from all of them, as ZeroMQ's DEALER does.
//!
//! In the usual mode it connects to servers and keeps reconnecting (with backoff)
//! while it lives; in the reversed mode it binds and servers connect to it.
//! Dropping it closes every connection.

use super::endpoint::{connect, Bound, Endpoint, Halves};
use super::{handshake, Incoming, Limits, Reader};
use bytes::Bytes;
use std::io;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;
use tracing::debug;

/// The first pause before reconnecting; it doubles up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_millis(100);
const MAX_RETRY: Duration = Duration::from_secs(2);

/// Messages one peer may have queued for writing.
const PEER_QUEUE: usize = 256;

/// The peers connected now, each with its write queue.
#[derive(Default)]
struct Peers {
    list: Mutex<Vec<(u64, mpsc::Sender<Vec<u8>>)>>,
    next: AtomicUsize,
    ids: AtomicU64,
    joined: Notify,
}

impl Peers {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(u64, mpsc::Sender<Vec<u8>>)>> {
        self.list.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn add(&self, tx: mpsc::Sender<Vec<u8>>) -> u64 {
        let id = self.ids.fetch_add(1, Ordering::Relaxed);
        self.lock().push((id, tx));
        self.joined.notify_waiters();
        id
    }

    fn remove(&self, id: u64) {
        self.lock().retain(|(i, _)| *i != id);
    }

    /// The next peer in turn.
    fn pick(&self) -> Option<(u64, mpsc::Sender<Vec<u8>>)> {
        let list = self.lock();
        if list.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % list.len();
        Some(list[i].clone())
    }
}

/// One of a dealer's connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PeerId(u64);

/// A client's DEALER socket.
pub(crate) struct Dealer {
    peers: Arc<Peers>,
    incoming: tokio::sync::Mutex<mpsc::Receiver<Vec<Bytes>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Dealer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// What every connection of one dealer needs.
#[derive(Clone)]
struct Link {
    peers: Arc<Peers>,
    incoming: mpsc::Sender<Vec<Bytes>>,
    limits: Limits,
}

impl Dealer {
    /// A dealer connected (and from then on reconnecting) to every endpoint.
    /// It fails only when no endpoint can be reached at all, so that a caller
    /// learns at once that nobody listens; messages wait until a server is
    /// connected.
    pub(crate) async fn connect(endpoints: &[String], limits: Limits) -> io::Result<Dealer> {
        let parsed = endpoints
            .iter()
            .map(|e| Endpoint::parse(e, false))
            .collect::<io::Result<Vec<_>>>()?;
        let mut first = Vec::with_capacity(parsed.len());
        let mut last_error = None;
        for endpoint in &parsed {
            match connect(endpoint, None).await {
                Ok(halves) => first.push(Some(halves)),
                Err(e) => {
                    last_error = Some(e);
                    first.push(None);
                }
            }
        }
        if first.iter().all(Option::is_none) {
            return Err(last_error.unwrap_or_else(|| io::Error::other("no endpoint")));
        }
        let (link, mut dealer) = Dealer::start(limits);
        for (endpoint, halves) in parsed.into_iter().zip(first) {
            let task = keep_connected(endpoint, halves, link.clone());
            dealer.tasks.push(tokio::spawn(task));
        }
        Ok(dealer)
    }

    /// A dealer bound to every endpoint, for servers to connect to.
    pub(crate) async fn bind(endpoints: &[String], limits: Limits) -> io::Result<Dealer> {
        let (link, mut dealer) = Dealer::start(limits);
        for e in endpoints {
            let bound = Bound::bind(&Endpoint::parse(e, true)?).await?;
            dealer
                .tasks
                .push(tokio::spawn(accept_peers(bound, link.clone())));
        }
        Ok(dealer)
    }

    fn start(limits: Limits) -> (Link, Dealer) {
        let peers = Arc::new(Peers::default());
        let (tx, rx) = mpsc::channel(1024);
        let link = Link {
            peers: peers.clone(),
            incoming: tx,
            limits,
        };
        let dealer = Dealer {
            peers,
            incoming: tokio::sync::Mutex::new(rx),
            tasks: Vec::new(),
        };
        (link, dealer)
    }

    /// Sends a message to the next peer in turn, waiting for one to be
    /// connected; returns the peer it went to.
    pub(crate) async fn send(&self, message: Vec<u8>) -> PeerId {
        let mut message = message;
        loop {
            let joined = self.peers.joined.notified();
            tokio::pin!(joined);
            joined.as_mut().enable();
            match self.peers.pick() {
                Some((id, tx)) => match tx.send(message).await {
                    Ok(()) => return PeerId(id),
                    Err(mpsc::error::SendError(back)) => {
                        // That peer just went away: try the next one.
                        self.peers.remove(id);
                        message = back;
                    }
                },
                None => joined.await,
            }
        }
    }

    /// Sends a message to one peer (the rest of a conversation goes where it
    /// started); false if that peer is gone.
    pub(crate) async fn send_to(&self, peer: PeerId, message: Vec<u8>) -> bool {
        let tx = self
            .peers
            .lock()
            .iter()
            .find(|(id, _)| *id == peer.0)
            .map(|(_, tx)| tx.clone());
        match tx {
            Some(tx) => tx.send(message).await.is_ok(),
            None => false,
        }
    }

    /// The next message from any peer; `None` once the dealer is closing.
    pub(crate) async fn recv(&self) -> Option<Vec<Bytes>> {
        self.incoming.lock().await.recv().await
    }
}

/// Keeps one endpoint connected while the dealer lives, starting with the
/// connection already made, if any.
async fn keep_connected(endpoint: Endpoint, mut first: Option<Halves>, link: Link) {
    let mut pause = FIRST_RETRY;
    loop {
        let attempt = match first.take() {
            Some(halves) => Ok(halves),
            None => connect(&endpoint, None).await,
        };
        match attempt {
            Ok(halves) => {
                if serve_peer(halves, &link).await {
                    pause = FIRST_RETRY;
                }
            }
            Err(e) => debug!(?endpoint, error = %e, "zerorpc connect failed"),
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_RETRY);
    }
}

/// Accepts servers connecting to a bound endpoint.
async fn accept_peers(bound: Bound, link: Link) {
    let mut peers = tokio::task::JoinSet::new();
    loop {
        match bound.accept(None).await {
            Ok((halves, _)) => {
                let link = link.clone();
                peers.spawn(async move {
                    serve_peer(halves, &link).await;
                });
            }
            Err(e) => crate::accept::accept_failed(e).await,
        }
        while peers.try_join_next().is_some() {}
    }
}

/// Handshakes, then carries messages both ways until the connection ends.
/// Returns whether the handshake succeeded (a real peer was there).
async fn serve_peer((reader, mut writer): Halves, link: &Link) -> bool {
    let mut reader = Reader::new(reader, link.limits);
    if let Err(e) = handshake(&mut reader, &mut writer, "DEALER").await {
        debug!(error = %e, "zerorpc handshake failed");
        return false;
    }
    let (tx, mut queue) = mpsc::channel::<Vec<u8>>(PEER_QUEUE);
    let id = link.peers.add(tx.clone());
    let write = async {
        while let Some(bytes) = queue.recv().await {
            if writer.write_all(&bytes).await.is_err() {
                break;
            }
        }
    };
    let read = async {
        loop {
            match reader.next().await {
                Ok(Incoming::Message(frames)) => {
                    if link.incoming.send(frames).await.is_err() {
                        break;
                    }
                }
                Ok(Incoming::Ping(pong)) => {
                    if tx.send(super::command(&pong)).await.is_err() {
                        break;
                    }
                }
                Err(e) => {
                    debug!(error = %e, "zerorpc connection ended");
                    break;
                }
            }
        }
    };
    tokio::select! {
        _ = write => {}
        _ = read => {}
    }
    link.peers.remove(id);
    true
}
