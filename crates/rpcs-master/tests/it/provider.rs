use crate::{all_envs, all_envs_with, config, config_on, i, map, s, until};
use rpcs_core::Value;
use rpcs_master::clock::ManualClock;
use std::time::Duration;

#[tokio::test]
async fn sessions_and_messages() {
    for e in all_envs().await {
        assert_eq!(
            e.ok("provider.login", vec![s("w1"), map(&[("pid", i(42))])])
                .await,
            Value::Bool(true)
        );
        e.ok("provider.login", vec![s("w2")]).await;
        assert_eq!(
            e.ok("provider.hasClient", vec![s("w1")]).await,
            Value::Bool(true)
        );
        assert_eq!(
            e.ok("provider.hasClient", vec![s("zz")]).await,
            Value::Bool(false)
        );
        assert_eq!(
            e.ok("provider.getAllClientNames", vec![]).await,
            Value::Array(vec![s("w1"), s("w2")])
        );
        assert_eq!(
            e.ok("provider.visit", vec![s("w1"), s("idle")]).await,
            Value::Nil
        );
        assert_eq!(
            e.ok("provider.sendMessage", vec![s("w1"), s("first")])
                .await,
            Value::Bool(true)
        );
        e.ok(
            "provider.sendMessage",
            vec![s("w1"), map(&[("cmd", s("stop"))])],
        )
        .await;
        let client = e.ok("provider.getClient", vec![s("w1")]).await;
        let c = client.as_struct().unwrap();
        assert_eq!(c["host"], s("127.0.0.1"));
        assert_eq!(c["status"], s("idle"));
        assert_eq!(c["info"], map(&[("pid", i(42))]));
        assert_eq!(c["pendingMessages"], i(2));
        assert!(e.is_datetime(&c["loginTime"]), "[{}]", e.name);
        assert!(e.is_datetime(&c["lastVisit"]), "[{}]", e.name);
        assert_eq!(
            e.ok("provider.visit", vec![s("w1"), s("busy")]).await,
            s("first")
        );
        assert_eq!(
            e.ok("provider.visit", vec![s("w1")]).await,
            map(&[("cmd", s("stop"))])
        );
        assert_eq!(e.ok("provider.visit", vec![s("w1")]).await, Value::Nil);
        let all = e.ok("provider.getAllClients", vec![]).await;
        assert_eq!(
            all.as_struct().unwrap()["w1"].as_struct().unwrap()["status"],
            s("busy")
        );
        assert_eq!(e.ok("provider.broadcast", vec![s("all")]).await, i(2));
        assert_eq!(e.ok("provider.visit", vec![s("w2")]).await, s("all"));
        assert_eq!(
            e.ok("provider.logout", vec![s("w1")]).await,
            Value::Bool(true)
        );
        for (method, params) in [
            ("provider.logout", vec![s("w1")]),
            ("provider.visit", vec![s("w1")]),
            ("provider.getClient", vec![s("w1")]),
            ("provider.sendMessage", vec![s("w1"), s("x")]),
        ] {
            e.fault(method, params, "ClientNotFoundError").await;
        }
        // Logging in again starts a fresh session without old messages.
        e.ok("provider.login", vec![s("w1")]).await;
        assert_eq!(e.ok("provider.visit", vec![s("w1")]).await, Value::Nil);
        assert_eq!(
            e.ok("provider_hasClient", vec![s("w1")]).await,
            Value::Bool(true)
        );
    }
}

