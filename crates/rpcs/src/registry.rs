//! `rpcs registry` (a registry server) and `rpcs discover` (asking registries).

use crate::output;
use crate::register::read_secret;
use anyhow::Context as _;
use clap::Args;
use rpcs_core::rpyc_registry::DEFAULT_PORT;
use rpcs_core::{Dispatcher, Map, MethodTable, Value};
use rpcs_master::clock::SystemClock;
use rpcs_master::remote::registry::RedisRegistry;
use rpcs_master::remote::{redacted, RedisConfig};
use rpcs_master::services::registry::{
    self, MemoryRegistry, Registry, RegistryConfig, RegistryStore,
};
use rpcs_net::discovery::{self, Instance};
use rpcs_net::{Listener, Registries, Server, ServerConfig};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

/// Arguments of `rpcs registry`.
#[derive(Args, Debug)]
pub struct RegistryArgs {
    /// Address for RPyC's registry protocol on UDP and TCP, and MessagePack-RPC
    /// datagrams on the same UDP port (repeat for several). Use 0.0.0.0:18811
    /// to hear LAN broadcasts [default: 127.0.0.1:18811].
    #[arg(long, value_name = "ADDR")]
    listen: Vec<String>,
    /// Address to serve the registry's methods on over HTTP (XML-RPC, JSON-RPC,
    /// WebSocket) (repeat for several).
    #[arg(long, value_name = "ADDR")]
    http: Vec<String>,
    /// Address to serve the registry's methods on over MessagePack-RPC TCP
    /// (repeat for several).
    #[arg(long, value_name = "ADDR")]
    msgpack: Vec<String>,
    /// Seconds an RPyC registration lives without renewal (RPyC's servers
    /// renew every 60 s) [default: 240].
    #[arg(long, value_name = "SECS", default_value_t = 240.0)]
    timeout: f64,
    /// The longest time to live one of our registrations may ask for, in
    /// seconds [default: 3600].
    #[arg(long, value_name = "SECS", default_value_t = 3600.0)]
    max_ttl: f64,
    /// Allow listing the registered names (RPyC's LIST, registry.services).
    #[arg(long)]
    allow_listing: bool,
    /// Instances the registry holds in all [default: 10000].
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    max_instances: usize,
    /// Instances under one name [default: 256].
    #[arg(long, value_name = "N", default_value_t = 256)]
    max_per_name: usize,
    /// Instances registered from one address [default: 256].
    #[arg(long, value_name = "N", default_value_t = 256)]
    max_per_host: usize,
    /// Keep the table in this Redis server (redis://HOST:PORT/DB or
    /// unix:///PATH), so that several registries serve one view and any of
    /// them may stop; without it, the table is in memory.
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
    /// What the table's keys start with in Redis (registries sharing a table
    /// use the same; a master's keys are apart) [default: rpcs].
    #[arg(long, value_name = "NAME", default_value = "rpcs")]
    redis_namespace: String,
    /// --redis names nodes of a Redis Cluster (several, separated by commas).
    #[arg(long)]
    redis_cluster: bool,
    /// A file holding a secret shared with the servers: our registrations
    /// must then be signed with it, and RPyC's (which cannot be) are refused
    /// [default: $RPCS_REGISTRY_SECRET, else none].
    #[arg(long, value_name = "FILE")]
    secret_file: Option<PathBuf>,
    /// With a secret, still accept RPyC's unsigned registrations.
    #[arg(long)]
    accept_unsigned_rpyc: bool,
}

impl RegistryArgs {
    fn config(&self) -> anyhow::Result<RegistryConfig> {
        for (name, secs) in [("--timeout", self.timeout), ("--max-ttl", self.max_ttl)] {
            anyhow::ensure!(
                secs.is_finite() && secs >= 1.0,
                "{name} must be at least 1 second"
            );
        }
        Ok(RegistryConfig {
            rpyc_timeout_secs: self.timeout,
            max_ttl_secs: self.max_ttl,
            allow_listing: self.allow_listing,
            max_instances: self.max_instances,
            max_per_name: self.max_per_name,
            max_per_host: self.max_per_host,
            secret: read_secret(self.secret_file.as_deref())?,
            accept_unsigned_rpyc: self.accept_unsigned_rpyc,
            ..RegistryConfig::default()
        })
    }
}

/// Binds RPyC's protocol on UDP and TCP at `addr`, on one port number even
/// when `addr` asks for any port (`:0`), as RPyC's clients expect.
async fn bind_rpyc(addr: &str) -> anyhow::Result<(Listener, Listener)> {
    let mut tries = 0;
    loop {
        let udp = Listener::rpyc_udp(addr)
            .await
            .with_context(|| format!("listening on UDP {addr}"))?;
        let bound = udp.local_addr()?.context("a UDP listener has an address")?;
        match Listener::rpyc_tcp(&bound.to_string()).await {
            Ok(tcp) => return Ok((udp, tcp)),
            // Another program holds that TCP port: with any port asked for,
            // try another.
            Err(_) if addr.ends_with(":0") && tries < 10 => tries += 1,
            Err(e) => return Err(e).with_context(|| format!("listening on TCP {bound}")),
        }
    }
}

/// How often expired registrations are dropped.
const PRUNE_EVERY: Duration = Duration::from_secs(1);

