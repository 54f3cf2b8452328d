//! Measures the XML-RPC codec and dispatch without any network:
//! `cargo run --release -p rpcs-core --example xmlrpc_codec`.

use rpcs_core::{xmlrpc, Context, Dispatcher, MethodTable, Value};
use std::future::Future;
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::Instant;

fn main() {
    let mut table = MethodTable::new();
    table.register("add", "Add two integers.", |a: i64, b: i64| a + b);
    let dispatcher = Dispatcher::new(table);
    let request = xmlrpc::encode_request("add", &[Value::Int(1), Value::Int(2)]).unwrap();
    let limits = xmlrpc::Limits::default();
    let rounds = 1_000_000;

    let start = Instant::now();
    let mut bytes = 0;
    for _ in 0..rounds {
        let call = xmlrpc::decode_request(std::hint::black_box(&request), &limits).unwrap();
        bytes += call.params.len();
    }
    report("decode a request", start, rounds, bytes);

    let start = Instant::now();
    let ctx = Context::new("bench", None, 1);
    let mut bytes = 0;
    for _ in 0..rounds {
        let call = xmlrpc::decode_request(std::hint::black_box(&request), &limits).unwrap();
        let mut fut = std::pin::pin!(dispatcher.call(&ctx, &call.method, call.params));
        let Poll::Ready(outcome) = fut
            .as_mut()
            .poll(&mut TaskContext::from_waker(Waker::noop()))
        else {
            unreachable!("plain handlers complete at once");
        };
        bytes += xmlrpc::encode_response(&outcome).len();
    }
    report("decode, dispatch, encode", start, rounds, bytes);
}

fn report(what: &str, start: Instant, rounds: u32, checksum: usize) {
    let per_call = start.elapsed().as_secs_f64() * 1e6 / f64::from(rounds);
    println!("{what:<28} {per_call:.3} µs per call (checksum {checksum})");
}
