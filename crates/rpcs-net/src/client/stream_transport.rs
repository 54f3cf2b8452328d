//! Stream transports (MessagePack-RPC over TCP or a Unix socket, JSON-RPC over
//! WebSocket): one connection shared by every call (pipelined, answers in any
//! order), re-established with backoff after it breaks, and able to answer calls
//! and notifications the server sends back.

use super::retry::reconnect;
use super::{ClientConfig, ClientError};
use crate::metrics::Metrics;
use crate::session::msgpack::{start, PeerInfo};
use crate::session::{ws, Calls, RequestError, Session, StreamLimits};
use crate::TlsConnector;
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
    /// MessagePack-RPC over TLS over TCP (host:port).
    Tls(String, TlsConnector),
    /// JSON-RPC over WebSocket over TLS (a wss:// URL).
    Wss(String, TlsConnector),
}

/// A WebSocket client's frame and message bounds.
fn ws_config(limits: &StreamLimits) -> WebSocketConfig {
    WebSocketConfig {
        max_message_size: Some(limits.max_frame),
        max_frame_size: Some(limits.max_frame),
        ..WebSocketConfig::default()
    }
}

/// A TCP connection to `addr` with TLS over it: a failed connection is
/// `NotSent`, a failed handshake `Tls` (not retried).
async fn tls_stream(
    addr: &str,
    tls: &TlsConnector,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, ClientError> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| ClientError::NotSent(format!("{addr}: {e}")))?;
    let _ = stream.set_nodelay(true);
    tls.connect(addr, stream)
        .await
        .map_err(|e| ClientError::Tls(format!("{addr}: {e}")))
}

struct State {
    session: Option<Arc<Session>>,
    backoff: Duration,
}

pub(super) struct StreamTransport {
    target: Target,
    config: ClientConfig,
    handlers: Arc<Dispatcher>,
    state: Mutex<State>,
    // Dropping the client closes its connection.
    _stop: watch::Sender<bool>,
    stop_rx: watch::Receiver<bool>,
}

impl StreamTransport {
    pub(super) fn new(
        target: Target,
        config: ClientConfig,
        handlers: Arc<Dispatcher>,
    ) -> StreamTransport {
        let (stop, stop_rx) = watch::channel(false);
        StreamTransport {
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
        let limits = StreamLimits::client(self.config.max_response_bytes, self.config.timeout);
        let client = PeerInfo {
            addr: None,
            conn_id: 0,
            trusted: false,
        };
        let connect_err =
            |e: std::io::Error| ClientError::NotSent(format!("{:?}: {e}", self.target));
        let calls = Calls {
            dispatcher: self.handlers.clone(),
            timeout: None,
            auth: None,
            // Calls the server makes to this client are counted nowhere.
            metrics: Arc::new(Metrics::new(self.handlers.table())),
        };
        let stop = self.stop_rx.clone();
        let (session, _) = match &self.target {
            Target::Tcp(addr) => {
                let stream = tokio::net::TcpStream::connect(addr)
                    .await
                    .map_err(connect_err)?;
                let _ = stream.set_nodelay(true);
                let (r, w) = stream.into_split();
                start(calls, r, w, limits, client, stop)
            }
            Target::Unix(path) => {
                let stream = tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(connect_err)?;
                let (r, w) = stream.into_split();
                start(calls, r, w, limits, client, stop)
            }
            Target::Ws(url) => {
                let config = ws_config(&limits);
                let (ws, _) =
                    tokio_tungstenite::connect_async_with_config(url.as_str(), Some(config), true)
                        .await
                        .map_err(|e| ClientError::NotSent(format!("{url}: {e}")))?;
                ws::start(calls, ws, limits, (None, 0), None, stop)
            }
            Target::Tls(addr, tls) => {
                let (r, w) = tokio::io::split(tls_stream(addr, tls).await?);
                start(calls, r, w, limits, client, stop)
            }
            Target::Wss(url, tls) => {
                let authority = url["wss://".len()..].split('/').next().unwrap_or("");
                let addr = if authority
                    .rsplit_once(':')
                    .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
                {
                    authority.to_owned()
                } else {
                    format!("{authority}:443")
                };
                let stream = tls_stream(&addr, tls).await?;
                let config = ws_config(&limits);
                let (ws, _) =
                    tokio_tungstenite::client_async_with_config(url.as_str(), stream, Some(config))
                        .await
                        .map_err(|e| ClientError::NotSent(format!("{url}: {e}")))?;
                ws::start(calls, ws, limits, (None, 0), None, stop)
            }
        };
        self.authenticate(&session).await?;
        Ok(session)
    }

    /// Presents the configured credentials with a first `auth` call, before
    /// any other call can use the connection.
    async fn authenticate(&self, session: &Session) -> Result<(), ClientError> {
        let Some(credentials) = &self.config.credentials else {
            return Ok(());
        };
        let method = match self.target {
            Target::Ws(_) | Target::Wss(..) => "rpc.auth",
            Target::Tcp(_) | Target::Unix(_) | Target::Tls(..) => "auth",
        };
        let params = credentials.auth_params();
        match session.request(method, &params, self.config.timeout).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(fault)) => Err(ClientError::Fault(fault)),
            Err(RequestError::Timeout) => Err(ClientError::Timeout(self.config.timeout)),
            Err(_) => Err(ClientError::NotSent(
                "the connection closed while authenticating".into(),
            )),
        }
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
        let session = reconnect(
            deadline,
            &mut state.backoff,
            timeout,
            self.config.retry_connect,
            || self.connect(),
        )
        .await?;
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
            Err(RequestError::TooMany) => {
                Err(ClientError::Connect("too many calls in flight".into()))
            }
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
