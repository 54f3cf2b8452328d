//! The registry service, called through its method table, on a clock the
//! tests move.

use crate::redis_server::RedisServer;
use rpcs_core::{Context, Dispatcher, Fault, Map, MethodTable, Value};
use rpcs_master::clock::ManualClock;
use rpcs_master::remote::registry::RedisRegistry;
use rpcs_master::remote::RedisConfig;
use rpcs_master::services::registry::{
    self, MemoryRegistry, Registration, Registry, RegistryConfig, RegistryStore,
};
use std::sync::Arc;
use std::time::Duration;

pub struct Reg {
    _redis: Option<RedisServer>,
    dispatcher: Dispatcher,
    pub clock: Arc<ManualClock>,
    pub registry: Arc<Registry>,
}

impl Reg {
    pub fn with_store(store: Arc<dyn RegistryStore>, config: RegistryConfig) -> Reg {
        let clock = ManualClock::new();
        let registry = Arc::new(Registry::new(store, config, clock.clone()));
        let mut table = MethodTable::new();
        registry::register(&mut table, &registry);
        Reg {
            _redis: None,
            dispatcher: Dispatcher::new(table),
            clock,
            registry,
        }
    }

    /// The dispatcher the registry's methods are served by.
    pub fn dispatcher(&self) -> &Dispatcher {
        &self.dispatcher
    }

    /// The registry on each store: in memory, and in a real redis-server.
    pub async fn all(config: RegistryConfig) -> Vec<Reg> {
        let memory = Reg::with_store(Arc::new(MemoryRegistry::new()), config.clone());
        let redis = RedisServer::start();
        let redis_config = RedisConfig {
            url: redis.url(),
            namespace: "reg".into(),
            cluster: false,
            clock: None,
        };
        let store = RedisRegistry::connect(&redis_config)
            .await
            .expect("Redis answers");
        let mut on_redis = Reg::with_store(Arc::new(store), config);
        on_redis._redis = Some(redis);
        vec![memory, on_redis]
    }

    pub async fn call_from(
        &self,
        peer: &str,
        method: &str,
        params: Vec<Value>,
    ) -> Result<Value, Fault> {
        let ctx = Context::new("test", Some(peer.parse().unwrap()), 1);
        self.dispatcher.call(&ctx, method, params).await
    }

    pub async fn ok(&self, peer: &str, method: &str, params: Vec<Value>) -> Value {
        self.call_from(peer, method, params)
            .await
            .unwrap_or_else(|f| panic!("{method} faulted: {f}"))
    }

    /// Registers one of ours from `peer`.
    pub async fn register(
        &self,
        peer: &str,
        id: &str,
        name: &str,
        urls: &[&str],
    ) -> Result<Value, Fault> {
        let r = Registration {
            id: id.into(),
            names: vec![name.into()],
            urls: urls.iter().map(|u| u.to_string()).collect(),
            ttl_secs: 30.0,
            ..Registration::default()
        };
        self.call_from(peer, "registry.register", vec![r.to_value()])
            .await
    }

    pub async fn lookup(&self, name: &str) -> Vec<Map> {
        match self
            .ok("127.0.0.1:1", "registry.lookup", vec![name.into()])
            .await
        {
            Value::Array(items) => items
                .into_iter()
                .map(|v| match v {
                    Value::Struct(m) => m,
                    other => panic!("not a struct: {other:?}"),
                })
                .collect(),
            other => panic!("not an array: {other:?}"),
        }
    }

    pub async fn ids(&self, name: &str) -> Vec<String> {
        self.lookup(name)
            .await
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect()
    }

    /// RPyC's REGISTER of `name` on `port`, from `peer`.
    pub async fn rpyc_register(&self, peer: &str, name: &str, port: i64) -> Result<Value, Fault> {
        let names = Value::Array(vec![name.into()]);
        self.call_from(peer, "registry.rpycRegister", vec![names, Value::Int(port)])
            .await
    }

    pub async fn rpyc_query(&self, name: &str) -> Value {
        self.ok("127.0.0.1:1", "registry.rpycQuery", vec![name.into()])
            .await
    }
}

/// Instance `x` of `svc` on one URL.
fn svc_x() -> Registration {
    Registration {
        id: "x".into(),
        names: vec!["svc".into()],
        urls: vec!["tcp://10.0.0.1:1".into()],
        ttl_secs: 30.0,
        ..Registration::default()
    }
}

