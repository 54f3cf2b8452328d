//! The HTTP transport: XML-RPC and JSON-RPC on POST to the RPC paths (told apart
//! by content type), over HTTP/1.1 keep-alive, and JSON-RPC over WebSocket on GET
//! with an upgrade (see `upgrade`; the session itself is [`crate::session::ws`]).
//! A plain GET gets the page (see `page`): the methods, and a live view.
//!
//! Status codes: 404 for other paths, 405 (with `Allow`) for other methods,
//! 415 for a content type or encoding that is not served, 413 for a body over
//! the size limits, 408 when the head or the body is too slow to arrive, 400 for
//! a body that cannot be read, 503 when the connection caps are reached.
//! Everything that reaches the codec is answered with 200 and an XML-RPC
//! response, faults included, as XML-RPC requires.

mod io;
mod page;
mod upgrade;

use crate::accept::{stopped, tune_tcp};
use crate::auth::Attempt;
use crate::compress::{self, Encoding, InflateError};
use crate::config::ServerConfig;
use crate::server::{Listener, Shared};
use crate::session::json::{answer_batch, answer_message};
use crate::session::Calls;
use crate::tcp::TcpEndpoint;
use crate::tls::Tls;
use bytes::Bytes;
use http::header::{
    HeaderValue, ALLOW, AUTHORIZATION, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE,
    WWW_AUTHENTICATE,
};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use io::{HttpSocket, LastWords};
use rpcs_core::{jsonrpc, xmlrpc, Context, Fault, Principal};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::debug;

/// What a connection refused at the caps is told before it is closed.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// What a client whose request head was too slow is told.
const HEAD_TIMEOUT: &[u8] =
    b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

impl Listener {
    /// Binds an HTTP listener: XML-RPC and JSON-RPC on POST, WebSocket by upgrade.
    pub async fn http(addr: &str) -> std::io::Result<Listener> {
        Ok(Listener(Box::new(TcpEndpoint {
            listener: TcpListener::bind(addr).await?,
            scheme: "http",
            path: "/",
            serve: Arc::new(|shared, stream, peer, stop| {
                Box::pin(serve_connection(shared, stream, peer, stop))
            }),
            busy: Some(BUSY),
        })))
    }

    /// Binds an HTTPS listener: as [`Listener::http`], over TLS (`https://`,
    /// and `wss://` for WebSocket).
    pub async fn https(addr: &str, tls: Arc<Tls>) -> std::io::Result<Listener> {
        Ok(Listener(Box::new(TcpEndpoint {
            listener: TcpListener::bind(addr).await?,
            scheme: "https",
            path: "/",
            serve: crate::tls::handler(
                tls,
                Arc::new(|shared, stream, peer, stop| {
                    let socket = HttpSocket::new(stream, shared.config.write_timeout);
                    Box::pin(serve_http(shared, socket, None, peer, stop))
                }),
            ),
            // Plaintext "busy" would break the client's handshake: just close.
            busy: None,
        })))
    }
}

/// The WebSocket session an HTTP connection upgraded to, once it has started.
pub(crate) type Upgraded = Arc<Mutex<Option<JoinHandle<()>>>>;

/// Serves one HTTP connection until the client closes it or shutdown, and then
/// the WebSocket it upgraded to, if it did: the connection keeps its slot, and
/// its place among the connections shutdown drains, for its whole life.
pub(crate) async fn serve_connection(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    stop: watch::Receiver<bool>,
) {
    tune_tcp(&stream, shared.config.tcp_keepalive);
    let (socket, ours) = match HttpSocket::pair(stream, shared.config.write_timeout) {
        Ok(pair) => pair,
        Err(e) => {
            debug!(%peer, error = %e, "cannot serve the connection");
            return;
        }
    };
    serve_http(shared, socket, Some(ours), peer, stop).await;
}

