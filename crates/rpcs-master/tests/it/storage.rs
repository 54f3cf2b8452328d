use crate::{all_envs, i, map, s};
use rpcs_core::Value;

#[tokio::test]
async fn parameters() {
    for e in all_envs().await {
        assert_eq!(
            e.ok("storage.create", vec![s("cfg")]).await,
            Value::Bool(true)
        );
        assert_eq!(
            e.ok("storage.create", vec![s("cfg")]).await,
            Value::Bool(false)
        );
        assert_eq!(
            e.ok("storage.setParameter", vec![s("cfg"), s("depth"), i(3)])
                .await,
            Value::Bool(true)
        );
        let nested = map(&[
            ("z", i(1)),
            ("a", Value::Array(vec![Value::Nil, Value::Double(0.5)])),
        ]);
        e.ok(
            "storage.setParameters",
            vec![
                s("cfg"),
                map(&[("seed", s("http://x/")), ("nested", nested.clone())]),
            ],
        )
        .await;
        assert_eq!(
            e.ok("storage.getParameter", vec![s("cfg"), s("nested")])
                .await,
            nested
        );
        assert_eq!(
            e.ok("storage.getParameter", vec![s("cfg"), s("depth")])
                .await,
            i(3)
        );
        let all = e.ok("storage.getAllParameters", vec![s("cfg")]).await;
        let keys: Vec<&String> = all.as_struct().unwrap().keys().collect();
        assert_eq!(keys, ["depth", "nested", "seed"]);
        assert_eq!(e.ok("storage.getSize", vec![s("cfg")]).await, i(3));
        e.fault("storage.getSize", vec![s("nope")], "StorageNotFoundError")
            .await;
        assert_eq!(
            e.ok("storage.hasParameter", vec![s("cfg"), s("depth")])
                .await,
            Value::Bool(true)
        );
        assert_eq!(
            e.ok("storage.removeParameter", vec![s("cfg"), s("depth")])
                .await,
            Value::Bool(true)
        );
        assert_eq!(
            e.ok("storage.removeParameter", vec![s("cfg"), s("depth")])
                .await,
            Value::Bool(false)
        );
        assert_eq!(
            e.ok("storage.hasParameter", vec![s("cfg"), s("depth")])
                .await,
            Value::Bool(false)
        );
        e.fault(
            "storage.getParameter",
            vec![s("cfg"), s("depth")],
            "ParameterNotFoundError",
        )
        .await;
        assert_eq!(
            e.ok("storage.hasStorage", vec![s("cfg")]).await,
            Value::Bool(true)
        );
        e.ok("storage.setParameter", vec![s("other"), s("k"), Value::Nil])
            .await;
        assert_eq!(
            e.ok("storage.getParameter", vec![s("other"), s("k")]).await,
            Value::Nil
        );
        assert_eq!(
            e.ok("storage.getAllNames", vec![]).await,
            Value::Array(vec![s("cfg"), s("other")])
        );
        assert_eq!(
            e.ok("storage.remove", vec![s("cfg")]).await,
            Value::Bool(true)
        );
        assert_eq!(
            e.ok("storage.hasStorage", vec![s("cfg")]).await,
            Value::Bool(false)
        );
        for (method, params) in [
            ("storage.getParameter", vec![s("cfg"), s("x")]),
            ("storage.getAllParameters", vec![s("cfg")]),
            ("storage.hasParameter", vec![s("cfg"), s("x")]),
            ("storage.removeParameter", vec![s("cfg"), s("x")]),
            ("storage.remove", vec![s("cfg")]),
        ] {
            e.fault(method, params, "StorageNotFoundError").await;
        }
        assert_eq!(
            e.ok("storage_setParameter", vec![s("u"), s("k"), i(1)])
                .await,
            Value::Bool(true)
        );
        assert_eq!(
            e.ok("storage_getParameter", vec![s("u"), s("k")]).await,
            i(1)
        );
    }
}

