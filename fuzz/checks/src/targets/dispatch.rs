//! XML-RPC and JSON-RPC documents through the real `Dispatcher`: arbitrary bytes
//! read as either protocol, then `system.multicall` documents and JSON-RPC
//! batches built from the same bytes. The table has plain, async, failing,
//! panicking and streaming methods, and the limits are small so the fuzzer
//! reaches them. Never a panic; every answer is a well-formed document; a
//! multicall over the limit runs nothing, one within it gives each inner call
//! exactly the answer that call gets alone (a nested multicall is refused), and
//! a batch answers each call with an id once and no notification.

use crate::{gen, mapping, ready};
use arbitrary::Unstructured;
use futures_core::Stream;
use rpcs_core::dispatch::fault_struct;
use rpcs_core::jsonrpc::{self, Call, Id, Incoming, Message, Params};
use rpcs_core::{xmlrpc, Context, DispatchLimits, Dispatcher, Fault, Map, MethodTable, Value};
use std::cell::Cell;
use std::pin::Pin;
use std::sync::{Once, OnceLock};
use std::task::Poll;

/// The limits the fuzzed calls run under.
pub const LIMITS: DispatchLimits = DispatchLimits {
    max_multicall: 4,
    max_collected_items: 5,
    // The answer budget is not modelled here (the checks predict every answer);
    // rpcs-core's dispatch tests cover it.
    max_multicall_bytes: usize::MAX,
};

/// The payload of the panics the table's panicking methods raise on purpose.
pub struct ExpectedPanic;

thread_local! {
    /// How many handlers have run (reset before each call that is counted).
    static RUNS: Cell<usize> = const { Cell::new(0) };
}

fn ran() {
    RUNS.with(|r| r.set(r.get() + 1));
}

fn runs() -> usize {
    RUNS.with(Cell::get)
}

/// Lets the panics raised on purpose unwind quietly into the dispatcher, which
/// must catch them; every other panic still reaches the previous hook (under
/// libFuzzer, one that aborts).
fn expect_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !info.payload().is::<ExpectedPanic>() {
                previous(info);
            }
        }));
    });
}

/// A stream of `0..n`, panicking instead of yielding item `panic_at`.
struct Count {
    next: u8,
    end: u8,
    panic_at: Option<u8>,
}

impl Stream for Count {
    type Item = i64;
    fn poll_next(mut self: Pin<&mut Self>, _: &mut std::task::Context<'_>) -> Poll<Option<i64>> {
        if self.next == self.end {
            return Poll::Ready(None);
        }
        if self.panic_at == Some(self.next) {
            std::panic::panic_any(ExpectedPanic);
        }
        self.next += 1;
        Poll::Ready(Some(i64::from(self.next - 1)))
    }
}

/// The method names the structured documents call, unknown ones included.
const METHODS: [&str; 12] = [
    "add",
    "echo",
    "async_echo",
    "fail",
    "boom",
    "async_boom",
    "count",
    "stream_boom",
    "system.multicall",
    "system.listMethods",
    "system.methodHelp",
    "nope",
];

fn boom() -> i64 {
    ran();
    std::panic::panic_any(ExpectedPanic)
}

fn dispatcher() -> &'static Dispatcher {
    static DISPATCHER: OnceLock<Dispatcher> = OnceLock::new();
    DISPATCHER.get_or_init(|| {
        let mut t = MethodTable::new();
        t.register("add", "Adds.", |a: i64, b: i64| {
            ran();
            a.wrapping_add(b)
        })
        .params(&["a", "b"]);
        t.register("echo", "Echoes.", |v: Value| {
            ran();
            v
        })
        .params(&["v"]);
        t.register_async("async_echo", "Echoes later.", |v: Option<Value>| async move {
            ran();
            v
        })
        .params(&["v"]);
        t.register("fail", "Fails.", || -> Result<i64, Fault> {
            ran();
            Err(Fault::named("StackIndexError", "pop from empty stack"))
        });
        t.register("boom", "Panics.", boom);
        t.register_async("async_boom", "Panics when polled.", || async { boom() });
        t.register_stream("count", "Streams 0..n.", |n: u8| {
            ran();
            Count {
                next: 0,
                end: n,
                panic_at: None,
            }
        });
        t.register_stream("stream_boom", "Streams, then panics.", |n: u8| {
            ran();
            Count {
                next: 0,
                end: n.saturating_add(1),
                panic_at: Some(n),
            }
        });
        Dispatcher::with_limits(t, LIMITS)
    })
}

