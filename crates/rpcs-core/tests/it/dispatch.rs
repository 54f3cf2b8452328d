use crate::ready;
use rpcs_core::{rpc_type, Context, Dispatcher, Fault, Map, MethodTable, Rest, Value};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Point {
    x: i32,
    y: i32,
}
rpc_type!(Point => Struct);

fn table() -> MethodTable {
    let mut t = MethodTable::new();
    t.register("math.add", "Add two integers.", |a: i64, b: i64| a + b)
        .params(&["a", "b"]);
    t.register("sum", "Sum any number of doubles.", |xs: Rest<f64>| {
        xs.0.iter().sum::<f64>()
    });
    t.register(
        "greet",
        "Greet, optionally loudly.",
        |name: String, loud: Option<bool>| {
            if loud.unwrap_or(false) {
                format!("HELLO {name}")
            } else {
                format!("hello {name}")
            }
        },
    );
    t.register("flip", "Swap a point's coordinates.", |p: Point| Point {
        x: p.y,
        y: p.x,
    });
    t.register("fail", "Always fails.", || -> Result<i32, Fault> {
        Err(Fault::named("StackIndexError", "pop from empty stack"))
    });
    t.register("boom", "Panics.", || -> i32 { panic!("boom") });
    t.register("who", "The caller's protocol.", |ctx: Context| {
        ctx.protocol.to_owned()
    });
    t.register("nothing", "Returns nil.", || ());
    t.register_async("later", "Async echo.", |v: Value| async move { v });
    t.register_async("async_boom", "Async panic.", || async {
        if true {
            panic!("x")
        }
        1
    });
    t
}

fn run(d: &Dispatcher, method: &str, params: Vec<Value>) -> Result<Value, Fault> {
    ready(d.call(&Context::new("test", None, 1), method, params))
}

fn ints(v: &[i64]) -> Vec<Value> {
    v.iter().map(|i| Value::Int(*i)).collect()
}

#[test]
fn typed_calls() {
    let d = Dispatcher::new(table());
    assert_eq!(run(&d, "math.add", ints(&[2, 3])), Ok(Value::Int(5)));
    assert_eq!(run(&d, "sum", vec![]), Ok(Value::Double(0.0)));
    assert_eq!(
        run(&d, "sum", vec![Value::Int(1), Value::Double(0.5)]),
        Ok(Value::Double(1.5))
    );
    assert_eq!(run(&d, "greet", vec!["bob".into()]), Ok("hello bob".into()));
    assert_eq!(
        run(&d, "greet", vec!["bob".into(), true.into()]),
        Ok("HELLO bob".into())
    );
    assert_eq!(
        run(&d, "greet", vec!["bob".into(), Value::Nil]),
        Ok("hello bob".into())
    );
    assert_eq!(run(&d, "who", vec![]), Ok("test".into()));
    assert_eq!(run(&d, "nothing", vec![]), Ok(Value::Nil));
    assert_eq!(
        run(&d, "later", vec![Value::Bytes(vec![1])]),
        Ok(Value::Bytes(vec![1]))
    );
    let mut p = Map::new();
    p.insert("x".into(), 1.into());
    p.insert("y".into(), 2.into());
    let flipped = run(&d, "flip", vec![Value::Struct(p)]).unwrap();
    assert_eq!(flipped.as_struct().unwrap()["x"], Value::Int(2));
}

