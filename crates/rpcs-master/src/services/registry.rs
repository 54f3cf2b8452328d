//! The registry: which instances serve a name, for discovery.
//!
//! Two kinds of registration share one table:
//!
//! - **RPyC's** (`REGISTER (aliases, port)` from the sender's address), kept
//!   per name and address exactly as RPyC's registry keeps them and pruned
//!   after the registry's timeout (240 s by default, RPyC's).
//! - **Ours** (`registry.register`): an instance with an id of its own, its
//!   names, every URL it listens on, metadata and health, and the time to live
//!   it asks for; it re-registers well within that time and unregisters when
//!   it stops.
//!
//! Every table is bounded: instances in all, per name and per source address,
//! names, URLs and metadata per instance. A registration beyond a bound is
//! refused (`RegistryFullError`); one already there may still renew itself.
//! The table lives behind [`RegistryStore`]: in this process
//! ([`MemoryRegistry`]), or in Redis so that several registries serve one view
//! (`remote::RedisRegistry`).

use super::method;
use crate::backend::Answer;
use crate::clock::Clock;
use rpcs_core::registration::{check_unregister, take_signature};
pub use rpcs_core::registration::{Registration, Secret, DEFAULT_TTL_SECS};
use rpcs_core::{msgpack, Context, Fault, Map, MethodTable, Value};
use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use tracing::warn;

/// Bounds and timeouts of a registry.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// How long an RPyC registration lives without a renewal, in seconds
    /// (RPyC's servers renew every 60 s).
    pub rpyc_timeout_secs: f64,
    /// The longest time to live one of our registrations may ask for.
    pub max_ttl_secs: f64,
    /// Whether the names may be listed (RPyC's `LIST`, `registry.services`).
    pub allow_listing: bool,
    /// Instances in all.
    pub max_instances: usize,
    /// Instances under one name.
    pub max_per_name: usize,
    /// Instances registered from one address.
    pub max_per_host: usize,
    /// Names per instance.
    pub max_names: usize,
    /// URLs per instance.
    pub max_urls: usize,
    /// The longest name or URL, in bytes.
    pub max_text_bytes: usize,
    /// An instance's metadata, encoded.
    pub max_metadata_bytes: usize,
    /// When set, our registrations and unregistrations must be signed with
    /// it, and RPyC's (which cannot be) are refused unless
    /// `accept_unsigned_rpyc`.
    pub secret: Option<Secret>,
    /// With a secret, still accept RPyC's unsigned registrations.
    pub accept_unsigned_rpyc: bool,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            rpyc_timeout_secs: 240.0,
            max_ttl_secs: 3600.0,
            allow_listing: false,
            max_instances: 10_000,
            max_per_name: 256,
            max_per_host: 256,
            max_names: 16,
            max_urls: 16,
            max_text_bytes: 512,
            max_metadata_bytes: 4096,
            secret: None,
            accept_unsigned_rpyc: false,
        }
    }
}

/// Where a registration came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// RPyC's registry protocol.
    Rpyc,
    /// Our `registry.register`.
    Rpcs,
}

/// One registered instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    /// Unique in the table: ours choose it; RPyC's are `rpyc:NAME@IP:PORT`.
    pub id: String,
    /// The names it serves, upper-cased (as RPyC matches them).
    pub names: Vec<String>,
    /// The address it registered from.
    pub host: IpAddr,
    /// RPyC's port; for ours, none.
    pub port: Option<u16>,
    /// Every URL it listens on (ours).
    pub urls: Vec<String>,
    /// What it says about itself.
    pub metadata: Map,
    /// Its own word on its health (`serving`, `draining`, ...).
    pub health: String,
    /// Where the registration came from.
    pub source: Source,
    /// First registered, milliseconds since the epoch.
    pub first_ms: i64,
    /// Last renewed.
    pub seen_ms: i64,
    /// Dropped when not renewed by then.
    pub expires_ms: i64,
}

