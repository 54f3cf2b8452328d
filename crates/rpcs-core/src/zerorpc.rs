//! The zerorpc event codec (protocol v3).
//!
//! An event is the MessagePack array `[header, name, args]`. The header is a map
//! with string keys: `message_id` (the sender's id for this event), `v` (3), and on
//! every event after a channel's first, `response_to` (the channel id). Ids are
//! kept as they arrived, `str` or `bin`, because Python's zerorpc drops a reply whose
//! `response_to` has another type than its request's `message_id`. Unknown header
//! keys are ignored.

use crate::msgpack::{self, DecodeError};
use crate::value::{Map, Value};

/// An event id, in the MessagePack type it arrived in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Id {
    /// A `str` id.
    Str(String),
    /// A `bin` id (what Python's zerorpc sends).
    Bin(Vec<u8>),
}

impl Id {
    /// A new random id: 32 lowercase hex characters, as `bin` like Python's.
    pub fn random(seed: u128) -> Id {
        Id::Bin(format!("{seed:032x}").into_bytes())
    }

    fn from_value(v: Value) -> Option<Id> {
        match v {
            Value::String(s) => Some(Id::Str(s)),
            Value::Bytes(b) => Some(Id::Bin(b)),
            _ => None,
        }
    }

    fn to_value(&self) -> Value {
        match self {
            Id::Str(s) => Value::String(s.clone()),
            Id::Bin(b) => Value::Bytes(b.clone()),
        }
    }
}

/// One event. Its `Debug` output leaves the secret out.
#[derive(Clone, PartialEq)]
pub struct Event {
    /// This event's id.
    pub message_id: Id,
    /// The protocol version (3; `None` when absent, which means version 1).
    pub version: Option<i64>,
    /// The channel this event belongs to; `None` on the event that opens one.
    pub response_to: Option<Id>,
    /// The event name: a method name on a request, else `OK`, `ERR`, `STREAM`,
    /// `STREAM_DONE`, `_zpc_hb`, `_zpc_more`.
    pub name: String,
    /// The arguments.
    pub args: Value,
    /// The `auth` header key: a token's secret, on servers that ask for one
    /// (zerorpc has no connection-level security, so every request carries it).
    pub auth: Option<String>,
}

/// Names of the events a channel carries besides requests.
pub mod names {
    /// A call's result: args `[result]`.
    pub const OK: &str = "OK";
    /// A call's failure: args `[name, message, traceback]`.
    pub const ERR: &str = "ERR";
    /// One item of a streamed result: args are the item itself.
    pub const STREAM: &str = "STREAM";
    /// The end of a stream: args nil.
    pub const STREAM_DONE: &str = "STREAM_DONE";
    /// A heartbeat: args `[0]`.
    pub const HEARTBEAT: &str = "_zpc_hb";
    /// A grant of credits: args `[n]`.
    pub const MORE: &str = "_zpc_more";
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Event")
            .field("message_id", &self.message_id)
            .field("version", &self.version)
            .field("response_to", &self.response_to)
            .field("name", &self.name)
            .field("args", &self.args)
            .field("auth", &self.auth.as_ref().map(|_| "(secret)"))
            .finish()
    }
}

impl Event {
    /// An event answering (or continuing) the channel `channel`.
    pub fn on_channel(message_id: Id, channel: Id, name: &str, args: Value) -> Event {
        Event {
            message_id,
            version: Some(3),
            response_to: Some(channel),
            name: name.to_owned(),
            args,
            auth: None,
        }
    }

    /// Whether this event opens a channel (a request).
    pub fn opens_channel(&self) -> bool {
        self.response_to.is_none()
    }
}

fn invalid(msg: &str) -> DecodeError {
    DecodeError::Invalid(format!("invalid zerorpc event: {msg}"))
}

/// Decodes an event from one message frame.
pub fn decode(bytes: &[u8]) -> Result<Event, DecodeError> {
    let value = msgpack::decode(bytes, msgpack::DEFAULT_MAX_DEPTH)?;
    let Value::Array(parts) = value else {
        return Err(invalid("not an array"));
    };
    let [header, name, args]: [Value; 3] = parts
        .try_into()
        .map_err(|_| invalid("not [header, name, args]"))?;
    let Value::Struct(mut header) = header else {
        return Err(invalid("the header is not a map"));
    };
    let message_id = header
        .swap_remove("message_id")
        .and_then(Id::from_value)
        .ok_or_else(|| invalid("message_id must be str or bin"))?;
    let version = match header.swap_remove("v") {
        None => None,
        Some(Value::Int(v)) => Some(v),
        Some(_) => return Err(invalid("v must be an integer")),
    };
    let response_to = match header.swap_remove("response_to") {
        None | Some(Value::Nil) => None,
        Some(v) => {
            Some(Id::from_value(v).ok_or_else(|| invalid("response_to must be str or bin"))?)
        }
    };
    // A secret that is not text is no secret: the call then has none.
    let auth = header.swap_remove("auth").and_then(event_name);
    let name = event_name(name).ok_or_else(|| invalid("the name must be a UTF-8 str or bin"))?;
    Ok(Event {
        message_id,
        version,
        response_to,
        name,
        args,
        auth,
    })
}

/// An event's name, which may arrive as `str` or as UTF-8 `bin`.
fn event_name(name: Value) -> Option<String> {
    match name {
        Value::String(s) => Some(s),
        Value::Bytes(b) => String::from_utf8(b).ok(),
        _ => None,
    }
}

