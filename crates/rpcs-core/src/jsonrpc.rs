//! The JSON-RPC 2.0 codec: requests, notifications, batches and responses, in
//! both directions, with a tolerant reading of 1.0-style messages.
//!
//! Values map to JSON as [`crate::json`] documents (bytes as base64 strings,
//! date-times as ISO 8601 strings). A request without an `id` is a notification and
//! is never answered, also inside a batch. A 1.0-style request (no `"jsonrpc"` key)
//! is answered in 1.0 style: `result` and `error` both present, one of them null.
//! Ids are kept as the exact JSON text that arrived and echoed byte for byte, so
//! an id beyond 64 bits (or `1.50`) comes back the same, as the spec requires.

use crate::fault::Fault;
use crate::json::{from_json, to_json};
use crate::value::{Map, Value};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value as Json};
use std::fmt;

/// Parameters as a call carried them.
#[derive(Debug, Clone, PartialEq)]
pub enum Params {
    /// A JSON array.
    Positional(Vec<Value>),
    /// A JSON object: names map to the method's registered parameter names.
    Named(Map),
}

impl Default for Params {
    fn default() -> Self {
        Params::Positional(Vec::new())
    }
}

/// A message id: the JSON text of a number, a string or `null`, exactly as sent.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Id(Box<str>);

impl Id {
    /// The `null` id (for errors about a message whose id could not be read).
    pub fn null() -> Id {
        Id("null".into())
    }

    /// A numeric id, as clients number their calls.
    pub fn number(n: u64) -> Id {
        Id(n.to_string().into())
    }

    /// The id's JSON text.
    pub fn as_json(&self) -> &str {
        &self.0
    }

    /// The id as an unsigned integer, when it is one.
    pub fn as_u64(&self) -> Option<u64> {
        self.0.parse().ok()
    }

    /// The id of a raw JSON value, if it is a valid id (number, string or null).
    fn from_raw(raw: &RawValue) -> Option<Id> {
        let text = raw.get();
        match text.as_bytes().first()? {
            b'"' | b'-' | b'0'..=b'9' => Some(Id(text.into())),
            b'n' => Some(Id::null()),
            _ => None,
        }
    }
}

impl From<u64> for Id {
    fn from(n: u64) -> Id {
        Id::number(n)
    }
}

impl From<u32> for Id {
    fn from(n: u32) -> Id {
        Id::number(n.into())
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A request or notification.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The id to echo; `None` for a notification.
    pub id: Option<Id>,
    /// The method name.
    pub method: String,
    /// The parameters.
    pub params: Params,
    /// Whether the call was 1.0-style (no `"jsonrpc"` member).
    pub v1: bool,
}

/// One decoded message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A call to answer (or, without id, a notification).
    Call(Call),
    /// An answer to a call we made.
    Response {
        /// The id of our call.
        id: Id,
        /// Its outcome.
        outcome: Result<Value, Fault>,
    },
    /// Something that is not a valid message: answer with this error (id may be null).
    Invalid {
        /// The id, when one could be read.
        id: Id,
        /// Why it is invalid.
        fault: Fault,
    },
    /// A notification that cannot be run (its parameters are nested too deep):
    /// never answered, as no notification is.
    RefusedNotification {
        /// The method it named.
        method: String,
        /// Why it was refused.
        fault: Fault,
    },
}

/// A decoded document: one message, or a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A single message.
    Single(Message),
    /// A batch (an array); its answers go back as an array.
    Batch(Vec<Message>),
}

/// The deepest nesting of arrays and objects a call's parameters may have, as
/// for the other codecs (the params array itself is the first level).
pub const MAX_DEPTH: usize = 65;

