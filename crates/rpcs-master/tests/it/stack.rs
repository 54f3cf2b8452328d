use crate::{all_envs, all_envs_with, config, config_on, i, map, s, until};
use rpcs_core::{Dispatcher, Fault, Value};
use rpcs_master::clock::ManualClock;
use rpcs_master::{BackendConfig, Limits, Master};
use rpcs_net::{Client, Listener, Server, ServerConfig};
use std::time::Duration;
use tokio::sync::oneshot;

#[tokio::test]
async fn push_pop_and_friends() {
    for e in all_envs().await {
        assert_eq!(e.ok("stack.create", vec![s("in")]).await, Value::Bool(true));
        assert_eq!(
            e.ok("stack.create", vec![s("in")]).await,
            Value::Bool(false)
        );
        assert_eq!(
            e.ok("stack.isEmpty", vec![s("in")]).await,
            Value::Bool(true)
        );
        for n in 0..10 {
            assert_eq!(e.ok("stack.push", vec![s("in"), i(n)]).await, i(n + 1));
        }
        let rich = map(&[
            ("url", s("http://x/")),
            ("depth", i(2)),
            ("raw", Value::Bytes(vec![0, 1])),
        ]);
        assert_eq!(e.ok("stack.push", vec![s("in"), rich.clone()]).await, i(11));
        assert_eq!(e.ok("stack.getSize", vec![s("in")]).await, i(11));
        assert_eq!(e.ok("stack.pop", vec![s("in")]).await, e.norm(rich));
        for n in (0..10).rev() {
            assert_eq!(e.ok("stack.pop", vec![s("in")]).await, i(n), "[{}]", e.name);
        }
        e.fault("stack.pop", vec![s("in")], "StackIndexError").await;
        assert_eq!(
            e.ok("stack.hasStack", vec![s("in")]).await,
            Value::Bool(true)
        );
        assert_eq!(
            e.ok("stack.hasStack", vec![s("out")]).await,
            Value::Bool(false)
        );
    }
}

#[tokio::test]
async fn push_creates_and_unknown_stacks_fault() {
    for e in all_envs().await {
        assert_eq!(e.ok("stack.push", vec![s("fresh"), i(1)]).await, i(1));
        for method in [
            "stack.pop",
            "stack.getSize",
            "stack.isEmpty",
            "stack.truncate",
            "stack.remove",
        ] {
            e.fault(method, vec![s("missing")], "StackNotFoundError")
                .await;
        }
        e.fault(
            "stack.popMany",
            vec![s("missing"), i(2)],
            "StackNotFoundError",
        )
        .await;
    }
}

#[tokio::test]
async fn batches_truncate_remove_and_names() {
    for e in all_envs().await {
        let items: Vec<Value> = (1..=5).map(i).collect();
        assert_eq!(
            e.ok("stack.pushMany", vec![s("b"), Value::Array(items)])
                .await,
            i(5)
        );
        assert_eq!(
            e.ok("stack.popMany", vec![s("b"), i(3)]).await,
            Value::Array(vec![i(5), i(4), i(3)])
        );
        assert_eq!(
            e.ok("stack.popMany", vec![s("b"), i(10)]).await,
            Value::Array(vec![i(2), i(1)])
        );
        assert_eq!(
            e.ok("stack.popMany", vec![s("b"), i(10)]).await,
            Value::Array(vec![])
        );
        e.ok(
            "stack.pushMany",
            vec![s("b"), Value::Array(vec![i(1), i(2)])],
        )
        .await;
        assert_eq!(e.ok("stack.truncate", vec![s("b")]).await, i(2));
        assert_eq!(e.ok("stack.getSize", vec![s("b")]).await, i(0));
        e.ok("stack.create", vec![s("a")]).await;
        assert_eq!(
            e.ok("stack.getAllNames", vec![]).await,
            Value::Array(vec![s("a"), s("b")])
        );
        assert_eq!(e.ok("stack.remove", vec![s("b")]).await, Value::Bool(true));
        assert_eq!(
            e.ok("stack.getAllNames", vec![]).await,
            Value::Array(vec![s("a")])
        );
        // A removed stack starts afresh.
        assert_eq!(e.ok("stack.push", vec![s("b"), i(9)]).await, i(1));
    }
}

