//! MessagePack-RPC messages: `[0, msgid, method, params]` requests,
//! `[1, msgid, error, result]` responses and `[2, method, params]` notifications.
//!
//! Either side of a connection may send requests. A fault travels as the error
//! `[code, message]` (the shape Neovim and pynvim use); reading also accepts a
//! string, or a map with `code` and `message`.

use crate::fault::Fault;
use crate::msgpack;
use crate::value::Value;

/// One message.
#[derive(Debug, Clone, PartialEq)]
pub enum RpcMessage {
    /// A request to answer.
    Request {
        /// Echoed in the response.
        msgid: u32,
        /// The method.
        method: String,
        /// Positional parameters.
        params: Vec<Value>,
    },
    /// An answer to a request we sent.
    Response {
        /// The request's id.
        msgid: u32,
        /// Its outcome.
        outcome: Result<Value, Fault>,
    },
    /// A notification: never answered.
    Notification {
        /// The method.
        method: String,
        /// Positional parameters.
        params: Vec<Value>,
    },
}

/// Why a decoded value is not a message. `msgid` is set when the value looked like a
/// request with a readable id, so the error can be answered.
#[derive(Debug, Clone, PartialEq)]
pub struct BadMessage {
    /// The request id, if one could be read.
    pub msgid: Option<u32>,
    /// What is wrong.
    pub fault: Fault,
}

fn bad(msgid: Option<u32>, what: &str) -> BadMessage {
    BadMessage {
        msgid,
        fault: Fault::invalid_request(format!("invalid MessagePack-RPC message: {what}")),
    }
}

fn msgid(v: &Value) -> Option<u32> {
    v.as_i64().and_then(|i| u32::try_from(i).ok())
}

fn params(v: Value, id: Option<u32>) -> Result<Vec<Value>, BadMessage> {
    match v {
        Value::Array(items) => Ok(items),
        Value::Nil => Ok(Vec::new()),
        _ => Err(bad(id, "params must be an array")),
    }
}

fn method(v: Value, id: Option<u32>) -> Result<String, BadMessage> {
    match v {
        Value::String(s) => Ok(s),
        Value::Bytes(b) => String::from_utf8(b).map_err(|_| bad(id, "method is not UTF-8")),
        _ => Err(bad(id, "method must be a string")),
    }
}

/// Reads a decoded value as a message.
pub fn parse(value: Value) -> Result<RpcMessage, BadMessage> {
    let Value::Array(items) = value else {
        return Err(bad(None, "not an array"));
    };
    let mut it = items.into_iter();
    let kind = it.next().and_then(|k| k.as_i64());
    let rest: Vec<Value> = it.collect();
    match (kind, rest.len()) {
        (Some(0), 3) => {
            let mut r = rest.into_iter();
            let id_value = r.next().unwrap_or_default();
            let id = msgid(&id_value)
                .ok_or_else(|| bad(None, "msgid must be a 32-bit unsigned integer"))?;
            let method = method(r.next().unwrap_or_default(), Some(id))?;
            let params = params(r.next().unwrap_or_default(), Some(id))?;
            Ok(RpcMessage::Request {
                msgid: id,
                method,
                params,
            })
        }
        (Some(1), 3) => {
            let mut r = rest.into_iter();
            let id = msgid(&r.next().unwrap_or_default())
                .ok_or_else(|| bad(None, "bad response msgid"))?;
            let error = r.next().unwrap_or_default();
            let result = r.next().unwrap_or_default();
            let outcome = if error.is_nil() {
                Ok(result)
            } else {
                Err(fault_from_error(error))
            };
            Ok(RpcMessage::Response { msgid: id, outcome })
        }
        (Some(2), 2) => {
            let mut r = rest.into_iter();
            let method = method(r.next().unwrap_or_default(), None)?;
            let params = params(r.next().unwrap_or_default(), None)?;
            Ok(RpcMessage::Notification { method, params })
        }
        (Some(0), _) => Err(bad(
            rest.first().and_then(msgid),
            "a request has 4 elements",
        )),
        _ => Err(bad(None, "unknown message type or length")),
    }
}

/// Reads an error slot as a fault.
pub fn fault_from_error(error: Value) -> Fault {
    match error {
        Value::Array(items) if items.len() == 2 => {
            let code = items[0].as_i64().and_then(|c| i32::try_from(c).ok());
            match (code, &items[1]) {
                (Some(code), Value::String(m)) => Fault::new(code, m.clone()),
                (_, Value::String(m)) => Fault::new(Fault::APPLICATION, m.clone()),
                _ => Fault::new(Fault::APPLICATION, format!("{items:?}")),
            }
        }
        Value::String(s) => Fault::new(Fault::APPLICATION, s),
        Value::Struct(m) => {
            let code = m
                .get("code")
                .and_then(Value::as_i64)
                .and_then(|c| i32::try_from(c).ok());
            let message = m
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("error")
                .to_owned();
            Fault::new(code.unwrap_or(Fault::APPLICATION), message)
        }
        other => Fault::new(Fault::APPLICATION, format!("{other:?}")),
    }
}

