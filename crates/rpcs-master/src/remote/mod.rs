//! The Redis backend: the state in a Redis server that several masters share,
//! each operation on a stack, storage or client one Lua script ([`scripts`]),
//! so it is atomic there whatever happens to the master that sent it.
//!
//! Each stack, storage and client has its keys under a hash tag of its own
//! (`{NAMESPACE:s:NAME}:`, `p` for a storage, `c` for a client), so a Redis
//! Cluster spreads them across its shards. What spans several of them is a
//! sequence of such scripts, each atomic, ordered so that a master dying
//! between two of them leaves nothing wrong, at worst late: a logout gives
//! back the leases of each stack its client took from, one stack at a time
//! (a lease a master could not yet note with its owner still expires by its
//! deadline); a broadcast queues its message client by client. Listings scan
//! the keys. The namespace's own keys (`{NAMESPACE}:`) only index what the
//! sweeps need (stacks that may hold leases, clients with a time they were
//! seen); each sweep checks against the thing itself, and a repair pass
//! every minute re-indexes anything a dying master left out.
//!
//! Scripts publish what they free on the thing's channel (`…}:wake`); every
//! master listens on a connection of its own and wakes its blocked pops and
//! subscriptions, and looks again every recheck interval in case a message
//! was missed (pub/sub is not stored).
//!
//! An item a protocol cannot carry is given back at once, on top of its
//! stack (the check runs here, after the script). A pop, take or visit whose
//! caller goes away while its script runs gives back what it took when the
//! answer arrives. An answer lost with the connection to Redis leaves the
//! operation's outcome unknown, as a master's crash does; it is reported as
//! a `StorageError` that says so, and never retried.

pub mod registry;
pub mod scripts;
mod wake;

use crate::backend::{Answer, Backend, Carry, Claims, PopLimit, Session, Taken, Waiters};
use crate::clock::Clock;
use futures_util::stream::{self, StreamExt};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Script, Value as Reply};
use rpcs_core::{msgpack, Fault, Value};
use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
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
    /// What every key starts with (letters, digits, `_`, `-`, `.`); masters
    /// sharing state use the same.
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

/// `url` with any credentials replaced by `***`, fit for messages and logs.
pub use rpcs_core::auth::redacted;

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
    /// The namespace has a character keys cannot carry safely.
    #[error("a Redis namespace is letters, digits, '_', '-' and '.': {0:?}")]
    Namespace(String),
}

/// The state in Redis; see the module documentation.
pub struct RedisBackend {
    inner: Arc<Inner>,
    stack_waiters: Arc<Waiters>,
    client_waiters: Arc<Waiters>,
    _listener: wake::Listener,
    /// When the last repair pass ran (milliseconds by the process's clock).
    repaired_ms: AtomicI64,
}

struct Inner {
    con: Con,
    namespace: String,
    /// `{NAMESPACE}:`, the namespace's own keys.
    global: String,
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

/// Refuses a namespace with characters keys cannot carry safely.
fn check_namespace(ns: &str) -> Result<(), RedisError> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-.".contains(c);
    if ns.is_empty() || !ns.chars().all(plain) {
        return Err(RedisError::Namespace(ns.to_owned()));
    }
    Ok(())
}

