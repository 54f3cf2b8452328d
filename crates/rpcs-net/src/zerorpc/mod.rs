//! zerorpc over ZeroMQ: what both sides share (events on the wire, faults as
//! `ERR` triples), the server's listener, and the server itself (`server`). The
//! client is [`crate::client`]'s zerorpc transport; the ZeroMQ connections are
//! [`crate::zmtp`]'s.
//!
//! Every call is a channel: the request's `message_id` names it, and every later
//! event on it carries that id as `response_to`, in the same MessagePack type. Both
//! sides send `_zpc_hb` on each open channel every heartbeat interval and drop a
//! channel whose peer has been silent for two. Streams are paced by credits: each
//! side starts with one and `_zpc_more [n]` grants n more.

mod builtins;
pub(crate) mod server;

use crate::accept::Slots;
use crate::server::{Endpoint, Listener, Shared};
use crate::zmtp::endpoint::{self, Bound};
use bytes::Bytes;
use rpcs_core::zerorpc::{self, Event, Id};
use rpcs_core::{BoxFuture, Fault, Value};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How often each side of an open channel says it is alive.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(5);

/// A fresh event id.
pub(crate) fn new_id() -> Id {
    Id::random(fastrand::u128(..))
}

/// A message carrying one event, after `prefix` frames (routing identities and
/// the empty delimiter), encoded for the wire.
pub(crate) fn message(prefix: &[Bytes], event: &Event) -> Vec<u8> {
    let payload = Bytes::from(zerorpc::encode(event));
    let frames: Vec<&[u8]> = prefix
        .iter()
        .map(|f| f.as_ref())
        .chain(std::iter::once(payload.as_ref()))
        .collect();
    crate::zmtp::encode(&frames)
}

impl Listener {
    /// A zerorpc listener bound to every `binds` endpoint and connected to every
    /// `connects` one (the reversed mode, where the server connects to a client or
    /// queue that binds). Endpoints are ZeroMQ's: `tcp://HOST:PORT`, `ipc:///path`.
    pub async fn zerorpc(binds: &[String], connects: &[String]) -> io::Result<Listener> {
        let mut bound = Vec::new();
        for b in binds {
            let endpoint = endpoint::Endpoint::parse(b, true)?;
            let listener = Bound::bind(&endpoint)
                .await
                .map_err(|e| io::Error::new(e.kind(), format!("bind {b}: {e}")))?;
            bound.push(listener);
        }
        let connects = connects
            .iter()
            .map(|c| endpoint::Endpoint::parse(c, false).map(|e| (c.clone(), e)))
            .collect::<io::Result<Vec<_>>>()?;
        if bound.is_empty() && connects.is_empty() {
            return Err(io::Error::other(
                "a zerorpc listener needs an endpoint to bind or connect",
            ));
        }
        Ok(Listener(Box::new(Zerorpc { bound, connects })))
    }
}

/// The zerorpc endpoints of one listener: those it binds and those it connects to.
struct Zerorpc {
    bound: Vec<Bound>,
    connects: Vec<(String, endpoint::Endpoint)>,
}

impl Endpoint for Zerorpc {
    fn url(&self) -> String {
        let bound = self.bound.iter().map(Bound::url);
        let connected = self.connects.iter().map(|(text, _)| text.clone());
        bound.chain(connected).collect::<Vec<_>>().join(" ")
    }

    fn local_addr(&self) -> Option<SocketAddr> {
        None
    }

    fn serve(
        self: Box<Self>,
        shared: Arc<Shared>,
        slots: Arc<Slots>,
        stop: watch::Receiver<bool>,
    ) -> BoxFuture<()> {
        Box::pin(server::serve(
            shared,
            slots,
            self.bound,
            self.connects,
            stop,
        ))
    }

    fn serve_one(
        self: Box<Self>,
        _: Arc<Shared>,
        _: Arc<Slots>,
        _: watch::Receiver<bool>,
    ) -> BoxFuture<io::Result<()>> {
        Box::pin(async {
            Err(io::Error::other(
                "the one-shot mode needs a connection: use HTTP or MessagePack-RPC",
            ))
        })
    }
}

/// The `ERR` arguments `[name, message, traceback]` of a fault: the error name
/// (from a `Name: detail` message), the detail, and as the traceback the line
/// `Name: detail` (Python's `RemoteError` shows its traceback when it has one).
pub(crate) fn err_args(fault: &Fault) -> Value {
    let (name, detail) = match fault.name() {
        Some(name) => (
            name.to_owned(),
            fault.message[name.len() + 1..].trim_start().to_owned(),
        ),
        None => (format!("Fault{}", fault.code), fault.message.clone()),
    };
    let traceback = format!("{name}: {detail}");
    Value::Array(vec![
        Value::String(name),
        Value::String(detail),
        Value::String(traceback),
    ])
}

/// The fault an `ERR` event carries.
pub(crate) fn fault_from_err(args: &Value) -> Fault {
    let parts = args.as_array().unwrap_or_default();
    let text = |i: usize| parts.get(i).and_then(Value::as_str).unwrap_or("");
    let (name, detail) = (text(0), text(1));
    if let Some(code) = name
        .strip_prefix("Fault")
        .and_then(|c| c.parse::<i32>().ok())
    {
        return Fault::new(code, detail);
    }
    if name.is_empty() {
        return Fault::named("RemoteError", detail);
    }
    Fault::named(name, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_travel_as_err_triples() {
        for fault in [
            Fault::named("StackIndexError", "pop from empty stack"),
            Fault::method_not_found("nope"),
            Fault::new(Fault::APPLICATION, "plain message"),
        ] {
            let args = err_args(&fault);
            assert_eq!(fault_from_err(&args), fault, "{args:?}");
        }
        let python = Value::Array(vec![
            "ValueError".into(),
            "math domain error".into(),
            "Traceback...".into(),
        ]);
        assert_eq!(
            fault_from_err(&python),
            Fault::named("ValueError", "math domain error")
        );
    }
}
