//! The Redis backend: the state in a Redis server that several masters share,
//! each operation one Lua script ([`scripts`]), so it is atomic there whatever
//! happens to the master that sent it.
//!
//! Every key lies under one hash tag (`{NAMESPACE}:`), so the scripts may
//! touch any of them, also on a Redis Cluster (where the state then lives on
//! one shard). Scripts publish what they free on `{NAMESPACE}:wake:s:STACK`
//! and `{NAMESPACE}:wake:c:CLIENT`; every master listens on a connection of
//! its own and wakes its blocked pops and subscriptions, and looks again
//! every recheck interval in case a message was missed (pub/sub is not
//! stored).
//!
//! An item a protocol cannot carry is given back at once, on top of its
//! stack (the check runs here, after the script). A pop, take or visit whose
//! caller goes away while its script runs gives back what it took when the
//! answer arrives. An answer lost with the connection to Redis leaves the
//! operation's outcome unknown, as a master's crash does; it is reported as
//! a `StorageError` that says so, and never retried.

pub mod scripts;
mod wake;

use crate::backend::{Answer, Backend, Carry, PopLimit, Session, Taken, Waiters};
use crate::clock::Clock;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Script, Value as Reply};
use rpcs_core::{msgpack, Fault, Value};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// How many due leases or idle sessions one script handles; the master loops.
const SWEEP: usize = 500;

/// The first byte of a stored parameter value that is not an integer (a byte
/// no MessagePack value starts with); integers are stored in decimal.
const ENCODED: u8 = 0xc1;

/// How to reach Redis.
#[derive(Clone)]
pub struct RedisConfig {
    /// `redis://host:port/db` or `unix:///path/to/socket`; for a cluster, one
    /// or more of its nodes, separated by commas.
    pub url: String,
    /// Whether `url` names nodes of a Redis Cluster.
    pub cluster: bool,
    /// The hash tag every key lies under; masters sharing state use the same.
    pub namespace: String,
    /// The time to stamp leases and visits with instead of Redis's own (for
    /// tests that move time on their own); `None` in service.
    pub clock: Option<Arc<dyn Clock>>,
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &redacted(&self.url))
            .field("namespace", &self.namespace)
            .field("cluster", &self.cluster)
            .finish()
    }
}

/// `url` without the password it may carry (`redis://user:secret@host`), for
/// logs and messages.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((_, host)) => format!("{scheme}://***@{host}"),
        None => url.to_owned(),
    }
}

/// Why the backend could not start.
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    /// Connecting or subscribing failed.
    #[error("cannot reach Redis at {url}: {source}")]
    Connect {
        /// Where.
        url: String,
        /// Why.
        source: redis::RedisError,
    },
}

/// The state in Redis; see the module documentation.
pub struct RedisBackend {
    inner: Arc<Inner>,
    stack_waiters: Arc<Waiters>,
    client_waiters: Arc<Waiters>,
    _listener: wake::Listener,
}

struct Inner {
    con: Con,
    /// `{namespace}:`.
    prefix: String,
    clock: Option<Arc<dyn Clock>>,
}

fn unavailable(e: &redis::RedisError) -> Fault {
    let outcome = if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() {
        " (the operation may or may not have happened)"
    } else {
        ""
    };
    Fault::named("StorageError", format!("Redis: {e}{outcome}"))
}

fn damaged(what: &str) -> Fault {
    Fault::named("StorageError", format!("Redis answered oddly: {what}"))
}

impl RedisBackend {
    /// Connects to Redis and starts listening for wake-ups.
    pub async fn connect(config: &RedisConfig) -> Result<RedisBackend, RedisError> {
        let connect = |source| RedisError::Connect {
            url: redacted(&config.url),
            source,
        };
        let con = Con::open(config).await.map_err(connect)?;
        let first = config.url.split(',').next().unwrap_or_default();
        let prefix = format!("{{{}}}:", config.namespace);
        let stack_waiters = Arc::new(Waiters::default());
        let client_waiters = Arc::new(Waiters::default());
        // Pub/sub messages reach every node of a cluster: one node will do.
        let listener = wake::Listener::start(
            first,
            &prefix,
            stack_waiters.clone(),
            client_waiters.clone(),
        )
        .await
        .map_err(connect)?;
        Ok(RedisBackend {
            inner: Arc::new(Inner {
                con,
                prefix,
                clock: config.clock.clone(),
            }),
            stack_waiters,
            client_waiters,
            _listener: listener,
        })
    }
}