/// Serves HTTP on `socket` (plain or TLS); `ours` is the second handle on a
/// plain socket, for a last answer hyper would not give.
async fn serve_http<S>(
    shared: Arc<Shared>,
    socket: HttpSocket<S>,
    ours: Option<LastWords>,
    peer: SocketAddr,
    stop: watch::Receiver<bool>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let conn_id = shared.connection_id();
    let upgraded: Upgraded = Arc::default();
    let svc_shared = shared.clone();
    let svc_stop = stop.clone();
    let svc_upgraded = upgraded.clone();
    let service = service_fn(move |req| {
        let shared = svc_shared.clone();
        let stop = svc_stop.clone();
        let upgraded = svc_upgraded.clone();
        async move {
            let rpc_path = shared
                .config
                .rpc_paths
                .iter()
                .any(|p| p == req.uri().path());
            if rpc_path && upgrade::is_upgrade(&req) {
                if !upgrade::origin_allowed(&req, &shared.config.allowed_origins) {
                    return Ok::<_, Infallible>(plain(
                        StatusCode::FORBIDDEN,
                        "WebSocket from another site's page: not in allowed_origins",
                    ));
                }
                // Browsers cannot set the header: without one, the session
                // asks for an `rpc.auth` message instead.
                let principal = match authenticate(&shared, peer, req.headers(), "websocket") {
                    Ok(principal) => principal,
                    Err(Refusal::Wrong) => return Ok::<_, Infallible>(unauthorized()),
                    Err(Refusal::Missing) => None,
                };
                let ws = upgrade::Session {
                    shared,
                    peer,
                    conn_id,
                    stop,
                    principal,
                };
                return Ok::<_, Infallible>(upgrade::answer(ws, req, &upgraded));
            }
            if rpc_path && matches!(*req.method(), Method::GET | Method::HEAD) {
                return Ok::<_, Infallible>(web_page(&shared, peer, &req));
            }
            if req.uri().path() == METRICS_PATH && !rpc_path {
                return Ok::<_, Infallible>(metrics(&shared, peer, &req).await);
            }
            Ok::<_, Infallible>(handle(&shared, peer, conn_id, req).await)
        }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(shared.config.header_timeout)
        // Replies are small: one flat write beats a two-part writev.
        .writev(false)
        .serve_connection(TokioIo::new(socket), service)
        .with_upgrades();
    let mut conn_stop = stop;
    let mut conn = std::pin::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = stopped(&mut conn_stop) => {
            // Finish the request in flight, then close.
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        debug!(%peer, error = %e, "connection ended with an error");
        if let Some(ours) = ours.as_ref().filter(|o| e.is_timeout() && o.mid_request()) {
            ours.say(HEAD_TIMEOUT);
        }
    }
    // The duplicate handle must not keep the socket open after hyper is done.
    drop(ours);
    let session = upgraded.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(session) = session {
        let _ = session.await;
    }
}

type Reply = Response<Full<Bytes>>;

fn plain(status: StatusCode, text: &str) -> Reply {
    let mut resp = Response::new(Full::new(Bytes::from(format!("{text}\n"))));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

fn header(headers: &HeaderMap, name: http::header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The protocols a POST may carry, told apart by content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    XmlRpc,
    JsonRpc,
}

impl Protocol {
    fn name(self) -> &'static str {
        match self {
            Protocol::XmlRpc => "xmlrpc",
            Protocol::JsonRpc => "jsonrpc",
        }
    }
}

/// The protocol of a content type: XML-RPC for XML (or none), JSON-RPC for the
/// three JSON types JSON-RPC clients send.
fn protocol(content_type: Option<&str>) -> Option<Protocol> {
    let mime = content_type
        .and_then(|ct| ct.split(';').next())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "" | "text/xml" | "application/xml" => Some(Protocol::XmlRpc),
        "application/json" | "application/json-rpc" | "application/jsonrequest" => {
            Some(Protocol::JsonRpc)
        }
        _ => None,
    }
}

async fn handle(shared: &Shared, peer: SocketAddr, conn_id: u64, req: Request<Incoming>) -> Reply {
    let config = &shared.config;
    let (protocol, encoding) = match accepted(config, &req) {
        Ok(served) => served,
        Err(refusal) => {
            // Reading a small body first keeps the connection reusable: a body
            // left unread makes hyper close it, and a client that sent it in a
            // write of its own would find the connection gone on its next request.
            drain(req.into_body(), config.body_timeout).await;
            return *refusal;
        }
    };
    let principal = match authenticate(shared, peer, req.headers(), protocol.name()) {
        Ok(principal) => principal,
        Err(Refusal::Missing | Refusal::Wrong) => {
            drain(req.into_body(), config.body_timeout).await;
            return unauthorized();
        }
    };
    let headers = req.headers();
    let declared = header(headers, CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > config.max_request_bytes as u64) {
        return plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
    }
    let gzip_reply = compress::accepts_gzip(header(headers, http::header::ACCEPT_ENCODING));
    let body = match read_body(shared, req.into_body(), encoding).await {
        Ok(body) => body,
        Err(reply) => return reply,
    };
    if protocol == Protocol::JsonRpc {
        let mut ctx = Context::new("jsonrpc", Some(peer), conn_id);
        ctx.principal = principal;
        let limit = config.max_batch_answer_bytes;
        let answer = jsonrpc_answer(&shared.calls(), &ctx, &body, limit).await;
        let sent = answer.as_ref().map_or(0, Vec::len);
        shared.metrics.record_bytes("jsonrpc", body.len(), sent);
        return match answer {
            Some(answer) => reply(
                answer,
                "application/json",
                gzip_reply,
                config.gzip_threshold,
            ),
            // Only notifications: nothing to say. 200 with an empty body, not 204:
            // Python's jsonrpclib (client and server) treats 204 as an error.
            None => Response::new(Full::new(Bytes::new())),
        };
    }
    let outcome = match xmlrpc::decode_request(&body, &config.xml_limits) {
        Ok(call) => {
            let mut ctx = Context::new("xmlrpc", Some(peer), conn_id);
            ctx.principal = principal;
            let run = crate::session::Call::Positional(call.method, call.params);
            shared.calls().run(&ctx, run).await
        }
        Err(e) => {
            debug!(%peer, error = %e, "undecodable XML-RPC request");
            Err(Fault::from(e))
        }
    };
    let answer = xmlrpc::encode_response(&outcome);
    shared
        .metrics
        .record_bytes("xmlrpc", body.len(), answer.len());
    reply(answer, "text/xml", gzip_reply, config.gzip_threshold)
}

/// Where the server's metrics are served.
const METRICS_PATH: &str = "/metrics";

/// `GET /metrics`: every counter in the Prometheus text format. With tokens,
/// only a token that sees the whole server may read them (they name every
/// stack and listener).
async fn metrics(shared: &Shared, peer: SocketAddr, req: &Request<Incoming>) -> Reply {
    if req.method() != Method::GET {
        let mut resp = plain(StatusCode::METHOD_NOT_ALLOWED, "metrics are read with GET");
        resp.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET"));
        return resp;
    }
    match authenticate(shared, peer, req.headers(), "metrics") {
        Err(_) => return unauthorized(),
        Ok(Some(principal)) if principal.prefix.is_some() => {
            return plain(
                StatusCode::FORBIDDEN,
                "NOPERM: metrics need a token that sees the whole server",
            );
        }
        Ok(_) => {}
    }
    let failures = shared.config.auth.as_ref().map(|a| a.failures());
    let text = shared.metrics.render(failures).await;
    let mut resp = Response::new(Full::new(Bytes::from(text)));
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
    );
    resp
}

