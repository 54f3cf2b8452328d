//! Property tests: every codec's round trip on values generated from a fixed
//! seed, a few hundred cases each, through the same checks the fuzz targets run
//! (`rpcs-fuzz-checks`). The seed is fixed so a failure reproduces; the fuzz
//! targets explore further.

use arbitrary::Unstructured;
use rpcs_core::jsonrpc::Id;
use rpcs_core::msgpack::{self, FrameLen};
use rpcs_fuzz_checks::gen;
use rpcs_fuzz_checks::seeded;
use rpcs_fuzz_checks::targets::{
    cross_codec, jsonrpc, msgpack_rpc, msgpack_value, xmlrpc_response, zerorpc_event,
};
use rpcs_fuzz_checks::TARGETS;

/// Runs `property` on `n` inputs drawn from `seed`.
fn cases(
    seed: u64,
    n: usize,
    mut property: impl FnMut(&mut Unstructured) -> arbitrary::Result<()>,
) {
    let mut bytes = seeded::Bytes::new(seed);
    for _ in 0..n {
        let data = bytes.fill(512);
        let _ = property(&mut Unstructured::new(&data));
    }
}

#[test]
fn xmlrpc_carries_values_as_documented() {
    cases(1, 300, |u| {
        let value = gen::value(u, gen::MAX_DEPTH)?;
        cross_codec::through_xmlrpc(&value);
        Ok(())
    });
}

#[test]
fn xmlrpc_faults_round_trip() {
    cases(2, 200, |u| {
        let fault = rpcs_core::Fault::new(u.arbitrary()?, gen::string(u)?);
        xmlrpc_response::round_trip(&Err(fault));
        Ok(())
    });
}

#[test]
fn msgpack_is_exact() {
    cases(3, 300, |u| {
        cross_codec::through_msgpack(&gen::value(u, gen::MAX_DEPTH)?);
        Ok(())
    });
}

#[test]
fn frame_len_measures_every_encoding_and_truncation() {
    cases(4, 300, |u| {
        let encoded = msgpack::encode(&gen::value(u, gen::MAX_DEPTH)?);
        let len = encoded.len();
        for cut in 0..=len {
            let prefix = &encoded[..cut];
            msgpack_value::agree(prefix, msgpack::DEFAULT_MAX_DEPTH);
            msgpack_value::agree(prefix, 2);
            msgpack_value::grows_consistently(prefix, &encoded, msgpack::DEFAULT_MAX_DEPTH);
            match msgpack::frame_len(prefix, msgpack::DEFAULT_MAX_DEPTH) {
                Ok(FrameLen::Complete(n)) => assert!(cut == len && n == len),
                Ok(FrameLen::NeedAtLeast(n)) => assert!(cut < n && n <= len, "{n} for {cut}/{len}"),
                Err(e) => panic!("{encoded:02x?} cut at {cut}: {e}"),
            }
        }
        let mut followed = encoded.clone();
        followed.extend_from_slice(&[0xc0, 0x91]);
        assert_eq!(
            msgpack::frame_len(&followed, msgpack::DEFAULT_MAX_DEPTH),
            Ok(FrameLen::Complete(len))
        );
        Ok(())
    });
}

#[test]
fn msgpack_rpc_messages_round_trip() {
    cases(5, 300, |u| {
        let message = msgpack_rpc::message(u)?;
        let bytes = msgpack_rpc::write(&message);
        let value = msgpack::decode(&bytes, msgpack::DEFAULT_MAX_DEPTH).expect("decodes");
        let back = rpcs_core::msgpack_rpc::parse(value).expect("parses");
        msgpack_rpc::assert_same(&back, &message);
        Ok(())
    });
}

#[test]
fn jsonrpc_requests_and_responses_round_trip() {
    cases(6, 300, jsonrpc::round_trips);
}

#[test]
fn jsonrpc_carries_values_as_documented() {
    cases(7, 300, |u| {
        cross_codec::through_json(&gen::value(u, gen::MAX_DEPTH)?);
        let id = Id::number(u.arbitrary()?);
        jsonrpc::request_round_trip(Some(&id), &gen::string(u)?, &gen::values(u, 2)?);
        Ok(())
    });
}

#[test]
fn zerorpc_events_round_trip() {
    cases(8, 300, |u| {
        zerorpc_event::round_trip(&zerorpc_event::event(u)?);
        Ok(())
    });
}

#[test]
fn every_codec_at_once() {
    cases(9, 300, |u| {
        cross_codec::every_codec(&gen::value(u, gen::MAX_DEPTH)?);
        Ok(())
    });
}

/// Every fuzz target on pseudo-random bytes (mostly rejected input, which is
/// what the decoders see most).
#[test]
fn every_target_on_noise() {
    for (i, t) in TARGETS.iter().enumerate() {
        seeded::run(100 + i as u64, 200, 300, t.check);
    }
}