/// The connection to Redis: one server, or a cluster (which routes each
/// script by its key, the prefix).
#[derive(Clone)]
enum Con {
    Single(ConnectionManager),
    Cluster(redis::cluster_async::ClusterConnection),
}

/// Scripts wait for fsync under `appendfsync always`: more than the half
/// second redis-rs allows by default.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

impl Con {
    async fn open(config: &RedisConfig) -> Result<Con, redis::RedisError> {
        if config.cluster {
            let client = redis::cluster::ClusterClient::builder(config.url.split(','))
                .response_timeout(RESPONSE_TIMEOUT)
                .connection_timeout(CONNECT_TIMEOUT)
                .build()?;
            return Ok(Con::Cluster(client.get_async_connection().await?));
        }
        let client = redis::Client::open(config.url.as_str())?;
        let settings = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(CONNECT_TIMEOUT));
        Ok(Con::Single(
            client.get_connection_manager_with_config(settings).await?,
        ))
    }
}

impl redis::aio::ConnectionLike for Con {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> redis::RedisFuture<'a, Reply> {
        match self {
            Con::Single(c) => c.req_packed_command(cmd),
            Con::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<Reply>> {
        match self {
            Con::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Con::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Con::Single(c) => c.get_db(),
            Con::Cluster(c) => c.get_db(),
        }
    }
}

impl Inner {
    /// Runs a script with the prefix, the time override and `args` as its
    /// arguments.
    async fn run(&self, script: &Script, args: &[&[u8]]) -> Result<Reply, Fault> {
        let now = self.clock.as_ref().map(|c| c.now_ms().to_string());
        let mut call = script.prepare_invoke();
        call.key(self.prefix.as_bytes());
        call.arg(self.prefix.as_bytes());
        call.arg(now.unwrap_or_default().as_bytes());
        for a in args {
            call.arg(*a);
        }
        call.invoke_async(&mut self.con.clone())
            .await
            .map_err(|e| unavailable(&e))
    }

    async fn run_int(&self, script: &Script, args: &[&[u8]]) -> Result<i64, Fault> {
        int(&self.run(script, args).await?)
    }

    /// Adds `name` to an index of names (creating it); false if it was there.
    async fn add_name(&self, index: &str, name: String) -> Result<bool, Fault> {
        let key = format!("{}{index}", self.prefix);
        let added: i64 = redis::cmd("ZADD")
            .arg(key)
            .arg("NX")
            .arg(0)
            .arg(&name)
            .query_async(&mut self.con.clone())
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(added == 1)
    }

    async fn names(&self, index: &str) -> Result<Vec<String>, Fault> {
        let key = format!("{}{index}", self.prefix);
        let names: Vec<String> = redis::cmd("ZRANGE")
            .arg(key)
            .arg(0)
            .arg(-1)
            .query_async(&mut self.con.clone())
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(names)
    }

    /// Pushes items back on top, in their order (bottom first).
    async fn put_back(&self, name: &str, bottom_first: Vec<Vec<u8>>) {
        let mut args: Vec<&[u8]> = vec![name.as_bytes()];
        args.extend(bottom_first.iter().map(Vec::as_slice));
        if let Err(e) = self.run(&scripts::PUSH, &args).await {
            tracing::error!(stack = %name, error = %e, "could not give items back");
        }
    }
}

/// Runs `op` on a task of its own, so that it finishes even if the caller goes
/// away; if the caller has gone by then, `undo` gives back what it took.
async fn handing_over<T, F, U, UF>(op: F, undo: U) -> Result<T, Fault>
where
    T: Send + 'static,
    F: Future<Output = Result<T, Fault>> + Send + 'static,
    U: FnOnce(T) -> UF + Send + 'static,
    UF: Future<Output = ()> + Send,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        if let Err(Ok(taken)) = tx.send(op.await) {
            undo(taken).await;
        }
    });
    rx.await
        .unwrap_or_else(|_| Err(Fault::internal("a Redis operation was lost")))
}