/// `GET` of an RPC path: the page with the method list and the live view.
/// With tokens, any valid token may read it (as any may list the methods).
fn web_page(shared: &Shared, peer: SocketAddr, req: &Request<Incoming>) -> Reply {
    if authenticate(shared, peer, req.headers(), "http").is_err() {
        return unauthorized();
    }
    let info = page::PageInfo {
        service: &shared.config.service_name,
        tokens: shared.config.auth.is_some(),
    };
    let html = page::render(shared.dispatcher.table(), &info);
    let gzip_ok = compress::accepts_gzip(header(req.headers(), http::header::ACCEPT_ENCODING));
    let mut resp = reply(
        html.into_bytes(),
        "text/html; charset=utf-8",
        gzip_ok,
        shared.config.gzip_threshold,
    );
    let headers = resp.headers_mut();
    if let Ok(policy) = HeaderValue::from_str(&page::POLICY) {
        headers.insert(http::header::CONTENT_SECURITY_POLICY, policy);
    }
    headers.insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        http::header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache"),
    );
    resp
}

/// Why a request's credentials were not accepted.
enum Refusal {
    /// The server asks for a token and the request has no `Authorization`.
    Missing,
    /// The header names no token (answered 401 at once).
    Wrong,
}

/// Who a request's `Authorization` header authenticates; `Ok(None)` when the
/// server asks for no authentication.
fn authenticate(
    shared: &Shared,
    peer: SocketAddr,
    headers: &HeaderMap,
    protocol: &str,
) -> Result<Option<Arc<Principal>>, Refusal> {
    let Some(auth) = &shared.config.auth else {
        return Ok(None);
    };
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Err(Refusal::Missing);
    };
    let attempt = Attempt {
        peer: &peer,
        protocol,
    };
    // A header that is not text names no token (check_header counts it).
    match auth.check_header(value.to_str().unwrap_or(""), attempt) {
        Ok(principal) => Ok(Some(principal)),
        Err(_) => Err(Refusal::Wrong),
    }
}