#[tokio::test]
async fn clean_up_ends_idle_sessions_and_requeues_their_leases() {
    let clock = ManualClock::new();
    let mut cfg = config_on(clock.clone());
    cfg.session_timeout = Duration::from_secs(300);
    for e in all_envs_with(cfg).await {
        e.ok("provider.login", vec![s("old")]).await;
        e.ok(
            "stack.pushMany",
            vec![s("jobs"), Value::Array(vec![i(1), i(2)])],
        )
        .await;
        let taken = e
            .ok(
                "stack.take",
                vec![
                    s("jobs"),
                    Value::Double(600.0),
                    Value::Double(0.0),
                    s("old"),
                ],
            )
            .await;
        assert_eq!(taken.as_struct().unwrap()["item"], i(2));
        assert_eq!(e.ok("provider.cleanUp", vec![]).await, i(0));
        clock.advance(Duration::from_secs(301));
        e.ok("provider.login", vec![s("fresh")]).await;
        assert_eq!(e.ok("provider.cleanUp", vec![]).await, i(1), "[{}]", e.name);
        assert_eq!(
            e.ok("provider.getAllClientNames", vec![]).await,
            Value::Array(vec![s("fresh")])
        );
        // The ended session's leased item is back on top.
        assert_eq!(e.ok("stack.getSize", vec![s("jobs")]).await, i(2));
        assert_eq!(e.ok("stack.pop", vec![s("jobs")]).await, i(2));
    }
}

#[tokio::test]
async fn logout_requeues_leases_and_wakes_waiters() {
    for e in all_envs().await {
        e.ok("provider.login", vec![s("w")]).await;
        e.ok("stack.push", vec![s("q"), s("job")]).await;
        e.ok(
            "stack.take",
            vec![s("q"), Value::Double(600.0), Value::Double(0.0), s("w")],
        )
        .await;
        let stacks = e.master.stacks().clone();
        let blocked = stacks.clone();
        let waiter = tokio::spawn(async move {
            let ctx = rpcs_core::Context::default();
            stacks.pop_wait(&ctx, "q".into(), 30.0).await
        });
        // Once the waiter is blocked, only the logout's wake-up can free it.
        until(|| blocked.waiting("q") == 1).await;
        e.ok("provider.logout", vec![s("w")]).await;
        assert_eq!(waiter.await.unwrap().unwrap(), s("job"));
    }
}

#[tokio::test]
async fn subscriptions_push_messages_over_stream_protocols() {
    use crate::Via;
    use rpcs_core::MethodTable;
    use rpcs_net::{Client, ClientConfig};
    for e in crate::all_protocols_with(config()).await {
        let Via::Remote { url, .. } = &e.via else {
            unreachable!()
        };
        e.ok("provider.login", vec![s("w")]).await;
        let streams = url.starts_with("ws") || url.starts_with("msgpack");
        if !streams {
            e.fault("provider.subscribe", vec![s("w")], "CallbackError")
                .await;
            continue;
        }
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<Value>>();
        let mut handlers = MethodTable::new();
        handlers.register(
            "provider.message",
            "",
            move |sub: String, client: String, message: Value| {
                let _ = tx.send(vec![Value::String(sub), Value::String(client), message]);
            },
        );
        let listener = Client::with_handlers(url, ClientConfig::default(), handlers).unwrap();
        e.ok("provider.sendMessage", vec![s("w"), s("queued before")])
            .await;
        let id = listener.call("provider.subscribe", ("w",)).await.unwrap();
        for text in ["one", "two", "three"] {
            e.ok("provider.sendMessage", vec![s("w"), s(text)]).await;
        }
        e.ok("provider.broadcast", vec![s("all")]).await;
        let mut got = Vec::new();
        while got.len() < 5 {
            let note = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .unwrap_or_else(|_| panic!("[{}] no push after {got:?}", e.name))
                .unwrap();
            assert_eq!(note[0], id, "[{}]", e.name);
            assert_eq!(note[1], s("w"));
            got.push(note[2].clone());
        }
        assert_eq!(
            got,
            [s("queued before"), s("one"), s("two"), s("three"), s("all")],
            "[{}]",
            e.name
        );
        // Delivered messages left the queue.
        assert_eq!(e.ok("provider.visit", vec![s("w")]).await, Value::Nil);
        assert_eq!(
            listener
                .call("provider.unsubscribe", (id.clone(),))
                .await
                .unwrap(),
            Value::Bool(true)
        );
        assert_eq!(
            listener.call("provider.unsubscribe", (id,)).await.unwrap(),
            Value::Bool(false)
        );
        let missing = listener
            .call("provider.subscribe", ("nobody",))
            .await
            .unwrap_err();
        assert_eq!(
            missing.fault().and_then(|f| f.name()),
            Some("ClientNotFoundError")
        );
    }
}

