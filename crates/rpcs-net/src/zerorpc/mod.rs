//! zerorpc over ZeroMQ: the server (ROUTER) serving the method table, and the
//! client (DEALER) transport.
//!
//! Every call is a channel: the request's `message_id` names it, and every later
//! event on it carries that id as `response_to`, in the same MessagePack type. Both
//! sides send `_zpc_hb` on each open channel every heartbeat interval and drop a
//! channel whose peer has been silent for two. Streams are paced by credits: each
//! side starts with one and `_zpc_more [n]` grants n more.

pub(crate) mod client;
pub(crate) mod server;

use bytes::Bytes;
use rpcs_core::zerorpc::{self, Event, Id};
use rpcs_core::{Fault, Value};
use std::time::Duration;
use zeromq::ZmqMessage;

/// How often each side of an open channel says it is alive.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(5);

/// A fresh event id.
pub(crate) fn new_id() -> Id {
    Id::random(fastrand::u128(..))
}

/// The payload of a received message: its last frame (routers put the sender's
/// identity and an empty delimiter first; be lenient about what comes before).
pub(crate) fn payload(message: &ZmqMessage) -> Option<&Bytes> {
    message.get(message.len().checked_sub(1)?)
}

/// A message carrying one event, after `prefix` frames (identity and delimiter).
pub(crate) fn message(prefix: &[Bytes], event: &Event) -> ZmqMessage {
    let mut m = ZmqMessage::from(zerorpc::encode(event));
    for frame in prefix.iter().rev() {
        m.push_front(frame.clone());
    }
    m
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
