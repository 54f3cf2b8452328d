//! The master's service suite, run against every backend.

mod persistence;
mod provider;
mod stack;
mod storage;

use rpcs_core::{Context, Dispatcher, Fault, Map, Value};
use rpcs_master::store::Store;
use rpcs_master::{Backend, Durability, Limits, Master, MasterConfig};
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;

/// One master over one backend, called through its dispatcher as a client would.
pub struct Env {
    pub name: &'static str,
    pub master: Master,
    pub dispatcher: Dispatcher,
    pub _dir: Option<TempDir>,
}

impl Env {
    pub async fn call(&self, method: &str, params: Vec<Value>) -> Result<Value, Fault> {
        let ctx = Context::new("test", Some("127.0.0.1:5555".parse().unwrap()), 1);
        self.dispatcher.call(&ctx, method, params).await
    }

    /// Calls and expects success.
    pub async fn ok(&self, method: &str, params: Vec<Value>) -> Value {
        match self.call(method, params).await {
            Ok(v) => v,
            Err(f) => panic!("[{}] {method} faulted: {f}", self.name),
        }
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

pub fn config() -> MasterConfig {
    MasterConfig {
        session_timeout: Duration::from_secs(600),
        limits: Limits {
            max_item_bytes: 64 * 1024,
            ..Limits::default()
        },
    }
}

pub fn env_with(
    name: &'static str,
    backend: Backend,
    dir: Option<TempDir>,
    config: MasterConfig,
) -> Env {
    let store: Arc<dyn Store> = backend.open().expect("store opens");
    let master = Master::new(store, config);
    let dispatcher = Dispatcher::new(master.table());
    Env {
        name,
        master,
        dispatcher,
        _dir: dir,
    }
}

/// A fresh master on each backend: memory, embedded strict, embedded relaxed.
pub fn all_backends_with(config: MasterConfig) -> Vec<Env> {
    let embedded = |durability| {
        let dir = tempfile::tempdir().unwrap();
        let backend = Backend::Embedded {
            dir: dir.path().to_owned(),
            durability,
        };
        (backend, dir)
    };
    let (strict, strict_dir) = embedded(Durability::Strict);
    let (relaxed, relaxed_dir) = embedded(Durability::Relaxed);
    vec![
        env_with("memory", Backend::Memory, None, config.clone()),
        env_with("embedded-strict", strict, Some(strict_dir), config.clone()),
        env_with("embedded-relaxed", relaxed, Some(relaxed_dir), config),
    ]
}

pub fn all_backends() -> Vec<Env> {
    all_backends_with(config())
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
