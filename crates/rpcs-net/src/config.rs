//! The limits and behaviour of a server: every bound on what a client may make
//! the server hold (connections, bytes, calls, time), each configurable.

use crate::auth::Authenticator;
use rpcs_core::xmlrpc;
use std::sync::Arc;
use std::time::Duration;

/// Limits and behaviour of a [`Server`](crate::Server); every bound applies per
/// request, per connection or per listener as its name says.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Connections served at once over all listeners. A connection beyond it is
    /// refused at once (HTTP gets a 503) rather than left waiting.
    pub max_connections: usize,
    /// Connections served at once on any one listener, so that one protocol (or
    /// one flood of idle sockets) cannot take the slots of the others.
    pub max_connections_per_listener: usize,
    /// The largest request body accepted, as sent (compressed or not); also the
    /// largest MessagePack-RPC frame, WebSocket message and ZeroMQ message.
    pub max_request_bytes: usize,
    /// The largest request body accepted after decompression.
    pub max_decompressed_bytes: usize,
    /// The most bytes of answers one JSON-RPC batch (or `system.multicall`)
    /// may produce: once its answers reach it, the calls left are not run and get
    /// a limit error instead. A call that ran is always answered in full.
    pub max_batch_answer_bytes: usize,
    /// Time allowed to receive a request's headers (also bounds an idle keep-alive wait).
    pub header_timeout: Duration,
    /// Time allowed to receive a request's body once its headers arrived, and the
    /// rest of a stream frame once it started.
    pub body_timeout: Duration,
    /// Time allowed for a ZeroMQ greeting and handshake, or a WebSocket upgrade.
    pub handshake_timeout: Duration,
    /// A stream connection (MessagePack-RPC, WebSocket, zerorpc peer) that sends
    /// nothing for this long while it has no call in flight and nothing (such as a
    /// subscription) holding it open is closed.
    pub idle_timeout: Duration,
    /// TCP keepalive: probes start after this much silence, so a peer that vanished
    /// (a crashed host, a cut cable) is found; `None` turns keepalive off.
    pub tcp_keepalive: Option<Duration>,
    /// The longest one call may run; `None` (the default) sets no limit. A call
    /// over it is answered with a limit fault.
    pub call_timeout: Option<Duration>,
    /// Replies larger than this are gzipped when the client accepts gzip.
    pub gzip_threshold: usize,
    /// The HTTP paths that serve RPC: POST for calls, GET with an upgrade for
    /// WebSocket, plain GET for the page listing the methods.
    pub rpc_paths: Vec<String>,
    /// Web origins (`https://dash.example.com`) whose pages may open a
    /// WebSocket here besides this server's own page. A browser sends any
    /// site's page's sockets with the user's credentials and to loopback, so
    /// an upgrade naming another origin is refused unless listed here; clients
    /// that send no `Origin` (programs, not browsers) are not affected.
    pub allowed_origins: Vec<String>,
    /// Depth and size bounds for XML-RPC documents (the depth bounds every codec).
    pub xml_limits: xmlrpc::Limits,
    /// Calls one stream connection or zerorpc peer may have running at once.
    pub max_in_flight: usize,
    /// Encoded answers one connection may have waiting to be written; when a
    /// client does not read them, the server stops reading its requests.
    pub max_queued_bytes: usize,
    /// A connection whose client takes none of its answers for this long is
    /// closed, freeing its slot and the calls waiting to answer (HTTP too: a
    /// slow-read attack ends here).
    pub write_timeout: Duration,
    /// The service name zerorpc's `_zerorpc_name` answers.
    pub service_name: String,
    /// zerorpc's heartbeat interval; a peer silent for two is gone.
    pub heartbeat: Duration,
    /// How long shutdown waits for in-flight requests before dropping them.
    pub shutdown_grace: Duration,
    /// The tokens callers must present; `None` serves everyone (the default,
    /// fit for loopback only). With tokens, every call needs a principal: HTTP
    /// by its `Authorization` header, a stream by a first `auth` call, zerorpc
    /// by an `auth` key in each event's header; stdio trusts its parent.
    pub auth: Option<Arc<Authenticator>>,
    /// A stream connection (MessagePack-RPC, WebSocket) that has not
    /// authenticated this long after it opened is closed, so sockets that
    /// never authenticate cannot hold the connection slots.
    pub auth_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_connections: 16_384,
            max_connections_per_listener: 10_240,
            max_request_bytes: 16 << 20,
            max_decompressed_bytes: 16 << 20,
            max_batch_answer_bytes: 32 << 20,
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            tcp_keepalive: Some(Duration::from_secs(60)),
            call_timeout: None,
            gzip_threshold: 1400,
            rpc_paths: vec!["/".into(), "/RPC2".into()],
            allowed_origins: Vec::new(),
            xml_limits: xmlrpc::Limits::default(),
            max_in_flight: 256,
            max_queued_bytes: 1 << 20,
            write_timeout: Duration::from_secs(60),
            service_name: "rpcs".into(),
            heartbeat: crate::zerorpc::DEFAULT_HEARTBEAT,
            shutdown_grace: Duration::from_secs(10),
            auth: None,
            auth_timeout: Duration::from_secs(3),
        }
    }
}