/// How deep arrays and objects nest in a JSON text (already known to be
/// valid), read without building anything: 0 for a scalar.
fn raw_depth(text: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for b in text.bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// A member's value, unless it nests deeper than [`MAX_DEPTH`] (members are
/// read as raw text first, so a deep one never reaches the parser's own
/// recursion limit and the message's id can still be answered).
fn shallow(raw: &RawValue) -> Result<Json, Fault> {
    if raw_depth(raw.get()) > MAX_DEPTH {
        return Err(Fault::new(
            Fault::LIMIT_EXCEEDED,
            format!("values are nested deeper than the limit of {MAX_DEPTH}"),
        ));
    }
    serde_json::from_str(raw.get()).map_err(|e| Fault::parse_error(format!("invalid JSON: {e}")))
}

/// The most calls one batch may carry.
pub const MAX_BATCH: usize = 1000;

/// Decodes a document. Bad JSON or an empty batch yields an [`Message::Invalid`]
/// to answer; this never fails.
pub fn decode(bytes: &[u8]) -> Incoming {
    let parse_error = |e: serde_json::Error| {
        Incoming::Single(Message::Invalid {
            id: Id::null(),
            fault: Fault::parse_error(format!("invalid JSON: {e}")),
        })
    };
    let doc: &RawValue = match serde_json::from_slice(bytes) {
        Ok(doc) => doc,
        Err(e) => return parse_error(e),
    };
    if !doc.get().starts_with('[') {
        return Incoming::Single(message(doc));
    }
    let items: Vec<&RawValue> = match serde_json::from_str(doc.get()) {
        Ok(items) => items,
        Err(e) => return parse_error(e),
    };
    match items.len() {
        0 => Incoming::Single(invalid(Id::null(), "empty batch")),
        n if n > MAX_BATCH => Incoming::Single(Message::Invalid {
            id: Id::null(),
            fault: Fault::new(
                Fault::LIMIT_EXCEEDED,
                format!("batch of {n} calls exceeds the limit of {MAX_BATCH}"),
            ),
        }),
        _ => Incoming::Batch(items.into_iter().map(message).collect()),
    }
}

fn invalid(id: Id, why: &str) -> Message {
    Message::Invalid {
        id,
        fault: Fault::invalid_request(why),
    }
}

/// A message's members as they arrived; `Some` marks a member that is present,
/// even when its value is `null`.
#[derive(Deserialize)]
struct Members<'a> {
    #[serde(default, borrow, deserialize_with = "present")]
    id: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    jsonrpc: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    method: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    params: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    result: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    error: Option<&'a RawValue>,
}

fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// Reads one message object.
pub fn message(raw: &RawValue) -> Message {
    if !raw.get().starts_with('{') {
        return invalid(Id::null(), "a message must be an object");
    }
    let m: Members = match serde_json::from_str(raw.get()) {
        Ok(m) => m,
        // Nesting past the parser's limit is a syntax error to serde_json.
        Err(e) if e.is_syntax() || e.is_eof() => {
            return Message::Invalid {
                id: Id::null(),
                fault: Fault::parse_error(format!("invalid JSON: {e}")),
            }
        }
        Err(e) => return invalid(Id::null(), &format!("unreadable message: {e}")),
    };
    let id = match m.id.map(Id::from_raw) {
        None => None,
        Some(Some(id)) => Some(id),
        Some(None) => return invalid(Id::null(), "id must be a number, a string or null"),
    };
    let echo = id.clone().unwrap_or_else(Id::null);
    let v1 = match m.jsonrpc.map(shallow) {
        None => true,
        Some(Ok(Json::String(v))) if v == "2.0" => false,
        Some(_) => return invalid(echo, "jsonrpc must be \"2.0\""),
    };
    if let Some(method) = m.method {
        return call(id, method, m.params, v1);
    }
    if m.result.is_some() || m.error.is_some() {
        return response(echo, m.result, m.error);
    }
    invalid(echo, "neither a call nor a response")
}

fn call(id: Option<Id>, method: &RawValue, params: Option<&RawValue>, v1: bool) -> Message {
    let echo = id.clone().unwrap_or_else(Id::null);
    let Ok(Json::String(method)) = shallow(method) else {
        return invalid(echo, "method must be a string");
    };
    let params = match params.map(shallow).transpose() {
        Ok(params) => params,
        // A notification gets no answer, not even this one.
        Err(fault) if is_notification(id.as_ref(), v1) => {
            return Message::RefusedNotification { method, fault }
        }
        Err(fault) => return Message::Invalid { id: echo, fault },
    };
    let params = match params {
        None | Some(Json::Null) => Params::default(),
        Some(Json::Array(items)) => Params::Positional(items.into_iter().map(from_json).collect()),
        Some(Json::Object(members)) => Params::Named(
            members
                .into_iter()
                .map(|(k, v)| (k, from_json(v)))
                .collect(),
        ),
        Some(_) => return invalid(echo, "params must be an array or an object"),
    };
    let id = id.filter(|id| !is_notification(Some(id), v1));
    Message::Call(Call {
        id,
        method,
        params,
        v1,
    })
}