impl Instance {
    /// The `(ip, port)` pairs RPyC's `QUERY` answers for it: RPyC's own port,
    /// or the port of each of our URLs.
    pub fn rpyc_addresses(&self) -> Vec<(String, u16)> {
        if let Some(port) = self.port {
            return vec![(self.host.to_string(), port)];
        }
        let mut out: Vec<(String, u16)> = Vec::new();
        for url in &self.urls {
            if let Some((host, port)) = host_port(url) {
                let ip = host.parse::<IpAddr>().unwrap_or(self.host).to_string();
                if !out.contains(&(ip.clone(), port)) {
                    out.push((ip, port));
                }
            }
        }
        out
    }

    /// The instance as `registry.lookup` answers it.
    pub fn to_value(&self, now_ms: i64) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), Value::String(self.id.clone()));
        m.insert(
            "names".into(),
            Value::Array(self.names.iter().cloned().map(Value::String).collect()),
        );
        m.insert("host".into(), Value::String(self.host.to_string()));
        m.insert(
            "port".into(),
            self.port.map_or(Value::Nil, |p| Value::Int(p.into())),
        );
        m.insert(
            "urls".into(),
            Value::Array(self.urls.iter().cloned().map(Value::String).collect()),
        );
        m.insert("metadata".into(), Value::Struct(self.metadata.clone()));
        m.insert("health".into(), Value::String(self.health.clone()));
        let source = match self.source {
            Source::Rpyc => "rpyc",
            Source::Rpcs => "rpcs",
        };
        m.insert("source".into(), Value::String(source.into()));
        m.insert("registered".into(), super::datetime(self.first_ms));
        m.insert("lastSeen".into(), super::datetime(self.seen_ms));
        let secs = |ms: i64| Value::Double(ms as f64 / 1000.0);
        m.insert("age".into(), secs(now_ms - self.seen_ms));
        m.insert("expiresIn".into(), secs(self.expires_ms - now_ms));
        Value::Struct(m)
    }

    /// The instance as a store keeps it (MessagePack).
    pub fn encode(&self) -> Vec<u8> {
        let mut m = match self.to_value(self.seen_ms) {
            Value::Struct(m) => m,
            _ => Map::new(),
        };
        m.insert("firstMs".into(), Value::Int(self.first_ms));
        m.insert("seenMs".into(), Value::Int(self.seen_ms));
        m.insert("expiresMs".into(), Value::Int(self.expires_ms));
        msgpack::encode(&Value::Struct(m))
    }

    /// An instance a store kept; `None` if the bytes are not one.
    pub fn decode(bytes: &[u8]) -> Option<Instance> {
        let Value::Struct(m) = msgpack::decode(bytes, 16).ok()? else {
            return None;
        };
        let strings = |key: &str| -> Option<Vec<String>> {
            match m.get(key)? {
                Value::Array(a) => a.iter().map(|v| v.as_str().map(str::to_owned)).collect(),
                _ => None,
            }
        };
        let int = |key: &str| m.get(key).and_then(Value::as_i64);
        Some(Instance {
            id: m.get("id")?.as_str()?.to_owned(),
            names: strings("names")?,
            host: m.get("host")?.as_str()?.parse().ok()?,
            port: int("port").and_then(|p| u16::try_from(p).ok()),
            urls: strings("urls")?,
            metadata: match m.get("metadata") {
                Some(Value::Struct(md)) => md.clone(),
                _ => Map::new(),
            },
            health: m.get("health")?.as_str()?.to_owned(),
            source: match m.get("source")?.as_str()? {
                "rpyc" => Source::Rpyc,
                _ => Source::Rpcs,
            },
            first_ms: int("firstMs")?,
            seen_ms: int("seenMs")?,
            expires_ms: int("expiresMs")?,
        })
    }
}