/// The header and name of an event whose arguments cannot be decoded (a value
/// beyond what [`Value`] holds), so the channel can still be answered; `None` if
/// even those cannot be read.
pub fn decode_head(bytes: &[u8]) -> Option<(Id, Option<Id>, String)> {
    let rest = bytes.strip_prefix(&[0x93])?;
    let (header, used) = msgpack::decode_prefix(rest, msgpack::DEFAULT_MAX_DEPTH).ok()?;
    let (name, _) = msgpack::decode_prefix(&rest[used..], 1).ok()?;
    let Value::Struct(mut header) = header else {
        return None;
    };
    let message_id = Id::from_value(header.swap_remove("message_id")?)?;
    let response_to = header.swap_remove("response_to").and_then(Id::from_value);
    Some((message_id, response_to, event_name(name)?))
}

/// Encodes an event: header keys in the order Python writes them.
pub fn encode(event: &Event) -> Vec<u8> {
    let mut header = Map::with_capacity(3);
    header.insert("message_id".into(), event.message_id.to_value());
    if let Some(v) = event.version {
        header.insert("v".into(), Value::Int(v));
    }
    if let Some(to) = &event.response_to {
        header.insert("response_to".into(), to.to_value());
    }
    if let Some(auth) = &event.auth {
        header.insert("auth".into(), Value::String(auth.clone()));
    }
    let mut out = Vec::with_capacity(64);
    out.push(0x93);
    msgpack::write_value(&mut out, &Value::Struct(header));
    msgpack::write_str(&mut out, &event.name);
    msgpack::write_value(&mut out, &event.args);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn the_python_test_vector_decodes_and_re_encodes_byte_for_byte() {
        let bytes = unhex("9382aa6d6573736167655f6964c4203061356565306563633565343466653339366530623665326130313638323332a17603a568656c6c6f91a3525043");
        let event = decode(&bytes).unwrap();
        assert_eq!(
            event.message_id,
            Id::Bin(b"0a5ee0ecc5e44fe396e0b6e2a0168232".to_vec())
        );
        assert_eq!(event.version, Some(3));
        assert!(event.opens_channel());
        assert_eq!(event.name, "hello");
        assert_eq!(event.args, Value::Array(vec![Value::from("RPC")]));
        assert_eq!(encode(&event), bytes);
    }

    #[test]
    fn replies_echo_the_id_type() {
        for channel in [Id::Bin(b"abc".to_vec()), Id::Str("abc".into())] {
            let reply = Event::on_channel(
                Id::random(7),
                channel.clone(),
                names::OK,
                Value::Array(vec![Value::Int(1)]),
            );
            let back = decode(&encode(&reply)).unwrap();
            assert_eq!(back.response_to, Some(channel));
            assert_eq!(back, reply);
        }
        assert_eq!(
            Id::random(255),
            Id::Bin(b"000000000000000000000000000000ff".to_vec())
        );
    }

    #[test]
    fn malformed_events_are_errors() {
        let enc = |v: Value| msgpack::encode(&v);
        let header = |pairs: Vec<(&str, Value)>| {
            Value::Struct(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
        };
        let ok_header = header(vec![("message_id", Value::Bytes(b"x".to_vec()))]);
        assert!(decode(&[0xc1]).is_err());
        assert!(decode(&enc(Value::Int(1))).is_err());
        assert!(decode(&enc(Value::Array(vec![ok_header.clone(), "m".into()]))).is_err());
        assert!(decode(&enc(Value::Array(vec![
            Value::Int(1),
            "m".into(),
            Value::Nil
        ])))
        .is_err());
        assert!(decode(&enc(Value::Array(vec![
            header(vec![]),
            "m".into(),
            Value::Nil
        ])))
        .is_err());
        let bad_id = header(vec![("message_id", Value::Int(5))]);
        assert!(decode(&enc(Value::Array(vec![bad_id, "m".into(), Value::Nil]))).is_err());
        let bad_v = header(vec![("message_id", "x".into()), ("v", "3".into())]);
        assert!(decode(&enc(Value::Array(vec![bad_v, "m".into(), Value::Nil]))).is_err());
        assert!(decode(&enc(Value::Array(vec![
            ok_header.clone(),
            Value::Int(3),
            Value::Nil
        ])))
        .is_err());
        // Unknown header keys are ignored; no "v" means protocol 1.
        let extra = header(vec![("message_id", "x".into()), ("zzz", Value::Nil)]);
        let e = decode(&enc(Value::Array(vec![extra, "m".into(), Value::Nil]))).unwrap();
        assert_eq!(e.version, None);
        // Arguments beyond what a Value holds: the head can still be read.
        let mut raw = vec![0x93];
        raw.extend(enc(ok_header));
        raw.extend(enc("m".into()));
        raw.extend([0x91, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        assert!(decode(&raw).is_err());
        assert_eq!(
            decode_head(&raw),
            Some((Id::Bin(b"x".to_vec()), None, "m".to_owned()))
        );
        assert_eq!(decode_head(&[0x92, 0xc0]), None);
    }

    #[test]
    fn the_head_of_an_event_named_in_bin_is_read() {
        // Found by fuzzing: decode read a `bin` name, decode_head refused it, so a
        // request named in bin with unreadable arguments could not be answered.
        let mut raw = vec![0x93];
        raw.extend(msgpack::encode(&Value::Struct(
            [("message_id".to_owned(), Value::Bytes(b"e".to_vec()))]
                .into_iter()
                .collect(),
        )));
        raw.extend(msgpack::encode(&Value::Bytes(b"ERR".to_vec())));
        raw.extend([0x91, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        assert!(decode(&raw).is_err());
        assert_eq!(
            decode_head(&raw),
            Some((Id::Bin(b"e".to_vec()), None, "ERR".to_owned()))
        );
    }
}
