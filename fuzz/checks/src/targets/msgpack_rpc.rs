//! `msgpack_rpc::parse` of whatever `msgpack::decode` reads from arbitrary
//! bytes: never a panic; a message it accepts is written back by
//! `write_request` / `write_response` / `write_notification` to bytes that parse
//! to the same message; a refused one names a msgid only where the value was a
//! request carrying that id. Then the same bytes build messages that must round
//! trip as well.

use crate::{gen, mapping};
use arbitrary::Unstructured;
use rpcs_core::msgpack::{self, DEFAULT_MAX_DEPTH};
use rpcs_core::msgpack_rpc::{
    parse, write_notification, write_request, write_response, RpcMessage,
};
use rpcs_core::{Fault, Value};

/// Runs the target on one input.
pub fn check(data: &[u8]) {
    if let Ok(value) = msgpack::decode(data, DEFAULT_MAX_DEPTH) {
        parse_and_rewrite(value);
    }
    if let Ok(message) = message(&mut Unstructured::new(data)) {
        let back = parse(reread(&write(&message))).expect("a written message parses");
        assert_same(&back, &message);
    }
}

fn parse_and_rewrite(value: Value) {
    match parse(value.clone()) {
        Ok(message) => {
            let back = parse(reread(&write(&message))).expect("a re-written message parses");
            assert_same(&back, &message);
        }
        Err(bad) => {
            if let Some(id) = bad.msgid {
                let items = value.as_array().unwrap_or_default();
                assert!(
                    items.first() == Some(&Value::Int(0))
                        && items.get(1) == Some(&Value::Int(id.into())),
                    "msgid {id} reported for {value:?}"
                );
            }
        }
    }
}

fn reread(bytes: &[u8]) -> Value {
    msgpack::decode(bytes, DEFAULT_MAX_DEPTH + 1).expect("a written message decodes")
}

/// Writes a message with the codec's writers.
pub fn write(message: &RpcMessage) -> Vec<u8> {
    let mut out = Vec::new();
    match message {
        RpcMessage::Request {
            msgid,
            method,
            params,
        } => write_request(&mut out, *msgid, method, params),
        RpcMessage::Response { msgid, outcome } => write_response(&mut out, *msgid, outcome),
        RpcMessage::Notification { method, params } => write_notification(&mut out, method, params),
    }
    out
}

/// Checks that a message came back as sent; a fault loses its data (the error
/// slot is `[code, message]`).
pub fn assert_same(got: &RpcMessage, sent: &RpcMessage) {
    let same = match (got, sent) {
        (
            RpcMessage::Request {
                msgid: a,
                method: m,
                params: p,
            },
            RpcMessage::Request {
                msgid: b,
                method: n,
                params: q,
            },
        ) => a == b && m == n && mapping::same_list(p, q),
        (
            RpcMessage::Notification {
                method: m,
                params: p,
            },
            RpcMessage::Notification {
                method: n,
                params: q,
            },
        ) => m == n && mapping::same_list(p, q),
        (
            RpcMessage::Response {
                msgid: a,
                outcome: x,
            },
            RpcMessage::Response {
                msgid: b,
                outcome: y,
            },
        ) => {
            let y = y.as_ref().map_err(mapping::msgpack_rpc_fault).cloned();
            a == b && mapping::same_outcome(x, &y)
        }
        _ => false,
    };
    assert!(same, "sent {sent:?}, got {got:?}");
}

/// A message built from fuzz bytes.
pub fn message(u: &mut Unstructured) -> arbitrary::Result<RpcMessage> {
    Ok(match u.int_in_range(0..=2)? {
        0 => RpcMessage::Request {
            msgid: u.arbitrary()?,
            method: gen::string(u)?,
            params: gen::values(u, gen::MAX_DEPTH)?,
        },
        1 => RpcMessage::Notification {
            method: gen::string(u)?,
            params: gen::values(u, gen::MAX_DEPTH)?,
        },
        _ => RpcMessage::Response {
            msgid: u.arbitrary()?,
            outcome: if u.arbitrary()? {
                Ok(gen::value(u, gen::MAX_DEPTH)?)
            } else {
                Err(Fault::new(u.arbitrary()?, gen::string(u)?))
            },
        },
    })
}