/// `host` and `port` of a URL such as `msgpack://10.0.0.5:8001` or
/// `http://[::1]:8000/RPC2`; `None` without a port (a Unix socket).
pub fn host_port(url: &str) -> Option<(String, u16)> {
    let (_, rest) = url.split_once("://")?;
    let authority = rest.split('/').next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let (host, port) = authority.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host.to_owned(), port.parse().ok()?))
}

/// Replaces an unspecified host (`0.0.0.0`, `[::]`) in `url` with `ip`: a
/// server listening on every address registers the one it was reached from.
fn with_reachable_host(url: &str, ip: IpAddr) -> String {
    for any in ["0.0.0.0", "[::]"] {
        let pattern = format!("://{any}:");
        if url.contains(&pattern) {
            let ip = match ip {
                IpAddr::V4(v4) => v4.to_string(),
                IpAddr::V6(v6) => format!("[{v6}]"),
            };
            return url.replacen(&pattern, &format!("://{ip}:"), 1);
        }
    }
    url.to_owned()
}

/// The bounds a store checks when it adds an instance.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Instances in all.
    pub total: usize,
    /// Instances per name.
    pub per_name: usize,
    /// Instances per source address.
    pub per_host: usize,
}

/// The registry's table, each operation atomic.
pub trait RegistryStore: Send + Sync + 'static {
    /// Adds `instance` or renews the one with its id (keeping its first
    /// registration time); refuses a new one beyond `bounds`.
    fn upsert(&self, instance: Instance, bounds: Bounds) -> Answer<'_, ()>;
    /// Removes the instance with `id`; false if there was none.
    fn remove(&self, id: String) -> Answer<'_, bool>;
    /// Removes RPyC's registrations of `host:port`, every name; how many.
    fn remove_rpyc(&self, host: IpAddr, port: u16) -> Answer<'_, usize>;
    /// The instances serving `name` that have not expired at `now_ms`, first
    /// registered first.
    fn lookup(&self, name: String, now_ms: i64) -> Answer<'_, Vec<Instance>>;
    /// Every name with its number of live instances, sorted; only names
    /// served from `host` when given.
    fn names(&self, host: Option<IpAddr>, now_ms: i64) -> Answer<'_, Vec<(String, usize)>>;
    /// Drops every instance expired at `now_ms`; how many.
    fn prune(&self, now_ms: i64) -> Answer<'_, usize>;
}

fn full(what: &str, limit: usize) -> Fault {
    Fault::named(
        "RegistryFullError",
        format!("the registry holds its limit of {limit} instances {what}"),
    )
}

/// The table in this process.
#[derive(Default)]
pub struct MemoryRegistry {
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    instances: HashMap<String, Instance>,
    by_name: HashMap<String, BTreeSet<String>>,
    per_host: HashMap<IpAddr, usize>,
}

impl Table {
    fn insert(&mut self, instance: Instance) {
        for name in &instance.names {
            self.by_name
                .entry(name.clone())
                .or_default()
                .insert(instance.id.clone());
        }
        *self.per_host.entry(instance.host).or_default() += 1;
        self.instances.insert(instance.id.clone(), instance);
    }

    fn remove(&mut self, id: &str) -> Option<Instance> {
        let old = self.instances.remove(id)?;
        for name in &old.names {
            if let Some(ids) = self.by_name.get_mut(name) {
                ids.remove(id);
                if ids.is_empty() {
                    self.by_name.remove(name);
                }
            }
        }
        if let Some(n) = self.per_host.get_mut(&old.host) {
            *n -= 1;
            if *n == 0 {
                self.per_host.remove(&old.host);
            }
        }
        Some(old)
    }

    fn check_room(&self, instance: &Instance, bounds: Bounds) -> Result<(), Fault> {
        if self.instances.len() >= bounds.total {
            return Err(full("in all", bounds.total));
        }
        if self.per_host.get(&instance.host).copied().unwrap_or(0) >= bounds.per_host {
            return Err(full(&format!("from {}", instance.host), bounds.per_host));
        }
        for name in &instance.names {
            if self.by_name.get(name).map_or(0, BTreeSet::len) >= bounds.per_name {
                return Err(full(&format!("under {name:?}"), bounds.per_name));
            }
        }
        Ok(())
    }

