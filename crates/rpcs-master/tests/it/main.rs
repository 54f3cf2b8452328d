//! The master's service suite, run against every backend (called directly) and
//! over every protocol (through a real server and client on 127.0.0.1).

mod access;
mod persistence;
mod provider;
mod redis_cluster;
mod redis_server;
mod registry;
mod shared;
mod stack;
mod storage;

use rpcs_core::{json, Context, DateTime, Dispatcher, Fault, Map, Value};
use rpcs_master::clock::{ManualClock, Timing};
use rpcs_master::{BackendConfig, Durability, Limits, Master, MasterConfig};
use rpcs_net::{Client, ClientError, Listener, Server, ServerConfig};
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;
use tokio::sync::oneshot;

/// How the suite reaches the master.
pub enum Via {
    /// Straight through the dispatcher.
    Direct(Dispatcher),
    /// Through a server and a client of one protocol.
    Remote {
        client: Client,
        url: String,
        /// JSON carries bytes and date-times as strings.
        json: bool,
        _stop: oneshot::Sender<()>,
    },
}

/// One master over one backend, called as a client would.
pub struct Env {
    pub name: &'static str,
    pub master: Master,
    pub via: Via,
    pub _dir: Option<TempDir>,
    pub _redis: Option<redis_server::RedisServer>,
}

impl Env {
    pub async fn call(&self, method: &str, params: Vec<Value>) -> Result<Value, Fault> {
        match &self.via {
            Via::Direct(dispatcher) => {
                let ctx = Context::new("test", Some("127.0.0.1:5555".parse().unwrap()), 1);
                dispatcher.call(&ctx, method, params).await
            }
            Via::Remote { client, .. } => match client.call(method, params).await {
                Ok(v) => Ok(v),
                Err(ClientError::Fault(f)) => Err(f),
                Err(e) => panic!("[{}] {method}: {e}", self.name),
            },
        }
    }

    /// What `expected` looks like after a round trip over this env's protocol.
    pub fn norm(&self, expected: Value) -> Value {
        match &self.via {
            Via::Remote { json: true, .. } => json::from_json(json::to_json(&expected)),
            _ => expected,
        }
    }

    /// Whether `v` is a date-time (a string, over JSON).
    pub fn is_datetime(&self, v: &Value) -> bool {
        match (&self.via, v) {
            (_, Value::DateTime(_)) => true,
            (Via::Remote { json: true, .. }, Value::String(s)) => DateTime::parse(s).is_ok(),
            _ => false,
        }
    }

    /// Calls and expects success.
    pub async fn ok(&self, method: &str, params: Vec<Value>) -> Value {
        match self.call(method, params).await {
            Ok(v) => v,
            Err(f) => panic!("[{}] {method} faulted: {f}", self.name),
        }
    }

    /// Asserts the size of `stack`, naming the environment when it differs.
    pub async fn assert_size(&self, stack: &str, size: i64) {
        let got = self
            .ok("stack.getSize", vec![Value::String(stack.into())])
            .await;
        assert_eq!(got, Value::Int(size), "[{}] size of {stack}", self.name);
    }

    /// Calls and expects a fault with that error name.
    pub async fn fault(&self, method: &str, params: Vec<Value>, name: &str) -> Fault {
        match self.call(method, params).await {
            Ok(v) => panic!("[{}] {method} answered {v:?}, expected {name}", self.name),
            Err(f) => {
                assert_eq!(f.name(), Some(name), "[{}] {method}: {f}", self.name);
                f
            }
        }
    }
}

/// The test configuration, on `clock`: waits look again only once an hour, so a
/// blocked pop or a subscription passes a test only through its wake-up.
pub fn config_on(clock: Arc<ManualClock>) -> MasterConfig {
    MasterConfig {
        session_timeout: Duration::from_secs(600),
        limits: Limits {
            max_item_bytes: 64 * 1024,
            ..Limits::default()
        },
        timing: Timing {
            clock,
            recheck: Duration::from_secs(3600),
        },
    }
}

/// [`config_on`] a clock of its own.
pub fn config() -> MasterConfig {
    config_on(ManualClock::new())
}

