//! Stream transports (MessagePack-RPC over TCP or a Unix socket, JSON-RPC over
//! WebSocket): one connection shared by every call (pipelined, answers in any
//! order), re-established with backoff after it breaks, and able to answer calls
//! and notifications the server sends back.

use super::{reconnect, ClientConfig, ClientError};
use crate::msgpack_rpc::{start, StreamLimits};
use crate::session::{RequestError, Session};
use rpcs_core::{Dispatcher, Value};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Mutex};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

#[derive(Debug, Clone)]
pub(super) enum Target {
    /// MessagePack-RPC over TCP.
    Tcp(String),
    /// MessagePack-RPC over a Unix socket.
    Unix(PathBuf),
    /// JSON-RPC over WebSocket (a ws:// URL).
    Ws(String),
}

struct State {
    session: Option<Arc<Session>>,
    backoff: Duration,
}

pub(super) struct MsgpackClient {
    target: Target,
    config: ClientConfig,
    handlers: Arc<Dispatcher>,
    state: Mutex<State>,
    // Dropping the client closes its connection.
    _stop: watch::Sender<bool>,
    stop_rx: watch::Receiver<bool>,
}

impl MsgpackClient {
    pub(super) fn new(
        target: Target,
        config: ClientConfig,
        handlers: Arc<Dispatcher>,
    ) -> MsgpackClient {
        let (stop, stop_rx) = watch::channel(false);
        MsgpackClient {
            target,
            config,
            handlers,
            state: Mutex::new(State {
                session: None,
                backoff: Duration::ZERO,
            }),
            _stop: stop,
            stop_rx,
        }
    }

    async fn connect(&self) -> Result<Arc<Session>, ClientError> {
        let limits = StreamLimits {
            max_frame: self.config.max_response_bytes,
            frame_timeout: self.config.timeout,
            max_depth: 64,
            max_in_flight: 256,
        };
        let connect_err =
            |e: std::io::Error| ClientError::Connect(format!("{:?}: {e}", self.target));
        let dispatcher = self.handlers.clone();
        let stop = self.stop_rx.clone();
        let (session, _) = match &self.target {
            Target::Tcp(addr) => {
                let stream = tokio::net::TcpStream::connect(addr)
                    .await
                    .map_err(connect_err)?;
                let _ = stream.set_nodelay(true);
                let (r, w) = stream.into_split();
                start(dispatcher, r, w, limits, None, 0, stop)
            }
            Target::Unix(path) => {
                let stream = tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(connect_err)?;
                let (r, w) = stream.into_split();
                start(dispatcher, r, w, limits, None, 0, stop)
            }
            Target::Ws(url) => {
                let config = WebSocketConfig {
                    max_message_size: Some(limits.max_frame),
                    max_frame_size: Some(limits.max_frame),
                    ..WebSocketConfig::default()
                };
                let (ws, _) =
                    tokio_tungstenite::connect_async_with_config(url.as_str(), Some(config), true)
                        .await
                        .map_err(|e| ClientError::Connect(format!("{url}: {e}")))?;
                crate::http::ws::start(dispatcher, ws, None, 0, limits.max_in_flight, stop)
            }
        };
        Ok(session)
    }

    /// The live connection, connecting (with backoff) within the call timeout.
    async fn session(&self, deadline: Instant) -> Result<Arc<Session>, ClientError> {
        let mut state = self.state.lock().await;
        if let Some(s) = &state.session {
            if !s.is_closed() {
                return Ok(s.clone());
            }
        }
        state.session = None;
        let timeout = self.config.timeout;
        let session = reconnect(deadline, &mut state.backoff, timeout, || self.connect()).await?;
        state.session = Some(session.clone());
        Ok(session)
    }

    pub(super) async fn call(&self, method: &str, params: &[Value]) -> Result<Value, ClientError> {
        let deadline = Instant::now() + self.config.timeout;
        let session = self.session(deadline).await?;
        let left = deadline.saturating_duration_since(Instant::now());
        match session.request(method, params, left).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(fault)) => Err(ClientError::Fault(fault)),
            Err(RequestError::Gone) => Err(ClientError::Connect("the connection was lost".into())),
            Err(RequestError::Timeout) => Err(ClientError::Timeout(self.config.timeout)),
        }
    }

    pub(super) async fn notify(&self, method: &str, params: &[Value]) -> Result<(), ClientError> {
        let deadline = Instant::now() + self.config.timeout;
        let session = self.session(deadline).await?;
        session
            .notification(method, params)
            .await
            .map_err(|_| ClientError::Connect("the connection was lost".into()))
    }
}