#[tokio::test]
async fn atomic_operations() {
    for e in all_envs().await {
        assert_eq!(e.ok("storage.increment", vec![s("c"), s("n")]).await, i(1));
        assert_eq!(
            e.ok("storage.increment", vec![s("c"), s("n"), i(10)]).await,
            i(11)
        );
        assert_eq!(
            e.ok("storage.increment", vec![s("c"), s("n"), i(-20)])
                .await,
            i(-9)
        );
        e.ok("storage.setParameter", vec![s("c"), s("text"), s("x")])
            .await;
        e.fault("storage.increment", vec![s("c"), s("text")], "TypeError")
            .await;
        e.ok("storage.setParameter", vec![s("c"), s("big"), i(i64::MAX)])
            .await;
        e.fault("storage.increment", vec![s("c"), s("big")], "OverflowError")
            .await;

        assert_eq!(
            e.ok(
                "storage.setIfAbsent",
                vec![s("seen"), s("http://a/"), Value::Bool(true)]
            )
            .await,
            Value::Bool(true)
        );
        assert_eq!(
            e.ok(
                "storage.setIfAbsent",
                vec![s("seen"), s("http://a/"), Value::Bool(false)]
            )
            .await,
            Value::Bool(false)
        );
        assert_eq!(
            e.ok("storage.getParameter", vec![s("seen"), s("http://a/")])
                .await,
            Value::Bool(true)
        );

        let cas = |expected: Value, new: Value| vec![s("lock"), s("owner"), expected, new];
        assert_eq!(
            e.ok("storage.compareAndSet", cas(Value::Nil, s("w1")))
                .await,
            Value::Bool(true)
        );
        assert_eq!(
            e.ok("storage.compareAndSet", cas(Value::Nil, s("w2")))
                .await,
            Value::Bool(false)
        );
        assert_eq!(
            e.ok("storage.compareAndSet", cas(s("w1"), s("w2"))).await,
            Value::Bool(true)
        );
        assert_eq!(
            e.ok("storage.getParameter", vec![s("lock"), s("owner")])
                .await,
            s("w2")
        );
    }
}

#[tokio::test]
async fn concurrent_increments_are_not_lost() {
    for e in all_envs().await {
        let e = std::sync::Arc::new(e);
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let e = e.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..25 {
                    e.ok("storage.increment", vec![s("c"), s("n")]).await;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(
            e.ok("storage.getParameter", vec![s("c"), s("n")]).await,
            i(200),
            "[{}]",
            e.name
        );
    }
}

#[tokio::test]
async fn oversized_values_are_refused() {
    for e in all_envs().await {
        let huge = Value::Bytes(vec![0; 100 * 1024]);
        e.fault(
            "storage.setParameter",
            vec![s("c"), s("k"), huge.clone()],
            "ItemTooLargeError",
        )
        .await;
        e.fault(
            "storage.setParameters",
            vec![s("c"), map(&[("a", i(1)), ("b", huge)])],
            "ItemTooLargeError",
        )
        .await;
        assert_eq!(
            e.ok("storage.hasStorage", vec![s("c")]).await,
            Value::Bool(false)
        );
    }
}

#[tokio::test]
async fn reserved_slots_are_an_interval_apart_by_the_masters_clock() {
    let clock = rpcs_master::clock::ManualClock::new();
    for e in crate::all_envs_with(crate::config_on(clock.clone())).await {
        let reserve = |host: &str, interval: f64| {
            e.ok(
                "storage.reserveSlot",
                vec![s("hosts"), s(host), Value::Double(interval)],
            )
        };
        let wait = |seconds: f64| Value::Double(seconds);
        assert_eq!(reserve("a", 2.0).await, wait(0.0), "[{}]", e.name);
        assert_eq!(reserve("a", 2.0).await, wait(2.0));
        assert_eq!(reserve("a", 2.0).await, wait(4.0));
        assert_eq!(reserve("b", 2.0).await, wait(0.0), "hosts are apart");
        // Time passes: the next slot is 6 s after the first, 3 s from now.
        clock.advance(std::time::Duration::from_secs(3));
        assert_eq!(reserve("a", 2.0).await, wait(3.0));
        clock.advance(std::time::Duration::from_secs(60));
        assert_eq!(reserve("a", 0.5).await, wait(0.0));
        assert_eq!(reserve("a", 0.5).await, wait(0.5));
        // A caller with a longer interval (a host's Crawl-delay) waits all of
        // it after the last slot, whatever interval that one was taken with.
        assert_eq!(reserve("a", 2.0).await, wait(2.5), "[{}]", e.name);
        let kept = e.ok("storage.getParameter", vec![s("hosts"), s("a")]).await;
        assert!(matches!(kept, Value::Int(_)), "[{}] {kept:?}", e.name);
        e.ok("storage.setParameter", vec![s("hosts"), s("c"), s("soon")])
            .await;
        e.fault(
            "storage.reserveSlot",
            vec![s("hosts"), s("c"), Value::Double(1.0)],
            "TypeError",
        )
        .await;
        e.fault(
            "storage.reserveSlot",
            vec![s("hosts"), s("a"), Value::Double(-1.0)],
            "ValueError",
        )
        .await;
    }
}
