//! Switching an HTTP connection to a WebSocket that carries JSON-RPC.

use super::Upgraded;
use crate::server::Shared;
use crate::session::{ws, StreamLimits};
use http::header::{
    HeaderValue, CONNECTION, HOST, ORIGIN, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY,
    SEC_WEBSOCKET_VERSION, UPGRADE,
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

/// Whether a browser page may open this WebSocket: a request without
/// `Origin` (a program) may; one from a page may when the page came from this
/// server (the origin's host and port are the request's `Host`) or from an
/// origin in `allowed`. Without the check any site the user visits could
/// drive a server on their loopback, with their cached credentials.
pub(crate) fn origin_allowed(req: &Request<Incoming>, allowed: &[String]) -> bool {
    let Some(origin) = req.headers().get(ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let origin = origin.trim_end_matches('/');
    if allowed
        .iter()
        .any(|a| a == "*" || a.trim_end_matches('/').eq_ignore_ascii_case(origin))
    {
        return true;
    }
    let authority = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    let host = req.headers().get(HOST).and_then(|h| h.to_str().ok());
    match (authority, host) {
        (Some(authority), Some(host)) => {
            same_authority(authority, host, origin.starts_with("https"))
        }
        _ => false,
    }
}

/// `host[:port]` against `host[:port]`, a missing port being the scheme's default.
fn same_authority(origin: &str, host: &str, https: bool) -> bool {
    let default = if https { "443" } else { "80" };
    let split = |a: &str| -> (String, String) {
        // An IPv6 literal keeps its colons inside brackets.
        match a.rfind(':').filter(|&i| !a[i..].contains(']')) {
            Some(i) => (a[..i].to_ascii_lowercase(), a[i + 1..].to_owned()),
            None => (a.to_ascii_lowercase(), default.to_owned()),
        }
    };
    split(origin) == split(host)
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

#[cfg(test)]
mod tests {
    use super::same_authority;

    #[test]
    fn authorities_match_with_default_ports_and_case() {
        assert!(same_authority("127.0.0.1:8000", "127.0.0.1:8000", false));
        assert!(same_authority("Example.com", "example.com:80", false));
        assert!(same_authority("example.com", "example.com:443", true));
        assert!(same_authority("[::1]:8000", "[::1]:8000", false));
        assert!(same_authority("[::1]", "[::1]:80", false));
    }

    #[test]
    fn other_hosts_and_ports_do_not_match() {
        assert!(!same_authority(
            "evil.example:8000",
            "127.0.0.1:8000",
            false
        ));
        assert!(!same_authority("127.0.0.1:8001", "127.0.0.1:8000", false));
        assert!(!same_authority("example.com", "example.com:80", true));
        assert!(!same_authority("[::1]:8000", "[::1]:8001", false));
    }
}