impl RedisBackend {
    /// Connects to Redis and starts listening for wake-ups.
    pub async fn connect(config: &RedisConfig) -> Result<RedisBackend, RedisError> {
        let connect = |source| RedisError::Connect {
            url: redacted(&config.url),
            source,
        };
        let ns = &config.namespace;
        check_namespace(ns)?;
        let con = Con::open(config).await.map_err(connect)?;
        let first = config.url.split(',').next().unwrap_or_default();
        let stack_waiters = Arc::new(Waiters::default());
        let client_waiters = Arc::new(Waiters::default());
        // Pub/sub messages reach every node of a cluster: one node will do.
        let listener =
            wake::Listener::start(first, ns, stack_waiters.clone(), client_waiters.clone())
                .await
                .map_err(connect)?;
        Ok(RedisBackend {
            inner: Arc::new(Inner {
                con,
                namespace: ns.clone(),
                global: format!("{{{ns}}}:"),
                clock: config.clock.clone(),
            }),
            stack_waiters,
            client_waiters,
            _listener: listener,
            repaired_ms: AtomicI64::new(i64::MIN),
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

impl Con {
    /// Sends a command to one node of a cluster (`None`: where it routes).
    async fn on(&mut self, node: Option<&(String, u16)>, cmd: redis::Cmd) -> Result<Reply, Fault> {
        let sent = match (self, node) {
            (Con::Cluster(c), Some((host, port))) => {
                use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
                let to = SingleNodeRoutingInfo::ByAddress {
                    host: host.clone(),
                    port: *port,
                };
                c.route_command(cmd, RoutingInfo::SingleNode(to)).await
            }
            (con, _) => cmd.query_async(con).await,
        };
        sent.map_err(|e| unavailable(&e))
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

/// How many scripts a sweep runs at once.
const PARALLEL: usize = 32;

/// How often the repair pass re-indexes every stack and client.
const REPAIR_EVERY_MS: i64 = 60_000;

/// The kinds of things, each with its keys under a tag of its own: the
/// letter in the tag, the key whose existence makes one, and its type.
#[derive(Clone, Copy)]
enum Kind {
    Stack,
    Storage,
    Client,
}

impl Kind {
    fn letter(self) -> char {
        match self {
            Kind::Stack => 's',
            Kind::Storage => 'p',
            Kind::Client => 'c',
        }
    }

    /// The key that exists as long as the thing does, and its Redis type (no
    /// other key of the thing has that type, so a scan by type finds only
    /// these).
    fn marker(self) -> (&'static str, &'static str) {
        match self {
            Kind::Stack | Kind::Storage => ("on", "string"),
            Kind::Client => ("session", "hash"),
        }
    }
}

impl Inner {
    /// The key prefix of a thing: its hash tag.
    fn key(&self, kind: Kind, name: &str) -> String {
        format!("{{{}:{}:{name}}}:", self.namespace, kind.letter())
    }

    /// Runs a script on the keys under `key`, with the time override and
    /// `args` as its arguments.
    async fn run(&self, script: &Script, key: &str, args: &[&[u8]]) -> Result<Reply, Fault> {
        let now = self.clock.as_ref().map(|c| c.now_ms().to_string());
        let mut call = script.prepare_invoke();
        call.key(key.as_bytes());
        call.arg(key.as_bytes());
        call.arg(now.unwrap_or_default().as_bytes());
        for a in args {
            call.arg(*a);
        }
        call.invoke_async(&mut self.con.clone())
            .await
            .map_err(|e| unavailable(&e))
    }

    async fn run_int(&self, script: &Script, key: &str, args: &[&[u8]]) -> Result<i64, Fault> {
        int(&self.run(script, key, args).await?)
    }

    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, Fault> {
        cmd.query_async(&mut self.con.clone())
            .await
            .map_err(|e| unavailable(&e))
    }

    /// Creates a thing by its marker; false if it existed.
    async fn create(&self, kind: Kind, name: &str) -> Result<bool, Fault> {
        let key = format!("{}{}", self.key(kind, name), kind.marker().0);
        let set: Option<String> = self
            .query(redis::cmd("SET").arg(key).arg(1).arg("NX"))
            .await?;
        Ok(set.is_some())
    }

    /// Every name of a kind, sorted: the markers found by scanning.
    async fn names(&self, kind: Kind) -> Result<Vec<String>, Fault> {
        let (marker, type_) = kind.marker();
        let head = format!("{{{}:{}:", self.namespace, kind.letter());
        let tail = format!("}}:{marker}");
        let keys = self.scan(&format!("{head}*{tail}"), type_).await?;
        let mut names: Vec<String> = keys
            .iter()
            .filter_map(|k| std::str::from_utf8(k).ok())
            .filter_map(|k| k.strip_prefix(&head)?.strip_suffix(&tail))
            .map(str::to_owned)
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// The keys matching `pattern` of one type, from every primary.
    async fn scan(&self, pattern: &str, type_: &str) -> Result<Vec<Vec<u8>>, Fault> {
        let mut keys = Vec::new();
        for node in self.primaries().await? {
            let mut cursor = 0u64;
            loop {
                let mut cmd = redis::cmd("SCAN");
                cmd.arg(cursor)
                    .arg("MATCH")
                    .arg(pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .arg("TYPE")
                    .arg(type_);
                let reply = self.con.clone().on(node.as_ref(), cmd).await?;
                let (next, page): (u64, Vec<Vec<u8>>) =
                    redis::from_redis_value(reply).map_err(|_| damaged("a SCAN page"))?;
                keys.extend(page);
                cursor = next;
                if cursor == 0 {
                    break;
                }
            }
        }
        Ok(keys)
    }

    /// The primaries to scan: `None` for the one server.
    async fn primaries(&self) -> Result<Vec<Option<(String, u16)>>, Fault> {
        if let Con::Single(_) = self.con {
            return Ok(vec![None]);
        }
        let nodes: String = self.query(redis::cmd("CLUSTER").arg("NODES")).await?;
        Ok(cluster_primaries(&nodes).into_iter().map(Some).collect())
    }

    /// Pushes items back on top, in their order (bottom first).
    async fn put_back(&self, name: &str, bottom_first: Vec<Vec<u8>>) {
        let args: Vec<&[u8]> = bottom_first.iter().map(Vec::as_slice).collect();
        let key = self.key(Kind::Stack, name);
        if let Err(e) = self.run(&scripts::PUSH, &key, &args).await {
            tracing::error!(stack = %name, error = %e, "could not give items back");
        }
    }

    /// Adds a stack to the index of stacks that may hold leases (`SADD`), or
    /// takes it out (`SREM`).
    async fn index_leased(&self, command: &str, stack: &str) -> Result<(), Fault> {
        let cmd = redis::cmd(command)
            .arg(format!("{}leased", self.global))
            .arg(stack)
            .clone();
        self.query::<i64>(&cmd).await.map(|_| ())
    }

    /// Notes a new lease where the sweeps and its owner's logout find it.
    async fn note_lease(&self, stack: &str, owner: &str, first: bool, mine: bool) {
        let leased = async {
            if first {
                self.index_leased("SADD", stack).await?;
            }
            Ok::<_, Fault>(())
        };
        let owned = async {
            if mine {
                let key = format!("{}stacks", self.key(Kind::Client, owner));
                let cmd = redis::cmd("SADD").arg(key).arg(stack).clone();
                self.query::<i64>(&cmd).await?;
            }
            Ok::<_, Fault>(())
        };
        let (a, b) = tokio::join!(leased, owned);
        if let Err(e) = a.and(b) {
            // The lease still expires by its deadline; the repair pass
            // indexes its stack again.
            tracing::warn!(stack = %stack, error = %e, "could not index a new lease");
        }
    }

    /// Records in the namespace's index when a client was seen (it only ever
    /// moves forward).
    async fn index_client(&self, name: &str, time_ms: i64) -> Result<(), Fault> {
        let cmd = redis::cmd("ZADD")
            .arg(format!("{}clients", self.global))
            .arg("GT")
            .arg(time_ms)
            .arg(name)
            .clone();
        self.query::<i64>(&cmd).await.map(|_| ())
    }

    /// Gives back the leases `owner` holds on each of `stacks`; the stacks
    /// that got items back.
    async fn release_owned(&self, owner: &str, stacks: Vec<String>) -> Vec<String> {
        let each = stacks.into_iter().map(|stack| async move {
            let key = self.key(Kind::Stack, &stack);
            match self
                .run_int(&scripts::RELEASE_OWNED, &key, &[owner.as_bytes()])
                .await
            {
                Ok(n) => (n > 0).then_some(stack),
                Err(e) => {
                    tracing::warn!(stack = %stack, client = %owner, error = %e,
                        "could not give a client's leases back; they expire by their deadlines");
                    None
                }
            }
        });
        let freed = stream::iter(each).buffer_unordered(PARALLEL);
        freed.filter_map(|s| async { s }).collect().await
    }

    /// Expires the due leases of one stack; how many leases it has left.
    async fn expire_stack(&self, stack: &str) -> Result<(bool, i64), Fault> {
        let key = self.key(Kind::Stack, stack);
        let limit = SWEEP.to_string();
        let mut freed = false;
        loop {
            let reply = self
                .run(&scripts::EXPIRE, &key, &[limit.as_bytes()])
                .await?;
            let mut rest = array(reply)?.into_iter();
            let looked = int(&next(&mut rest)?)? as usize;
            let left = int(&next(&mut rest)?)?;
            freed |= looked > 0;
            if looked < SWEEP {
                return Ok((freed, left));
            }
        }
    }

    /// Expires the due leases of a stack the index names and keeps the index
    /// right: a stack with no lease left leaves it, and is looked at once more
    /// after, in case a lease was taken meanwhile (whose taker's note may have
    /// come before the removal). Whether items went back.
    async fn sweep_stack(&self, stack: String) -> Result<bool, Fault> {
        let (freed, left) = self.expire_stack(&stack).await?;
        if left > 0 {
            return Ok(freed);
        }
        self.index_leased("SREM", &stack).await?;
        let (again, left) = self.expire_stack(&stack).await?;
        if left > 0 {
            self.index_leased("SADD", &stack).await?;
        }
        Ok(freed || again)
    }

    /// Indexes every stack that holds leases and every logged-in client, in
    /// case a master died between a script and its note in the index.
    async fn repair(&self) -> Result<(), Fault> {
        for stack in self.names(Kind::Stack).await? {
            if self.expire_stack(&stack).await?.1 > 0 {
                self.index_leased("SADD", &stack).await?;
            }
        }
        for client in self.names(Kind::Client).await? {
            // Time 0 puts it first in line for the idle sweep, which reads
            // the session's own last visit.
            let cmd = redis::cmd("ZADD")
                .arg(format!("{}clients", self.global))
                .arg("NX")
                .arg(0)
                .arg(&client)
                .clone();
            self.query::<i64>(&cmd).await?;
        }
        Ok(())
    }
}

/// The primaries in a `CLUSTER NODES` answer, as host and port.
fn cluster_primaries(nodes: &str) -> Vec<(String, u16)> {
    nodes
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            let address = fields.nth(1)?;
            let flags = fields.next()?;
            if !flags.split(',').any(|f| f == "master") || flags.contains("fail") {
                return None;
            }
            let (host, port) = address.split('@').next()?.rsplit_once(':')?;
            Some((host.to_owned(), port.parse().ok()?))
        })
        .collect()
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

    fn stack_key(&self, name: &str) -> String {
        self.inner.key(Kind::Stack, name)
    }

    fn storage_key(&self, name: &str) -> String {
        self.inner.key(Kind::Storage, name)
    }

    fn client_key(&self, name: &str) -> String {
        self.inner.key(Kind::Client, name)
    }

    async fn pop_items(
        &self,
        name: String,
        limit: PopLimit,
    ) -> Result<Option<Vec<Vec<u8>>>, Fault> {
        let inner = self.inner.clone();
        let back = self.inner.clone();
        let (count, budget) = (limit.count.to_string(), limit.budget.to_string());
        let key = self.stack_key(&name);
        handing_over(
            async move {
                let args: [&[u8]; 2] = [count.as_bytes(), budget.as_bytes()];
                let (tag, mut rest) = tagged(inner.run(&scripts::POP, &key, &args).await?)?;
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
                back.put_back(&name, items).await;
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
        let key = self.stack_key(&name);
        let undo_key = key.clone();
        handing_over(
            async move {
                loop {
                    let id = format!("{:016x}", fastrand::u64(..));
                    let lease = lease_ms.to_string();
                    let args: [&[u8]; 3] = [id.as_bytes(), lease.as_bytes(), owner.as_bytes()];
                    let (tag, mut rest) = tagged(inner.run(&scripts::TAKE, &key, &args).await?)?;
                    match tag {
                        0 => return Ok(None),
                        -1 => continue,
                        _ => {
                            let deadline_ms = int(&next(&mut rest)?)?;
                            let item = bytes(next(&mut rest)?)?;
                            let first = int(&next(&mut rest)?)? == 1;
                            let mine = int(&next(&mut rest)?)? == 1;
                            inner.note_lease(&name, &owner, first, mine).await;
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
                    let args: [&[u8]; 2] = [t.id.as_bytes(), b"1"];
                    let _ = back.run(&scripts::FINISH, &undo_key, &args).await;
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
        let key = self.client_key(&name);
        let undo_key = key.clone();
        handing_over(
            async move {
                let status = status.unwrap_or_default();
                let reply = inner.run(&scripts::VISIT, &key, &[&status]).await?;
                let (tag, mut rest) = tagged(reply)?;
                if tag == -1 {
                    return Err(client_not_found(&name));
                }
                let index = int(&next(&mut rest)?)?;
                if index > 0 {
                    inner.index_client(&name, index).await?;
                }
                if tag == 0 {
                    return Ok(None);
                }
                let seq = int(&next(&mut rest)?)? as u64;
                Ok(Some((seq, bytes(next(&mut rest)?)?)))
            },
            move |taken: Option<(u64, Vec<u8>)>| async move {
                if let Some((seq, m)) = taken {
                    give_back(&back, &undo_key, seq, &m).await;
                }
            },
        )
        .await
    }

    /// Ends a client's session by `script` (a logout, or only if idle) and
    /// gives its leases back; whether it ended, or the last visit of a client
    /// still live.
    async fn end_session(
        &self,
        name: &str,
        script: &Script,
        args: &[&[u8]],
    ) -> Result<Ended, Fault> {
        let key = self.client_key(name);
        let (tag, mut rest) = tagged(self.inner.run(script, &key, args).await?)?;
        match tag {
            0 => Ok(Ended::NotLoggedIn),
            2 => Ok(Ended::Live(int(&next(&mut rest)?)?)),
            _ => {
                let stacks = strings(next(&mut rest)?)?;
                self.client_waiters.wake(name);
                let freed = self.inner.release_owned(name, stacks).await;
                self.wake_stacks(&freed);
                Ok(Ended::Now)
            }
        }
    }

    /// One idle candidate from the index: ended if its session really was
    /// idle, else its index entry is brought up to date; whether it ended.
    async fn end_if_idle(&self, name: String, time: String, idle: &str) -> Result<bool, Fault> {
        let ended = self
            .end_session(&name, &scripts::END_IF_IDLE, &[idle.as_bytes()])
            .await?;
        if let Ended::Live(visit) = ended {
            self.inner.index_client(&name, visit).await?;
            return Ok(false);
        }
        let args: [&[u8]; 2] = [name.as_bytes(), time.as_bytes()];
        let global = self.inner.global.clone();
        self.inner
            .run(&scripts::UNINDEX_CLIENT, &global, &args)
            .await?;
        Ok(matches!(ended, Ended::Now))
    }

    /// The repair pass, once a minute by this process's clock.
    async fn repair_if_due(&self) -> Result<(), Fault> {
        let now = crate::clock::SystemClock.now_ms();
        let last = self.repaired_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) < REPAIR_EVERY_MS {
            return Ok(());
        }
        self.repaired_ms.store(now, Ordering::Relaxed);
        self.inner.repair().await
    }
}

/// How an attempt to end a session came out.
enum Ended {
    NotLoggedIn,
    Now,
    /// Still live: seen last at this time.
    Live(i64),
}

async fn give_back(inner: &Inner, key: &str, seq: u64, message: &[u8]) {
    let seq = seq.to_string();
    let args: [&[u8]; 2] = [seq.as_bytes(), message];
    if let Err(e) = inner.run(&scripts::GIVE_BACK, key, &args).await {
        tracing::error!(client = %key, error = %e, "could not give a message back");
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
        Box::pin(async move { self.inner.create(Kind::Stack, &name).await })
    }

    fn push(&self, name: String, items: Vec<Vec<u8>>) -> Answer<'_, u64> {
        Box::pin(async move {
            let args: Vec<&[u8]> = items.iter().map(Vec::as_slice).collect();
            let key = self.stack_key(&name);
            let size = self.inner.run_int(&scripts::PUSH, &key, &args).await?;
            self.stack_waiters.wake(&name);
            Ok(size as u64)
        })
    }

    fn claim(&self, name: String, entries: Claims) -> Answer<'_, Vec<bool>> {
        Box::pin(async move {
            let mut args: Vec<&[u8]> = Vec::with_capacity(entries.len() * 2);
            for (key, item) in &entries {
                args.push(key);
                args.push(item.as_deref().unwrap_or_default());
            }
            let key = self.stack_key(&name);
            let reply = self.inner.run(&scripts::CLAIM, &key, &args).await?;
            let new = array(reply)?
                .iter()
                .map(|v| int(v).map(|n| n == 1))
                .collect::<Result<Vec<_>, _>>()?;
            if entries
                .iter()
                .zip(&new)
                .any(|((_, item), &n)| n && item.is_some())
            {
                self.stack_waiters.wake(&name);
            }
            Ok(new)
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
            let args: [&[u8]; 2] = [id.as_bytes(), b"0"];
            let key = self.stack_key(&name);
            Ok(self.inner.run_int(&scripts::FINISH, &key, &args).await? == 1)
        })
    }

    fn extend(&self, name: String, id: String, lease_ms: i64) -> Answer<'_, bool> {
        Box::pin(async move {
            let lease = lease_ms.to_string();
            let args: [&[u8]; 2] = [id.as_bytes(), lease.as_bytes()];
            let key = self.stack_key(&name);
            Ok(self.inner.run_int(&scripts::EXTEND, &key, &args).await? == 1)
        })
    }

    fn release(&self, name: String, id: String) -> Answer<'_, bool> {
        Box::pin(async move {
            let args: [&[u8]; 2] = [id.as_bytes(), b"1"];
            let key = self.stack_key(&name);
            let released = self.inner.run_int(&scripts::FINISH, &key, &args).await? == 1;
            if released {
                self.stack_waiters.wake(&name);
            }
            Ok(released)
        })
    }

    fn expire(&self) -> Answer<'_, usize> {
        Box::pin(async move {
            let cmd = redis::cmd("SMEMBERS")
                .arg(format!("{}leased", self.inner.global))
                .clone();
            let leased: Vec<String> = self.inner.query(&cmd).await?;
            let each = leased.into_iter().map(|stack| async move {
                let freed = self.inner.sweep_stack(stack.clone()).await?;
                Ok::<_, Fault>(freed.then_some(stack))
            });
            let swept: Vec<_> = stream::iter(each)
                .buffer_unordered(PARALLEL)
                .collect()
                .await;
            let mut stacks = Vec::new();
            for s in swept {
                stacks.extend(s?);
            }
            self.wake_stacks(&stacks);
            Ok(stacks.len())
        })
    }

    fn truncate(&self, name: String) -> Answer<'_, u64> {
        Box::pin(async move {
            let key = self.stack_key(&name);
            match self.inner.run_int(&scripts::TRUNCATE, &key, &[]).await? {
                -1 => Err(stack_not_found(&name)),
                n => Ok(n as u64),
            }
        })
    }

    fn remove_stack(&self, name: String) -> Answer<'_, ()> {
        Box::pin(async move {
            let key = self.stack_key(&name);
            match self
                .inner
                .run_int(&scripts::REMOVE_STACK, &key, &[])
                .await?
            {
                0 => Err(stack_not_found(&name)),
                _ => Ok(()),
            }
        })
    }

    fn stack_size(&self, name: String) -> Answer<'_, Option<u64>> {
        Box::pin(async move {
            let key = self.stack_key(&name);
            let n = self.inner.run_int(&scripts::SIZE, &key, &[]).await?;
            Ok(u64::try_from(n).ok())
        })
    }

    fn stack_leased(&self, name: String) -> Answer<'_, Option<u64>> {
        Box::pin(async move {
            let key = self.stack_key(&name);
            let n = self.inner.run_int(&scripts::LEASED, &key, &[]).await?;
            Ok(u64::try_from(n).ok())
        })
    }

    fn stack_names(&self) -> Answer<'_, Vec<String>> {
        Box::pin(self.inner.names(Kind::Stack))
    }

    fn create_storage(&self, name: String) -> Answer<'_, bool> {
        Box::pin(async move { self.inner.create(Kind::Storage, &name).await })
    }

    fn set_params(&self, name: String, params: Vec<(String, Vec<u8>)>) -> Answer<'_, ()> {
        Box::pin(async move {
            let values: Vec<Vec<u8>> = params.iter().map(|(_, v)| stored(v)).collect();
            let mut args: Vec<&[u8]> = Vec::with_capacity(params.len() * 2);
            for ((param, _), value) in params.iter().zip(&values) {
                args.push(param.as_bytes());
                args.push(value);
            }
            let key = self.storage_key(&name);
            self.inner
                .run(&scripts::SET_PARAMS, &key, &args)
                .await
                .map(|_| ())
        })
    }

