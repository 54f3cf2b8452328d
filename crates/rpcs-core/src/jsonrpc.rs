//! The JSON-RPC 2.0 codec: requests, notifications, batches and responses, in
//! both directions, with a tolerant reading of 1.0-style messages.
//!
//! Values map to JSON as [`crate::json`] documents (bytes as base64 strings,
//! date-times as ISO 8601 strings). A request without an `id` is a notification and
//! is never answered, also inside a batch. A 1.0-style request (no `"jsonrpc"` key)
//! is answered in 1.0 style: `result` and `error` both present, one of them null.

use crate::fault::Fault;
use crate::json::{from_json, to_json};
use crate::value::{Map, Value};
use serde_json::{json, Value as Json};

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

/// A request or notification.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The id to echo; `None` for a notification.
    pub id: Option<Json>,
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
        id: Json,
        /// Its outcome.
        outcome: Result<Value, Fault>,
    },
    /// Something that is not a valid message: answer with this error (id may be null).
    Invalid {
        /// The id, when one could be read.
        id: Json,
        /// Why it is invalid.
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

/// The most calls one batch may carry.
pub const MAX_BATCH: usize = 1000;

/// Decodes a document. Bad JSON or an empty batch yields an [`Message::Invalid`]
/// to answer; this never fails.
pub fn decode(bytes: &[u8]) -> Incoming {
    let json: Json = match serde_json::from_slice(bytes) {
        Ok(j) => j,
        Err(e) => {
            return Incoming::Single(Message::Invalid {
                id: Json::Null,
                fault: Fault::parse_error(format!("invalid JSON: {e}")),
            })
        }
    };
    match json {
        Json::Array(items) if items.is_empty() => {
            Incoming::Single(invalid(Json::Null, "empty batch"))
        }
        Json::Array(items) if items.len() > MAX_BATCH => Incoming::Single(Message::Invalid {
            id: Json::Null,
            fault: Fault::new(
                Fault::LIMIT_EXCEEDED,
                format!(
                    "batch of {} calls exceeds the limit of {MAX_BATCH}",
                    items.len()
                ),
            ),
        }),
        Json::Array(items) => Incoming::Batch(items.into_iter().map(message).collect()),
        other => Incoming::Single(message(other)),
    }
}

fn invalid(id: Json, why: &str) -> Message {
    Message::Invalid {
        id,
        fault: Fault::invalid_request(why),
    }
}

/// Reads one message object.
pub fn message(json: Json) -> Message {
    let Json::Object(mut obj) = json else {
        return invalid(Json::Null, "a message must be an object");
    };
    let id = obj.remove("id");
    let v1 = match obj.remove("jsonrpc") {
        None => true,
        Some(Json::String(v)) if v == "2.0" => false,
        Some(_) => return invalid(id.unwrap_or_default(), "jsonrpc must be \"2.0\""),
    };
    if let Some(method) = obj.remove("method") {
        return call(id, method, obj.remove("params"), v1);
    }
    if obj.contains_key("result") || obj.contains_key("error") {
        return response(id.unwrap_or_default(), obj);
    }
    invalid(id.unwrap_or_default(), "neither a call nor a response")
}

fn valid_id(id: &Json) -> bool {
    matches!(id, Json::Null | Json::Number(_) | Json::String(_))
}

fn call(id: Option<Json>, method: Json, params: Option<Json>, v1: bool) -> Message {
    if id.as_ref().is_some_and(|i| !valid_id(i)) {
        return invalid(Json::Null, "id must be a number, a string or null");
    }
    let echo = id.clone().unwrap_or_default();
    let Json::String(method) = method else {
        return invalid(echo, "method must be a string");
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
    // In 1.0 a null id marked a notification; in 2.0 it is an id like any other.
    let id = match id {
        Some(Json::Null) if v1 => None,
        other => other,
    };
    Message::Call(Call {
        id,
        method,
        params,
        v1,
    })
}

fn response(id: Json, mut obj: serde_json::Map<String, Json>) -> Message {
    let outcome = match obj.remove("error") {
        Some(Json::Null) | None => Ok(from_json(obj.remove("result").unwrap_or_default())),
        Some(error) => Err(fault_from_error(error)),
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

/// The response object answering a call with `id`.
pub fn response_object(id: &Json, outcome: &Result<Value, Fault>, v1: bool) -> Json {
    match (outcome, v1) {
        (Ok(v), false) => json!({"jsonrpc": "2.0", "id": id, "result": to_json(v)}),
        (Err(f), false) => json!({"jsonrpc": "2.0", "id": id, "error": error_object(f)}),
        (Ok(v), true) => json!({"id": id, "result": to_json(v), "error": null}),
        (Err(f), true) => json!({"id": id, "result": null, "error": error_object(f)}),
    }
}

/// Encodes one response.
pub fn encode_response(id: &Json, outcome: &Result<Value, Fault>, v1: bool) -> Vec<u8> {
    serde_json::to_vec(&response_object(id, outcome, v1)).unwrap_or_default()
}

/// Encodes a batch of response objects; `None` when there is nothing to answer
/// (a batch of notifications gets no body at all).
pub fn encode_batch(responses: Vec<Json>) -> Option<Vec<u8>> {
    if responses.is_empty() {
        return None;
    }
    serde_json::to_vec(&Json::Array(responses)).ok()
}

/// Encodes a request (with an id) or a notification (without).
pub fn encode_request(id: Option<&Json>, method: &str, params: &[Value]) -> Vec<u8> {
    let params: Vec<Json> = params.iter().map(to_json).collect();
    let obj = match id {
        Some(id) => json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
        None => json!({"jsonrpc": "2.0", "method": method, "params": params}),
    };
    serde_json::to_vec(&obj).unwrap_or_default()
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
                id: Some(json!(7)),
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
        assert_eq!(c.id, Some(Json::Null));
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
        assert_eq!(code(&single(&deep)), Fault::PARSE_ERROR);
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
        let text = encode_response(&json!(1), &ok, false);
        assert_eq!(
            String::from_utf8(text.clone()).unwrap(),
            r#"{"jsonrpc":"2.0","id":1,"result":"AQI="}"#
        );
        let Message::Response { id, outcome } = single(std::str::from_utf8(&text).unwrap()) else {
            panic!()
        };
        assert_eq!((id, outcome), (json!(1), Ok(Value::String("AQI=".into()))));
        let fault = Err(Fault::named("StackIndexError", "empty").with_data(Value::Int(3)));
        let Message::Response { outcome, .. } =
            single(std::str::from_utf8(&encode_response(&json!("x"), &fault, false)).unwrap())
        else {
            panic!()
        };
        assert_eq!(outcome, fault);
        let v1 = String::from_utf8(encode_response(&json!(2), &Ok(Value::Int(5)), true)).unwrap();
        assert!(
            v1.contains(r#""error":null"#) && v1.contains(r#""result":5"#),
            "{v1}"
        );
        assert!(!v1.contains("jsonrpc"));
        assert_eq!(encode_batch(vec![]), None);
    }
}
