//! RPyC's registry protocol as a transport: a UDP socket (which also takes
//! MessagePack-RPC messages, one per datagram) and a TCP listener (one request
//! per connection, as RPyC's `TCPRegistryServer`). Requests become calls of the
//! `registry.rpyc*` methods, with the sender's address in the call's context,
//! so whatever table is served decides; the answers go back in brine.
//!
//! As RPyC's server does, a request that is not one gets no answer, nor does
//! one whose call faulted (a refused registration: RPyC's client then reports
//! that no registry acknowledged it). Datagrams are read into one buffer of the
//! largest UDP size and handled by a bounded number of tasks; beyond that,
//! datagrams are dropped, so a flood costs the flooder its packets and nobody
//! else more than a share of the CPU.

use crate::accept::Slots;
use crate::server::{Endpoint, Listener, Shared};
use crate::session::{Call, Calls};
use crate::tcp::TcpEndpoint;
use rpcs_core::msgpack::{self, DEFAULT_MAX_DEPTH};
use rpcs_core::msgpack_rpc::{self, RpcMessage};
use rpcs_core::rpyc_registry::{self, Request, MAX_DATAGRAM};
use rpcs_core::{BoxFuture, Context, Fault, Value};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{watch, Semaphore};
use tracing::{debug, warn};

/// The largest UDP payload.
const MAX_UDP: usize = 65_507;

/// Datagrams handled at once; more are dropped.
const MAX_DATAGRAMS_IN_FLIGHT: usize = 256;