fn pair(ip: &str, port: i64) -> Value {
    Value::Array(vec![ip.into(), Value::Int(port)])
}

fn fault_name(f: &Fault) -> &str {
    f.message.split(':').next().unwrap_or("")
}

#[tokio::test]
async fn an_instance_is_found_by_its_name_in_any_case_with_every_url() {
    for r in Reg::all(RegistryConfig::default()).await {
        let urls = [
            "http://0.0.0.0:8000/",
            "msgpack://10.1.2.3:8001",
            "msgpack+unix:///run/x",
        ];
        let answer = r
            .register("10.9.8.7:5000", "m1", "Master", &urls)
            .await
            .unwrap();
        let Value::Struct(a) = answer else { panic!() };
        assert_eq!(a["id"], Value::from("m1"));
        assert_eq!(a["ttl"], Value::Double(30.0));
        let found = r.lookup("master").await;
        assert_eq!(found.len(), 1);
        let m = &found[0];
        assert_eq!(m["names"], Value::Array(vec!["MASTER".into()]));
        assert_eq!(m["host"], Value::from("10.9.8.7"));
        assert_eq!(
            m["urls"],
            Value::Array(vec![
                "http://10.9.8.7:8000/".into(),
                "msgpack://10.1.2.3:8001".into(),
                "msgpack+unix:///run/x".into(),
            ]),
            "an unspecified host becomes the address the registration came from"
        );
        assert_eq!(m["health"], Value::from("serving"));
        assert_eq!(m["source"], Value::from("rpcs"));
        assert_eq!(m["port"], Value::Nil);
        assert!(matches!(m["lastSeen"], Value::DateTime(_)));
    }
}

#[tokio::test]
async fn a_registration_lives_its_ttl_and_a_renewal_extends_it() {
    for r in Reg::all(RegistryConfig::default()).await {
        r.register("10.0.0.1:1", "a", "svc", &["msgpack://10.0.0.1:1"])
            .await
            .unwrap();
        r.clock.advance(Duration::from_secs(20));
        r.register("10.0.0.1:1", "b", "svc", &["msgpack://10.0.0.1:2"])
            .await
            .unwrap();
        r.register("10.0.0.1:1", "a", "svc", &["msgpack://10.0.0.1:1"])
            .await
            .unwrap();
        assert_eq!(
            r.ids("svc").await,
            ["a", "b"],
            "a renewal keeps its first registration time"
        );
        r.clock.advance(Duration::from_secs(29));
        assert_eq!(r.ids("svc").await, ["a", "b"]);
        r.clock.advance(Duration::from_secs(2));
        assert!(
            r.ids("svc").await.is_empty(),
            "both expired 30 s after their last renewal"
        );
        assert_eq!(r.registry.prune().await.unwrap(), 2);
        assert_eq!(r.registry.prune().await.unwrap(), 0);
    }
}

#[tokio::test]
async fn unregister_removes_at_once() {
    for r in Reg::all(RegistryConfig::default()).await {
        r.register("10.0.0.1:1", "a", "svc", &["tcp://10.0.0.1:4242"])
            .await
            .unwrap();
        assert_eq!(
            r.ok("10.0.0.1:1", "registry.unregister", vec!["a".into()])
                .await,
            Value::Bool(true)
        );
        assert!(r.ids("svc").await.is_empty());
        assert_eq!(
            r.ok("10.0.0.1:1", "registry.unregister", vec!["a".into()])
                .await,
            Value::Bool(false)
        );
    }
}