    fn upsert(&mut self, mut instance: Instance, bounds: Bounds) -> Result<(), Fault> {
        match self.remove(&instance.id) {
            Some(old) => instance.first_ms = old.first_ms,
            None => self.check_room(&instance, bounds)?,
        }
        self.insert(instance);
        Ok(())
    }
}

impl MemoryRegistry {
    /// An empty table.
    pub fn new() -> MemoryRegistry {
        MemoryRegistry::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut Table) -> T) -> T {
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut table)
    }
}

/// An answer that is already there.
fn ready<T: Send + 'static>(value: Result<T, Fault>) -> Answer<'static, T> {
    Box::pin(std::future::ready(value))
}

impl RegistryStore for MemoryRegistry {
    fn upsert(&self, instance: Instance, bounds: Bounds) -> Answer<'_, ()> {
        ready(self.with(|t| t.upsert(instance, bounds)))
    }

    fn remove(&self, id: String) -> Answer<'_, bool> {
        ready(Ok(self.with(|t| t.remove(&id).is_some())))
    }

    fn remove_rpyc(&self, host: IpAddr, port: u16) -> Answer<'_, usize> {
        ready(Ok(self.with(|t| {
            let ids: Vec<String> = t
                .instances
                .values()
                .filter(|i| i.source == Source::Rpyc && i.host == host && i.port == Some(port))
                .map(|i| i.id.clone())
                .collect();
            ids.iter().filter(|id| t.remove(id).is_some()).count()
        })))
    }

    fn lookup(&self, name: String, now_ms: i64) -> Answer<'_, Vec<Instance>> {
        ready(Ok(self.with(|t| {
            let mut found: Vec<Instance> = t
                .by_name
                .get(&name)
                .into_iter()
                .flatten()
                .filter_map(|id| t.instances.get(id))
                .filter(|i| i.expires_ms > now_ms)
                .cloned()
                .collect();
            found.sort_by(|a, b| (a.first_ms, &a.id).cmp(&(b.first_ms, &b.id)));
            found
        })))
    }

    fn names(&self, host: Option<IpAddr>, now_ms: i64) -> Answer<'_, Vec<(String, usize)>> {
        ready(Ok(self.with(|t| {
            let mut names: Vec<(String, usize)> = t
                .by_name
                .iter()
                .filter_map(|(name, ids)| {
                    let live = ids
                        .iter()
                        .filter_map(|id| t.instances.get(id))
                        .filter(|i| i.expires_ms > now_ms && host.is_none_or(|h| i.host == h))
                        .count();
                    (live > 0).then(|| (name.clone(), live))
                })
                .collect();
            names.sort();
            names
        })))
    }

    fn prune(&self, now_ms: i64) -> Answer<'_, usize> {
        ready(Ok(self.with(|t| {
            let stale: Vec<String> = t
                .instances
                .values()
                .filter(|i| i.expires_ms <= now_ms)
                .map(|i| i.id.clone())
                .collect();
            stale.iter().filter(|id| t.remove(id).is_some()).count()
        })))
    }
}

/// The registry service.
pub struct Registry {
    store: Arc<dyn RegistryStore>,
    config: RegistryConfig,
    clock: Arc<dyn Clock>,
}

impl Registry {
    /// A registry over `store`.
    pub fn new(
        store: Arc<dyn RegistryStore>,
        config: RegistryConfig,
        clock: Arc<dyn Clock>,
    ) -> Registry {
        Registry {
            store,
            config,
            clock,
        }
    }

    fn bounds(&self) -> Bounds {
        Bounds {
            total: self.config.max_instances,
            per_name: self.config.max_per_name,
            per_host: self.config.max_per_host,
        }
    }

