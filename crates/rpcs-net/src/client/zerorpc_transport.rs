//! The zerorpc client: a DEALER socket connected to (or, in the reversed mode,
//! bound for) servers, one channel per call.
//!
//! While a call waits, the client heartbeats its channel; a server silent for two
//! heartbeat intervals is lost, and the socket is recreated (with backoff) for the
//! next call, because a ZeroMQ DEALER does not find a restarted peer by itself.
//! Streamed results are paced like Python's client: 100 credits after the first
//! item, topped up whenever fewer than 50 remain.

use super::retry::reconnect;
use super::{ClientConfig, ClientError};
use crate::zerorpc::{fault_from_err, message, new_id};
use crate::zmtp::dealer::Dealer;
use crate::zmtp::Limits;
use bytes::Bytes;
use rpcs_core::zerorpc::{self, names, Event, Id};
use rpcs_core::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Events one call may have waiting for its caller.
const CALL_QUEUE: usize = 256;

type Routes = Arc<Mutex<HashMap<Id, mpsc::Sender<Event>>>>;

/// One socket and its reader.
struct Conn {
    dealer: Arc<Dealer>,
    routes: Routes,
    broken: Arc<AtomicBool>,
}

impl Conn {
    fn is_broken(&self) -> bool {
        self.broken.load(Ordering::Acquire)
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.broken.store(true, Ordering::Release);
    }
}

struct State {
    conn: Option<Arc<Conn>>,
    backoff: Duration,
}

/// Where the client's socket goes.
#[derive(Debug, Clone)]
pub(crate) enum Endpoints {
    /// Connect to these servers (the usual mode).
    Connect(Vec<String>),
    /// Bind these endpoints and wait for servers to connect (the reversed mode).
    Bind(Vec<String>),
}

/// The zerorpc transport of a [`Client`](super::Client).
pub(crate) struct ZerorpcTransport {
    endpoints: Endpoints,
    config: ClientConfig,
    heartbeat: Duration,
    state: tokio::sync::Mutex<State>,
}

/// What a call answered: one value, or a stream that was handed item by item
/// to the caller.
pub(crate) enum Answer {
    Value(Value),
    Streamed,
}

impl ZerorpcTransport {
    pub(crate) fn new(
        endpoints: Endpoints,
        config: ClientConfig,
        heartbeat: Duration,
    ) -> ZerorpcTransport {
        ZerorpcTransport {
            endpoints,
            config,
            heartbeat,
            state: tokio::sync::Mutex::new(State {
                conn: None,
                backoff: Duration::ZERO,
            }),
        }
    }

    async fn open(&self) -> Result<Arc<Conn>, ClientError> {
        let limits = Limits {
            max_message: self.config.max_response_bytes,
            handshake: self.config.timeout,
            message: self.config.timeout,
        };
        let dealer = match &self.endpoints {
            Endpoints::Connect(list) => Dealer::connect(list, limits).await,
            Endpoints::Bind(list) => Dealer::bind(list, limits).await,
        }
        .map_err(|e| ClientError::NotSent(e.to_string()))?;
        let dealer = Arc::new(dealer);
        let routes: Routes = Arc::new(Mutex::new(HashMap::new()));
        let broken = Arc::new(AtomicBool::new(false));
        let (reader_dealer, reader_routes, reader_broken) =
            (dealer.clone(), routes.clone(), broken.clone());
        tokio::spawn(async move {
            while !reader_broken.load(Ordering::Acquire) {
                // Wake now and then to notice that the client let go of this socket.
                let Ok(frames) =
                    tokio::time::timeout(Duration::from_secs(1), reader_dealer.recv()).await
                else {
                    continue;
                };
                let Some(frames) = frames else { break };
                route(&reader_routes, &frames).await;
            }
            // Whoever still waits learns the socket is gone.
            reader_routes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clear();
        });
        Ok(Arc::new(Conn {
            dealer,
            routes,
            broken,
        }))
    }

    /// The live socket, recreated (with backoff) within the call's deadline.
    async fn conn(&self, deadline: Instant) -> Result<Arc<Conn>, ClientError> {
        let mut state = self.state.lock().await;
        if let Some(c) = &state.conn {
            if !c.is_broken() {
                return Ok(c.clone());
            }
        }
        state.conn = None;
        let timeout = self.config.timeout;
        let conn = reconnect(
            deadline,
            &mut state.backoff,
            timeout,
            self.config.retry_connect,
            || self.open(),
        )
        .await?;
        state.conn = Some(conn.clone());
        Ok(conn)
    }