/// Whether a call with this id is a notification: no id, or in 1.0 a null one
/// (in 2.0 null is an id like any other).
fn is_notification(id: Option<&Id>, v1: bool) -> bool {
    id.is_none_or(|id| v1 && id.as_json() == "null")
}

fn response(id: Id, result: Option<&RawValue>, error: Option<&RawValue>) -> Message {
    let outcome = match error.map(shallow).transpose() {
        Ok(Some(Json::Null) | None) => match result.map(shallow).transpose() {
            Ok(result) => Ok(from_json(result.unwrap_or_default())),
            Err(fault) => Err(fault),
        },
        Ok(Some(error)) => Err(fault_from_error(error)),
        Err(fault) => Err(fault),
    };
    Message::Response { id, outcome }
}

/// Reads a JSON-RPC error object into a fault (anything else becomes a fault with
/// the JSON as its message).
pub fn fault_from_error(error: Json) -> Fault {
    match error {
        Json::Object(mut e) => {
            let code = e
                .get("code")
                .and_then(Json::as_i64)
                .and_then(|c| i32::try_from(c).ok())
                .unwrap_or(Fault::INTERNAL_ERROR);
            let message = match e.remove("message") {
                Some(Json::String(s)) => s,
                Some(other) => other.to_string(),
                None => String::new(),
            };
            let mut fault = Fault::new(code, message);
            if let Some(data) = e.remove("data") {
                fault.data = Some(from_json(data));
            }
            fault
        }
        Json::String(s) => Fault::new(Fault::INTERNAL_ERROR, s),
        other => Fault::new(Fault::INTERNAL_ERROR, other.to_string()),
    }
}

/// The JSON-RPC error object of a fault.
pub fn error_object(fault: &Fault) -> Json {
    let mut e = json!({"code": fault.code, "message": fault.message});
    if let Some(data) = &fault.data {
        e["data"] = to_json(data);
    }
    e
}

fn push_json(out: &mut Vec<u8>, json: &Json) {
    // Writing a JSON value into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, json);
}

/// Appends the response answering a call with `id`.
pub fn write_response(out: &mut Vec<u8>, id: &Id, outcome: &Result<Value, Fault>, v1: bool) {
    out.extend_from_slice(if v1 {
        b"{\"id\":"
    } else {
        b"{\"jsonrpc\":\"2.0\",\"id\":"
    });
    out.extend_from_slice(id.as_json().as_bytes());
    match (outcome, v1) {
        (Ok(v), false) => {
            out.extend_from_slice(b",\"result\":");
            push_json(out, &to_json(v));
        }
        (Err(f), false) => {
            out.extend_from_slice(b",\"error\":");
            push_json(out, &error_object(f));
        }
        (Ok(v), true) => {
            out.extend_from_slice(b",\"result\":");
            push_json(out, &to_json(v));
            out.extend_from_slice(b",\"error\":null");
        }
        (Err(f), true) => {
            out.extend_from_slice(b",\"result\":null,\"error\":");
            push_json(out, &error_object(f));
        }
    }
    out.push(b'}');
}

/// Encodes one response.
pub fn encode_response(id: &Id, outcome: &Result<Value, Fault>, v1: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    write_response(&mut out, id, outcome, v1);
    out
}

/// Joins encoded responses into a batch answer; `None` when there is nothing to
/// answer (a batch of notifications gets no body at all).
pub fn encode_batch(responses: Vec<Vec<u8>>) -> Option<Vec<u8>> {
    if responses.is_empty() {
        return None;
    }
    let len = responses.iter().map(|r| r.len() + 1).sum::<usize>() + 1;
    let mut out = Vec::with_capacity(len);
    out.push(b'[');
    for (i, r) in responses.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(r);
    }
    out.push(b']');
    Some(out)
}

