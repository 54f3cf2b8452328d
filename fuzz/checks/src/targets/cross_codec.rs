//! One arbitrary value through every codec, compared with what the README says
//! each does to it ([`crate::mapping`]): MessagePack keeps it exactly (to the
//! nanosecond, NaN payloads included); JSON, both the mapping itself and through
//! JSON-RPC requests and responses, as [`mapping::json`]; XML-RPC, through
//! requests and responses, as [`mapping::xmlrpc`].

use super::{jsonrpc, xmlrpc_request, xmlrpc_response};
use crate::{gen, mapping};
use arbitrary::Unstructured;
use rpcs_core::jsonrpc::Id;
use rpcs_core::json::{from_json, to_json};
use rpcs_core::{msgpack, xmlrpc, Fault, Value};

/// Runs the target on one input.
pub fn check(data: &[u8]) {
    if let Ok(value) = gen::value(&mut Unstructured::new(data), gen::MAX_DEPTH) {
        every_codec(&value);
    }
}

/// Sends `value` through every codec.
pub fn every_codec(value: &Value) {
    through_msgpack(value);
    through_json(value);
    through_xmlrpc(value);
}

/// MessagePack: exact.
pub fn through_msgpack(value: &Value) {
    let encoded = msgpack::encode(value);
    let back = msgpack::decode(&encoded, msgpack::DEFAULT_MAX_DEPTH)
        .unwrap_or_else(|e| panic!("{value:?} encodes to {encoded:02x?}, which fails: {e}"));
    assert!(mapping::exact(&back, value), "{value:?} came back as {back:?}");
}

/// The JSON mapping, as a value and as text, and JSON-RPC both ways.
pub fn through_json(value: &Value) {
    let want = mapping::json(value);
    let direct = from_json(to_json(value));
    assert!(mapping::same(&direct, &want), "{value:?}: want {want:?}, got {direct:?}");
    let text = serde_json::to_string(&to_json(value)).expect("JSON always writes");
    let parsed = from_json(serde_json::from_str(&text).expect("written JSON parses"));
    assert!(mapping::same(&parsed, &want), "{value:?} as {text}: got {parsed:?}");
    let params = [value.clone()];
    jsonrpc::request_round_trip(Some(&Id::number(1)), "m", &params);
    jsonrpc::response_round_trip(&Id::number(2), &Ok(value.clone()), false);
    let fault = Fault::new(Fault::APPLICATION, "E: x").with_data(value.clone());
    jsonrpc::response_round_trip(&Id::null(), &Err(fault), true);
}

/// XML-RPC: a request's params and a response's value.
pub fn through_xmlrpc(value: &Value) {
    let want = mapping::xmlrpc(value);
    let encoded = xmlrpc::encode_request("m", std::slice::from_ref(value));
    match (&want, encoded) {
        (Some(want), Ok(bytes)) => {
            let call = xmlrpc::decode_request(&bytes, &xmlrpc_request::any_size())
                .unwrap_or_else(|e| panic!("{value:?} as a request fails: {e}"));
            assert!(
                mapping::same_list(&call.params, std::slice::from_ref(want)),
                "{value:?}: want {want:?}, got {:?}",
                call.params
            );
        }
        (None, Err(_)) => {}
        (want, got) => panic!("{value:?}: want {want:?}, encode_request gave {got:?}"),
    }
    xmlrpc_response::round_trip(&Ok(value.clone()));
}