    /// Calls `method`; a streamed result goes item by item to `each` (and the
    /// answer is [`Answer::Streamed`]).
    pub(crate) async fn call(
        &self,
        method: &str,
        params: &[Value],
        each: &mut (dyn FnMut(Value) + Send),
    ) -> Result<Answer, ClientError> {
        let deadline = Instant::now() + self.config.timeout;
        let conn = self.conn(deadline).await?;
        let channel = new_id();
        let (route, mut events) = mpsc::channel(CALL_QUEUE);
        conn.routes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(channel.clone(), route);
        let result = self
            .exchange(&conn, &channel, method, params, deadline, &mut events, each)
            .await;
        conn.routes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&channel);
        if matches!(result, Err(ClientError::Connect(_))) {
            conn.broken.store(true, Ordering::Release);
        }
        result
    }

    #[allow(clippy::too_many_arguments)]
    async fn exchange(
        &self,
        conn: &Conn,
        channel: &Id,
        method: &str,
        params: &[Value],
        deadline: Instant,
        events: &mut mpsc::Receiver<Event>,
        each: &mut (dyn FnMut(Value) + Send),
    ) -> Result<Answer, ClientError> {
        let delimiter = [Bytes::new()];
        let send = |name: &str, args: Value, opens: bool| {
            let event = if opens {
                Event {
                    message_id: channel.clone(),
                    version: Some(3),
                    response_to: None,
                    name: name.to_owned(),
                    args,
                    auth: self.config.credentials.as_ref().map(|c| c.secret.clone()),
                }
            } else {
                Event::on_channel(new_id(), channel.clone(), name, args)
            };
            message(&delimiter, &event)
        };
        let lost = || ClientError::Connect("the server stopped answering (lost heartbeat)".into());
        let timeout = || ClientError::Timeout(self.config.timeout);
        // A DEALER waits for a peer to send to; the call's deadline bounds that.
        let request = conn
            .dealer
            .send(send(method, Value::Array(params.to_vec()), true));
        let server = tokio::time::timeout_at(deadline, request)
            .await
            .map_err(|_| timeout())?;
        // Heartbeats and credits go to the server that has the call.
        let out = |m: Vec<u8>| async move {
            match tokio::time::timeout_at(deadline, conn.dealer.send_to(server, m)).await {
                Ok(true) => Ok(()),
                Ok(false) => Err(lost()),
                Err(_) => Err(timeout()),
            }
        };
        let mut last_seen = Instant::now();
        let mut beat = tokio::time::interval_at(Instant::now() + self.heartbeat, self.heartbeat);
        let mut credits_left: i64 = 0;
        loop {
            let event = tokio::select! {
                e = events.recv() => match e {
                    Some(e) => e,
                    None => return Err(lost()),
                },
                _ = beat.tick() => {
                    if last_seen.elapsed() > self.heartbeat * 2 {
                        return Err(lost());
                    }
                    let beat = send(names::HEARTBEAT, Value::Array(vec![Value::Int(0)]), false);
                    out(beat).await?;
                    continue;
                }
                _ = tokio::time::sleep_until(deadline) => return Err(timeout()),
            };
            last_seen = Instant::now();
            match event.name.as_str() {
                names::OK => {
                    let value = match event.args {
                        Value::Array(mut a) if !a.is_empty() => a.swap_remove(0),
                        other => other,
                    };
                    return Ok(Answer::Value(value));
                }
                names::ERR => return Err(ClientError::Fault(fault_from_err(&event.args))),
                names::STREAM => {
                    each(event.args);
                    credits_left -= 1;
                    if credits_left < 50 {
                        let grant = 100 - credits_left.max(0);
                        credits_left += grant;
                        let more = send(names::MORE, Value::Array(vec![Value::Int(grant)]), false);
                        out(more).await?;
                    }
                }
                names::STREAM_DONE => return Ok(Answer::Streamed),
                _ => {}
            }
        }
    }
}

/// Hands an event to the call waiting on its channel; drops anything else.
async fn route(routes: &Routes, frames: &[Bytes]) {
    let Some(event) = frames.last().and_then(|p| zerorpc::decode(p).ok()) else {
        return;
    };
    let Some(channel) = event.response_to.clone() else {
        return;
    };
    let route = routes
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&channel)
        .cloned();
    if let Some(route) = route {
        let _ = route.send(event).await;
    }
}