fn int(v: &Reply) -> Result<i64, Fault> {
    match v {
        Reply::Int(i) => Ok(*i),
        Reply::BulkString(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| damaged("not a number")),
        Reply::SimpleString(s) => s.parse().map_err(|_| damaged("not a number")),
        _ => Err(damaged("not a number")),
    }
}

fn bytes(v: Reply) -> Result<Vec<u8>, Fault> {
    match v {
        Reply::BulkString(b) => Ok(b),
        Reply::SimpleString(s) => Ok(s.into_bytes()),
        _ => Err(damaged("not a string")),
    }
}

fn text(v: Reply) -> Result<String, Fault> {
    String::from_utf8(bytes(v)?).map_err(|_| damaged("not UTF-8"))
}

fn array(v: Reply) -> Result<Vec<Reply>, Fault> {
    match v {
        Reply::Array(items) => Ok(items),
        Reply::Nil => Ok(Vec::new()),
        _ => Err(damaged("not an array")),
    }
}

/// A tagged answer `{tag, rest...}`.
fn tagged(v: Reply) -> Result<(i64, std::vec::IntoIter<Reply>), Fault> {
    let mut items = array(v)?.into_iter();
    let tag = int(&items.next().ok_or_else(|| damaged("empty answer"))?)?;
    Ok((tag, items))
}

fn next(rest: &mut std::vec::IntoIter<Reply>) -> Result<Reply, Fault> {
    rest.next().ok_or_else(|| damaged("answer too short"))
}

fn strings(v: Reply) -> Result<Vec<String>, Fault> {
    array(v)?.into_iter().map(text).collect()
}

/// A parameter value as stored: integers in decimal (for HINCRBY), anything
/// else as its encoding behind a marker byte.
fn stored(encoded: &[u8]) -> Vec<u8> {
    match msgpack::decode(encoded, 1) {
        Ok(Value::Int(i)) => i.to_string().into_bytes(),
        _ => [&[ENCODED], encoded].concat(),
    }
}

/// A stored parameter value, encoded again.
fn unstored(raw: &[u8]) -> Result<Vec<u8>, Fault> {
    match raw.split_first() {
        Some((&ENCODED, encoded)) => Ok(encoded.to_vec()),
        _ => std::str::from_utf8(raw)
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
            .map(|i| msgpack::encode(&Value::Int(i)))
            .ok_or_else(|| damaged("a parameter value is neither an integer nor encoded")),
    }
}

fn stack_not_found(name: &str) -> Fault {
    Fault::named("StackNotFoundError", format!("no stack named {name:?}"))
}

fn storage_not_found(name: &str) -> Fault {
    Fault::named("StorageNotFoundError", format!("no storage named {name:?}"))
}

fn client_not_found(name: &str) -> Fault {
    Fault::named(
        "ClientNotFoundError",
        format!("no client named {name:?} is logged in"),
    )
}

fn increment_fault(e: &Fault, param: &str) -> Fault {
    if e.message.contains("not an integer") {
        Fault::named(
            "TypeError",
            format!("parameter {param:?} does not hold an integer"),
        )
    } else if e.message.contains("overflow") {
        Fault::named("OverflowError", "counter out of 64-bit range")
    } else {
        e.clone()
    }
}

impl RedisBackend {
    fn wake_stacks(&self, names: &[String]) {
        for name in names {
            self.stack_waiters.wake(name);
        }
    }