#[tokio::test]
async fn underscore_names_answer_like_dotted_ones() {
    for e in all_envs().await {
        assert_eq!(e.ok("stack_push", vec![s("u"), i(1)]).await, i(1));
        assert_eq!(e.ok("stack_getSize", vec![s("u")]).await, i(1));
        assert_eq!(e.ok("stack_pop", vec![s("u")]).await, i(1));
        e.fault("stack_pop", vec![s("u")], "StackIndexError").await;
        assert_eq!(e.ok("ping", vec![]).await, Value::Bool(true));
    }
}

#[tokio::test]
async fn bad_arguments_fault_clearly() {
    for e in all_envs().await {
        let wrong = e.call("stack.push", vec![i(1), i(2)]).await.unwrap_err();
        assert_eq!(wrong.code, Fault::INVALID_PARAMS, "[{}]", e.name);
        let missing = e.call("stack.push", vec![s("x")]).await.unwrap_err();
        assert_eq!(missing.code, Fault::INVALID_PARAMS);
        e.fault("stack.push", vec![s(""), i(1)], "ValueError").await;
        e.fault("stack.push", vec![s(&"n".repeat(5000)), i(1)], "ValueError")
            .await;
        let huge = Value::String("x".repeat(100 * 1024));
        let f = e
            .fault(
                "stack.push",
                vec![s("x"), huge.clone()],
                "ItemTooLargeError",
            )
            .await;
        assert!(f.message.contains("exceeds the limit"), "{f}");
        e.fault(
            "stack.pushMany",
            vec![s("x"), Value::Array(vec![i(1), huge])],
            "ItemTooLargeError",
        )
        .await;
        // Nothing of a refused batch was stored.
        e.fault("stack.getSize", vec![s("x")], "StackNotFoundError")
            .await;
        e.fault("stack.popMany", vec![s("x"), i(-1)], "ValueError")
            .await;
        e.fault(
            "stack.popWait",
            vec![s("x"), Value::Double(-1.0)],
            "ValueError",
        )
        .await;
        e.fault("stack.take", vec![s("x"), Value::Double(0.0)], "ValueError")
            .await;
    }
}