    fn get_param(&self, name: String, param: String) -> Answer<'_, Option<Vec<u8>>> {
        Box::pin(async move {
            let key = self.storage_key(&name);
            let reply = self
                .inner
                .run(&scripts::GET_PARAM, &key, &[param.as_bytes()])
                .await?;
            let (tag, mut rest) = tagged(reply)?;
            match tag {
                -1 => Err(storage_not_found(&name)),
                0 => Ok(None),
                _ => unstored(&bytes(next(&mut rest)?)?).map(Some),
            }
        })
    }

    fn params(&self, name: String) -> Answer<'_, Vec<(String, Vec<u8>)>> {
        Box::pin(async move {
            let key = self.storage_key(&name);
            let (tag, mut rest) = tagged(self.inner.run(&scripts::PARAMS, &key, &[]).await?)?;
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
            let key = self.storage_key(&name);
            let args: [&[u8]; 1] = [param.as_bytes()];
            match self
                .inner
                .run_int(&scripts::REMOVE_PARAM, &key, &args)
                .await?
            {
                -1 => Err(storage_not_found(&name)),
                n => Ok(n == 1),
            }
        })
    }

    fn storage_exists(&self, name: String) -> Answer<'_, bool> {
        Box::pin(async move {
            let key = format!("{}on", self.storage_key(&name));
            let n: i64 = self.inner.query(redis::cmd("EXISTS").arg(key)).await?;
            Ok(n == 1)
        })
    }

    fn storage_size(&self, name: String) -> Answer<'_, Option<u64>> {
        Box::pin(async move {
            let key = self.storage_key(&name);
            let n = self
                .inner
                .run_int(&scripts::STORAGE_SIZE, &key, &[])
                .await?;
            Ok(u64::try_from(n).ok())
        })
    }

    fn remove_storage(&self, name: String) -> Answer<'_, ()> {
        Box::pin(async move {
            let key = self.storage_key(&name);
            match self
                .inner
                .run_int(&scripts::REMOVE_STORAGE, &key, &[])
                .await?
            {
                0 => Err(storage_not_found(&name)),
                _ => Ok(()),
            }
        })
    }

    fn storage_names(&self) -> Answer<'_, Vec<String>> {
        Box::pin(self.inner.names(Kind::Storage))
    }

    fn compare_and_set(
        &self,
        name: String,
        param: String,
        expected: Value,
        new: Vec<u8>,
    ) -> Answer<'_, bool> {
        Box::pin(async move {
            let key = self.storage_key(&name);
            let params = format!("{key}params");
            let new = stored(&new);
            // Values compare decoded (a struct's keys in any order), which no
            // script can do: read, compare here, then swap only if the bytes
            // are still the ones compared, else look again.
            for _ in 0..16 {
                let seen: Option<Vec<u8>> = self
                    .inner
                    .query(redis::cmd("HGET").arg(&params).arg(&param))
                    .await?;
                let current = match &seen {
                    Some(raw) => crate::services::decode(&unstored(raw)?)?,
                    None => Value::Nil,
                };
                if current != expected {
                    return Ok(false);
                }
                let seen = seen.unwrap_or_default();
                let args: [&[u8]; 3] = [param.as_bytes(), &seen, &new];
                if self
                    .inner
                    .run_int(&scripts::SWAP_PARAM, &key, &args)
                    .await?
                    == 1
                {
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
            let args: [&[u8]; 2] = [param.as_bytes(), &value];
            let key = self.storage_key(&name);
            Ok(self
                .inner
                .run_int(&scripts::SET_IF_ABSENT, &key, &args)
                .await?
                == 1)
        })
    }

    fn increment(&self, name: String, param: String, delta: i64) -> Answer<'_, i64> {
        Box::pin(async move {
            let delta = delta.to_string();
            let args: [&[u8]; 2] = [param.as_bytes(), delta.as_bytes()];
            let key = self.storage_key(&name);
            self.inner
                .run_int(&scripts::INCREMENT, &key, &args)
                .await
                .map_err(|e| increment_fault(&e, &param))
        })
    }

    fn reserve(&self, name: String, param: String, interval_ms: i64) -> Answer<'_, i64> {
        Box::pin(async move {
            let interval = interval_ms.to_string();
            let args: [&[u8]; 2] = [param.as_bytes(), interval.as_bytes()];
            let key = self.storage_key(&name);
            let (tag, mut rest) = tagged(self.inner.run(&scripts::RESERVE, &key, &args).await?)?;
            if tag == -1 {
                return Err(Fault::named(
                    "TypeError",
                    format!("parameter {param:?} does not hold an integer"),
                ));
            }
            int(&next(&mut rest)?)
        })
    }

    fn login(&self, name: String, host: String, info: Vec<u8>) -> Answer<'_, ()> {
        Box::pin(async move {
            let nil = [0xc0u8];
            let args: [&[u8]; 3] = [host.as_bytes(), &info, &nil];
            let key = self.client_key(&name);
            let now = self.inner.run_int(&scripts::LOGIN, &key, &args).await?;
            self.inner.index_client(&name, now).await
        })
    }

    fn logout(&self, name: String) -> Answer<'_, ()> {
        Box::pin(async move {
            match self.end_session(&name, &scripts::LOGOUT, &[]).await? {
                Ended::NotLoggedIn => Err(client_not_found(&name)),
                _ => Ok(()),
            }
        })
    }

    fn end_idle(&self, idle_ms: i64) -> Answer<'_, usize> {
        Box::pin(async move {
            let (idle, limit) = (idle_ms.to_string(), SWEEP.to_string());
            let global = self.inner.global.clone();
            let mut ended = 0;
            // Each round ends or re-indexes every candidate it saw; a bound
            // keeps clients logging in all the while from holding it here.
            for _ in 0..64 {
                let args: [&[u8]; 2] = [idle.as_bytes(), limit.as_bytes()];
                let reply = self
                    .inner
                    .run(&scripts::IDLE_CANDIDATES, &global, &args)
                    .await?;
                let flat = strings(reply)?;
                let looked = flat.len() / 2;
                let mut it = flat.into_iter();
                let mut pairs = Vec::with_capacity(looked);
                while let (Some(name), Some(time)) = (it.next(), it.next()) {
                    pairs.push((name, time));
                }
                let each = pairs
                    .into_iter()
                    .map(|(name, time)| self.end_if_idle(name, time, &idle));
                let results: Vec<_> = stream::iter(each)
                    .buffer_unordered(PARALLEL)
                    .collect()
                    .await;
                for r in results {
                    ended += usize::from(r?);
                }
                if looked < SWEEP {
                    break;
                }
            }
            Ok(ended)
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
                give_back(&self.inner, &self.client_key(&name), seq, &message).await;
                return Err(refused);
            }
            Ok(Some(message))
        })
    }

    fn seen(&self, name: String) -> Answer<'_, bool> {
        Box::pin(async move {
            let key = self.client_key(&name);
            match self.inner.run_int(&scripts::SEEN, &key, &[]).await? {
                -1 => Ok(false),
                0 => Ok(true),
                index => self.inner.index_client(&name, index).await.map(|_| true),
            }
        })
    }

    fn send(&self, name: String, message: Vec<u8>, max_queue: usize) -> Answer<'_, ()> {
        Box::pin(async move {
            let max = max_queue.to_string();
            let args: [&[u8]; 2] = [&message, max.as_bytes()];
            let key = self.client_key(&name);
            match self.inner.run_int(&scripts::SEND, &key, &args).await? {
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
            let clients = self.inner.names(Kind::Client).await?;
            let (message, max) = (&message, &max);
            let each = clients.into_iter().map(|name| async move {
                let args: [&[u8]; 2] = [message, max.as_bytes()];
                let key = self.client_key(&name);
                let queued = self.inner.run_int(&scripts::SEND, &key, &args).await? == 1;
                if queued {
                    self.client_waiters.wake(&name);
                }
                Ok::<_, Fault>(queued)
            });
            let sent: Vec<_> = stream::iter(each)
                .buffer_unordered(PARALLEL)
                .collect()
                .await;
            let mut got = 0;
            for queued in sent {
                got += u64::from(queued?);
            }
            Ok(got)
        })
    }

    fn peek_message(&self, name: String) -> Answer<'_, Option<(u64, Vec<u8>)>> {
        Box::pin(async move {
            let key = self.client_key(&name);
            let (tag, mut rest) = tagged(self.inner.run(&scripts::PEEK, &key, &[]).await?)?;
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
            let key = self.client_key(&name);
            let args: [&[u8]; 1] = [seq.as_bytes()];
            Ok(self.inner.run_int(&scripts::DELIVERED, &key, &args).await? == 1)
        })
    }

    fn session(&self, name: String) -> Answer<'_, Option<Session>> {
        Box::pin(async move {
            let key = self.client_key(&name);
            session(self.inner.run(&scripts::SESSION, &key, &[]).await?)
        })
    }

    fn sessions(&self) -> Answer<'_, Vec<(String, Session)>> {
        Box::pin(async move {
            let names = self.inner.names(Kind::Client).await?;
            let each = names.into_iter().map(|name| async move {
                let key = self.client_key(&name);
                let row = session(self.inner.run(&scripts::SESSION, &key, &[]).await?)?;
                Ok::<_, Fault>(row.map(|s| (name, s)))
            });
            let rows: Vec<_> = stream::iter(each).buffered(PARALLEL).collect().await;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.extend(row?);
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
        Box::pin(async move { self.repair_if_due().await })
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