    fn sender(ctx: &Context) -> Result<IpAddr, Fault> {
        ctx.peer.map(|p| p.ip().to_canonical()).ok_or_else(|| {
            Fault::named(
                "ValueError",
                "registration needs the caller's address, which this transport does not have",
            )
        })
    }

    /// Checks and upper-cases names.
    fn names(&self, names: Vec<String>) -> Result<Vec<String>, Fault> {
        let bad = |what: String| Fault::named("ValueError", what);
        if names.is_empty() {
            return Err(bad("a registration needs at least one name".into()));
        }
        if names.len() > self.config.max_names {
            return Err(bad(format!(
                "{} names exceed the limit of {}",
                names.len(),
                self.config.max_names
            )));
        }
        let mut out: Vec<String> = Vec::with_capacity(names.len());
        for name in names {
            self.check_text("name", &name)?;
            let upper = name.to_uppercase();
            if !out.contains(&upper) {
                out.push(upper);
            }
        }
        Ok(out)
    }

    fn check_text(&self, what: &str, text: &str) -> Result<(), Fault> {
        if text.is_empty() || text.len() > self.config.max_text_bytes {
            return Err(Fault::named(
                "ValueError",
                format!(
                    "{what} must be 1 to {} bytes long",
                    self.config.max_text_bytes
                ),
            ));
        }
        if text.chars().any(char::is_control) {
            return Err(Fault::named(
                "ValueError",
                format!("{what} holds control characters"),
            ));
        }
        Ok(())
    }

    /// Our registration: adds or renews an instance; returns its id and the
    /// time to live granted.
    pub async fn register(&self, ctx: &Context, record: Value) -> Result<Map, Fault> {
        let host = Registry::sender(ctx)?;
        let r = Registration::from_value(record)?;
        if let Some(secret) = &self.config.secret {
            r.check_signature(secret.bytes(), self.clock.now_ms())
                .inspect_err(
                    |_| warn!(%host, id = %r.id, "registration with a bad signature refused"),
                )?;
        }
        let names = self.names(r.names)?;
        if r.urls.len() > self.config.max_urls {
            return Err(Fault::named(
                "ValueError",
                format!(
                    "{} URLs exceed the limit of {}",
                    r.urls.len(),
                    self.config.max_urls
                ),
            ));
        }
        let mut urls = Vec::with_capacity(r.urls.len());
        for url in &r.urls {
            self.check_text("URL", url)?;
            if !url.contains("://") {
                return Err(Fault::named("ValueError", format!("{url:?} is not a URL")));
            }
            urls.push(with_reachable_host(url, host));
        }
        let metadata_bytes = msgpack::encode(&Value::Struct(r.metadata.clone())).len();
        if metadata_bytes > self.config.max_metadata_bytes {
            return Err(Fault::named(
                "ValueError",
                format!(
                    "metadata of {metadata_bytes} bytes exceeds the limit of {}",
                    self.config.max_metadata_bytes
                ),
            ));
        }
        let id = if r.id.is_empty() {
            format!("{:016x}", fastrand::u64(..))
        } else {
            self.check_text("id", &r.id)?;
            if r.id.starts_with("rpyc:") {
                return Err(Fault::named("ValueError", "ids starting rpyc: are RPyC's"));
            }
            r.id
        };
        let health = if r.health.is_empty() {
            "serving".to_owned()
        } else {
            self.check_text("health", &r.health)?;
            r.health
        };
        let ttl = if r.ttl_secs.is_nan() {
            DEFAULT_TTL_SECS
        } else {
            r.ttl_secs
        };
        let ttl = ttl.clamp(1.0, self.config.max_ttl_secs.max(1.0));
        let now = self.clock.now_ms();
        let instance = Instance {
            id: id.clone(),
            names,
            host,
            port: None,
            urls,
            metadata: r.metadata,
            health,
            source: Source::Rpcs,
            first_ms: now,
            seen_ms: now,
            expires_ms: now + (ttl * 1000.0) as i64,
        };
        self.store.upsert(instance, self.bounds()).await?;
        let mut answer = Map::new();
        answer.insert("id".into(), Value::String(id));
        answer.insert("ttl".into(), Value::Double(ttl));
        Ok(answer)
    }