/// Runs the target on one input.
pub fn check(data: &[u8]) {
    expect_panics();
    serve_xmlrpc(data);
    serve_jsonrpc(data);
    let mut u = Unstructured::new(data);
    if let Ok(entries) = multicall_entries(&mut u) {
        multicall(&entries);
    }
    if let Ok(batch) = batch(&mut u) {
        run_batch(&batch);
    }
}

/// Runs one call, checking the multicall properties when it is one.
fn call(method: &str, params: Vec<Value>) -> Result<Value, Fault> {
    let d = dispatcher();
    RUNS.with(|r| r.set(0));
    let entries = match (method, params.as_slice()) {
        ("system.multicall", [Value::Array(entries)]) => Some(entries.clone()),
        _ => None,
    };
    let outcome = ready(d.call(&Context::default(), method, params));
    if let Some(entries) = entries {
        multicall_answers(&entries, &outcome, runs());
    }
    outcome
}

/// Checks a multicall's answer against each inner call made alone.
fn multicall_answers(entries: &[Value], outcome: &Result<Value, Fault>, runs: usize) {
    if entries.len() > LIMITS.max_multicall {
        assert!(
            matches!(outcome, Err(f) if f.code == Fault::LIMIT_EXCEEDED) && runs == 0,
            "{} calls over the limit gave {outcome:?} after {runs} runs",
            entries.len()
        );
        return;
    }
    let Ok(Value::Array(answers)) = outcome else {
        panic!("a multicall of {entries:?} answered {outcome:?}");
    };
    assert_eq!(answers.len(), entries.len(), "one answer per call");
    assert!(runs <= entries.len(), "{runs} handlers ran for {} calls", entries.len());
    for (entry, answer) in entries.iter().zip(answers) {
        let want = alone(entry);
        assert!(mapping::same(answer, &want), "the answer to {entry:?}: {answer:?}, want {want:?}");
    }
}

/// The answer a multicall entry should get: what the call gets on its own, in
/// the multicall's answer shapes.
fn alone(entry: &Value) -> Value {
    let name = entry
        .as_struct()
        .and_then(|m| m.get("methodName"))
        .and_then(Value::as_str);
    let params = entry.as_struct().and_then(|m| m.get("params"));
    let outcome = match (name, params) {
        (Some("system.multicall"), _) => {
            return nested_refusal();
        }
        (Some(name), None | Some(Value::Nil)) => ready(dispatcher().call(
            &Context::default(),
            name,
            Vec::new(),
        )),
        (Some(name), Some(Value::Array(params))) => ready(dispatcher().call(
            &Context::default(),
            name,
            params.clone(),
        )),
        _ => Err(Fault::invalid_request("")),
    };
    match outcome {
        Ok(v) => Value::Array(vec![v]),
        Err(f) if f.code == Fault::INVALID_REQUEST && f.message.is_empty() => {
            malformed_entry(entry)
        }
        Err(f) => fault_struct(&f),
    }
}

fn nested_refusal() -> Value {
    fault_struct(&Fault::invalid_request(
        "system.multicall cannot be nested in system.multicall",
    ))
}

/// The fault for an entry that is not a `{methodName, params}` struct; its
/// message is the dispatcher's, so only the code is predicted.
fn malformed_entry(entry: &Value) -> Value {
    let mut d = Map::new();
    d.insert("faultCode".into(), Value::Int(Fault::INVALID_REQUEST.into()));
    let message = match entry {
        Value::Struct(m) if m.get("methodName").and_then(Value::as_str).is_none() => {
            "multicall entry lacks a string methodName"
        }
        Value::Struct(_) => "multicall entry params must be an array",
        _ => "each multicall entry must be a {methodName, params} struct",
    };
    d.insert("faultString".into(), Value::String(message.into()));
    Value::Struct(d)
}

/// Arbitrary bytes as an XML-RPC request: any call runs, and its answer is a
/// response document that decodes.
fn serve_xmlrpc(data: &[u8]) {
    let limits = super::xmlrpc_request::LIMITS;
    let Ok(request) = xmlrpc::decode_request(data, &limits) else {
        return;
    };
    let outcome = call(&request.method, request.params);
    let answer = xmlrpc::encode_response(&outcome);
    if let Err(e) = xmlrpc::decode_response(&answer, &super::xmlrpc_request::any_size()) {
        panic!("answer does not decode: {e}");
    }
}