#[test]
fn bad_calls_fault_with_the_right_code() {
    let d = Dispatcher::new(table());
    let code = |m: &str, p: Vec<Value>| run(&d, m, p).unwrap_err().code;
    assert_eq!(code("nope", vec![]), Fault::METHOD_NOT_FOUND);
    assert_eq!(code("math.add", ints(&[1])), Fault::INVALID_PARAMS);
    assert_eq!(code("math.add", ints(&[1, 2, 3])), Fault::INVALID_PARAMS);
    assert_eq!(
        code("math.add", vec![1.into(), "x".into()]),
        Fault::INVALID_PARAMS
    );
    assert_eq!(code("sum", vec!["x".into()]), Fault::INVALID_PARAMS);
    assert_eq!(code("flip", vec![1.into()]), Fault::INVALID_PARAMS);
    let msg = run(&d, "math.add", vec![1.into(), "x".into()])
        .unwrap_err()
        .message;
    assert!(msg.contains("parameter 2"), "{msg}");
    let message = |m: &str, p: Vec<Value>| run(&d, m, p).unwrap_err().message;
    assert_eq!(message("math.add", ints(&[1])), "takes 2 parameters, got 1");
    assert_eq!(
        message("math.add", ints(&[1, 2, 3])),
        "takes 2 parameters, got 3"
    );
    assert_eq!(message("greet", vec![]), "takes 1 to 2 parameters, got 0");
    assert_eq!(message("flip", vec![]), "takes 1 parameter, got 0");
    let fault = run(&d, "fail", vec![]).unwrap_err();
    assert_eq!(fault.name(), Some("StackIndexError"));
    assert_eq!(fault.code, 1);
}

#[test]
fn panics_become_internal_faults() {
    let d = Dispatcher::new(table());
    assert_eq!(
        run(&d, "boom", vec![]).unwrap_err().code,
        Fault::INTERNAL_ERROR
    );
    assert_eq!(
        run(&d, "async_boom", vec![]).unwrap_err().code,
        Fault::INTERNAL_ERROR
    );
    // The dispatcher still works afterwards.
    assert_eq!(run(&d, "math.add", ints(&[1, 1])), Ok(Value::Int(2)));
}

#[test]
fn introspection() {
    let d = Dispatcher::new(table());
    let names = run(&d, "system.listMethods", vec![]).unwrap();
    let names: Vec<&str> = names
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    for n in [
        "math.add",
        "system.listMethods",
        "system.methodHelp",
        "system.methodSignature",
        "system.multicall",
    ] {
        assert!(names.contains(&n), "{n}");
    }
    assert_eq!(
        run(&d, "system.methodHelp", vec!["math.add".into()]),
        Ok("Add two integers.".into())
    );
    let sig = |m: &str| run(&d, "system.methodSignature", vec![m.into()]).unwrap();
    let arr = |v: &[&[&str]]| {
        Value::Array(
            v.iter()
                .map(|s| Value::Array(s.iter().map(|x| Value::from(*x)).collect()))
                .collect(),
        )
    };
    assert_eq!(sig("math.add"), arr(&[&["int", "int", "int"]]));
    assert_eq!(
        sig("greet"),
        arr(&[&["string", "string"], &["string", "string", "boolean"]])
    );
    assert_eq!(sig("flip"), arr(&[&["struct", "struct"]]));
    assert_eq!(sig("nothing"), arr(&[&["nil"]]));
    assert_eq!(sig("sum"), arr(&[&["double"], &["double", "double"]]));
    assert_eq!(sig("system.listMethods"), arr(&[&["array"]]));
    assert_eq!(
        run(&d, "system.methodHelp", vec!["nope".into()])
            .unwrap_err()
            .code,
        Fault::INVALID_PARAMS
    );
    assert_eq!(
        run(&d, "system.methodHelp", vec![]).unwrap_err().code,
        Fault::INVALID_PARAMS
    );
    let add = d.table().get("math.add").unwrap();
    assert_eq!(add.synopsis(), "math.add(a: int, b: int) -> int");
}

fn entry(name: &str, params: Vec<Value>) -> Value {
    let mut m = Map::new();
    m.insert("methodName".into(), name.into());
    m.insert("params".into(), Value::Array(params));
    Value::Struct(m)
}

