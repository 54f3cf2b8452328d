//! `xmlrpc::decode_request` on arbitrary bytes: never a panic, and a call that
//! decodes re-encodes to a document that decodes to the same call, up to the
//! documented mapping ([`crate::mapping::xmlrpc`]).

use crate::mapping;
use rpcs_core::xmlrpc::{decode_request, encode_request, is_xml_text, Limits};

/// The limits the fuzzed documents are read with (small, to reach them).
pub const LIMITS: Limits = Limits {
    max_size: 1 << 16,
    max_depth: 8,
};

/// Runs the target on one input.
pub fn check(data: &[u8]) {
    let Ok(call) = decode_request(data, &LIMITS) else {
        return;
    };
    assert!(!call.method.is_empty(), "an empty method name was accepted");
    assert_eq!(call.method.trim(), call.method, "method names are trimmed");
    let expected: Option<Vec<_>> = call.params.iter().map(mapping::xmlrpc).collect();
    let encoded = encode_request(&call.method, &call.params);
    let (Some(expected), true) = (expected, is_xml_text(&call.method)) else {
        assert!(encoded.is_err(), "an uncarriable call was encoded: {call:?}");
        return;
    };
    let encoded = encoded.unwrap_or_else(|e| panic!("{call:?} could not be encoded: {e}"));
    let again = decode_request(&encoded, &any_size()).unwrap_or_else(|e| {
        panic!(
            "re-encoded call does not decode ({e}):\n{}",
            String::from_utf8_lossy(&encoded)
        )
    });
    assert_eq!(again.method, call.method);
    assert!(
        mapping::same_list(&again.params, &expected),
        "params changed:\n sent {:?}\n want {expected:?}\n got  {:?}",
        call.params,
        again.params
    );
}

/// [`LIMITS`] without the size limit: an encoding may be longer than its source.
pub fn any_size() -> Limits {
    Limits {
        max_size: usize::MAX,
        ..LIMITS
    }
}
