//! `jsonrpc::decode` on arbitrary bytes: never a panic; every message it yields
//! (call, response or invalid) can be answered, the answer is valid JSON, and
//! its `"id"` is the id text received, byte for byte (or `null` where no id
//! could be read). Then the same bytes build a request and a response that must
//! come back through encode and decode under the JSON mapping.

use crate::{gen, mapping};
use arbitrary::Unstructured;
use rpcs_core::jsonrpc::{
    decode, encode_batch, encode_request, encode_response, Call, Id, Incoming, Message, Params,
};
use rpcs_core::{Fault, Value};
use serde::de::{Deserializer as _, MapAccess, Visitor};
use serde_json::value::RawValue;

/// Runs the target on one input.
pub fn check(data: &[u8]) {
    answer_everything(data);
    let _ = round_trips(&mut Unstructured::new(data));
}

/// Decodes `data` and answers each message, checking the ids of the answers.
pub fn answer_everything(data: &[u8]) {
    match decode(data) {
        Incoming::Single(message) => {
            let ids = std::str::from_utf8(data)
                .ok()
                .and_then(|text| serde_json::from_str::<&RawValue>(text).ok())
                .map(ids_of)
                .unwrap_or_default();
            answer(&message, &ids);
        }
        Incoming::Batch(messages) => {
            let items: Vec<&RawValue> =
                serde_json::from_slice(data).expect("a batch is a JSON array");
            assert_eq!(items.len(), messages.len(), "one message per batch entry");
            let answers = messages
                .iter()
                .zip(items)
                .filter_map(|(m, raw)| answer(m, &ids_of(raw)))
                .collect();
            if let Some(batch) = encode_batch(answers) {
                serde_json::from_slice::<Vec<&RawValue>>(&batch).expect("a batch answer is JSON");
            }
        }
    }
}

/// The texts of every `"id"` member of a JSON object (several when the member
/// repeats), empty for anything else.
fn ids_of(raw: &RawValue) -> Vec<String> {
    struct Ids;
    impl<'de> Visitor<'de> for Ids {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<String>, A::Error> {
            let mut ids = Vec::new();
            while let Some(key) = map.next_key::<String>()? {
                let value: &RawValue = map.next_value()?;
                if key == "id" {
                    ids.push(value.get().to_owned());
                }
            }
            Ok(ids)
        }
    }
    let mut de = serde_json::Deserializer::from_str(raw.get());
    de.deserialize_map(Ids).unwrap_or_default()
}

/// Answers one message as a server would and checks the answer; returns it
/// unless the message is a notification (which is never answered).
fn answer(message: &Message, ids: &[String]) -> Option<Vec<u8>> {
    let received = |id: &Id| ids.iter().any(|text| text == id.as_json());
    let (id, v1) = match message {
        Message::RefusedNotification { .. } => {
            assert!(
                ids.is_empty() || ids.iter().all(|t| t == "null"),
                "a call with id {ids:?} was refused as a notification"
            );
            return None;
        }
        Message::Call(Call { id: None, v1, .. }) => {
            // A 1.0 notification may carry `"id": null`.
            assert!(
                ids.is_empty() || (*v1 && ids.iter().all(|t| t == "null")),
                "a call with id {ids:?} was read as a notification"
            );
            return None;
        }
        Message::Call(Call { id: Some(id), v1, .. }) => {
            assert!(received(id), "call id {id} was not received ({ids:?})");
            (id, *v1)
        }
        Message::Response { id, .. } | Message::Invalid { id, .. } => {
            assert!(
                id.as_json() == "null" || received(id),
                "id {id} was not received ({ids:?})"
            );
            (id, false)
        }
    };
    let fault = Fault::new(Fault::INTERNAL_ERROR, "x").with_data(Value::Int(1));
    let mut last = Vec::new();
    for outcome in [Ok(Value::Nil), Err(fault)] {
        last = encode_response(id, &outcome, v1);
        let text = std::str::from_utf8(&last).expect("answers are UTF-8");
        let doc: &RawValue = serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("answer is not JSON ({e}): {text}"));
        assert_eq!(ids_of(doc), [id.as_json()], "answer {text} does not echo {id}");
    }
    Some(last)
}

/// Builds a request and a response from fuzz bytes and decodes their encodings.
pub fn round_trips(u: &mut Unstructured) -> arbitrary::Result<()> {
    let id = match u.int_in_range(0..=2)? {
        0 => None,
        1 => Some(Id::null()),
        _ => Some(Id::number(u.arbitrary()?)),
    };
    let method = gen::string(u)?;
    let params = gen::values(u, gen::MAX_DEPTH)?;
    request_round_trip(id.as_ref(), &method, &params);
    let outcome = if u.arbitrary()? {
        Ok(gen::value(u, gen::MAX_DEPTH)?)
    } else {
        let mut fault = Fault::new(u.arbitrary()?, gen::string(u)?);
        if u.arbitrary()? {
            fault.data = Some(gen::value(u, gen::MAX_DEPTH)?);
        }
        Err(fault)
    };
    response_round_trip(&id.unwrap_or_else(Id::null), &outcome, u.arbitrary()?);
    Ok(())
}

/// `encode_request` then `decode`: the same call, params under the JSON mapping.
pub fn request_round_trip(id: Option<&Id>, method: &str, params: &[Value]) {
    let encoded = encode_request(id, method, params);
    let Incoming::Single(Message::Call(call)) = decode(&encoded) else {
        panic!("{} is not read as a call", String::from_utf8_lossy(&encoded));
    };
    assert_eq!(call.id.as_ref(), id);
    assert_eq!(call.method, method);
    assert!(!call.v1);
    let want: Vec<Value> = params.iter().map(mapping::json).collect();
    match &call.params {
        Params::Positional(got) => assert!(
            mapping::same_list(got, &want),
            "params changed:\n sent {params:?}\n want {want:?}\n got  {got:?}"
        ),
        Params::Named(_) => panic!("positional params came back named"),
    }
}

/// `encode_response` then `decode`: the same id and outcome under the JSON mapping.
pub fn response_round_trip(id: &Id, outcome: &Result<Value, Fault>, v1: bool) {
    let encoded = encode_response(id, outcome, v1);
    let Incoming::Single(Message::Response { id: got_id, outcome: got }) = decode(&encoded) else {
        panic!("{} is not read as a response", String::from_utf8_lossy(&encoded));
    };
    assert_eq!(&got_id, id);
    let want = match outcome {
        Ok(v) => Ok(mapping::json(v)),
        Err(f) => Err(mapping::json_fault(f)),
    };
    assert!(
        mapping::same_outcome(&got, &want),
        "outcome changed:\n sent {outcome:?}\n want {want:?}\n got  {got:?}"
    );
}