/// Appends a request.
pub fn write_request(out: &mut Vec<u8>, msgid: u32, method: &str, params: &[Value]) {
    out.push(0x94);
    out.push(0x00);
    msgpack::write_int(out, i64::from(msgid));
    msgpack::write_str(out, method);
    write_array(out, params);
}

/// Appends a notification.
pub fn write_notification(out: &mut Vec<u8>, method: &str, params: &[Value]) {
    out.push(0x93);
    out.push(0x02);
    msgpack::write_str(out, method);
    write_array(out, params);
}

/// Appends a response.
pub fn write_response(out: &mut Vec<u8>, msgid: u32, outcome: &Result<Value, Fault>) {
    out.push(0x94);
    out.push(0x01);
    msgpack::write_int(out, i64::from(msgid));
    match outcome {
        Ok(v) => {
            out.push(0xc0);
            msgpack::write_value(out, v);
        }
        Err(f) => {
            out.push(0x92);
            msgpack::write_int(out, i64::from(f.code));
            msgpack::write_str(out, &f.message);
            out.push(0xc0);
        }
    }
}

fn write_array(out: &mut Vec<u8>, items: &[Value]) {
    // Encoding a borrowed slice as an array without cloning it into a Value.
    let n = items.len();
    if n < 16 {
        out.push(0x90 | n as u8);
    } else if n <= 0xffff {
        out.push(0xdc);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(0xdd);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
    for item in items {
        msgpack::write_value(out, item);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(write: impl Fn(&mut Vec<u8>)) -> RpcMessage {
        let mut out = Vec::new();
        write(&mut out);
        parse(msgpack::decode(&out, 64).unwrap()).unwrap()
    }

    #[test]
    fn messages_round_trip() {
        let params = vec![Value::from("in"), Value::Int(3)];
        assert_eq!(
            round(|o| write_request(o, 7, "stack.push", &params)),
            RpcMessage::Request {
                msgid: 7,
                method: "stack.push".into(),
                params: params.clone()
            }
        );
        assert_eq!(
            round(|o| write_notification(o, "log", &params)),
            RpcMessage::Notification {
                method: "log".into(),
                params: params.clone()
            }
        );
        let ok = Ok(Value::Array(params.clone()));
        assert_eq!(
            round(|o| write_response(o, u32::MAX, &ok)),
            RpcMessage::Response {
                msgid: u32::MAX,
                outcome: ok.clone()
            }
        );
        let fault = Err(Fault::named("StackIndexError", "empty"));
        assert_eq!(
            round(|o| write_response(o, 1, &fault)),
            RpcMessage::Response {
                msgid: 1,
                outcome: fault.clone()
            }
        );
        let many: Vec<Value> = (0..70000).map(Value::Int).collect();
        assert!(
            matches!(round(|o| write_request(o, 1, "m", &many)), RpcMessage::Request { params, .. } if params.len() == 70000)
        );
    }

    #[test]
    fn wrong_shapes_are_reported_with_the_id_when_possible() {
        let arr = |v: Vec<Value>| Value::Array(v);
        let bad_method = arr(vec![0.into(), 5.into(), 1.into(), arr(vec![])]);
        assert_eq!(parse(bad_method).unwrap_err().msgid, Some(5));
        let bad_params = arr(vec![0.into(), 6.into(), "m".into(), 3.into()]);
        assert_eq!(parse(bad_params).unwrap_err().msgid, Some(6));
        let short = arr(vec![0.into(), 8.into(), "m".into()]);
        assert_eq!(parse(short).unwrap_err().msgid, Some(8));
        for v in [
            Value::Int(1),
            arr(vec![]),
            arr(vec![3.into(), "m".into(), arr(vec![])]),
            arr(vec![0.into(), Value::Int(-1), "m".into(), arr(vec![])]),
            arr(vec![0.into(), "x".into(), "m".into(), arr(vec![])]),
        ] {
            assert_eq!(parse(v).unwrap_err().msgid, None);
        }
        assert_eq!(fault_from_error("boom".into()), Fault::new(1, "boom"));
        let nvim = Value::Array(vec![0.into(), "Invalid method".into()]);
        assert_eq!(fault_from_error(nvim), Fault::new(0, "Invalid method"));
    }
}
