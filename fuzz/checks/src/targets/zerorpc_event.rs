//! `zerorpc::decode` and `decode_head` on arbitrary bytes: never a panic; an
//! event that decodes encodes to one that decodes to it (decode → encode →
//! decode is the identity, and the encoding is then stable); and wherever the
//! whole event decodes, `decode_head` reads the same head from it. Then the same
//! bytes build an event that must round trip.

use crate::{gen, mapping};
use arbitrary::Unstructured;
use rpcs_core::zerorpc::{decode, decode_head, encode, Event, Id};

/// Runs the target on one input.
pub fn check(data: &[u8]) {
    let head = decode_head(data);
    if let Ok(event) = decode(data) {
        if data.first() == Some(&0x93) {
            assert_eq!(head, Some(head_of(&event)), "decode_head disagrees on {data:02x?}");
        }
        round_trip(&event);
    }
    if let Ok(event) = event(&mut Unstructured::new(data)) {
        round_trip(&event);
    }
}

fn head_of(event: &Event) -> (Id, Option<Id>, String) {
    (
        event.message_id.clone(),
        event.response_to.clone(),
        event.name.clone(),
    )
}

/// Encodes and decodes `event`, which must come back the same.
pub fn round_trip(event: &Event) {
    let encoded = encode(event);
    let back = decode(&encoded).unwrap_or_else(|e| panic!("{event:?} does not come back: {e}"));
    let same = back.message_id == event.message_id
        && back.version == event.version
        && back.response_to == event.response_to
        && back.name == event.name
        && mapping::exact(&back.args, &event.args);
    assert!(same, "sent {event:?}, got {back:?}");
    assert_eq!(encode(&back), encoded, "the encoding is not stable");
    assert_eq!(decode_head(&encoded), Some(head_of(event)));
}

fn id(u: &mut Unstructured) -> arbitrary::Result<Id> {
    Ok(if u.arbitrary()? {
        Id::Str(gen::string(u)?)
    } else {
        Id::Bin(gen::bytes(u)?)
    })
}

/// An event built from fuzz bytes.
pub fn event(u: &mut Unstructured) -> arbitrary::Result<Event> {
    Ok(Event {
        message_id: id(u)?,
        version: if u.arbitrary()? { Some(gen::int(u)?) } else { None },
        response_to: if u.arbitrary()? { Some(id(u)?) } else { None },
        name: gen::string(u)?,
        args: gen::value(u, gen::MAX_DEPTH)?,
        auth: if u.arbitrary()? { Some(gen::string(u)?) } else { None },
    })
}