#[test]
fn multicall_runs_each_call_on_its_own() {
    let d = Dispatcher::new(table());
    let calls = Value::Array(vec![
        entry("math.add", ints(&[1, 2])),
        entry("fail", vec![]),
        entry("nope", vec![]),
        entry("system.multicall", vec![Value::Array(vec![])]),
        Value::Int(3),
        entry("later", vec!["x".into()]),
    ]);
    let out = run(&d, "system.multicall", vec![calls]).unwrap();
    let out = out.as_array().unwrap();
    assert_eq!(out.len(), 6);
    assert_eq!(out[0], Value::Array(vec![Value::Int(3)]));
    let code = |v: &Value| v.as_struct().unwrap()["faultCode"].as_i64().unwrap();
    assert_eq!(code(&out[1]), 1);
    assert!(out[1].as_struct().unwrap()["faultString"]
        .as_str()
        .unwrap()
        .starts_with("StackIndexError:"));
    assert_eq!(code(&out[2]), -32601);
    assert_eq!(code(&out[3]), -32600);
    assert_eq!(code(&out[4]), -32600);
    assert_eq!(out[5], Value::Array(vec!["x".into()]));
}

#[test]
fn multicall_limit_and_shape() {
    let limits = rpcs_core::DispatchLimits {
        max_multicall: 2,
        ..Default::default()
    };
    let d = Dispatcher::with_limits(table(), limits);
    let three = Value::Array((0..3).map(|_| entry("nothing", vec![])).collect());
    assert_eq!(
        run(&d, "system.multicall", vec![three]).unwrap_err().code,
        Fault::LIMIT_EXCEEDED
    );
    assert_eq!(
        run(&d, "system.multicall", vec![1.into()])
            .unwrap_err()
            .code,
        Fault::INVALID_PARAMS
    );
}

#[test]
fn a_multicall_stops_running_calls_once_its_answers_reach_the_limit() {
    let limits = rpcs_core::DispatchLimits {
        max_multicall_bytes: 1000,
        ..Default::default()
    };
    let mut t = table();
    t.register("blob", "300 bytes.", || "b".repeat(300));
    let d = Dispatcher::with_limits(t, limits);
    let calls = Value::Array((0..10).map(|_| entry("blob", vec![])).collect());
    let Ok(Value::Array(results)) = run(&d, "system.multicall", vec![calls]) else {
        panic!("no multicall answer")
    };
    assert_eq!(results.len(), 10, "every call gets an answer");
    // 305 bytes each: the fourth crosses 1000 and still runs, none after it.
    let ran = results.iter().filter(|r| r.as_array().is_some()).count();
    assert_eq!(ran, 4);
    let refused = &results[9].as_struct().unwrap()["faultCode"];
    assert_eq!(refused, &Value::Int(Fault::LIMIT_EXCEEDED.into()));
}

#[test]
fn tables_merge_nest_and_alias() {
    let mut a = MethodTable::new();
    a.register("ping", "", || "pong");
    let mut b = MethodTable::new();
    b.register("ping", "", || "pong2");
    assert!(a.clone().merge(b.clone()).is_err());
    a.nest("other", b).unwrap();
    assert!(a.alias("other_ping", "other.ping"));
    assert!(!a.alias("x", "missing"));
    let d = Dispatcher::new(a);
    assert_eq!(run(&d, "other.ping", vec![]), Ok("pong2".into()));
    assert_eq!(run(&d, "other_ping", vec![]), Ok("pong2".into()));
    assert_eq!(run(&d, "ping", vec![]), Ok("pong".into()));
}

fn named(d: &Dispatcher, method: &str, pairs: &[(&str, Value)]) -> Result<Value, Fault> {
    let map: Map = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    ready(d.call_named(&Context::default(), method, map))
}

