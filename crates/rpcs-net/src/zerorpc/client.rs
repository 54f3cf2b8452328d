//! The zerorpc client: a DEALER socket connected to (or, in the reversed mode,
//! bound for) servers, one channel per call.
//!
//! While a call waits, the client heartbeats its channel; a server silent for two
//! heartbeat intervals is lost, and the socket is recreated (with backoff) for the
//! next call, because a ZeroMQ DEALER does not find a restarted peer by itself.
//! Streamed results are paced like Python's client: 100 credits after the first
//! item, topped up whenever fewer than 50 remain.

use super::{fault_from_err, message, new_id, payload};
use crate::client::{reconnect, ClientConfig, ClientError};
use bytes::Bytes;
use rpcs_core::zerorpc::{self, names, Event, Id};
use rpcs_core::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use zeromq::{DealerSocket, Socket, SocketRecv, SocketSend, ZmqMessage};

type Routes = Arc<Mutex<HashMap<Id, mpsc::UnboundedSender<Event>>>>;

/// One socket and its reader.
struct Conn {
    out: mpsc::Sender<ZmqMessage>,
    routes: Routes,
    broken: Arc<AtomicBool>,
}

impl Conn {
    fn is_broken(&self) -> bool {
        self.broken.load(Ordering::Acquire) || self.out.is_closed()
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

pub(crate) struct ZerorpcClient {
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

impl ZerorpcClient {
    pub(crate) fn new(
        endpoints: Endpoints,
        config: ClientConfig,
        heartbeat: Duration,
    ) -> ZerorpcClient {
        ZerorpcClient {
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
        let mut socket = DealerSocket::new();
        match &self.endpoints {
            Endpoints::Connect(list) => {
                for e in list {
                    socket
                        .connect(e)
                        .await
                        .map_err(|err| ClientError::Connect(format!("{e}: {err}")))?;
                }
            }
            Endpoints::Bind(list) => {
                for e in list {
                    socket
                        .bind(e)
                        .await
                        .map_err(|err| ClientError::Connect(format!("bind {e}: {err}")))?;
                }
            }
        }
        let (mut send, mut recv) = socket.split();
        let (out, mut queue) = mpsc::channel::<ZmqMessage>(1024);
        let routes: Routes = Arc::new(Mutex::new(HashMap::new()));
        let broken = Arc::new(AtomicBool::new(false));
        let writer_broken = broken.clone();
        tokio::spawn(async move {
            'queue: while let Some(mut m) = queue.recv().await {
                loop {
                    match send.send(m).await {
                        Ok(()) => break,
                        // No server yet (a bound socket waits for one to connect, as a
                        // ZeroMQ DEALER blocks): try again shortly, until the caller
                        // gives up on this socket.
                        Err(zeromq::ZmqError::ReturnToSender { message, .. })
                            if !writer_broken.load(Ordering::Acquire) =>
                        {
                            m = message;
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        Err(_) => {
                            writer_broken.store(true, Ordering::Release);
                            break 'queue;
                        }
                    }
                }
            }
        });
        let (reader_routes, reader_broken) = (routes.clone(), broken.clone());
        tokio::spawn(async move {
            while !reader_broken.load(Ordering::Acquire) {
                // Wake now and then to notice that the client let go of this socket.
                let Ok(msg) = tokio::time::timeout(Duration::from_secs(1), recv.recv()).await
                else {
                    continue;
                };
                let Ok(msg) = msg else {
                    reader_broken.store(true, Ordering::Release);
                    break;
                };
                let Some(event) = payload(&msg).and_then(|p| zerorpc::decode(p).ok()) else {
                    continue;
                };
                let Some(channel) = event.response_to.clone() else {
                    continue;
                };
                let route = reader_routes
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&channel)
                    .cloned();
                if let Some(route) = route {
                    let _ = route.send(event);
                }
            }
            // Whoever still waits learns the socket is gone.
            reader_routes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clear();
        });
        Ok(Arc::new(Conn {
            out,
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
        let conn = reconnect(deadline, &mut state.backoff, timeout, || self.open()).await?;
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
        let (route, mut events) = mpsc::unbounded_channel();
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
        events: &mut mpsc::UnboundedReceiver<Event>,
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
                }
            } else {
                Event::on_channel(new_id(), channel.clone(), name, args)
            };
            message(&delimiter, &event)
        };
        let lost = || ClientError::Connect("the server stopped answering (lost heartbeat)".into());
        conn.out
            .send(send(method, Value::Array(params.to_vec()), true))
            .await
            .map_err(|_| lost())?;
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
                    let _ = conn.out.send(send(names::HEARTBEAT, Value::Array(vec![Value::Int(0)]), false)).await;
                    continue;
                }
                _ = tokio::time::sleep_until(deadline) => return Err(ClientError::Timeout(self.config.timeout)),
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
                        let _ = conn.out.send(more).await;
                    }
                }
                names::STREAM_DONE => return Ok(Answer::Streamed),
                _ => {}
            }
        }
    }
}