#[tokio::test]
async fn pop_wait_returns_a_pushed_item_or_times_out() {
    for e in all_envs().await {
        let started = tokio::time::Instant::now();
        e.fault(
            "stack.popWait",
            vec![s("w"), Value::Double(0.2)],
            "StackIndexError",
        )
        .await;
        assert!(
            started.elapsed() >= Duration::from_millis(200),
            "[{}] returned before the timeout",
            e.name
        );
        let stacks = e.master.stacks().clone();
        let pusher = tokio::spawn(async move {
            // The push comes once the pop is blocked: only its wake-up frees it.
            until(|| stacks.waiting("w") == 1).await;
            stacks.push("w".into(), Value::from("late")).await
        });
        let got = e
            .ok("stack.popWait", vec![s("w"), Value::Double(30.0)])
            .await;
        assert_eq!(got, s("late"));
        pusher.await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn leased_items_are_acked_released_or_expire() {
    let clock = ManualClock::new();
    for e in all_envs_with(config_on(clock.clone())).await {
        e.ok(
            "stack.pushMany",
            vec![s("jobs"), Value::Array(vec![i(1), i(2), i(3)])],
        )
        .await;
        let taken = e.ok("stack.take", vec![s("jobs")]).await;
        let t = taken.as_struct().unwrap();
        assert_eq!(t["item"], i(3));
        assert!(e.is_datetime(&t["deadline"]), "[{}]", e.name);
        let id = t["id"].clone();
        assert_eq!(e.ok("stack.getSize", vec![s("jobs")]).await, i(2));
        let lease_count = || e.ok("stack.getLeaseCount", vec![s("jobs")]);
        assert_eq!(lease_count().await, i(1), "[{}]", e.name);
        assert_eq!(
            e.ok("stack.ack", vec![s("jobs"), id.clone()]).await,
            Value::Bool(true)
        );
        assert_eq!(lease_count().await, i(0), "[{}]", e.name);
        e.fault("stack.getLeaseCount", vec![s("none")], "StackNotFoundError")
            .await;
        assert_eq!(
            e.ok("stack.ack", vec![s("jobs"), id]).await,
            Value::Bool(false)
        );

        let taken = e
            .ok("stack.take", vec![s("jobs"), Value::Double(60.0)])
            .await;
        let id = taken.as_struct().unwrap()["id"].clone();
        assert_eq!(
            e.ok("stack.release", vec![s("jobs"), id.clone()]).await,
            Value::Bool(true)
        );
        assert_eq!(
            e.ok("stack.release", vec![s("jobs"), id]).await,
            Value::Bool(false)
        );
        assert_eq!(e.ok("stack.getSize", vec![s("jobs")]).await, i(2));

        // A lease expires and the item goes back on top.
        let taken = e
            .ok("stack.take", vec![s("jobs"), Value::Double(30.0)])
            .await;
        assert_eq!(taken.as_struct().unwrap()["item"], i(2));
        assert_eq!(e.ok("stack.getSize", vec![s("jobs")]).await, i(1));
        assert_eq!(e.master.stacks().expire_leases().await.unwrap(), 0);
        assert_eq!(lease_count().await, i(1), "[{}]", e.name);
        // Renewed 20 s in, it outlives its first deadline by the renewal.
        let id = taken.as_struct().unwrap()["id"].clone();
        clock.advance(Duration::from_secs(20));
        let extend = |id: Value| e.ok("stack.extend", vec![s("jobs"), id, Value::Double(30.0)]);
        assert_eq!(extend(id.clone()).await, Value::Bool(true), "[{}]", e.name);
        assert_eq!(extend(s("unknown")).await, Value::Bool(false));
        clock.advance(Duration::from_secs(20));
        assert_eq!(
            e.master.stacks().expire_leases().await.unwrap(),
            0,
            "[{}]",
            e.name
        );
        clock.advance(Duration::from_secs(11));
        assert_eq!(e.master.stacks().expire_leases().await.unwrap(), 1);
        assert_eq!(
            extend(id).await,
            Value::Bool(false),
            "a lease that ran out stays out"
        );
        assert_eq!(lease_count().await, i(0), "[{}]", e.name);
        assert_eq!(e.ok("stack.getSize", vec![s("jobs")]).await, i(2));
        assert_eq!(e.ok("stack.pop", vec![s("jobs")]).await, i(2));
        // Nothing left to take: StackIndexError (after the optional wait).
        e.ok("stack.pop", vec![s("jobs")]).await;
        e.fault(
            "stack.take",
            vec![s("jobs"), Value::Double(1.0), Value::Double(0.1)],
            "StackIndexError",
        )
        .await;
    }
}

#[tokio::test]
async fn a_take_refused_for_its_client_name_leaves_the_item_on_its_stack() {
    for e in all_envs().await {
        e.ok("stack.push", vec![s("jobs"), s("job")]).await;
        let too_long = "c".repeat(Limits::default().max_name_bytes + 1);
        let args = vec![
            s("jobs"),
            Value::Double(60.0),
            Value::Double(0.0),
            s(&too_long),
        ];
        e.fault("stack.take", args, "ValueError").await;
        e.assert_size("jobs", 1).await;
        assert_eq!(
            e.ok("stack.pop", vec![s("jobs")]).await,
            s("job"),
            "[{}]",
            e.name
        );
    }
}

#[tokio::test]
async fn take_waits_for_a_push() {
    for e in all_envs().await {
        let stacks = e.master.stacks().clone();
        let pusher = tokio::spawn(async move {
            until(|| stacks.waiting("later") == 1).await;
            stacks.push("later".into(), Value::from(7)).await
        });
        let taken = e
            .ok(
                "stack.take",
                vec![s("later"), Value::Double(10.0), Value::Double(30.0)],
            )
            .await;
        assert_eq!(taken.as_struct().unwrap()["item"], i(7));
        pusher.await.unwrap().unwrap();
    }
}

/// One memory-backed master served over XML-RPC and MessagePack-RPC at once.
async fn two_protocols() -> (Client, Client, oneshot::Sender<()>) {
    let cfg = config();
    let backend = BackendConfig::Memory.open(&cfg.timing).await.unwrap();
    let master = Master::new(backend, cfg);
    let xml = Listener::http("127.0.0.1:0").await.unwrap();
    let mp = Listener::msgpack_tcp("127.0.0.1:0").await.unwrap();
    let (xml_url, mp_url) = (xml.url().unwrap(), mp.url().unwrap());
    let server = Server::new(Dispatcher::new(master.table()), ServerConfig::default());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        server
            .run(vec![xml, mp], async {
                let _ = stopped.await;
            })
            .await
    });
    (
        Client::new(&xml_url).unwrap(),
        Client::new(&mp_url).unwrap(),
        stop,
    )
}