#[test]
fn named_parameters_map_to_registered_names() {
    let d = Dispatcher::new(table());
    assert_eq!(
        named(&d, "math.add", &[("b", 2.into()), ("a", 40.into())]),
        Ok(Value::Int(42))
    );
    assert_eq!(
        named(&d, "math.add", &[("a", 1.into())]).unwrap_err().code,
        Fault::INVALID_PARAMS
    );
    let err = named(
        &d,
        "math.add",
        &[("a", 1.into()), ("b", 1.into()), ("c", 1.into())],
    )
    .unwrap_err();
    assert!(err.message.contains("unknown parameter \"c\""), "{err}");
    // Unnamed parameters keep their default names; optional ones may be left out.
    assert_eq!(
        named(&d, "greet", &[("arg0", "ann".into())]),
        Ok("hello ann".into())
    );
    assert_eq!(
        named(
            &d,
            "greet",
            &[("arg0", "ann".into()), ("arg1", true.into())]
        ),
        Ok("HELLO ann".into())
    );
    assert_eq!(
        named(
            &d,
            "sum",
            &[("args", Value::Array(vec![1.into(), 2.into()]))]
        ),
        Ok(Value::Double(3.0))
    );
    assert_eq!(named(&d, "sum", &[]), Ok(Value::Double(0.0)));
    assert_eq!(
        named(&d, "system.methodHelp", &[("method", "math.add".into())]),
        Ok("Add two integers.".into())
    );
    assert_eq!(
        named(&d, "nope", &[]).unwrap_err().code,
        Fault::METHOD_NOT_FOUND
    );
}

#[test]
fn rpc_discover_describes_every_method() {
    let d = Dispatcher::new(table());
    let doc = run(&d, "rpc.discover", vec![]).unwrap();
    let doc = doc.as_struct().unwrap();
    assert_eq!(doc["openrpc"], Value::from("1.2.6"));
    let methods = doc["methods"].as_array().unwrap();
    let add = methods
        .iter()
        .find(|m| m.as_struct().unwrap()["name"] == Value::from("math.add"))
        .unwrap()
        .as_struct()
        .unwrap();
    assert_eq!(add["description"], Value::from("Add two integers."));
    let params = add["params"].as_array().unwrap();
    let first = params[0].as_struct().unwrap();
    assert_eq!(first["name"], Value::from("a"));
    assert_eq!(first["required"], Value::Bool(true));
    assert_eq!(
        first["schema"].as_struct().unwrap()["type"],
        Value::from("integer")
    );
    assert_eq!(methods.len(), d.table().len());
}

/// A stream over an iterator, ready at once.
struct Iter<I>(I);

impl<I: Iterator + Unpin> futures_core::Stream for Iter<I> {
    type Item = I::Item;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<I::Item>> {
        std::task::Poll::Ready(self.0.next())
    }
}

#[test]
fn streaming_methods_stream_or_collect() {
    let mut t = MethodTable::new();
    t.register_stream("count", "Counts to n.", |n: i64| {
        Iter((1..=n).map(Value::Int))
    })
    .params(&["n"]);
    t.register_stream("broken", "Fails midway.", || {
        Iter(vec![Ok(Value::Int(1)), Err(Fault::named("IOError", "lost"))].into_iter())
    });
    let d = Dispatcher::with_limits(
        t,
        rpcs_core::DispatchLimits {
            max_multicall: 10,
            max_collected_items: 5,
            ..Default::default()
        },
    );
    assert_eq!(
        run(&d, "count", vec![3.into()]),
        Ok(Value::Array(vec![1.into(), 2.into(), 3.into()]))
    );
    assert_eq!(
        run(&d, "count", vec![6.into()]).unwrap_err().code,
        Fault::LIMIT_EXCEEDED
    );
    assert_eq!(
        run(&d, "broken", vec![]).unwrap_err().name(),
        Some("IOError")
    );
    assert_eq!(
        run(&d, "count", vec!["x".into()]).unwrap_err().code,
        Fault::INVALID_PARAMS
    );
    assert!(d.table().get("count").unwrap().is_stream());
    let sig = run(&d, "system.methodSignature", vec!["count".into()]).unwrap();
    assert_eq!(
        sig,
        Value::Array(vec![Value::Array(vec!["array".into(), "int".into()])])
    );
    let ctx = Context::default();
    let Ok(rpcs_core::Reply::Stream(mut s)) =
        ready(d.call_streaming(&ctx, "count", vec![10.into()]))
    else {
        panic!("expected a stream")
    };
    let mut items = Vec::new();
    while let Some(item) = ready(std::future::poll_fn(|cx| s.as_mut().poll_next(cx))) {
        items.push(item.unwrap());
    }
    assert_eq!(items.len(), 10);
    assert!(ready(d.call_streaming(&ctx, "count2", vec![])).is_err());
}

