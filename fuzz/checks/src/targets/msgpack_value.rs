//! `msgpack::decode` on arbitrary bytes: a value that decodes encodes to bytes
//! that decode to it exactly (NaN payloads included) and re-encode the same.
//! And `frame_len`, the stream transports' measure of the first value, agrees
//! with the decoder on every input, as [`agree`] defines.

use crate::mapping;
use rpcs_core::msgpack::{self, DecodeError, FrameLen};

/// The nesting limits tried: a small one, to reach it, and the default.
const DEPTHS: [usize; 2] = [2, msgpack::DEFAULT_MAX_DEPTH];

/// Runs the target on one input.
pub fn check(data: &[u8]) {
    for depth in DEPTHS {
        agree(data, depth);
    }
    // A cut half-way, as a stream reader sees a value arriving.
    grows_consistently(&data[..data.len() / 2], data, msgpack::DEFAULT_MAX_DEPTH);
    if let Ok(value) = msgpack::decode(data, msgpack::DEFAULT_MAX_DEPTH) {
        let encoded = msgpack::encode(&value);
        let again = msgpack::decode(&encoded, msgpack::DEFAULT_MAX_DEPTH)
            .unwrap_or_else(|e| panic!("{value:?} encodes to {encoded:02x?}, which fails: {e}"));
        assert!(mapping::exact(&again, &value), "{value:?} came back as {again:?}");
        assert_eq!(msgpack::encode(&again), encoded, "encoding is not canonical");
    }
}

/// `frame_len` is the decoder without its content checks (UTF-8, extension
/// types, timestamp ranges, 64-bit overflow, map key types): on every input,
/// unless the decoder stops at such a content error first,
///
/// - the decoder reads a value of `n` bytes ⇔ `frame_len` says `Complete(n)`;
/// - the decoder runs out of input ⇔ `frame_len` says `NeedAtLeast(m)`, and
///   `m > input.len()` always;
/// - nesting too deep for one ⇔ for the other.
///
/// `frame_len`'s only error of its own (the reserved byte 0xc1) is one the
/// decoder reports too.
pub fn agree(input: &[u8], max_depth: usize) {
    let frame = msgpack::frame_len(input, max_depth);
    let decoded = msgpack::decode_prefix(input, max_depth);
    if let Ok(FrameLen::NeedAtLeast(m)) = frame {
        assert!(m > input.len(), "NeedAtLeast({m}) for {} bytes", input.len());
    }
    let agreed = match (&decoded, &frame) {
        (Ok((_, used)), Ok(FrameLen::Complete(n))) => used == n,
        (Err(DecodeError::Truncated), Ok(FrameLen::NeedAtLeast(_))) => true,
        (Err(DecodeError::TooDeep(a)), Err(DecodeError::TooDeep(b))) => a == b,
        (Err(DecodeError::Invalid(_)), _) => true,
        _ => false,
    };
    assert!(
        agreed,
        "depth {max_depth}, input {input:02x?}: decoder {decoded:?}, frame_len {frame:?}"
    );
}

/// What `frame_len` says of a prefix holds for the whole: a complete value stays
/// complete and the same length, an error stays the same error, and a lower
/// bound stays a lower bound.
pub fn grows_consistently(prefix: &[u8], whole: &[u8], max_depth: usize) {
    let before = msgpack::frame_len(prefix, max_depth);
    let after = msgpack::frame_len(whole, max_depth);
    let consistent = match (&before, &after) {
        (Ok(FrameLen::Complete(a)), Ok(FrameLen::Complete(b))) => a == b,
        (Ok(FrameLen::NeedAtLeast(m)), Ok(FrameLen::Complete(n) | FrameLen::NeedAtLeast(n))) => {
            n >= m
        }
        (Ok(FrameLen::NeedAtLeast(_)), Err(_)) => true,
        (Err(a), Err(b)) => a == b,
        _ => false,
    };
    assert!(
        consistent,
        "prefix {prefix:02x?} gives {before:?}, whole {whole:02x?} gives {after:?}"
    );
}