#[tokio::test]
async fn values_a_protocol_cannot_carry_are_never_lost() {
    let (xml, mp, _stop) = two_protocols().await;
    let call = |c: &Client, m: &'static str, p: Vec<Value>| {
        let c = c.clone();
        async move { c.call(m, p).await }
    };
    // A string XML cannot carry comes back over XML-RPC as its UTF-8 bytes.
    call(&mp, "stack.push", vec![s("q"), s("a\u{1}b")])
        .await
        .unwrap();
    let popped = call(&xml, "stack.pop", vec![s("q")]).await.unwrap();
    assert_eq!(popped, Value::Bytes(b"a\x01b".to_vec()));
    // A struct member name it cannot carry: every destructive read over XML-RPC
    // is refused and the item stays where it was.
    let odd = map(&[("k\u{2}", i(1))]);
    call(&mp, "stack.push", vec![s("q"), odd.clone()])
        .await
        .unwrap();
    for (method, params) in [
        ("stack.pop", vec![s("q")]),
        ("stack.popMany", vec![s("q"), i(5)]),
        ("stack.popWait", vec![s("q"), Value::Double(0.0)]),
        ("stack.take", vec![s("q")]),
    ] {
        let err = call(&xml, method, params).await.unwrap_err();
        assert_eq!(
            err.fault().and_then(|f| f.name()),
            Some("UnrepresentableError"),
            "{method}: {err}"
        );
        assert_eq!(
            call(&mp, "stack.getSize", vec![s("q")]).await.unwrap(),
            i(1),
            "{method}"
        );
    }
    assert_eq!(call(&mp, "stack.pop", vec![s("q")]).await.unwrap(), odd);
    // The same for a queued provider message.
    call(&mp, "provider.login", vec![s("c")]).await.unwrap();
    call(&mp, "provider.sendMessage", vec![s("c"), odd.clone()])
        .await
        .unwrap();
    let err = call(&xml, "provider.visit", vec![s("c")])
        .await
        .unwrap_err();
    assert_eq!(
        err.fault().and_then(|f| f.name()),
        Some("UnrepresentableError")
    );
    assert_eq!(
        call(&mp, "provider.visit", vec![s("c")]).await.unwrap(),
        odd
    );
}

#[tokio::test]
async fn pop_many_stops_at_the_answer_budget() {
    let mut cfg = config();
    cfg.limits.max_answer_bytes = 100;
    for e in all_envs_with(cfg).await {
        let items: Vec<Value> = (0..10).map(|n| s(&format!("{n:040}"))).collect();
        e.ok("stack.pushMany", vec![s("b"), Value::Array(items.clone())])
            .await;
        // 42 encoded bytes each: the third crosses 100 bytes, and is the last.
        let first = e.ok("stack.popMany", vec![s("b"), i(10)]).await;
        assert_eq!(first.as_array().unwrap().len(), 3, "[{}]", e.name);
        assert_eq!(e.ok("stack.getSize", vec![s("b")]).await, i(7));
        // One item over the budget still comes alone.
        let big = s(&"x".repeat(500));
        e.ok("stack.push", vec![s("b"), big.clone()]).await;
        assert_eq!(
            e.ok("stack.popMany", vec![s("b"), i(10)]).await,
            Value::Array(vec![big])
        );
    }
}