    /// Our unregistration, by id (or, for a registry with a secret, a struct
    /// of id, time and mac); false if the id was not registered.
    pub async fn unregister(&self, request: Value) -> Result<bool, Fault> {
        let (id, signature) = match request {
            Value::String(id) => (id, None),
            Value::Struct(mut m) => {
                let signature = take_signature(&mut m)?;
                match m.shift_remove("id") {
                    Some(Value::String(id)) if m.is_empty() => (id, signature),
                    _ => return Err(Fault::named("ValueError", "expected {id, time, mac}")),
                }
            }
            _ => return Err(Fault::named("ValueError", "expected an id")),
        };
        if let Some(secret) = &self.config.secret {
            check_unregister(secret.bytes(), &id, signature.as_ref(), self.clock.now_ms())?;
        }
        if id.starts_with("rpyc:") {
            return Err(Fault::named(
                "ValueError",
                "RPyC's registrations leave with RPyC's UNREGISTER",
            ));
        }
        self.store.remove(id).await
    }

    /// The live instances of `name`, first registered first.
    pub async fn lookup(&self, name: String) -> Result<Vec<Value>, Fault> {
        let now = self.clock.now_ms();
        let found = self.store.lookup(name.to_uppercase(), now).await?;
        Ok(found.iter().map(|i| i.to_value(now)).collect())
    }

    fn check_listing(&self) -> Result<(), Fault> {
        if self.config.allow_listing {
            return Ok(());
        }
        Err(Fault::named(
            "ListingDisabledError",
            "this registry does not list its names (start it with --allow-listing)",
        ))
    }

    /// Every name with its number of live instances, when listing is allowed.
    pub async fn services(&self) -> Result<Vec<Value>, Fault> {
        self.check_listing()?;
        let names = self.store.names(None, self.clock.now_ms()).await?;
        Ok(names
            .into_iter()
            .map(|(name, n)| {
                let mut m = Map::new();
                m.insert("name".into(), Value::String(name));
                m.insert("instances".into(), Value::Int(n as i64));
                Value::Struct(m)
            })
            .collect())
    }

    /// Refuses RPyC's unsigned changes when the registry has a secret.
    fn check_rpyc_allowed(&self) -> Result<(), Fault> {
        if self.config.secret.is_some() && !self.config.accept_unsigned_rpyc {
            return Err(Fault::named(
                "AuthenticationError",
                "this registry takes signed registrations only; RPyC's cannot be signed",
            ));
        }
        Ok(())
    }

    /// RPyC's `REGISTER`: each alias on `port` of the caller's address.
    pub async fn rpyc_register(
        &self,
        ctx: &Context,
        aliases: Vec<String>,
        port: u16,
    ) -> Result<bool, Fault> {
        self.check_rpyc_allowed()?;
        let host = Registry::sender(ctx)?;
        let names = self.names(aliases)?;
        let now = self.clock.now_ms();
        let expires = now + (self.config.rpyc_timeout_secs * 1000.0) as i64;
        for name in names {
            let instance = Instance {
                id: format!("rpyc:{name}@{host}:{port}"),
                names: vec![name],
                host,
                port: Some(port),
                urls: Vec::new(),
                metadata: Map::new(),
                health: "serving".into(),
                source: Source::Rpyc,
                first_ms: now,
                seen_ms: now,
                expires_ms: expires,
            };
            self.store.upsert(instance, self.bounds()).await?;
        }
        Ok(true)
    }