#[tokio::test]
async fn a_connection_holds_a_bounded_number_of_subscriptions() {
    let mut cfg = config();
    cfg.limits.max_subscriptions = 2;
    for e in crate::all_protocols_with(cfg).await {
        let crate::Via::Remote { url, .. } = &e.via else {
            unreachable!()
        };
        if !url.starts_with("msgpack") {
            continue;
        }
        e.ok("provider.login", vec![s("w")]).await;
        let a = rpcs_net::Client::new(url).unwrap();
        for _ in 0..2 {
            a.call("provider.subscribe", ("w",)).await.unwrap();
        }
        let third = a.call("provider.subscribe", ("w",)).await.unwrap_err();
        assert_eq!(third.fault().and_then(|f| f.name()), Some("LimitExceeded"));
        // The bound is per connection: another one may subscribe.
        let b = rpcs_net::Client::new(url).unwrap();
        let id = b.call("provider.subscribe", ("w",)).await.unwrap();
        assert_eq!(
            b.call("provider.unsubscribe", (id,)).await.unwrap(),
            Value::Bool(true)
        );
    }
}

#[tokio::test]
async fn a_live_subscription_keeps_its_session_through_clean_ups() {
    let clock = ManualClock::new();
    for e in crate::all_protocols_with(config_on(clock.clone())).await {
        let crate::Via::Remote { url, .. } = &e.via else {
            unreachable!()
        };
        if !url.starts_with("msgpack") {
            continue;
        }
        e.ok("provider.login", vec![s("subscribed")]).await;
        e.ok("provider.login", vec![s("idle")]).await;
        let listener = rpcs_net::Client::new(url).unwrap();
        listener
            .call("provider.subscribe", ("subscribed",))
            .await
            .unwrap();
        clock.advance(Duration::from_secs(601));
        assert_eq!(e.ok("provider.cleanUp", vec![]).await, i(1));
        assert_eq!(
            e.ok("provider.getAllClientNames", vec![]).await,
            Value::Array(vec![s("subscribed")])
        );
    }
}

/// Polls the master until `check` holds of its answer to `method`.
async fn until_answer(
    e: &crate::Env,
    method: &str,
    args: Vec<Value>,
    check: impl Fn(&Value) -> bool,
) {
    for _ in 0..5_000 {
        if check(&e.ok(method, args.clone()).await) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("{method} never answered as expected");
}

#[tokio::test]
async fn a_session_bound_to_its_connection_ends_and_gives_its_leases_back_when_it_closes() {
    for e in crate::all_protocols_with(config()).await {
        let crate::Via::Remote { url, .. } = &e.via else {
            unreachable!()
        };
        if !(url.starts_with("msgpack") || url.starts_with("ws")) {
            continue;
        }
        e.ok("stack.push", vec![s("jobs"), s("page")]).await;
        let worker = rpcs_net::Client::new(url).unwrap();
        worker.call("provider.login", ("bound",)).await.unwrap();
        worker
            .call("provider.subscribe", ("bound", false, true))
            .await
            .unwrap();
        // A lease long enough that only the session's end can bring it back.
        worker
            .call("stack.take", ("jobs", 3600, 0, "bound"))
            .await
            .unwrap();
        assert_eq!(e.ok("stack.getSize", vec![s("jobs")]).await, i(0));
        // An unbound subscription of another client, closed too, keeps its session.
        e.ok("provider.login", vec![s("loose")]).await;
        let other = rpcs_net::Client::new(url).unwrap();
        other.call("provider.subscribe", ("loose",)).await.unwrap();
        drop(worker);
        drop(other);
        until_answer(&e, "provider.hasClient", vec![s("bound")], |v| {
            *v == Value::Bool(false)
        })
        .await;
        e.assert_size("jobs", 1).await;
        assert_eq!(
            e.ok("provider.hasClient", vec![s("loose")]).await,
            Value::Bool(true)
        );
    }
}