#[tokio::test]
async fn a_pop_cancelled_before_its_answer_puts_the_item_back() {
    for e in crate::all_backends_with(config()).await {
        if e.name == "memory" {
            // Its writes run at once, inside the first poll: nothing to cancel.
            continue;
        }
        let stacks = e.master.stacks().clone();
        let ctx = rpcs_core::Context::default();
        // Start a pop (the write is submitted), then drop it unfinished, as a
        // time limit or a lost client would. A fast writer may finish before
        // the first poll returns: then nothing was cancelled, so try again.
        let mut cancelled = false;
        for _ in 0..100 {
            e.ok("stack.push", vec![s("q"), s("job")]).await;
            let pop = stacks.pop(&ctx, "q".into());
            let mut pop = std::pin::pin!(pop);
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            match std::future::Future::poll(pop.as_mut(), &mut cx) {
                std::task::Poll::Pending => {
                    cancelled = true;
                    break;
                }
                std::task::Poll::Ready(got) => assert_eq!(got.unwrap(), s("job")),
            }
        }
        assert!(
            cancelled,
            "[{}] every pop finished in its first poll",
            e.name
        );
        // Writes are applied in order: once a write sent after the pop's batch is
        // done, the put-back (queued as that batch completed) is queued too, and
        // once a second one is done, the put-back is applied.
        for _ in 0..2 {
            e.ok("stack.push", vec![s("barrier"), i(0)]).await;
        }
        assert_eq!(stacks.size("q".into()).await.unwrap(), 1, "[{}]", e.name);
        assert_eq!(
            e.ok("stack.pop", vec![s("q")]).await,
            s("job"),
            "[{}]",
            e.name
        );
    }
}