/// Arbitrary bytes as a JSON-RPC document, served as a server would.
fn serve_jsonrpc(data: &[u8]) {
    let messages = match jsonrpc::decode(data) {
        Incoming::Single(m) => vec![m],
        Incoming::Batch(ms) => ms,
    };
    let answers: Vec<Vec<u8>> = messages.iter().filter_map(answer_json).collect();
    if let Some(body) = jsonrpc::encode_batch(answers) {
        // Checked as JSON text only: an answer echoes its call's id byte for
        // byte, and a number id may lie beyond what an f64 holds (1e999 is
        // valid JSON), which serde_json's own values refuse.
        serde_json::from_slice::<Box<serde_json::value::RawValue>>(&body)
            .expect("answers are JSON");
    }
}

/// The answer to one JSON-RPC message (none for notifications and responses).
fn answer_json(message: &Message) -> Option<Vec<u8>> {
    match message {
        Message::Call(c) => {
            let outcome = run_json(c);
            let id = c.id.as_ref()?;
            Some(jsonrpc::encode_response(id, &outcome, c.v1))
        }
        Message::Invalid { id, fault } => Some(jsonrpc::encode_response(id, &Err(fault.clone()), false)),
        Message::Response { .. } | Message::RefusedNotification { .. } => None,
    }
}

fn run_json(c: &Call) -> Result<Value, Fault> {
    match &c.params {
        Params::Positional(p) => call(&c.method, p.clone()),
        Params::Named(named) => ready(dispatcher().call_named(
            &Context::default(),
            &c.method,
            named.clone(),
        )),
    }
}

/// Parameters that fit the named method most of the time, arbitrary otherwise.
fn params_for(u: &mut Unstructured, method: &str) -> arbitrary::Result<Vec<Value>> {
    if u.ratio(1, 4)? {
        return gen::values(u, 2);
    }
    Ok(match method {
        "add" => vec![Value::Int(gen::int(u)?), Value::Int(gen::int(u)?)],
        "echo" | "async_echo" => vec![gen::value(u, 2)?],
        "count" | "stream_boom" => vec![Value::Int(u.int_in_range(0..=7)?)],
        "system.methodHelp" => vec![Value::from(*u.choose(&METHODS)?)],
        "system.multicall" => vec![Value::Array(multicall_entries(u)?)],
        _ => Vec::new(),
    })
}

/// Up to six multicall entries, most well-formed.
fn multicall_entries(u: &mut Unstructured) -> arbitrary::Result<Vec<Value>> {
    let n = u.int_in_range(0..=6)?;
    (0..n)
        .map(|_| {
            if u.ratio(1, 8)? {
                return gen::value(u, 2);
            }
            let method = *u.choose(&METHODS)?;
            let mut entry = Map::new();
            entry.insert("methodName".into(), Value::from(method));
            if u.ratio(7, 8)? {
                entry.insert("params".into(), Value::Array(params_for(u, method)?));
            }
            Ok(Value::Struct(entry))
        })
        .collect()
}

/// A multicall made directly and through XML-RPC's encoding.
fn multicall(entries: &[Value]) {
    let params = vec![Value::Array(entries.to_vec())];
    let _ = call("system.multicall", params.clone());
    if let Ok(document) = xmlrpc::encode_request("system.multicall", &params) {
        serve_xmlrpc(&document);
    }
}

/// A JSON-RPC batch: (id, method, params) per call; no id for a notification.
type Batch = Vec<(Option<u64>, &'static str, Vec<Value>)>;

fn batch(u: &mut Unstructured) -> arbitrary::Result<Batch> {
    let n = u.int_in_range(1..=6)?;
    (0..n)
        .map(|i| {
            let method = *u.choose(&METHODS)?;
            let id = u.ratio(3, 4)?.then_some(i);
            Ok((id, method, params_for(u, method)?))
        })
        .collect()
}

/// Encodes the batch, serves it, and checks that each call with an id gets one
/// answer carrying that id, in order, and no notification gets any.
fn run_batch(batch: &Batch) {
    let requests = batch
        .iter()
        .map(|(id, method, params)| {
            jsonrpc::encode_request(id.map(Id::number).as_ref(), method, params)
        })
        .collect();
    let document = jsonrpc::encode_batch(requests).expect("a batch is never empty");
    let Incoming::Batch(messages) = jsonrpc::decode(&document) else {
        panic!("a batch was not read as one");
    };
    let answers: Vec<Vec<u8>> = messages.iter().filter_map(answer_json).collect();
    let answered: Vec<u64> = answers
        .iter()
        .map(|a| {
            let doc: serde_json::Value = serde_json::from_slice(a).expect("answers are JSON");
            doc["id"]
                .as_u64()
                .unwrap_or_else(|| panic!("answers carry the numeric id sent: {doc}"))
        })
        .collect();
    let with_ids: Vec<u64> = batch.iter().filter_map(|(id, ..)| *id).collect();
    assert_eq!(answered, with_ids, "answered ids");
}
