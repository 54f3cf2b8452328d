//! Two masters on one Redis, and on a three-node Redis Cluster: what one does
//! reaches callers blocked on the other. Waits look again only once an hour
//! in these tests, so a wake-up can only have come through Redis's pub/sub.

use crate::redis_server::{RedisCluster, RedisServer};
use crate::{config_on, i, s, until};
use rpcs_core::{Context, Dispatcher, MethodTable, Value};
use rpcs_master::clock::ManualClock;
use rpcs_master::{BackendConfig, Master, MasterConfig};
use rpcs_net::{Client, ClientConfig, Listener, Server, ServerConfig};
use std::time::Duration;
use tokio::sync::oneshot;

struct Two {
    name: &'static str,
    a: Master,
    b: Master,
    clock: std::sync::Arc<ManualClock>,
    _redis: Box<dyn std::any::Any + Send>,
}

/// A Redis the masters can share.
trait Shared: Send + 'static {
    fn backend(&self, config: &MasterConfig) -> BackendConfig;
}

impl Shared for RedisServer {
    fn backend(&self, config: &MasterConfig) -> BackendConfig {
        RedisServer::backend(self, config)
    }
}

impl Shared for RedisCluster {
    fn backend(&self, config: &MasterConfig) -> BackendConfig {
        RedisCluster::backend(self, config)
    }
}

async fn pair(name: &'static str, redis: impl Shared) -> Two {
    let clock = ManualClock::new();
    let config = config_on(clock.clone());
    let open = || async {
        let backend = redis.backend(&config).open(&config.timing).await.unwrap();
        Master::new(backend, config.clone())
    };
    let (a, b) = (open().await, open().await);
    Two {
        name,
        a,
        b,
        clock,
        _redis: Box::new(redis),
    }
}

/// Two masters on one redis-server, and two on a three-node cluster.
async fn two_masters_each() -> Vec<Two> {
    vec![
        pair("one server", RedisServer::start()).await,
        pair("cluster", RedisCluster::start()).await,
    ]
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
    for two in two_masters_each().await {
        push_wakes_a_pop_on_the_other(two).await;
    }
}

async fn push_wakes_a_pop_on_the_other(two: Two) {
    let b = two.b.clone();
    let waiter =
        tokio::spawn(
            async move { call(&b, "stack.popWait", vec![s("q"), Value::Double(60.0)]).await },
        );
    let stacks = two.b.stacks().clone();
    until(|| stacks.waiting("q") == 1).await;
    call(&two.a, "stack.push", vec![s("q"), s("job")]).await;
    assert_eq!(waiter.await.unwrap(), s("job"), "{}", two.name);
}

#[tokio::test]
async fn a_message_sent_through_one_master_reaches_a_subscription_on_the_other() {
    for two in two_masters_each().await {
        message_reaches_a_subscription_on_the_other(two).await;
    }
}

async fn message_reaches_a_subscription_on_the_other(two: Two) {
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
    assert_eq!(got, s("hello"), "{}", two.name);
}

#[tokio::test]
async fn leases_expire_and_sessions_end_for_every_master() {
    for two in two_masters_each().await {
        leases_and_sessions_end_for_both(two).await;
    }
}

async fn leases_and_sessions_end_for_both(two: Two) {
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

#[tokio::test]
async fn a_cluster_spreads_stacks_storages_and_clients_across_its_shards() {
    let cluster = RedisCluster::start();
    let config = config_on(ManualClock::new());
    let open = || async {
        let backend = cluster.backend(&config).open(&config.timing).await.unwrap();
        Master::new(backend, config.clone())
    };
    let (a, b) = (open().await, open().await);
    let names: Vec<String> = (0..24).map(|n| format!("n{n}")).collect();
    for name in &names {
        call(&a, "stack.push", vec![s(name), i(1)]).await;
        call(&a, "storage.setParameter", vec![s(name), s("p"), i(1)]).await;
        call(&a, "provider.login", vec![s(name)]).await;
    }
    // A claim through one master is seen through the other.
    let claim = vec![s("n0"), Value::Array(vec![s("x")])];
    let new = |b: bool| Value::Array(vec![Value::Bool(b)]);
    assert_eq!(call(&a, "stack.pushNew", claim.clone()).await, new(true));
    assert_eq!(call(&b, "stack.pushNew", claim).await, new(false));
    let counts = cluster.keys_per_node();
    assert!(counts.iter().all(|&n| n > 0), "keys per node: {counts:?}");
    // Listings through the other master scan every shard.
    let mut sorted = names.clone();
    sorted.sort();
    let sorted = Value::Array(sorted.iter().map(|n| s(n)).collect());
    assert_eq!(call(&b, "stack.getAllNames", vec![]).await, sorted);
    assert_eq!(call(&b, "storage.getAllNames", vec![]).await, sorted);
    assert_eq!(call(&b, "provider.getAllClientNames", vec![]).await, sorted);
}

#[tokio::test]
async fn what_a_master_dying_between_scripts_left_unindexed_is_found_by_the_repair_pass() {
    let redis = RedisServer::start();
    let clock = ManualClock::new();
    let config = config_on(clock.clone());
    let backend = redis.backend(&config).open(&config.timing).await.unwrap();
    let master = Master::new(backend, config);
    call(&master, "stack.push", vec![s("jobs"), i(1)]).await;
    call(&master, "provider.login", vec![s("w")]).await;
    let lease = vec![s("jobs"), Value::Double(30.0), Value::Double(0.0), s("w")];
    call(&master, "stack.take", lease).await;
    // As if the master had died right after the scripts, before noting the
    // lease and the session in the namespace's indexes.
    redis.cli(&[
        "del",
        "{rpcs}:leased",
        "{rpcs}:clients",
        "{rpcs:c:w}:stacks",
    ]);
    clock.advance(Duration::from_secs(3600));
    assert_eq!(master.stacks().expire_leases().await.unwrap(), 0);
    assert_eq!(master.provider().clean_up().await.unwrap(), 0);
    assert_eq!(
        master.backend().stack_size("jobs".into()).await.unwrap(),
        Some(0)
    );
    master.backend().clone().maintain().await.unwrap();
    assert_eq!(master.provider().clean_up().await.unwrap(), 1);
    assert_eq!(call(&master, "stack.pop", vec![s("jobs")]).await, i(1));
}

#[tokio::test]
async fn a_lost_redis_faults_clearly_and_the_master_reconnects_with_nothing_lost() {
    let mut redis = RedisServer::start();
    let config = config_on(ManualClock::new());
    let backend = redis.backend(&config).open(&config.timing).await.unwrap();
    let master = Master::new(backend, config);
    let dispatcher = Dispatcher::new(master.table());
    let ctx = Context::new("test", None, 1);
    let push = |n: i64| dispatcher.call(&ctx, "stack.push", vec![s("q"), i(n)]);
    push(1).await.unwrap();
    let refused = redis.outage(push(2)).await.unwrap_err();
    assert_eq!(refused.name(), Some("StorageError"), "{refused}");
    // The connection comes back by itself; the acknowledged push survived
    // the kill (append-only file, fsynced always).
    let mut tries = 0;
    while push(3).await.is_err() {
        tries += 1;
        assert!(tries < 500, "the master never reconnected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let popped = dispatcher
        .call(&ctx, "stack.popMany", vec![s("q"), i(10)])
        .await
        .unwrap();
    assert_eq!(popped, Value::Array(vec![i(3), i(1)]));
}