#[tokio::test]
async fn a_wait_ends_when_its_caller_disconnects() {
    // Waits look again only once an hour here: the connection's end wakes it.
    let cfg = config();
    let backend = BackendConfig::Memory.open(&cfg.timing).await.unwrap();
    let master = Master::new(backend, cfg);
    let mp = Listener::msgpack_tcp("127.0.0.1:0").await.unwrap();
    let addr = mp.local_addr().unwrap().unwrap();
    let server_config = ServerConfig {
        max_connections_per_listener: 1,
        ..ServerConfig::default()
    };
    let server = Server::new(Dispatcher::new(master.table()), server_config);
    let (_stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        server
            .run(vec![mp], async {
                let _ = stopped.await;
            })
            .await
    });
    // A client blocks in an hour-long popWait, then vanishes.
    let mut waiter = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut call = Vec::new();
    rpcs_core::msgpack_rpc::write_request(
        &mut call,
        1,
        "stack.popWait",
        &[s("q"), Value::Double(3600.0)],
    );
    tokio::io::AsyncWriteExt::write_all(&mut waiter, &call)
        .await
        .unwrap();
    let stacks = master.stacks().clone();
    until(|| stacks.waiting("q") == 1).await;
    drop(waiter);
    // The wait ends with it, and so the listener's only slot comes free.
    until(|| stacks.waiting("q") == 0).await;
    let client = Client::new(&format!("msgpack://{addr}")).unwrap();
    let mut served = false;
    for _ in 0..500 {
        if client.call("ping", ()).await.is_ok() {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(served, "the vanished waiter still holds the slot");
    // Nothing was taken on its behalf.
    master.stacks().push("q".into(), i(1)).await.unwrap();
    assert_eq!(master.stacks().size("q".into()).await.unwrap(), 1);
}

fn bools(values: &[bool]) -> Value {
    Value::Array(values.iter().map(|&b| Value::Bool(b)).collect())
}

fn list(items: &[&str]) -> Value {
    Value::Array(items.iter().map(|t| s(t)).collect())
}

#[tokio::test]
async fn push_new_pushes_only_what_the_stack_has_never_seen() {
    for e in all_envs().await {
        let push_new = |items: &[&str]| e.ok("stack.pushNew", vec![s("urls"), list(items)]);
        assert_eq!(
            push_new(&["a", "b", "a"]).await,
            bools(&[true, true, false])
        );
        e.assert_size("urls", 2).await;
        assert_eq!(e.ok("stack.pop", vec![s("urls")]).await, s("b"));
        // Popped, b stays seen; truncating forgets nothing either.
        assert_eq!(push_new(&["b", "c"]).await, bools(&[false, true]));
        e.ok("stack.truncate", vec![s("urls")]).await;
        assert_eq!(push_new(&["a", "c"]).await, bools(&[false, false]));
        // A key claimed without an item is skipped later.
        let marked = e
            .ok("stack.markSeen", vec![s("urls"), list(&["d", "c"])])
            .await;
        assert_eq!(marked, bools(&[true, false]));
        assert_eq!(push_new(&["d"]).await, bools(&[false]));
        assert_eq!(e.ok("stack.getSize", vec![s("urls")]).await, i(0));
        // Keys given: the item is whatever goes with its key.
        let pages = Value::Array(vec![
            map(&[("url", s("x")), ("depth", i(1))]),
            map(&[("url", s("x")), ("depth", i(2))]),
        ]);
        let keyed = e
            .ok("stack.pushNew", vec![s("urls"), pages, list(&["x", "x"])])
            .await;
        assert_eq!(keyed, bools(&[true, false]));
        e.fault(
            "stack.pushNew",
            vec![s("urls"), list(&["y"]), list(&["y", "z"])],
            "ValueError",
        )
        .await;
        // Removing the stack forgets its keys.
        e.ok("stack.remove", vec![s("urls")]).await;
        assert_eq!(push_new(&["a"]).await, bools(&[true]));
        // Marking seen creates the stack.
        e.ok("stack.markSeen", vec![s("other"), list(&["k"])]).await;
        assert_eq!(e.ok("stack.getSize", vec![s("other")]).await, i(0));
    }
}

#[tokio::test]
async fn push_new_wakes_a_blocked_pop() {
    for e in all_envs().await {
        let waiting = e.ok("stack.popWait", vec![s("q"), Value::Double(60.0)]);
        let pushed = async {
            until(|| e.master.stacks().waiting("q") == 1).await;
            e.ok("stack.pushNew", vec![s("q"), list(&["job"])]).await
        };
        let (got, _) = tokio::join!(waiting, pushed);
        assert_eq!(got, s("job"), "[{}]", e.name);
    }
}

#[tokio::test]
async fn stats_count_items_in_and_out() {
    for e in all_envs().await {
        let stats = || e.ok("stack.getStats", vec![s("flow")]);
        e.fault("stack.getStats", vec![s("flow")], "StackNotFoundError")
            .await;
        e.ok(
            "stack.pushMany",
            vec![s("flow"), Value::Array(vec![i(1), i(2), i(3)])],
        )
        .await;
        e.ok("stack.push", vec![s("flow"), i(4)]).await;
        // pushNew counts only what it pushed.
        e.ok(
            "stack.pushNew",
            vec![s("flow"), Value::Array(vec![i(4), i(5), i(5)])],
        )
        .await;
        e.ok("stack.pop", vec![s("flow")]).await;
        e.ok("stack.popMany", vec![s("flow"), i(2)]).await;
        let taken = e.ok("stack.take", vec![s("flow")]).await;
        let id = taken.as_struct().unwrap()["id"].clone();
        e.ok("stack.release", vec![s("flow"), id.clone()]).await;
        // Releasing an unknown lease puts nothing back.
        e.ok("stack.release", vec![s("flow"), id]).await;
        let want = map(&[
            ("size", i(3)),
            ("leased", i(0)),
            ("itemsIn", i(7)),
            ("itemsOut", i(4)),
        ]);
        assert_eq!(stats().await, want, "[{}]", e.name);
        // A stack removed and made again starts from nothing.
        e.ok("stack.remove", vec![s("flow")]).await;
        e.ok("stack.push", vec![s("flow"), i(9)]).await;
        let want = map(&[
            ("size", i(1)),
            ("leased", i(0)),
            ("itemsIn", i(1)),
            ("itemsOut", i(0)),
        ]);
        assert_eq!(stats().await, want, "[{}]", e.name);
    }
}