/// How long a TCP client has to send its request.
const TCP_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The protocol name calls over MessagePack-RPC datagrams carry (as over TCP:
/// the same values travel).
const MSGPACK: &str = "msgpack";

/// The protocol name of RPyC's requests.
const RPYC: &str = "rpyc";

impl Listener {
    /// Binds RPyC's registry protocol on UDP at `addr` (RPyC's port is
    /// [`rpyc_registry::DEFAULT_PORT`]); the socket also answers MessagePack-RPC
    /// messages, one per datagram, which is how rpcs servers register and
    /// clients look names up. Broadcasts reach it when it is bound to an
    /// unspecified address (`0.0.0.0`).
    pub async fn rpyc_udp(addr: &str) -> io::Result<Listener> {
        let socket = UdpSocket::bind(addr).await?;
        socket.set_broadcast(true)?;
        Ok(Listener(Box::new(Udp { socket })))
    }

    /// Binds RPyC's registry protocol on TCP at `addr`: one request per
    /// connection, answered, then closed.
    pub async fn rpyc_tcp(addr: &str) -> io::Result<Listener> {
        Ok(Listener(Box::new(TcpEndpoint {
            listener: TcpListener::bind(addr).await?,
            scheme: "rpyc+tcp",
            path: "",
            serve: std::sync::Arc::new(|shared, stream, peer, _stop| {
                Box::pin(serve_tcp(shared, stream, peer))
            }),
            busy: None,
        })))
    }
}

/// Answers one RPyC request by calling the registry's methods; `None` when
/// the call faulted (RPyC answers nothing then).
async fn answer(calls: &Calls, peer: SocketAddr, request: Request) -> Option<Vec<u8>> {
    let ctx = Context::new(RPYC, Some(peer), 0);
    let (method, params): (&str, Vec<Value>) = match &request {
        Request::Register { aliases, port } => (
            "registry.rpycRegister",
            vec![
                Value::Array(aliases.iter().cloned().map(Value::String).collect()),
                Value::Int((*port).into()),
            ],
        ),
        Request::Unregister { port } => {
            ("registry.rpycUnregister", vec![Value::Int((*port).into())])
        }
        Request::Query { name } => ("registry.rpycQuery", vec![Value::String(name.clone())]),
        Request::List { filter_host } => (
            "registry.rpycList",
            vec![filter_host.clone().map_or(Value::Nil, Value::String)],
        ),
    };
    let result = calls
        .run(&ctx, Call::Positional(method.to_owned(), params))
        .await;
    match (request, result) {
        (_, Err(fault)) => {
            debug!(%peer, %fault, "RPyC registry request refused");
            None
        }
        (Request::Register { .. } | Request::Unregister { .. }, Ok(_)) => {
            Some(rpyc_registry::ok_answer())
        }
        (Request::Query { .. }, Ok(v)) => Some(rpyc_registry::query_answer(&pairs(&v))),
        (Request::List { .. }, Ok(Value::Nil)) => Some(rpyc_registry::list_answer(None)),
        (Request::List { .. }, Ok(v)) => {
            let names: Vec<String> = v
                .as_array()
                .unwrap_or_default()
                .iter()
                .filter_map(|n| n.as_str().map(str::to_owned))
                .collect();
            Some(rpyc_registry::list_answer(Some(&names)))
        }
    }
}

/// `[[ip, port], ...]` as pairs.
fn pairs(v: &Value) -> Vec<(String, u16)> {
    v.as_array()
        .unwrap_or_default()
        .iter()
        .filter_map(|pair| match pair.as_array()? {
            [ip, port] => Some((ip.as_str()?.to_owned(), u16::try_from(port.as_i64()?).ok()?)),
            _ => None,
        })
        .collect()
}

/// Answers one MessagePack-RPC message that came in a datagram; `None` for
/// a notification, a response, or bytes that are not a message.
async fn answer_msgpack(calls: &Calls, peer: SocketAddr, data: &[u8]) -> Option<Vec<u8>> {
    let value = msgpack::decode(data, DEFAULT_MAX_DEPTH).ok()?;
    let ctx = Context::new(MSGPACK, Some(peer), 0);
    let (msgid, method, params) = match msgpack_rpc::parse(value) {
        Ok(RpcMessage::Request {
            msgid,
            method,
            params,
        }) => (Some(msgid), method, params),
        Ok(RpcMessage::Notification { method, params }) => (None, method, params),
        Ok(RpcMessage::Response { .. }) => return None,
        Err(bad) => {
            let id = bad.msgid?;
            return Some(response(id, &Err(bad.fault)));
        }
    };
    let result = calls.run(&ctx, Call::Positional(method, params)).await;
    let msgid = msgid?;
    let mut out = response(msgid, &result);
    if out.len() > MAX_UDP {
        let fault = Fault::new(
            Fault::LIMIT_EXCEEDED,
            format!("the answer of {} bytes does not fit a datagram", out.len()),
        );
        out = response(msgid, &Err(fault));
    }
    Some(out)
}

fn response(msgid: u32, outcome: &Result<Value, Fault>) -> Vec<u8> {
    let mut out = Vec::new();
    msgpack_rpc::write_response(&mut out, msgid, outcome);
    out
}

/// Whether a datagram is MessagePack-RPC rather than brine: a message is an
/// array of three or four (`0x93`, `0x94`); a brine request is a tuple of
/// three (`0x12`).
fn is_msgpack(data: &[u8]) -> bool {
    matches!(data.first(), Some(0x93 | 0x94))
}

/// Answers one datagram, if it asks for an answer.
async fn answer_datagram(calls: &Calls, peer: SocketAddr, data: &[u8]) -> Option<Vec<u8>> {
    if is_msgpack(data) {
        return answer_msgpack(calls, peer, data).await;
    }
    if data.len() > MAX_DATAGRAM {
        // RPyC's server reads at most this much: the rest is not a request.
        return None;
    }
    match rpyc_registry::parse_request(data) {
        Ok(request) => answer(calls, peer, request).await,
        Err(e) => {
            debug!(%peer, error = %e, "not a registry request");
            None
        }
    }
}

struct Udp {
    socket: UdpSocket,
}

impl Endpoint for Udp {
    fn url(&self) -> String {
        match self.socket.local_addr() {
            Ok(addr) => format!("rpyc+udp://{addr}"),
            Err(_) => "rpyc+udp://?".into(),
        }
    }

    fn local_addr(&self) -> Option<SocketAddr> {
        self.socket.local_addr().ok()
    }

    fn serve(
        self: Box<Self>,
        shared: Arc<Shared>,
        _slots: Arc<Slots>,
        stop: watch::Receiver<bool>,
    ) -> BoxFuture<()> {
        Box::pin(serve_udp(shared, Arc::new(self.socket), stop))
    }

    fn serve_one(
        self: Box<Self>,
        _shared: Arc<Shared>,
        _slots: Arc<Slots>,
        _stop: watch::Receiver<bool>,
    ) -> BoxFuture<io::Result<()>> {
        Box::pin(async {
            Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "a UDP listener has no connection to serve once",
            ))
        })
    }
}