fn as_principal(access: rpcs_core::Access) -> Context {
    let mut ctx = Context::new("test", None, 1);
    ctx.principal = Some(std::sync::Arc::new(rpcs_core::Principal {
        name: "t".into(),
        access,
        prefix: None,
    }));
    ctx
}

fn access_table() -> MethodTable {
    use rpcs_core::Access;
    let mut t = MethodTable::new();
    t.register("look", "A read.", || 1).access(Access::Read);
    t.register("change", "A write.", || 2).access(Access::Write);
    t.register("wipe", "An admin call.", || 3)
        .access(Access::Admin);
    t.register("uncategorized", "Registered without a level.", || 4);
    t
}

#[test]
fn a_caller_without_a_principal_is_refused_everything_once_authentication_is_required() {
    let mut d = Dispatcher::new(access_table());
    assert_eq!(run(&d, "change", vec![]), Ok(Value::Int(2)));
    d.require_authentication();
    for method in [
        "look",
        "change",
        "wipe",
        "system.listMethods",
        "no.such.method",
    ] {
        let fault = run(&d, method, vec![]).unwrap_err();
        assert_eq!(fault.code, Fault::NOT_AUTHENTICATED, "{method}");
        assert_eq!(fault.name(), Some("NOAUTH"), "{method}");
    }
    let fault = ready(d.call_named(&Context::default(), "look", Map::new())).unwrap_err();
    assert_eq!(fault.code, Fault::NOT_AUTHENTICATED);
    let fault = ready(d.call(
        &Context::default(),
        "system.multicall",
        vec![Value::Array(vec![entry("look", vec![])])],
    ))
    .unwrap_err();
    assert_eq!(fault.code, Fault::NOT_AUTHENTICATED);
}

#[test]
fn each_level_calls_its_level_and_below_and_uncategorized_needs_admin() {
    use rpcs_core::Access;
    let mut d = Dispatcher::new(access_table());
    d.require_authentication();
    let cases = [
        (Access::Read, [true, false, false, false]),
        (Access::Write, [true, true, false, false]),
        (Access::Admin, [true, true, true, true]),
    ];
    for (access, allowed) in cases {
        let ctx = as_principal(access);
        for (method, ok) in ["look", "change", "wipe", "uncategorized"]
            .iter()
            .zip(allowed)
        {
            let r = ready(d.call(&ctx, method, vec![]));
            match ok {
                true => assert!(r.is_ok(), "{access} {method}: {r:?}"),
                false => assert_eq!(r.unwrap_err().code, Fault::FORBIDDEN, "{access} {method}"),
            }
        }
        assert!(ready(d.call(&ctx, "system.listMethods", vec![])).is_ok());
    }
}

#[test]
fn every_inner_call_of_a_multicall_is_authorized_on_its_own() {
    let mut d = Dispatcher::new(access_table());
    d.require_authentication();
    let calls = Value::Array(vec![
        entry("look", vec![]),
        entry("change", vec![]),
        entry("look", vec![]),
    ]);
    let ctx = as_principal(rpcs_core::Access::Read);
    let Ok(Value::Array(results)) = ready(d.call(&ctx, "system.multicall", vec![calls])) else {
        panic!("multicall failed")
    };
    assert_eq!(results[0], Value::Array(vec![Value::Int(1)]));
    assert_eq!(results[2], Value::Array(vec![Value::Int(1)]));
    let Value::Struct(fault) = &results[1] else {
        panic!("{:?}", results[1])
    };
    assert_eq!(
        fault.get("faultCode"),
        Some(&Value::Int(Fault::FORBIDDEN.into()))
    );
}