pub async fn env_with(
    name: &'static str,
    backend: BackendConfig,
    dir: Option<TempDir>,
    config: MasterConfig,
) -> Env {
    let backend = backend.open(&config.timing).await.expect("backend opens");
    let master = Master::new(backend, config);
    let dispatcher = Dispatcher::new(master.table());
    Env {
        name,
        master,
        via: Via::Direct(dispatcher),
        _dir: dir,
        _redis: None,
    }
}

/// A master on the memory backend served on `listener`, reached at `url`.
async fn remote(name: &'static str, config: MasterConfig, listener: Listener, url: String) -> Env {
    let backend = BackendConfig::Memory.open(&config.timing).await.unwrap();
    let master = Master::new(backend, config);
    let server = Server::new(Dispatcher::new(master.table()), ServerConfig::default());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        server
            .run(vec![listener], async {
                let _ = stopped.await;
            })
            .await
    });
    let json = url.starts_with("jsonrpc") || url.starts_with("ws");
    Env {
        name,
        master,
        via: Via::Remote {
            client: Client::new(&url).expect("client"),
            url: url.clone(),
            json,
            _stop: stop,
        },
        _dir: None,
        _redis: None,
    }
}

/// The memory-backed master over each protocol.
pub async fn all_protocols_with(config: MasterConfig) -> Vec<Env> {
    let xml = Listener::http("127.0.0.1:0").await.unwrap();
    let xml_url = xml.url().unwrap();
    let json = Listener::http("127.0.0.1:0").await.unwrap();
    let json_url = json
        .url()
        .unwrap()
        .replacen("http://", "jsonrpc+http://", 1);
    let ws = Listener::http("127.0.0.1:0").await.unwrap();
    let ws_url = ws.url().unwrap().replacen("http://", "ws://", 1);
    let mp = Listener::msgpack_tcp("127.0.0.1:0").await.unwrap();
    let mp_url = mp.url().unwrap();
    vec![
        remote("xmlrpc", config.clone(), xml, xml_url).await,
        remote("jsonrpc-http", config.clone(), json, json_url).await,
        remote("jsonrpc-ws", config.clone(), ws, ws_url).await,
        remote("msgpack-rpc", config, mp, mp_url).await,
    ]
}

/// Every backend called directly, and the memory backend over every protocol.
pub async fn all_envs_with(config: MasterConfig) -> Vec<Env> {
    let mut envs = all_backends_with(config.clone()).await;
    envs.extend(all_protocols_with(config).await);
    envs
}

/// [`all_envs_with`] the test configuration.
pub async fn all_envs() -> Vec<Env> {
    all_envs_with(config()).await
}

/// A master on the Redis backend, over a redis-server of its own.
pub async fn redis_env(config: MasterConfig) -> Env {
    let server = redis_server::RedisServer::start();
    let backend = server.backend(&config);
    let mut env = env_with("redis", backend, None, config).await;
    env._redis = Some(server);
    env
}

/// A fresh master on each backend: memory, embedded strict, embedded relaxed,
/// Redis.
pub async fn all_backends_with(config: MasterConfig) -> Vec<Env> {
    let embedded = |durability| {
        let dir = tempfile::tempdir().unwrap();
        let backend = BackendConfig::Embedded {
            dir: dir.path().to_owned(),
            durability,
        };
        (backend, dir)
    };
    let (strict, strict_dir) = embedded(Durability::Strict);
    let (relaxed, relaxed_dir) = embedded(Durability::Relaxed);
    vec![
        env_with("memory", BackendConfig::Memory, None, config.clone()).await,
        env_with("embedded-strict", strict, Some(strict_dir), config.clone()).await,
        env_with(
            "embedded-relaxed",
            relaxed,
            Some(relaxed_dir),
            config.clone(),
        )
        .await,
        redis_env(config).await,
    ]
}

pub fn s(text: &str) -> Value {
    Value::String(text.to_owned())
}

pub fn i(n: i64) -> Value {
    Value::Int(n)
}

pub fn map(pairs: &[(&str, Value)]) -> Value {
    Value::Struct(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect::<Map>(),
    )
}

/// Waits until `condition` holds: the way a test knows a call is blocked before
/// it does what should wake it. Gives up (failing) after a long while.
pub async fn until(condition: impl Fn() -> bool) {
    for _ in 0..10_000 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("the condition never held");
}