    async fn pop_items(
        &self,
        name: String,
        limit: PopLimit,
    ) -> Result<Option<Vec<Vec<u8>>>, Fault> {
        let inner = self.inner.clone();
        let back = self.inner.clone();
        let (count, budget) = (limit.count.to_string(), limit.budget.to_string());
        let undo_name = name.clone();
        handing_over(
            async move {
                let args: [&[u8]; 3] = [name.as_bytes(), count.as_bytes(), budget.as_bytes()];
                let (tag, mut rest) = tagged(inner.run(&scripts::POP, &args).await?)?;
                if tag == 0 {
                    return Ok(None);
                }
                let items = array(next(&mut rest)?)?;
                items
                    .into_iter()
                    .map(bytes)
                    .collect::<Result<Vec<_>, _>>()
                    .map(Some)
            },
            move |taken: Option<Vec<Vec<u8>>>| async move {
                let mut items = taken.unwrap_or_default();
                items.reverse();
                back.put_back(&undo_name, items).await;
            },
        )
        .await
    }

    async fn take_item(
        &self,
        name: String,
        lease_ms: i64,
        owner: String,
    ) -> Result<Option<Taken>, Fault> {
        let inner = self.inner.clone();
        let back = self.inner.clone();
        let undo_name = name.clone();
        handing_over(
            async move {
                loop {
                    let id = format!("{:016x}", fastrand::u64(..));
                    let lease = lease_ms.to_string();
                    let args: [&[u8]; 4] = [
                        name.as_bytes(),
                        id.as_bytes(),
                        lease.as_bytes(),
                        owner.as_bytes(),
                    ];
                    let (tag, mut rest) = tagged(inner.run(&scripts::TAKE, &args).await?)?;
                    match tag {
                        0 => return Ok(None),
                        -1 => continue,
                        _ => {
                            let deadline_ms = int(&next(&mut rest)?)?;
                            let item = bytes(next(&mut rest)?)?;
                            return Ok(Some(Taken {
                                id,
                                item,
                                deadline_ms,
                            }));
                        }
                    }
                }
            },
            move |taken: Option<Taken>| async move {
                if let Some(t) = taken {
                    let args: [&[u8]; 3] = [undo_name.as_bytes(), t.id.as_bytes(), b"1"];
                    let _ = back.run(&scripts::FINISH, &args).await;
                }
            },
        )
        .await
    }

    async fn visit_once(
        &self,
        name: String,
        status: Option<Vec<u8>>,
    ) -> Result<Option<(u64, Vec<u8>)>, Fault> {
        let inner = self.inner.clone();
        let back = self.inner.clone();
        let undo_name = name.clone();
        handing_over(
            async move {
                let status = status.unwrap_or_default();
                let args: [&[u8]; 2] = [name.as_bytes(), &status];
                let (tag, mut rest) = tagged(inner.run(&scripts::VISIT, &args).await?)?;
                match tag {
                    -1 => Err(client_not_found(&name)),
                    0 => Ok(None),
                    _ => {
                        let seq = int(&next(&mut rest)?)? as u64;
                        Ok(Some((seq, bytes(next(&mut rest)?)?)))
                    }
                }
            },
            move |taken: Option<(u64, Vec<u8>)>| async move {
                if let Some((seq, m)) = taken {
                    give_back(&back, &undo_name, seq, &m).await;
                }
            },
        )
        .await
    }
}

async fn give_back(inner: &Inner, name: &str, seq: u64, message: &[u8]) {
    let seq = seq.to_string();
    let args: [&[u8]; 3] = [name.as_bytes(), seq.as_bytes(), message];
    if let Err(e) = inner.run(&scripts::GIVE_BACK, &args).await {
        tracing::error!(client = %name, error = %e, "could not give a message back");
    }
}

fn session(row: Reply) -> Result<Option<Session>, Fault> {
    let fields = array(row)?;
    if fields.is_empty() {
        return Ok(None);
    }
    let mut f = fields.into_iter();
    Ok(Some(Session {
        host: text(next(&mut f)?)?,
        login_ms: int(&next(&mut f)?)?,
        visit_ms: int(&next(&mut f)?)?,
        status: bytes(next(&mut f)?)?,
        info: bytes(next(&mut f)?)?,
        pending: int(&next(&mut f)?)? as u64,
    }))
}