/// Runs the registry until SIGINT or SIGTERM.
pub async fn registry(args: RegistryArgs) -> anyhow::Result<()> {
    let config = args.config()?;
    let shutdown = rpcs_net::server::shutdown_signal().context("installing signal handlers")?;
    let store: Arc<dyn RegistryStore> = match &args.redis {
        None => Arc::new(MemoryRegistry::new()),
        Some(url) => {
            let redis = RedisConfig {
                url: url.clone(),
                namespace: args.redis_namespace.clone(),
                cluster: args.redis_cluster,
                clock: None,
            };
            let store = RedisRegistry::connect(&redis).await;
            Arc::new(store.with_context(|| format!("connecting to {}", redacted(url)))?)
        }
    };
    let registry = Arc::new(Registry::new(store, config, Arc::new(SystemClock)));
    let mut table = MethodTable::new();
    registry::register(&mut table, &registry);
    let server = Server::new(Dispatcher::new(table), ServerConfig::default());
    let listen = if args.listen.is_empty() {
        vec![format!("127.0.0.1:{DEFAULT_PORT}")]
    } else {
        args.listen.clone()
    };
    let mut listeners = Vec::new();
    for addr in &listen {
        let (udp, tcp) = bind_rpyc(addr).await?;
        listeners.push(udp);
        listeners.push(tcp);
    }
    for addr in &args.http {
        let l = Listener::http(addr).await;
        listeners.push(l.with_context(|| format!("listening on {addr}"))?);
    }
    for addr in &args.msgpack {
        let l = Listener::msgpack_tcp(addr).await;
        listeners.push(l.with_context(|| format!("listening on {addr}"))?);
    }
    for l in &listeners {
        println!("listening on {}", l.url()?);
    }
    let pruner = tokio::spawn({
        let registry = registry.clone();
        async move {
            loop {
                tokio::time::sleep(PRUNE_EVERY).await;
                if let Err(fault) = registry.prune().await {
                    warn!(%fault, "pruning the registry failed");
                }
            }
        }
    });
    let table = if args.redis.is_some() {
        "redis"
    } else {
        "memory"
    };
    info!(
        allow_listing = args.allow_listing,
        table, "registry running"
    );
    server.run(listeners, shutdown).await?;
    pruner.abort();
    info!("registry stopped");
    Ok(())
}

/// Arguments of `rpcs discover`.
#[derive(Args, Debug)]
pub struct DiscoverArgs {
    /// The service name; without one, every registered name (when the
    /// registries allow listing).
    name: Option<String>,
    /// The registries to ask: HOST[:PORT] or registry URLs, separated by commas
    /// [default: $RPCS_REGISTRY, else 127.0.0.1:18811,255.255.255.255:18811].
    #[arg(long, value_name = "LIST")]
    registry: Option<String>,
    /// Seconds to wait for the registries.
    #[arg(long, value_name = "SECS", default_value_t = 2.0)]
    timeout: f64,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Lists the instances of a name, or every name.
pub async fn discover(args: DiscoverArgs) -> anyhow::Result<()> {
    let registries = Registries::given_or_env(args.registry.as_deref())?;
    let timeout = Duration::try_from_secs_f64(args.timeout)
        .ok()
        .filter(|d| !d.is_zero())
        .context("--timeout must be a positive number of seconds")?;
    let Some(name) = args.name else {
        let names = discovery::services(&registries, timeout).await?;
        if args.json {
            let list = names
                .iter()
                .map(|(n, count)| {
                    let mut m = Map::new();
                    m.insert("name".into(), Value::from(n.as_str()));
                    m.insert("instances".into(), Value::Int(*count as i64));
                    Value::Struct(m)
                })
                .collect();
            output::print_json(&Value::Array(list))?;
        } else {
            for (n, count) in names {
                println!("{n}\t{count}");
            }
        }
        return Ok(());
    };
    let found = discovery::lookup(&registries, &name, timeout).await?;
    if found.is_empty() {
        eprintln!("rpcs: no instance of {name:?} found (registries: {registries})");
        return Err(crate::Exit(crate::EXIT_FAULT).into());
    }
    if args.json {
        let list = found.iter().map(instance_value).collect();
        output::print_json(&Value::Array(list))?;
    } else {
        for i in &found {
            println!("{}", instance_line(i));
        }
    }
    Ok(())
}

fn instance_value(i: &Instance) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), Value::from(i.id.as_str()));
    m.insert(
        "names".into(),
        Value::Array(i.names.iter().map(|n| Value::from(n.as_str())).collect()),
    );
    m.insert("host".into(), Value::from(i.host.as_str()));
    m.insert(
        "port".into(),
        i.port.map_or(Value::Nil, |p| Value::Int(p.into())),
    );
    m.insert(
        "urls".into(),
        Value::Array(i.urls.iter().map(|u| Value::from(u.as_str())).collect()),
    );
    m.insert("metadata".into(), Value::Struct(i.metadata.clone()));
    m.insert("health".into(), Value::from(i.health.as_str()));
    m.insert("source".into(), Value::from(i.source.as_str()));
    m.insert("age".into(), Value::Double(i.age_secs));
    Value::Struct(m)
}

/// `ID  HEALTH  AGE  URLS` (RPyC's instances show `rpyc HOST:PORT`).
fn instance_line(i: &Instance) -> String {
    let place = match i.port {
        Some(port) => format!("rpyc {}:{port}", i.host),
        None => i.urls.join(" "),
    };
    format!("{}\t{}\t{:.0}s\t{place}", i.id, i.health, i.age_secs)
}
