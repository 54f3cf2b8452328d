//! `xmlrpc::decode_response` on arbitrary bytes: never a panic, and a response
//! that decodes re-encodes to one that decodes to the same outcome, up to the
//! documented mapping (values as [`crate::mapping::xmlrpc`], faults as
//! [`crate::mapping::xmlrpc_fault`]).

use super::xmlrpc_request::{any_size, LIMITS};
use crate::mapping;
use rpcs_core::xmlrpc::{decode_response, encode_response};
use rpcs_core::{Fault, Value};

/// Runs the target on one input.
pub fn check(data: &[u8]) {
    if let Ok(outcome) = decode_response(data, &LIMITS) {
        round_trip(&outcome);
    }
}

/// Encodes `outcome` as a response and checks what decoding it gives back.
pub fn round_trip(outcome: &Result<Value, Fault>) {
    let encoded = encode_response(outcome);
    let back = decode_response(&encoded, &any_size()).unwrap_or_else(|e| {
        panic!(
            "an encoded response does not decode ({e}):\n{}",
            String::from_utf8_lossy(&encoded)
        )
    });
    let want = match outcome {
        Ok(v) => mapping::xmlrpc(v).ok_or(()),
        Err(f) => {
            let want = Err(mapping::xmlrpc_fault(f));
            assert!(mapping::same_outcome(&back, &want), "fault {f:?} came back as {back:?}");
            return;
        }
    };
    match (want, &back) {
        (Ok(want), Ok(got)) => assert!(
            mapping::same(got, &want),
            "value changed:\n sent {outcome:?}\n want {want:?}\n got  {got:?}"
        ),
        (Err(()), Err(fault)) => assert!(
            fault.code == Fault::APPLICATION && fault.name() == Some("UnrepresentableError"),
            "an uncarriable value was answered with {fault:?}"
        ),
        (want, got) => panic!("sent {outcome:?}, want {want:?}, got {got:?}"),
    }
}