impl Backend for RedisBackend {
    fn create_stack(&self, name: String) -> Answer<'_, bool> {
        Box::pin(self.inner.add_name("stacks", name))
    }

    fn push(&self, name: String, items: Vec<Vec<u8>>) -> Answer<'_, u64> {
        Box::pin(async move {
            let mut args: Vec<&[u8]> = vec![name.as_bytes()];
            args.extend(items.iter().map(Vec::as_slice));
            let size = self.inner.run_int(&scripts::PUSH, &args).await?;
            self.stack_waiters.wake(&name);
            Ok(size as u64)
        })
    }

    fn pop<'a>(
        &'a self,
        name: String,
        limit: PopLimit,
        carry: Carry<'a>,
    ) -> Answer<'a, Option<Vec<Vec<u8>>>> {
        Box::pin(async move {
            let Some(items) = self.pop_items(name.clone(), limit).await? else {
                return Ok(None);
            };
            if let Err(refused) = items.iter().try_for_each(|i| carry(i)) {
                let mut back = items;
                back.reverse();
                self.inner.put_back(&name, back).await;
                return Err(refused);
            }
            Ok(Some(items))
        })
    }

    fn take<'a>(
        &'a self,
        name: String,
        lease_ms: i64,
        owner: Option<String>,
        carry: Carry<'a>,
    ) -> Answer<'a, Option<Taken>> {
        Box::pin(async move {
            let owner = owner.unwrap_or_default();
            let Some(taken) = self.take_item(name.clone(), lease_ms, owner).await? else {
                return Ok(None);
            };
            if let Err(refused) = carry(&taken.item) {
                self.release(name, taken.id).await?;
                return Err(refused);
            }
            Ok(Some(taken))
        })
    }

    fn ack(&self, name: String, id: String) -> Answer<'_, bool> {
        Box::pin(async move {
            let args: [&[u8]; 3] = [name.as_bytes(), id.as_bytes(), b"0"];
            Ok(self.inner.run_int(&scripts::FINISH, &args).await? == 1)
        })
    }

    fn release(&self, name: String, id: String) -> Answer<'_, bool> {
        Box::pin(async move {
            let args: [&[u8]; 3] = [name.as_bytes(), id.as_bytes(), b"1"];
            let released = self.inner.run_int(&scripts::FINISH, &args).await? == 1;
            if released {
                self.stack_waiters.wake(&name);
            }
            Ok(released)
        })
    }

    fn expire(&self) -> Answer<'_, usize> {
        Box::pin(async move {
            let limit = SWEEP.to_string();
            let mut stacks = Vec::new();
            loop {
                let reply = self
                    .inner
                    .run(&scripts::EXPIRE, &[limit.as_bytes()])
                    .await?;
                let mut rest = array(reply)?.into_iter();
                let looked = int(&next(&mut rest)?)? as usize;
                stacks.extend(strings(next(&mut rest)?)?);
                if looked < SWEEP {
                    break;
                }
            }
            stacks.sort();
            stacks.dedup();
            self.wake_stacks(&stacks);
            Ok(stacks.len())
        })
    }

    fn truncate(&self, name: String) -> Answer<'_, u64> {
        Box::pin(async move {
            match self
                .inner
                .run_int(&scripts::TRUNCATE, &[name.as_bytes()])
                .await?
            {
                -1 => Err(stack_not_found(&name)),
                n => Ok(n as u64),
            }
        })
    }

    fn remove_stack(&self, name: String) -> Answer<'_, ()> {
        Box::pin(async move {
            match self
                .inner
                .run_int(&scripts::REMOVE_STACK, &[name.as_bytes()])
                .await?
            {
                0 => Err(stack_not_found(&name)),
                _ => Ok(()),
            }
        })
    }

    fn stack_size(&self, name: String) -> Answer<'_, Option<u64>> {
        Box::pin(async move {
            let n = self
                .inner
                .run_int(&scripts::SIZE, &[name.as_bytes()])
                .await?;
            Ok(u64::try_from(n).ok())
        })
    }

    fn stack_names(&self) -> Answer<'_, Vec<String>> {
        Box::pin(self.inner.names("stacks"))
    }

    fn create_storage(&self, name: String) -> Answer<'_, bool> {
        Box::pin(self.inner.add_name("storages", name))
    }

    fn set_params(&self, name: String, params: Vec<(String, Vec<u8>)>) -> Answer<'_, ()> {
        Box::pin(async move {
            let values: Vec<Vec<u8>> = params.iter().map(|(_, v)| stored(v)).collect();
            let mut args: Vec<&[u8]> = vec![name.as_bytes()];
            for ((param, _), value) in params.iter().zip(&values) {
                args.push(param.as_bytes());
                args.push(value);
            }
            self.inner
                .run(&scripts::SET_PARAMS, &args)
                .await
                .map(|_| ())
        })
    }

    fn get_param(&self, name: String, param: String) -> Answer<'_, Option<Vec<u8>>> {
        Box::pin(async move {
            let args: [&[u8]; 2] = [name.as_bytes(), param.as_bytes()];
            let (tag, mut rest) = tagged(self.inner.run(&scripts::GET_PARAM, &args).await?)?;
            match tag {
                -1 => Err(storage_not_found(&name)),
                0 => Ok(None),
                _ => unstored(&bytes(next(&mut rest)?)?).map(Some),
            }
        })
    }

    fn params(&self, name: String) -> Answer<'_, Vec<(String, Vec<u8>)>> {
        Box::pin(async move {
            let (tag, mut rest) =
                tagged(self.inner.run(&scripts::PARAMS, &[name.as_bytes()]).await?)?;
            if tag == -1 {
                return Err(storage_not_found(&name));
            }
            let flat = array(next(&mut rest)?)?;
            let mut params = Vec::with_capacity(flat.len() / 2);
            let mut it = flat.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                params.push((text(k)?, unstored(&bytes(v)?)?));
            }
            params.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(params)
        })
    }

    fn remove_param(&self, name: String, param: String) -> Answer<'_, bool> {
        Box::pin(async move {
            let args: [&[u8]; 2] = [name.as_bytes(), param.as_bytes()];
            match self.inner.run_int(&scripts::REMOVE_PARAM, &args).await? {
                -1 => Err(storage_not_found(&name)),
                n => Ok(n == 1),
            }
        })
    }

    fn storage_exists(&self, name: String) -> Answer<'_, bool> {
        Box::pin(async move {
            let key = format!("{}storages", self.inner.prefix);
            let score: Option<f64> = redis::cmd("ZSCORE")
                .arg(key)
                .arg(&name)
                .query_async(&mut self.inner.con.clone())
                .await
                .map_err(|e| unavailable(&e))?;
            Ok(score.is_some())
        })
    }

    fn remove_storage(&self, name: String) -> Answer<'_, ()> {
        Box::pin(async move {
            match self
                .inner
                .run_int(&scripts::REMOVE_STORAGE, &[name.as_bytes()])
                .await?
            {
                0 => Err(storage_not_found(&name)),
                _ => Ok(()),
            }
        })
    }

    fn storage_names(&self) -> Answer<'_, Vec<String>> {
        Box::pin(self.inner.names("storages"))
    }

    fn compare_and_set(
        &self,
        name: String,
        param: String,
        expected: Value,
        new: Vec<u8>,
    ) -> Answer<'_, bool> {
        Box::pin(async move {
            let key = format!("{}params:{name}", self.inner.prefix);
            let new = stored(&new);
            // Values compare decoded (a struct's keys in any order), which no
            // script can do: read, compare here, then swap only if the bytes
            // are still the ones compared, else look again.
            for _ in 0..16 {
                let seen: Option<Vec<u8>> = redis::cmd("HGET")
                    .arg(&key)
                    .arg(&param)
                    .query_async(&mut self.inner.con.clone())
                    .await
                    .map_err(|e| unavailable(&e))?;
                let current = match &seen {
                    Some(raw) => crate::services::decode(&unstored(raw)?)?,
                    None => Value::Nil,
                };
                if current != expected {
                    return Ok(false);
                }
                let seen = seen.unwrap_or_default();
                let args: [&[u8]; 4] = [name.as_bytes(), param.as_bytes(), &seen, &new];
                if self.inner.run_int(&scripts::SWAP_PARAM, &args).await? == 1 {
                    return Ok(true);
                }
            }
            Err(Fault::named(
                "StorageError",
                format!("parameter {param:?} kept changing; compareAndSet gave up"),
            ))
        })
    }

    fn set_if_absent(&self, name: String, param: String, value: Vec<u8>) -> Answer<'_, bool> {
        Box::pin(async move {
            let value = stored(&value);
            let args: [&[u8]; 3] = [name.as_bytes(), param.as_bytes(), &value];
            Ok(self.inner.run_int(&scripts::SET_IF_ABSENT, &args).await? == 1)
        })
    }

    fn increment(&self, name: String, param: String, delta: i64) -> Answer<'_, i64> {
        Box::pin(async move {
            let delta = delta.to_string();
            let args: [&[u8]; 3] = [name.as_bytes(), param.as_bytes(), delta.as_bytes()];
            self.inner
                .run_int(&scripts::INCREMENT, &args)
                .await
                .map_err(|e| increment_fault(&e, &param))
        })
    }

    fn login(&self, name: String, host: String, info: Vec<u8>) -> Answer<'_, ()> {
        Box::pin(async move {
            let nil = [0xc0u8];
            let args: [&[u8]; 4] = [name.as_bytes(), host.as_bytes(), &info, &nil];
            self.inner.run(&scripts::LOGIN, &args).await.map(|_| ())
        })
    }

    fn logout(&self, name: String) -> Answer<'_, ()> {
        Box::pin(async move {
            let (tag, mut rest) =
                tagged(self.inner.run(&scripts::LOGOUT, &[name.as_bytes()]).await?)?;
            if tag == 0 {
                return Err(client_not_found(&name));
            }
            self.wake_stacks(&strings(next(&mut rest)?)?);
            self.client_waiters.wake(&name);
            Ok(())
        })
    }

    fn end_idle(&self, idle_ms: i64) -> Answer<'_, usize> {
        Box::pin(async move {
            let (idle, limit) = (idle_ms.to_string(), SWEEP.to_string());
            let mut ended = 0;
            loop {
                let args: [&[u8]; 2] = [idle.as_bytes(), limit.as_bytes()];
                let mut rest = array(self.inner.run(&scripts::END_IDLE, &args).await?)?.into_iter();
                let looked = int(&next(&mut rest)?)? as usize;
                let names = strings(next(&mut rest)?)?;
                self.wake_stacks(&strings(next(&mut rest)?)?);
                for name in &names {
                    self.client_waiters.wake(name);
                }
                ended += names.len();
                if looked < SWEEP {
                    return Ok(ended);
                }
            }
        })
    }

    fn visit<'a>(
        &'a self,
        name: String,
        status: Option<Vec<u8>>,
        carry: Carry<'a>,
    ) -> Answer<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            let Some((seq, message)) = self.visit_once(name.clone(), status).await? else {
                return Ok(None);
            };
            if let Err(refused) = carry(&message) {
                give_back(&self.inner, &name, seq, &message).await;
                return Err(refused);
            }
            Ok(Some(message))
        })
    }

    fn seen(&self, name: String) -> Answer<'_, bool> {
        Box::pin(async move {
            Ok(self
                .inner
                .run_int(&scripts::SEEN, &[name.as_bytes()])
                .await?
                == 1)
        })
    }

    fn send(&self, name: String, message: Vec<u8>, max_queue: usize) -> Answer<'_, ()> {
        Box::pin(async move {
            let max = max_queue.to_string();
            let args: [&[u8]; 3] = [name.as_bytes(), &message, max.as_bytes()];
            match self.inner.run_int(&scripts::SEND, &args).await? {
                -1 => Err(client_not_found(&name)),
                -2 => Err(Fault::named(
                    "QueueFullError",
                    format!("client {name:?} has {max_queue} unread messages"),
                )),
                _ => {
                    self.client_waiters.wake(&name);
                    Ok(())
                }
            }
        })
    }

    fn broadcast(&self, message: Vec<u8>, max_queue: usize) -> Answer<'_, u64> {
        Box::pin(async move {
            let max = max_queue.to_string();
            let args: [&[u8]; 2] = [&message, max.as_bytes()];
            let got = strings(self.inner.run(&scripts::BROADCAST, &args).await?)?;
            for name in &got {
                self.client_waiters.wake(name);
            }
            Ok(got.len() as u64)
        })
    }

    fn peek_message(&self, name: String) -> Answer<'_, Option<(u64, Vec<u8>)>> {
        Box::pin(async move {
            let (tag, mut rest) =
                tagged(self.inner.run(&scripts::PEEK, &[name.as_bytes()]).await?)?;
            if tag == 0 {
                return Ok(None);
            }
            let seq = int(&next(&mut rest)?)? as u64;
            Ok(Some((seq, bytes(next(&mut rest)?)?)))
        })
    }

    fn delivered(&self, name: String, seq: u64) -> Answer<'_, bool> {
        Box::pin(async move {
            let seq = seq.to_string();
            let args: [&[u8]; 2] = [name.as_bytes(), seq.as_bytes()];
            Ok(self.inner.run_int(&scripts::DELIVERED, &args).await? == 1)
        })
    }

    fn session(&self, name: String) -> Answer<'_, Option<Session>> {
        Box::pin(async move {
            let rows = array(
                self.inner
                    .run(&scripts::SESSIONS, &[name.as_bytes()])
                    .await?,
            )?;
            match rows.into_iter().next() {
                Some(row) => session(row),
                None => Ok(None),
            }
        })
    }

    fn sessions(&self) -> Answer<'_, Vec<(String, Session)>> {
        Box::pin(async move {
            let mut names = self.inner.names("clients").await?;
            names.sort();
            let args: Vec<&[u8]> = names.iter().map(|n| n.as_bytes()).collect();
            let rows = array(self.inner.run(&scripts::SESSIONS, &args).await?)?;
            let mut out = Vec::with_capacity(names.len());
            for (name, row) in names.into_iter().zip(rows) {
                if let Some(s) = session(row)? {
                    out.push((name, s));
                }
            }
            Ok(out)
        })
    }

    fn stack_waiters(&self) -> &Waiters {
        &self.stack_waiters
    }

    fn client_waiters(&self) -> &Waiters {
        &self.client_waiters
    }

    fn sees_every_change(&self) -> bool {
        false
    }

    fn maintain(self: Arc<Self>) -> Answer<'static, ()> {
        Box::pin(async { Ok(()) })
    }

    fn flush(&self) -> Answer<'_, ()> {
        Box::pin(async { Ok(()) })
    }

    fn shutdown(self: Arc<Self>) -> Answer<'static, ()> {
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_stay_out_of_urls_shown() {
        assert_eq!(
            redacted("redis://:s3cret@db:6379/0"),
            "redis://***@db:6379/0"
        );
        assert_eq!(redacted("redis://db:6379"), "redis://db:6379");
        let config = RedisConfig {
            url: "redis://u:s3cret@db".into(),
            namespace: "rpcs".into(),
            cluster: false,
            clock: None,
        };
        assert!(!format!("{config:?}").contains("s3cret"));
    }

    #[test]
    fn integers_are_stored_in_decimal_and_everything_else_encoded() {
        let five = msgpack::encode(&Value::Int(5));
        assert_eq!(stored(&five), b"5");
        assert_eq!(unstored(b"5").unwrap(), five);
        let text = msgpack::encode(&Value::String("5".into()));
        assert_eq!(unstored(&stored(&text)).unwrap(), text);
    }
}