#[tokio::test]
async fn rpyc_registrations_follow_rpycs_registry() {
    for r in Reg::all(RegistryConfig::default()).await {
        let register = |peer: &'static str, names: Vec<&str>, port: i64| {
            let names = Value::Array(names.into_iter().map(Value::from).collect());
            r.call_from(peer, "registry.rpycRegister", vec![names, Value::Int(port)])
        };
        register("10.0.0.1:40000", vec!["slave", "classic"], 18812)
            .await
            .unwrap();
        r.clock.advance(Duration::from_secs(1));
        register("10.0.0.2:40001", vec!["SLAVE"], 18812)
            .await
            .unwrap();
        assert_eq!(
            r.rpyc_query("Slave").await,
            Value::Array(vec![pair("10.0.0.1", 18812), pair("10.0.0.2", 18812)]),
            "oldest first, names in any case"
        );
        assert_eq!(
            r.rpyc_query("CLASSIC").await,
            Value::Array(vec![pair("10.0.0.1", 18812)])
        );
        // A keep-alive from the first keeps it first.
        r.clock.advance(Duration::from_secs(200));
        register("10.0.0.1:40002", vec!["SLAVE"], 18812)
            .await
            .unwrap();
        r.clock.advance(Duration::from_secs(45));
        assert_eq!(
            r.rpyc_query("SLAVE").await,
            Value::Array(vec![pair("10.0.0.1", 18812)]),
            "the second, silent for 245 s, is gone"
        );
        assert_eq!(
            r.rpyc_query("CLASSIC").await,
            Value::Array(vec![]),
            "CLASSIC was not renewed"
        );
        // UNREGISTER removes every name of that address and port, from that address only.
        register("10.0.0.1:40003", vec!["SLAVE", "CLASSIC"], 18812)
            .await
            .unwrap();
        r.ok(
            "10.0.0.9:1",
            "registry.rpycUnregister",
            vec![Value::Int(18812)],
        )
        .await;
        assert_eq!(
            r.rpyc_query("CLASSIC").await,
            Value::Array(vec![pair("10.0.0.1", 18812)])
        );
        r.ok(
            "10.0.0.1:2",
            "registry.rpycUnregister",
            vec![Value::Int(18812)],
        )
        .await;
        assert_eq!(r.rpyc_query("SLAVE").await, Value::Array(vec![]));
        assert_eq!(r.rpyc_query("CLASSIC").await, Value::Array(vec![]));
    }
}

#[tokio::test]
async fn rpyc_sees_our_instances_and_we_see_rpycs() {
    for r in Reg::all(RegistryConfig::default()).await {
        r.register(
            "10.0.0.5:1",
            "ours",
            "svc",
            &["http://0.0.0.0:8000/", "msgpack://10.0.0.5:8001"],
        )
        .await
        .unwrap();
        r.rpyc_register("10.0.0.6:9", "svc", 18812).await.unwrap();
        assert_eq!(
            r.rpyc_query("svc").await,
            Value::Array(vec![
                pair("10.0.0.5", 8000),
                pair("10.0.0.5", 8001),
                pair("10.0.0.6", 18812)
            ])
        );
        let found = r.lookup("svc").await;
        assert_eq!(found.len(), 2);
        assert_eq!(found[1]["source"], Value::from("rpyc"));
        assert_eq!(found[1]["host"], Value::from("10.0.0.6"));
        assert_eq!(found[1]["port"], Value::Int(18812));
    }
}

#[tokio::test]
async fn listing_is_off_unless_allowed() {
    let r = Reg::with_store(Arc::new(MemoryRegistry::new()), RegistryConfig::default());
    r.register("10.0.0.5:1", "a", "svc", &["tcp://10.0.0.5:1"])
        .await
        .unwrap();
    let f = r
        .call_from("10.0.0.5:1", "registry.services", vec![])
        .await
        .unwrap_err();
    assert_eq!(fault_name(&f), "ListingDisabledError");
    assert_eq!(
        r.ok("1.1.1.1:1", "registry.rpycList", vec![]).await,
        Value::Nil
    );

    for r in Reg::all(RegistryConfig {
        allow_listing: true,
        ..RegistryConfig::default()
    })
    .await
    {
        r.register("10.0.0.5:1", "a", "svc", &["tcp://10.0.0.5:1"])
            .await
            .unwrap();
        r.register("10.0.0.5:1", "b", "svc", &["tcp://10.0.0.5:2"])
            .await
            .unwrap();
        r.register("10.0.0.6:1", "c", "other", &["tcp://10.0.0.6:1"])
            .await
            .unwrap();
        let services = r.ok("1.1.1.1:1", "registry.services", vec![]).await;
        let Value::Array(services) = services else {
            panic!()
        };
        assert_eq!(services.len(), 2);
        let Value::Struct(first) = &services[1] else {
            panic!()
        };
        assert_eq!(first["name"], Value::from("SVC"));
        assert_eq!(first["instances"], Value::Int(2));
        assert_eq!(
            r.ok("1.1.1.1:1", "registry.rpycList", vec!["10.0.0.6".into()])
                .await,
            Value::Array(vec!["OTHER".into()])
        );
    }
}

