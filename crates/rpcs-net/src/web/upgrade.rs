//! Switching an HTTP connection to a WebSocket that carries JSON-RPC.

use super::Upgraded;
use crate::server::Shared;
use crate::session::{ws, StreamLimits};
use http::header::{
    HeaderValue, CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION,
    UPGRADE,
};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::TokioIo;
use rpcs_core::Principal;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;
use tracing::debug;

/// Whether the request asks to upgrade to a WebSocket.
pub(crate) fn is_upgrade(req: &Request<Incoming>) -> bool {
    let has = |name, token: &str| {
        req.headers().get_all(name).iter().any(|v| {
            v.to_str()
                .map(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
                .unwrap_or(false)
        })
    };
    has(CONNECTION, "upgrade") && has(UPGRADE, "websocket")
}

/// Who the WebSocket session will serve.
pub(crate) struct Session {
    pub shared: Arc<Shared>,
    pub peer: SocketAddr,
    pub conn_id: u64,
    pub stop: watch::Receiver<bool>,
    /// Who the upgrade request's `Authorization` header authenticated, if it
    /// had one; without, the session's first message must be `rpc.auth`.
    pub principal: Option<Arc<Principal>>,
}

/// Answers the upgrade request and starts the session once the connection has
/// switched; the session's task goes to `upgraded`, for the connection to wait on.
pub(crate) fn answer(
    session: Session,
    req: Request<Incoming>,
    upgraded: &Upgraded,
) -> Response<Full<Bytes>> {
    let version_ok = req
        .headers()
        .get(SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v.as_bytes() == b"13");
    let Some(key) = req.headers().get(SEC_WEBSOCKET_KEY).cloned() else {
        return status(StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key");
    };
    if !version_ok {
        let mut resp = status(
            StatusCode::UPGRADE_REQUIRED,
            "WebSocket version 13 required",
        );
        resp.headers_mut()
            .insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        return resp;
    }
    let accept = derive_accept_key(key.as_bytes());
    let task = tokio::spawn(run(session, req));
    *upgraded.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = resp.headers_mut();
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        headers.insert(SEC_WEBSOCKET_ACCEPT, v);
    }
    resp
}

/// Waits for the switch, then serves the WebSocket until it closes.
async fn run(s: Session, req: Request<Incoming>) {
    let upgraded = match hyper::upgrade::on(req).await {
        Ok(upgraded) => upgraded,
        Err(e) => {
            debug!(peer = %s.peer, error = %e, "WebSocket upgrade failed");
            return;
        }
    };
    let limits = &s.shared.config;
    let config = WebSocketConfig {
        max_message_size: Some(limits.max_request_bytes),
        max_frame_size: Some(limits.max_request_bytes),
        // Pongs to a client that sends pings and reads nothing would pile up
        // without a bound; past it tungstenite keeps only the latest. Our own
        // answers go out in fragments that fit.
        max_write_buffer_size: ws::MAX_WRITE_BUFFER,
        ..WebSocketConfig::default()
    };
    let ws =
        WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await;
    let limits = StreamLimits::of(&s.shared.config);
    let calls = s.shared.calls();
    let (_, task) = ws::start(
        calls,
        ws,
        limits,
        (Some(s.peer), s.conn_id),
        s.principal,
        s.stop,
    );
    let _ = task.await;
}

fn status(code: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(format!("{text}\n"))));
    *resp.status_mut() = code;
    resp
}