/// Encodes a request (with an id) or a notification (without).
pub fn encode_request(id: Option<&Id>, method: &str, params: &[Value]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + method.len());
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",");
    if let Some(id) = id {
        out.extend_from_slice(b"\"id\":");
        out.extend_from_slice(id.as_json().as_bytes());
        out.push(b',');
    }
    out.extend_from_slice(b"\"method\":");
    push_json(&mut out, &Json::String(method.to_owned()));
    out.extend_from_slice(b",\"params\":");
    push_json(&mut out, &Json::Array(params.iter().map(to_json).collect()));
    out.push(b'}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn single(text: &str) -> Message {
        match decode(text.as_bytes()) {
            Incoming::Single(m) => m,
            other => panic!("expected one message, got {other:?}"),
        }
    }

    fn code(m: &Message) -> i32 {
        match m {
            Message::Invalid { fault, .. } => fault.code,
            other => panic!("expected an invalid message, got {other:?}"),
        }
    }

    #[test]
    fn calls_and_notifications() {
        let m = single(r#"{"jsonrpc":"2.0","method":"add","params":[1,2],"id":7}"#);
        assert_eq!(
            m,
            Message::Call(Call {
                id: Some(Id::number(7)),
                method: "add".into(),
                params: Params::Positional(vec![Value::Int(1), Value::Int(2)]),
                v1: false
            })
        );
        let Message::Call(n) = single(r#"{"jsonrpc":"2.0","method":"log","params":{"b":1,"a":2}}"#)
        else {
            panic!()
        };
        assert_eq!(n.id, None);
        let Params::Named(named) = n.params else {
            panic!()
        };
        assert_eq!(named.keys().collect::<Vec<_>>(), ["b", "a"]);
        let Message::Call(c) = single(r#"{"jsonrpc":"2.0","method":"x","id":null}"#) else {
            panic!()
        };
        assert_eq!(c.id, Some(Id::null()));
        let Message::Call(old) = single(r#"{"method":"x","params":[],"id":"a"}"#) else {
            panic!()
        };
        assert!(old.v1);
        let Message::Call(old_note) = single(r#"{"method":"x","params":[],"id":null}"#) else {
            panic!()
        };
        assert_eq!(old_note.id, None);
    }

    #[test]
    fn malformed_documents() {
        assert_eq!(code(&single("{")), Fault::PARSE_ERROR);
        assert_eq!(code(&single("")), Fault::PARSE_ERROR);
        assert_eq!(code(&single("[]")), Fault::INVALID_REQUEST);
        assert_eq!(code(&single("42")), Fault::INVALID_REQUEST);
        assert_eq!(
            code(&single(r#"{"jsonrpc":"2.0","method":1,"id":1}"#)),
            Fault::INVALID_REQUEST
        );
        assert_eq!(
            code(&single(r#"{"jsonrpc":"1.5","method":"x","id":1}"#)),
            Fault::INVALID_REQUEST
        );
        assert_eq!(
            code(&single(
                r#"{"jsonrpc":"2.0","method":"x","params":3,"id":1}"#
            )),
            Fault::INVALID_REQUEST
        );
        assert_eq!(
            code(&single(r#"{"jsonrpc":"2.0","method":"x","id":[1]}"#)),
            Fault::INVALID_REQUEST
        );
        assert_eq!(
            code(&single(r#"{"jsonrpc":"2.0","id":1}"#)),
            Fault::INVALID_REQUEST
        );
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        let Incoming::Batch(items) = decode(deep.as_bytes()) else {
            panic!()
        };
        assert_eq!(code(&items[0]), Fault::INVALID_REQUEST);
        // Nesting past every limit is refused as such, with the call's id.
        let deep_params = format!(r#"{{"method":"m","params":{deep},"id":1}}"#);
        assert_eq!(code(&single(&deep_params)), Fault::LIMIT_EXCEEDED);
        let Incoming::Batch(items) = decode(b"[1, {\"jsonrpc\":\"2.0\",\"method\":\"m\"}]") else {
            panic!()
        };
        assert_eq!(code(&items[0]), Fault::INVALID_REQUEST);
        assert!(matches!(items[1], Message::Call(_)));
        let huge = format!("[{}]", vec!["1"; MAX_BATCH + 1].join(","));
        assert_eq!(code(&single(&huge)), Fault::LIMIT_EXCEEDED);
    }

    #[test]
    fn responses_both_ways() {
        let ok = Ok(Value::Bytes(vec![1, 2]));
        let text = encode_response(&Id::number(1), &ok, false);
        assert_eq!(
            String::from_utf8(text.clone()).unwrap(),
            r#"{"jsonrpc":"2.0","id":1,"result":"AQI="}"#
        );
        let Message::Response { id, outcome } = single(std::str::from_utf8(&text).unwrap()) else {
            panic!()
        };
        assert_eq!(
            (id, outcome),
            (Id::number(1), Ok(Value::String("AQI=".into())))
        );
        let fault = Err(Fault::named("StackIndexError", "empty").with_data(Value::Int(3)));
        let Message::Response { outcome, .. } = single(
            std::str::from_utf8(&encode_response(&Id("\"x\"".into()), &fault, false)).unwrap(),
        ) else {
            panic!()
        };
        assert_eq!(outcome, fault);
        let v1 =
            String::from_utf8(encode_response(&Id::number(2), &Ok(Value::Int(5)), true)).unwrap();
        assert!(
            v1.contains(r#""error":null"#) && v1.contains(r#""result":5"#),
            "{v1}"
        );
        assert!(!v1.contains("jsonrpc"));
        assert_eq!(encode_batch(vec![]), None);
    }

    #[test]
    fn values_nest_as_deep_as_in_the_other_codecs() {
        let nested = |n: usize| "[".repeat(n) + &"]".repeat(n);
        let doc = |n: usize| {
            format!(
                r#"{{"jsonrpc":"2.0","method":"m","params":[{}],"id":1}}"#,
                nested(n)
            )
        };
        assert!(matches!(single(&doc(64)), Message::Call(_)));
        assert_eq!(code(&single(&doc(65))), Fault::LIMIT_EXCEEDED);
        assert_eq!(code(&single(&doc(100))), Fault::LIMIT_EXCEEDED);
        // Past serde_json's own recursion limit (128) too, the id comes back.
        let Message::Invalid { id, .. } = single(&doc(500)) else {
            panic!("a call nested 500 deep is refused");
        };
        assert_eq!(id.as_json(), "1");
        // Brackets inside strings do not count.
        assert!(matches!(
            single(r#"{"jsonrpc":"2.0","method":"m","params":["[[[[\"]]"],"id":1}"#),
            Message::Call(_)
        ));
    }

    #[test]
    fn a_call_nested_too_deep_is_refused_with_its_id_and_a_notification_silently() {
        let params = "[".repeat(100) + &"]".repeat(100);
        let call = format!(r#"{{"jsonrpc":"2.0","method":"m","params":[{params}],"id":7}}"#);
        let Message::Invalid { id, .. } = single(&call) else {
            panic!("a too-deep call is refused")
        };
        assert_eq!(id.as_json(), "7");
        let past_serde = "[".repeat(500) + &"]".repeat(500);
        for notification in [
            format!(r#"{{"jsonrpc":"2.0","method":"m","params":[{params}]}}"#),
            format!(r#"{{"jsonrpc":"2.0","method":"m","params":[{past_serde}]}}"#),
            format!(r#"{{"method":"m","params":[{params}],"id":null}}"#),
        ] {
            let refused = single(&notification);
            assert!(
                matches!(refused, Message::RefusedNotification { ref method, .. } if method == "m"),
                "{refused:?}"
            );
        }
    }

    #[test]
    fn ids_are_echoed_byte_for_byte() {
        for raw in [
            "123456789012345678901234567890",
            "-5",
            "1.50",
            "1e400",
            "\"\\u00e9t\u{e9}\"",
            "null",
        ] {
            let doc = format!(r#"{{"jsonrpc":"2.0","method":"m","id":{raw}}}"#);
            let Message::Call(call) = single(&doc) else {
                panic!("{doc}")
            };
            let id = call.id.unwrap();
            assert_eq!(id.as_json(), raw);
            let answer = encode_response(&id, &Ok(Value::Nil), false);
            let text = String::from_utf8(answer).unwrap();
            assert_eq!(
                text,
                format!(r#"{{"jsonrpc":"2.0","id":{raw},"result":null}}"#)
            );
            serde_json::from_str::<&RawValue>(&text).unwrap();
        }
        assert_eq!(Id::number(7).as_u64(), Some(7));
        // Duplicate members make a message unreadable, not the whole batch.
        let Incoming::Batch(items) =
            decode(br#"[{"jsonrpc":"2.0","method":"m","method":"n","id":1},{"jsonrpc":"2.0","method":"m","id":2}]"#)
        else {
            panic!()
        };
        assert_eq!(code(&items[0]), Fault::INVALID_REQUEST);
        assert!(matches!(items[1], Message::Call(_)));
        // A result of null is still a response.
        let Message::Response { outcome, .. } = single(r#"{"jsonrpc":"2.0","id":1,"result":null}"#)
        else {
            panic!()
        };
        assert_eq!(outcome, Ok(Value::Nil));
    }
}