#[tokio::test]
async fn the_tables_are_bounded_and_renewals_still_pass_when_full() {
    for r in Reg::all(RegistryConfig {
        max_instances: 5,
        max_per_name: 3,
        max_per_host: 2,
        ..RegistryConfig::default()
    })
    .await
    {
        r.register("10.0.0.1:1", "h1", "a", &["tcp://x:1"])
            .await
            .unwrap();
        r.register("10.0.0.1:1", "h2", "b", &["tcp://x:1"])
            .await
            .unwrap();
        let f = r
            .register("10.0.0.1:1", "h3", "c", &["tcp://x:1"])
            .await
            .unwrap_err();
        assert_eq!(fault_name(&f), "RegistryFullError", "{f}");
        r.register("10.0.0.2:1", "n1", "a", &["tcp://x:1"])
            .await
            .unwrap();
        r.register("10.0.0.3:1", "n2", "a", &["tcp://x:1"])
            .await
            .unwrap();
        let f = r
            .register("10.0.0.4:1", "n3", "a", &["tcp://x:1"])
            .await
            .unwrap_err();
        assert_eq!(
            fault_name(&f),
            "RegistryFullError",
            "three under one name: {f}"
        );
        r.register("10.0.0.4:1", "t1", "z", &["tcp://x:1"])
            .await
            .unwrap();
        let f = r
            .register("10.0.0.5:1", "t2", "y", &["tcp://x:1"])
            .await
            .unwrap_err();
        assert_eq!(fault_name(&f), "RegistryFullError", "five in all: {f}");
        r.register("10.0.0.1:1", "h1", "a", &["tcp://x:1"])
            .await
            .expect("a renewal when full");
        // RPyC's registrations count too.
        let f = r.rpyc_register("10.0.0.9:1", "q", 1).await.unwrap_err();
        assert_eq!(fault_name(&f), "RegistryFullError");
    }
}

#[tokio::test]
async fn malformed_registrations_are_refused_and_change_nothing() {
    for r in Reg::all(RegistryConfig {
        max_urls: 2,
        max_metadata_bytes: 64,
        ..RegistryConfig::default()
    })
    .await
    {
        let with = |f: &dyn Fn(&mut Registration)| {
            let mut reg = svc_x();
            f(&mut reg);
            reg.to_value()
        };
        let cases: Vec<(&str, Value)> = vec![
            ("no name", with(&|r| r.names.clear())),
            (
                "a control character",
                with(&|r| r.names = vec!["a\u{1}b".into()]),
            ),
            (
                "an over-long name",
                with(&|r| r.names = vec!["n".repeat(600)]),
            ),
            (
                "too many URLs",
                with(&|r| r.urls = vec!["tcp://a:1".into(); 3]),
            ),
            ("not a URL", with(&|r| r.urls = vec!["just text".into()])),
            (
                "an id of RPyC's",
                with(&|r| r.id = "rpyc:SVC@1.2.3.4:5".into()),
            ),
            (
                "big metadata",
                with(&|r| {
                    r.metadata.insert("k".into(), "v".repeat(100).into());
                }),
            ),
            ("not a struct", Value::from("svc")),
            ("an unknown member", {
                let Value::Struct(mut m) = with(&|_| {}) else {
                    panic!()
                };
                m.insert("colour".into(), "red".into());
                Value::Struct(m)
            }),
        ];
        for (what, record) in cases {
            let f = r
                .call_from("10.0.0.1:1", "registry.register", vec![record])
                .await
                .expect_err(what);
            assert_eq!(fault_name(&f), "ValueError", "{what}: {f}");
        }
        assert!(r.ids("svc").await.is_empty());
        assert!(r.ids("N").await.is_empty());
    }
}

#[tokio::test]
async fn a_ttl_is_kept_within_the_registrys_bounds() {
    for r in Reg::all(RegistryConfig {
        max_ttl_secs: 60.0,
        ..RegistryConfig::default()
    })
    .await
    {
        let mut reg = Registration {
            id: "x".into(),
            names: vec!["svc".into()],
            urls: vec![],
            ttl_secs: 1e9,
            ..Registration::default()
        };
        let Value::Struct(a) = r
            .ok("10.0.0.1:1", "registry.register", vec![reg.to_value()])
            .await
        else {
            panic!()
        };
        assert_eq!(a["ttl"], Value::Double(60.0));
        reg.ttl_secs = -5.0;
        let Value::Struct(a) = r
            .ok("10.0.0.1:1", "registry.register", vec![reg.to_value()])
            .await
        else {
            panic!()
        };
        assert_eq!(a["ttl"], Value::Double(1.0));
    }
}

