//! Two masters on one Redis: what one does reaches callers blocked on the
//! other. Waits look again only once an hour in these tests, so a wake-up can
//! only have come through Redis's pub/sub.

use crate::redis_server::RedisServer;
use crate::{config_on, i, s, until};
use rpcs_core::{Context, Dispatcher, MethodTable, Value};
use rpcs_master::clock::ManualClock;
use rpcs_master::{Master, MasterConfig};
use rpcs_net::{Client, ClientConfig, Listener, Server, ServerConfig};
use std::time::Duration;
use tokio::sync::oneshot;

struct Two {
    a: Master,
    b: Master,
    clock: std::sync::Arc<ManualClock>,
    _redis: RedisServer,
}

async fn master_on(redis: &RedisServer, config: &MasterConfig) -> Master {
    let backend = redis.backend(config).open(&config.timing).await.unwrap();
    Master::new(backend, config.clone())
}

async fn two_masters() -> Two {
    let redis = RedisServer::start();
    let clock = ManualClock::new();
    let config = config_on(clock.clone());
    Two {
        a: master_on(&redis, &config).await,
        b: master_on(&redis, &config).await,
        clock,
        _redis: redis,
    }
}

async fn call(master: &Master, method: &str, params: Vec<Value>) -> Value {
    let ctx = Context::new("test", None, 1);
    Dispatcher::new(master.table())
        .call(&ctx, method, params)
        .await
        .unwrap_or_else(|f| panic!("{method}: {f}"))
}

/// Serves `master` over MessagePack-RPC; its URL and the stop switch.
async fn serve(master: &Master) -> (String, oneshot::Sender<()>) {
    let listener = Listener::msgpack_tcp("127.0.0.1:0").await.unwrap();
    let url = listener.url().unwrap();
    let server = Server::new(Dispatcher::new(master.table()), ServerConfig::default());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        server
            .run(vec![listener], async {
                let _ = stopped.await;
            })
            .await
    });
    (url, stop)
}

#[tokio::test]
async fn a_push_through_one_master_wakes_a_pop_blocked_on_the_other() {
    let two = two_masters().await;
    let b = two.b.clone();
    let waiter =
        tokio::spawn(
            async move { call(&b, "stack.popWait", vec![s("q"), Value::Double(60.0)]).await },
        );
    let stacks = two.b.stacks().clone();
    until(|| stacks.waiting("q") == 1).await;
    call(&two.a, "stack.push", vec![s("q"), s("job")]).await;
    assert_eq!(waiter.await.unwrap(), s("job"));
}

#[tokio::test]
async fn a_message_sent_through_one_master_reaches_a_subscription_on_the_other() {
    let two = two_masters().await;
    call(&two.a, "provider.login", vec![s("w")]).await;
    let (url, _stop) = serve(&two.b).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let mut handlers = MethodTable::new();
    handlers.register(
        "provider.message",
        "",
        move |_sub: String, _client: String, message: Value| {
            let _ = tx.send(message);
        },
    );
    let listener = Client::with_handlers(&url, ClientConfig::default(), handlers).unwrap();
    listener.call("provider.subscribe", ("w",)).await.unwrap();
    call(&two.a, "provider.sendMessage", vec![s("w"), s("hello")]).await;
    let got = tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("the message arrives")
        .unwrap();
    assert_eq!(got, s("hello"));
}

#[tokio::test]
async fn leases_expire_and_sessions_end_for_every_master() {
    let two = two_masters().await;
    call(
        &two.a,
        "stack.pushMany",
        vec![s("jobs"), Value::Array(vec![i(1), i(2)])],
    )
    .await;
    call(&two.a, "provider.login", vec![s("w")]).await;
    let lease = vec![s("jobs"), Value::Double(30.0), Value::Double(0.0), s("w")];
    call(&two.a, "stack.take", lease).await;
    call(&two.a, "stack.take", vec![s("jobs"), Value::Double(30.0)]).await;
    // A pop blocked on master a is woken by what master b's upkeep gives back.
    let a = two.a.clone();
    let waiter = tokio::spawn(async move {
        call(&a, "stack.popWait", vec![s("jobs"), Value::Double(60.0)]).await
    });
    let stacks = two.a.stacks().clone();
    until(|| stacks.waiting("jobs") == 1).await;
    call(&two.b, "provider.logout", vec![s("w")]).await;
    assert_eq!(waiter.await.unwrap(), i(2));
    // The other lease expires by the shared clock, whichever master sweeps.
    assert_eq!(two.b.stacks().expire_leases().await.unwrap(), 0);
    two.clock.advance(Duration::from_secs(31));
    assert_eq!(two.b.stacks().expire_leases().await.unwrap(), 1);
    assert_eq!(call(&two.a, "stack.pop", vec![s("jobs")]).await, i(1));
}
