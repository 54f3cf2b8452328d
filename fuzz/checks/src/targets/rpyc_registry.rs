//! Brine and RPyC's registry requests from arbitrary bytes: never a panic;
//! a value `brine::decode` accepts is written back by `brine::encode` to bytes
//! that decode to the same value (floats compared bit for bit, so NaN too); a
//! request `parse_request` accepts is written back by `encode_request` to bytes
//! that parse to the same request; and the answers' readers take whatever the
//! writers produce from the parsed names.

use rpcs_core::brine::{self, Brine};
use rpcs_core::rpyc_registry::{
    encode_request, list_answer, parse_list_answer, parse_query_answer, parse_request,
    query_answer, Request, MAX_DATAGRAM,
};

/// Runs the target on one input.
pub fn check(data: &[u8]) {
    if let Ok(value) = brine::decode(data) {
        let again = brine::decode(&brine::encode(&value)).expect("an encoded value decodes");
        assert!(same(&again, &value), "{value:?} came back as {again:?}");
    }
    let Ok(request) = parse_request(data) else {
        let _ = parse_query_answer(data);
        let _ = parse_list_answer(data);
        return;
    };
    let back = parse_request(&encode_request(&request)).expect("a written request parses");
    assert_eq!(back, request);
    match &request {
        Request::Register { aliases, port } => {
            let servers: Vec<(String, u16)> = aliases.iter().map(|a| (a.clone(), *port)).collect();
            let answer = query_answer(&servers);
            assert!(answer.len() <= MAX_DATAGRAM);
            let read = parse_query_answer(&answer).expect("a query answer reads");
            assert_eq!(read[..], servers[..read.len()]);
        }
        Request::Query { name } => {
            let names = vec![name.clone()];
            assert_eq!(parse_list_answer(&list_answer(Some(&names))), Ok(Some(names)));
        }
        _ => {}
    }
}

/// Equality with floats compared by their bits.
fn same(a: &Brine, b: &Brine) -> bool {
    match (a, b) {
        (Brine::Float(x), Brine::Float(y)) => x.to_bits() == y.to_bits(),
        (Brine::Complex(a1, a2), Brine::Complex(b1, b2)) => {
            a1.to_bits() == b1.to_bits() && a2.to_bits() == b2.to_bits()
        }
        (Brine::Tuple(x), Brine::Tuple(y)) | (Brine::FrozenSet(x), Brine::FrozenSet(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Brine::Slice(x), Brine::Slice(y)) => x.iter().zip(y.iter()).all(|(a, b)| same(a, b)),
        _ => a == b,
    }
}