#[tokio::test]
async fn with_a_secret_only_signed_requests_change_the_table() {
    use rpcs_core::registration::{put_signature, sign_unregister, Secret};
    let secret = Secret::new("s3cret");
    for r in Reg::all(RegistryConfig {
        secret: Some(secret.clone()),
        ..RegistryConfig::default()
    })
    .await
    {
        let now = rpcs_master::clock::Clock::now_ms(&*r.clock);
        let mut reg = svc_x();
        let f = r
            .call_from("10.0.0.1:1", "registry.register", vec![reg.to_value()])
            .await
            .unwrap_err();
        assert_eq!(fault_name(&f), "AuthenticationError", "unsigned: {f}");
        reg.sign(b"wrong", now);
        let f = r
            .call_from("10.0.0.1:1", "registry.register", vec![reg.to_value()])
            .await
            .unwrap_err();
        assert_eq!(fault_name(&f), "AuthenticationError", "wrong secret: {f}");
        assert!(r.ids("svc").await.is_empty());
        reg.sign(secret.bytes(), now);
        r.ok("10.0.0.1:1", "registry.register", vec![reg.to_value()])
            .await;
        assert_eq!(r.ids("svc").await, ["x"]);
        // A captured datagram replayed much later is refused.
        r.clock.advance(Duration::from_secs(120));
        let f = r
            .call_from("10.0.0.1:1", "registry.register", vec![reg.to_value()])
            .await
            .unwrap_err();
        assert_eq!(fault_name(&f), "AuthenticationError", "replayed: {f}");
        let now = rpcs_master::clock::Clock::now_ms(&*r.clock);
        reg.sign(secret.bytes(), now);
        r.ok("10.0.0.1:1", "registry.register", vec![reg.to_value()])
            .await;

        let f = r
            .call_from("10.0.0.9:1", "registry.unregister", vec!["x".into()])
            .await
            .unwrap_err();
        assert_eq!(fault_name(&f), "AuthenticationError");
        let f = r.rpyc_register("10.0.0.9:1", "svc", 1).await.unwrap_err();
        assert_eq!(fault_name(&f), "AuthenticationError", "RPyC cannot sign");
        assert_eq!(r.ids("svc").await, ["x"]);
        let mut m = Map::new();
        m.insert("id".into(), "x".into());
        put_signature(&mut m, &sign_unregister(secret.bytes(), "x", now));
        assert_eq!(
            r.ok("10.0.0.1:1", "registry.unregister", vec![Value::Struct(m)])
                .await,
            Value::Bool(true)
        );
        assert!(r.ids("svc").await.is_empty());
    }
}

#[tokio::test]
async fn rpyc_may_still_register_unsigned_when_allowed() {
    let r = Reg::with_store(
        Arc::new(MemoryRegistry::new()),
        RegistryConfig {
            secret: Some(rpcs_core::registration::Secret::new("k")),
            accept_unsigned_rpyc: true,
            ..RegistryConfig::default()
        },
    );
    r.rpyc_register("10.0.0.9:1", "svc", 1).await.unwrap();
    assert_eq!(
        r.rpyc_query("svc").await,
        Value::Array(vec![pair("10.0.0.9", 1)])
    );
}

#[tokio::test]
async fn the_table_works_on_a_redis_cluster() {
    let cluster = crate::redis_server::RedisCluster::start();
    let store = RedisRegistry::connect(&cluster.config("reg"))
        .await
        .expect("the cluster answers");
    let r = Reg::with_store(Arc::new(store), RegistryConfig::default());
    r.register("10.0.0.1:1", "a", "svc", &["msgpack://10.0.0.1:1"])
        .await
        .unwrap();
    r.rpyc_register("10.0.0.2:9", "svc", 18812).await.unwrap();
    assert_eq!(r.ids("svc").await, ["a", "rpyc:SVC@10.0.0.2:18812"]);
    r.ok(
        "10.0.0.2:9",
        "registry.rpycUnregister",
        vec![Value::Int(18812)],
    )
    .await;
    assert_eq!(r.ids("svc").await, ["a"]);
    r.clock.advance(Duration::from_secs(31));
    assert_eq!(r.registry.prune().await.unwrap(), 1);
    assert!(r.ids("svc").await.is_empty());
}