/// 401, with the challenge that makes browsers and HTTP libraries offer
/// credentials.
fn unauthorized() -> Reply {
    let mut resp = plain(
        StatusCode::UNAUTHORIZED,
        "authentication required: send Authorization: Bearer SECRET, or a URL with NAME:SECRET@",
    );
    resp.headers_mut().insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"rpcs\", charset=\"UTF-8\""),
    );
    resp
}

/// The protocol and encoding of an RPC request, or the answer to a request
/// this endpoint does not serve (wrong path, method, content type or encoding).
fn accepted(
    config: &ServerConfig,
    req: &Request<Incoming>,
) -> Result<(Protocol, Encoding), Box<Reply>> {
    if !config.rpc_paths.iter().any(|p| p == req.uri().path()) {
        return Err(Box::new(plain(
            StatusCode::NOT_FOUND,
            "no RPC service at this path",
        )));
    }
    if req.method() != Method::POST {
        let mut resp = plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "RPC requests use POST (GET shows the method list)",
        );
        resp.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD, POST"));
        return Err(Box::new(resp));
    }
    let headers = req.headers();
    let Some(protocol) = protocol(header(headers, CONTENT_TYPE)) else {
        return Err(Box::new(plain(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "this endpoint serves XML-RPC (text/xml) and JSON-RPC (application/json)",
        )));
    };
    let Some(encoding) = Encoding::parse(header(headers, CONTENT_ENCODING)) else {
        return Err(Box::new(plain(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported Content-Encoding (use gzip, deflate or none)",
        )));
    };
    Ok((protocol, encoding))
}

/// Reads and drops a refused request's body, if it is small and quick to come;
/// a larger or slower one is left for hyper, which then closes the connection.
async fn drain(body: Incoming, timeout: std::time::Duration) {
    const SMALL: usize = 64 * 1024;
    let small = hyper::body::Body::size_hint(&body)
        .upper()
        .is_some_and(|n| n <= SMALL as u64);
    if small {
        let read = Limited::new(body, SMALL).collect();
        let _ = tokio::time::timeout(timeout, read).await;
    }
}

/// Reads the whole body within the time and size limits, then inflates it.
async fn read_body(shared: &Shared, body: Incoming, encoding: Encoding) -> Result<Bytes, Reply> {
    let config = &shared.config;
    let mut collect = std::pin::pin!(Limited::new(body, config.max_request_bytes).collect());
    // A small body usually arrives with its headers: finish without arming a timer.
    let first = std::future::poll_fn(|cx| Poll::Ready(collect.as_mut().poll(cx))).await;
    let result = match first {
        Poll::Ready(done) => Ok(done),
        Poll::Pending => tokio::time::timeout(config.body_timeout, collect).await,
    };
    let collected = match result {
        Err(_) => return Err(plain(StatusCode::REQUEST_TIMEOUT, "request body too slow")),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(plain(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large",
            ))
        }
        Ok(Err(e)) => {
            debug!(error = %e, "request body unreadable");
            return Err(plain(StatusCode::BAD_REQUEST, "request body unreadable"));
        }
        Ok(Ok(c)) => c.to_bytes(),
    };
    if encoding == Encoding::Identity {
        return Ok(collected);
    }
    let inflated = compress::inflate(&collected, encoding, config.max_decompressed_bytes);
    inflated.map(Bytes::from).map_err(|e| match e {
        InflateError::TooLarge(_) => plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            "decompressed request body too large",
        ),
        InflateError::Corrupt(_) => plain(StatusCode::BAD_REQUEST, "corrupt compressed body"),
    })
}

fn reply(body: Vec<u8>, content_type: &'static str, gzip_ok: bool, threshold: usize) -> Reply {
    let gzipped = gzip_ok && body.len() > threshold;
    let body = if gzipped { compress::gzip(&body) } else { body };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    let headers = resp.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if gzipped {
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    resp
}

/// Answers a JSON-RPC document: one response, a batch of them (at most
/// `limit` bytes of answers), or nothing when every call was a notification.
pub(crate) async fn jsonrpc_answer(
    calls: &Calls,
    ctx: &Context,
    body: &[u8],
    limit: usize,
) -> Option<Vec<u8>> {
    match jsonrpc::decode(body) {
        jsonrpc::Incoming::Single(m) => answer_message(calls, ctx, m).await,
        jsonrpc::Incoming::Batch(items) => {
            jsonrpc::encode_batch(answer_batch(calls, ctx, items, limit).await)
        }
    }
}