async fn serve_udp(shared: Arc<Shared>, socket: Arc<UdpSocket>, mut stop: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(MAX_DATAGRAMS_IN_FLIGHT));
    let dropped = AtomicU64::new(0);
    let mut buf = vec![0u8; MAX_UDP];
    loop {
        let (n, peer) = tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok(got) => got,
                // An ICMP error from an earlier answer's destination, or a
                // datagram cut short: nothing to do but read the next.
                Err(e) => {
                    debug!(error = %e, "UDP receive failed");
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            if dropped.fetch_add(1, Ordering::Relaxed).is_power_of_two() {
                warn!(
                    dropped = dropped.load(Ordering::Relaxed),
                    "datagrams dropped: too many at once"
                );
            }
            continue;
        };
        let data = buf[..n].to_vec();
        let calls = shared.calls();
        let socket = socket.clone();
        tokio::spawn(async move {
            if let Some(reply) = answer_datagram(&calls, peer, &data).await {
                if let Err(e) = socket.send_to(&reply, peer).await {
                    debug!(%peer, error = %e, "UDP answer not sent");
                }
            }
            drop(permit);
        });
    }
}

/// Reads one request from a TCP connection (until it decodes, RPyC's limit,
/// the end of the stream or the deadline), answers it, and closes.
async fn serve_tcp(shared: Arc<Shared>, mut stream: TcpStream, peer: SocketAddr) {
    let mut buf = Vec::with_capacity(MAX_DATAGRAM);
    let read = tokio::time::timeout(TCP_REQUEST_TIMEOUT, async {
        let mut chunk = [0u8; MAX_DATAGRAM];
        loop {
            let room = MAX_DATAGRAM - buf.len();
            let n = stream.read(&mut chunk[..room]).await?;
            buf.extend_from_slice(&chunk[..n]);
            match rpyc_registry::parse_request(&buf) {
                Ok(request) => return Ok::<_, io::Error>(Some(request)),
                Err(_) if n == 0 || buf.len() >= MAX_DATAGRAM => return Ok(None),
                Err(_) => continue,
            }
        }
    })
    .await;
    let request = match read {
        Ok(Ok(Some(request))) => request,
        Ok(Ok(None)) | Err(_) => return,
        Ok(Err(e)) => {
            debug!(%peer, error = %e, "RPyC registry connection failed");
            return;
        }
    };
    if let Some(reply) = answer(&shared.calls(), peer, request).await {
        let _ = stream.write_all(&reply).await;
        let _ = stream.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_are_told_apart_by_their_first_byte() {
        let query = rpyc_registry::encode_request(&Request::Query { name: "X".into() });
        assert!(!is_msgpack(&query));
        let mut call = Vec::new();
        msgpack_rpc::write_request(&mut call, 1, "registry.lookup", &[Value::from("X")]);
        assert!(is_msgpack(&call));
        let mut note = Vec::new();
        msgpack_rpc::write_notification(&mut note, "registry.register", &[Value::Nil]);
        assert!(is_msgpack(&note));
    }
}