    /// RPyC's `UNREGISTER`: every name on `port` of the caller's address.
    pub async fn rpyc_unregister(&self, ctx: &Context, port: u16) -> Result<bool, Fault> {
        self.check_rpyc_allowed()?;
        let host = Registry::sender(ctx)?;
        self.store.remove_rpyc(host, port).await.map(|_| true)
    }

    /// RPyC's `QUERY`: the `(ip, port)` pairs serving `name`, oldest first.
    pub async fn rpyc_query(&self, name: String) -> Result<Vec<(String, u16)>, Fault> {
        let now = self.clock.now_ms();
        let found = self.store.lookup(name.to_uppercase(), now).await?;
        Ok(found.iter().flat_map(Instance::rpyc_addresses).collect())
    }

    /// RPyC's `LIST`: the names (served from `host`, when given), or `None`
    /// when listing is off.
    pub async fn rpyc_list(&self, host: Option<String>) -> Result<Option<Vec<String>>, Fault> {
        if !self.config.allow_listing {
            return Ok(None);
        }
        // A host that is not an address matches nothing, as in RPyC.
        let filter = match host {
            None => None,
            Some(h) => match h.parse::<IpAddr>() {
                Ok(ip) => Some(ip),
                Err(_) => return Ok(Some(Vec::new())),
            },
        };
        let names = self.store.names(filter, self.clock.now_ms()).await?;
        Ok(Some(names.into_iter().map(|(n, _)| n).collect()))
    }

    /// Drops expired registrations; how many.
    pub async fn prune(&self) -> Result<usize, Fault> {
        self.store.prune(self.clock.now_ms()).await
    }
}

fn pairs(pairs: Vec<(String, u16)>) -> Vec<Value> {
    pairs
        .into_iter()
        .map(|(ip, port)| Value::Array(vec![Value::String(ip), Value::Int(port.into())]))
        .collect()
}

/// Registers the `registry.*` methods.
pub fn register(t: &mut MethodTable, svc: &Arc<Registry>) {
    method!(t, svc => s, Write, "registry.register",
        "Register (or renew) an instance: a struct with names, urls, and optionally id, metadata, \
         health and ttl (seconds, default 30). Returns {id, ttl}; renew within the ttl.",
        |ctx: Context, record: Value| s.register(&ctx, record).await)
    .params(&["record"]);
    method!(t, svc => s, Write, "registry.unregister",
        "Remove an instance by id (with a shared secret: {id, time, mac}); false if it was not registered.",
        |request: Value| s.unregister(request).await)
    .params(&["id"]);
    method!(t, svc => s, Read, "registry.lookup",
        "The live instances serving a name, first registered first: id, names, host, port (RPyC's), \
         urls, metadata, health, source (rpcs or rpyc), registered, lastSeen, age and expiresIn (seconds).",
        |name: String| s.lookup(name).await)
    .params(&["name"]);
    method!(t, svc => s, Read, "registry.services",
        "Every registered name with its number of instances (when the registry allows listing).",
        | | s.services().await);
    method!(t, svc => s, Write, "registry.rpycRegister",
        "RPyC's REGISTER: the aliases served on port of the caller's address; true.",
        |ctx: Context, aliases: Vec<String>, port: u16| s.rpyc_register(&ctx, aliases, port).await)
    .params(&["aliases", "port"]);
    method!(t, svc => s, Write, "registry.rpycUnregister",
        "RPyC's UNREGISTER: every name on port of the caller's address; true.",
        |ctx: Context, port: u16| s.rpyc_unregister(&ctx, port).await)
    .params(&["port"]);
    method!(t, svc => s, Read, "registry.rpycQuery",
        "RPyC's QUERY: [ip, port] pairs serving a name, oldest first.",
        |name: String| s.rpyc_query(name).await.map(pairs))
    .params(&["name"]);
    method!(t, svc => s, Read, "registry.rpycList",
        "RPyC's LIST: the names (served from host, if given), or nil when listing is off.",
        |host: Option<String>| s.rpyc_list(host).await)
    .params(&["host"]);
}
