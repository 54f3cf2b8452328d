//! `rpcs master`: run the master (stacks, storages, provider).

use crate::register::{self, RegisterArgs};
use anyhow::Context as _;
use clap::{Args, ValueEnum};
use rpcs_core::Dispatcher;
use rpcs_master::metrics::MasterMetrics;
use rpcs_master::remote::RedisConfig;
use rpcs_master::{BackendConfig, Durability, Limits, Master, MasterConfig};
use rpcs_net::{Listener, MetricsSource, Server, ServerConfig, Tls, TlsFiles};
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

/// Where state is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// In memory, every change journaled under --data-dir with snapshots
    /// (the default).
    Embedded,
    /// Memory only; everything is lost when the master stops.
    Memory,
    /// A Redis server that several masters may share (--redis).
    Redis,
}

/// What an acknowledged write survives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DurabilityKind {
    /// On disk before the answer: survives kill -9 and power loss (the default).
    Strict,
    /// Flushed at least every second: a crash loses at most the last second.
    Relaxed,
}

/// Arguments of `rpcs master`; each overrides the same key of the config file.
#[derive(Args, Debug, Default)]
pub struct MasterArgs {
    /// A TOML file with any of: listen, msgpack, msgpack_unix, zerorpc,
    /// zerorpc_connect, data_dir, backend, durability, session_timeout,
    /// max_item_bytes, max_connections, max_connections_per_listener,
    /// idle_timeout, call_timeout, max_in_flight, max_queued_bytes, register,
    /// registry, register_ttl, registry_secret_file, auth, auth_timeout,
    /// insecure_no_auth, https, msgpack_tls, tls_cert, tls_key, tls_client_ca.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to serve HTTP on: XML-RPC and JSON-RPC (repeat for several)
    /// [default: 127.0.0.1:8000].
    #[arg(long, value_name = "ADDR")]
    listen: Vec<String>,
    /// Address to serve MessagePack-RPC on over TCP (repeat for several).
    #[arg(long, value_name = "ADDR")]
    msgpack: Vec<String>,
    /// Unix socket path to serve MessagePack-RPC on (repeat for several).
    #[arg(long, value_name = "PATH")]
    msgpack_unix: Vec<PathBuf>,
    /// zerorpc endpoint to bind, e.g. tcp://127.0.0.1:4242 or ipc:///run/rpcs.zmq
    /// (repeat for several).
    #[arg(long, value_name = "ENDPOINT")]
    zerorpc: Vec<String>,
    /// zerorpc endpoint to connect to, the reversed mode where a client or queue
    /// binds and the master is its worker (repeat for several).
    #[arg(long, value_name = "ENDPOINT")]
    zerorpc_connect: Vec<String>,
    /// Directory of the embedded backend's journal and snapshots [default: ./rpcs-data].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Where state is kept [default: embedded].
    #[arg(long, value_enum)]
    backend: Option<BackendKind>,
    /// What an acknowledged write survives [default: strict].
    #[arg(long, value_enum)]
    durability: Option<DurabilityKind>,
    /// The Redis server of the redis backend: redis://HOST:PORT/DB or
    /// unix:///PATH [default: redis://127.0.0.1:6379].
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
    /// What every key of the redis backend starts with (letters, digits,
    /// '_', '-', '.'); masters sharing state use the same [default: rpcs].
    #[arg(long, value_name = "NAME")]
    redis_namespace: Option<String>,
    /// --redis names nodes of a Redis Cluster (several, separated by commas).
    #[arg(long)]
    redis_cluster: bool,
    /// Seconds a client may go without visiting before clean-up ends its session [default: 600].
    #[arg(long, value_name = "SECS")]
    session_timeout: Option<f64>,
    /// Largest stack item, parameter value or message, in bytes [default: 1048576].
    #[arg(long, value_name = "BYTES")]
    max_item_bytes: Option<usize>,
    /// Connections served at once over all listeners; more are refused at once
    /// [default: 16384].
    #[arg(long, value_name = "N")]
    max_connections: Option<usize>,
    /// Connections served at once on any one listener [default: 10240].
    #[arg(long, value_name = "N")]
    max_connections_per_listener: Option<usize>,
    /// Seconds after which a silent stream connection (MessagePack-RPC, WebSocket,
    /// zerorpc) with nothing in flight is closed [default: 300].
    #[arg(long, value_name = "SECS")]
    idle_timeout: Option<f64>,
    /// Longest a call may run, in seconds; 0 for no limit [default: 0].
    #[arg(long, value_name = "SECS")]
    call_timeout: Option<f64>,
    /// Calls one connection may have running at once [default: 256].
    #[arg(long, value_name = "N")]
    max_in_flight: Option<usize>,
    /// Bytes of answers one connection may have waiting to be written before
    /// the master stops reading its requests [default: 1048576].
    #[arg(long, value_name = "BYTES")]
    max_queued_bytes: Option<usize>,
    /// Address to serve HTTPS on (XML-RPC, JSON-RPC, and WebSocket as wss://;
    /// repeat for several); needs --tls-cert and --tls-key.
    #[arg(long, value_name = "ADDR")]
    https: Vec<String>,
    /// Address to serve MessagePack-RPC over TLS on (msgpack+tls://; repeat
    /// for several); needs --tls-cert and --tls-key.
    #[arg(long, value_name = "ADDR")]
    msgpack_tls: Vec<String>,
    /// The TLS certificate chain (PEM, the leaf first); read again on SIGHUP.
    #[arg(long, value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// The TLS certificate's private key (PEM); read again on SIGHUP.
    #[arg(long, value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// Require TLS clients to present a certificate signed by this CA (PEM):
    /// mutual TLS.
    #[arg(long, value_name = "FILE")]
    tls_client_ca: Option<PathBuf>,
    /// A token file (TOML, see `rpcs token new`): every caller must then
    /// present a token, and gets only what its access level and namespace allow.
    #[arg(long, value_name = "FILE")]
    auth: Option<PathBuf>,
    /// Seconds a stream connection (MessagePack-RPC, WebSocket) may take to
    /// authenticate before it is closed [default: 3].
    #[arg(long, value_name = "SECS")]
    auth_timeout: Option<f64>,
    /// Listen beyond loopback with no --auth: anyone who reaches a port can
    /// then do anything. Without it the master refuses to start that way.
    #[arg(long)]
    insecure_no_auth: bool,
    /// Serve one MessagePack-RPC session on standard input and output, then exit
    /// (for inetd, systemd socket activation or a parent process); no listeners.
    #[arg(long, conflicts_with = "once")]
    stdio: bool,
    /// Serve one connection on the first listener, then exit.
    #[arg(long)]
    once: bool,
    #[command(flatten)]
    register: RegisterArgs,
}

/// The config file's keys.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<Vec<String>>,
    msgpack: Option<Vec<String>>,
    msgpack_unix: Option<Vec<PathBuf>>,
    zerorpc: Option<Vec<String>>,
    zerorpc_connect: Option<Vec<String>>,
    data_dir: Option<PathBuf>,
    backend: Option<BackendKind>,
    durability: Option<DurabilityKind>,
    redis: Option<String>,
    redis_namespace: Option<String>,
    redis_cluster: Option<bool>,
    session_timeout: Option<f64>,
    max_item_bytes: Option<usize>,
    max_connections: Option<usize>,
    max_connections_per_listener: Option<usize>,
    idle_timeout: Option<f64>,
    call_timeout: Option<f64>,
    max_in_flight: Option<usize>,
    max_queued_bytes: Option<usize>,
    register: Option<Vec<String>>,
    registry: Option<String>,
    register_ttl: Option<f64>,
    registry_secret_file: Option<PathBuf>,
    auth: Option<PathBuf>,
    auth_timeout: Option<f64>,
    insecure_no_auth: Option<bool>,
    https: Option<Vec<String>>,
    msgpack_tls: Option<Vec<String>>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_client_ca: Option<PathBuf>,
}

/// The settings in force after merging flags over the file over defaults.
#[derive(Debug)]
pub struct Settings {
    pub stdio: bool,
    pub once: bool,
    pub listen: Vec<String>,
    pub msgpack: Vec<String>,
    pub msgpack_unix: Vec<PathBuf>,
    pub zerorpc: Vec<String>,
    pub zerorpc_connect: Vec<String>,
    pub backend: BackendConfig,
    pub config: MasterConfig,
    pub server: ServerConfig,
    pub register: RegisterArgs,
    /// Whether listening beyond loopback without tokens was asked for.
    pub insecure_no_auth: bool,
    pub https: Vec<String>,
    pub msgpack_tls: Vec<String>,
    /// The certificate of the TLS listeners, when there are any.
    pub tls: Option<Arc<Tls>>,
}

impl MasterArgs {
    pub fn settings(self) -> anyhow::Result<Settings> {
        let file = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                toml::from_str::<FileConfig>(&text)
                    .with_context(|| format!("parsing {}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let listen = if self.listen.is_empty() {
            file.listen.unwrap_or_else(|| vec!["127.0.0.1:8000".into()])
        } else {
            self.listen
        };
        let msgpack = flag_or_file(self.msgpack, file.msgpack);
        let msgpack_unix = flag_or_file(self.msgpack_unix, file.msgpack_unix);
        let zerorpc = flag_or_file(self.zerorpc, file.zerorpc);
        let zerorpc_connect = flag_or_file(self.zerorpc_connect, file.zerorpc_connect);
        let data_dir = self
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("rpcs-data"));
        let durability = match self.durability.or(file.durability) {
            Some(DurabilityKind::Relaxed) => Durability::Relaxed,
            _ => Durability::Strict,
        };
        let backend = match self
            .backend
            .or(file.backend)
            .unwrap_or(BackendKind::Embedded)
        {
            BackendKind::Memory => BackendConfig::Memory,
            BackendKind::Redis => BackendConfig::Redis(RedisConfig {
                url: (self.redis.or(file.redis)).unwrap_or_else(|| "redis://127.0.0.1:6379".into()),
                namespace: (self.redis_namespace.or(file.redis_namespace))
                    .unwrap_or_else(|| "rpcs".into()),
                cluster: self.redis_cluster || file.redis_cluster.unwrap_or(false),
                clock: None,
            }),
            BackendKind::Embedded => BackendConfig::Embedded {
                dir: data_dir,
                durability,
            },
        };
        let timeout = self
            .session_timeout
            .or(file.session_timeout)
            .unwrap_or(600.0);
        let session_timeout = Duration::try_from_secs_f64(timeout)
            .ok()
            .filter(|d| !d.is_zero())
            .context("session_timeout must be a positive number of seconds")?;
        let mut limits = Limits::default();
        if let Some(n) = self.max_item_bytes.or(file.max_item_bytes) {
            limits.max_item_bytes = n;
        }
        let item_bytes = limits.max_item_bytes;
        let defaults = ServerConfig::default();
        let register = RegisterArgs {
            register: flag_or_file(self.register.register, file.register),
            registry: self.register.registry.or(file.registry),
            register_ttl: self.register.register_ttl.or(file.register_ttl),
            registry_secret_file: self
                .register
                .registry_secret_file
                .or(file.registry_secret_file),
        };
        let auth = match self.auth.or(file.auth) {
            Some(path) => Some(std::sync::Arc::new(
                rpcs_net::Authenticator::load(&path)
                    .with_context(|| format!("loading the token file {}", path.display()))?,
            )),
            None => None,
        };
        let auth_timeout = match self.auth_timeout.or(file.auth_timeout) {
            Some(secs) => seconds("auth_timeout", secs)?,
            None => defaults.auth_timeout,
        };
        let https = flag_or_file(self.https, file.https);
        let msgpack_tls = flag_or_file(self.msgpack_tls, file.msgpack_tls);
        let tls = match (
            self.tls_cert.or(file.tls_cert),
            self.tls_key.or(file.tls_key),
        ) {
            (Some(cert), Some(key)) => {
                let client_ca = self.tls_client_ca.or(file.tls_client_ca);
                let files = TlsFiles {
                    cert,
                    key,
                    client_ca,
                };
                Some(Tls::load(files).context("loading the TLS certificate")?)
            }
            (None, None) => None,
            _ => anyhow::bail!("--tls-cert and --tls-key go together"),
        };
        anyhow::ensure!(
            tls.is_some() || (https.is_empty() && msgpack_tls.is_empty()),
            "--https and --msgpack-tls need --tls-cert and --tls-key"
        );
        Ok(Settings {
            register,
            https,
            msgpack_tls,
            tls,
            insecure_no_auth: self.insecure_no_auth || file.insecure_no_auth.unwrap_or(false),
            stdio: self.stdio,
            once: self.once,
            listen,
            msgpack,
            msgpack_unix,
            zerorpc,
            zerorpc_connect,
            backend,
            config: MasterConfig {
                session_timeout,
                limits,
                ..MasterConfig::default()
            },
            server: ServerConfig {
                max_connections: self
                    .max_connections
                    .or(file.max_connections)
                    .unwrap_or(defaults.max_connections),
                max_connections_per_listener: self
                    .max_connections_per_listener
                    .or(file.max_connections_per_listener)
                    .unwrap_or(defaults.max_connections_per_listener),
                idle_timeout: match self.idle_timeout.or(file.idle_timeout) {
                    Some(secs) => seconds("idle_timeout", secs)?,
                    None => defaults.idle_timeout,
                },
                call_timeout: match self.call_timeout.or(file.call_timeout) {
                    Some(0.0) => None,
                    Some(secs) => Some(seconds("call_timeout", secs)?),
                    None => None,
                },
                max_in_flight: self
                    .max_in_flight
                    .or(file.max_in_flight)
                    .unwrap_or(defaults.max_in_flight),
                max_queued_bytes: self
                    .max_queued_bytes
                    .or(file.max_queued_bytes)
                    .unwrap_or(defaults.max_queued_bytes),
                // A request carries at most a batch of items, each within the
                // item limit.
                max_request_bytes: (item_bytes * 4).max(defaults.max_request_bytes),
                max_decompressed_bytes: (item_bytes * 4).max(defaults.max_decompressed_bytes),
                auth,
                auth_timeout,
                ..defaults
            },
        })
    }
}

/// A positive number of seconds.
fn seconds(key: &str, secs: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| !d.is_zero())
        .with_context(|| format!("{key} must be a positive number of seconds"))
}

/// Raises the open-file limit for the connections to serve, and lowers the
/// connection caps (with a warning) when the system allows fewer.
fn fit_open_files(mut config: ServerConfig) -> ServerConfig {
    // Descriptors for the journal, listeners and logs besides the connections.
    const RESERVED: usize = 64;
    let Some(limit) = crate::fdlimit::raise_open_files_limit() else {
        return config;
    };
    let room = usize::try_from(limit)
        .unwrap_or(usize::MAX)
        .saturating_sub(RESERVED);
    if config.max_connections > room {
        warn!(
            open_files = limit,
            requested = config.max_connections,
            serving = room,
            "the open-file limit allows fewer connections than asked; raise it with ulimit -n"
        );
        config.max_connections = room.max(1);
        config.max_connections_per_listener = config.max_connections_per_listener.min(room.max(1));
    }
    config
}

/// A list flag wins over the config file's list when given.
fn flag_or_file<T>(flag: Vec<T>, file: Option<Vec<T>>) -> Vec<T> {
    if flag.is_empty() {
        file.unwrap_or_default()
    } else {
        flag
    }
}

/// Reads the TLS certificate and key again on each SIGHUP (as after a
/// renewal); a failed reload is logged and the old certificate stays.
fn reload_on_hangup(tls: Arc<Tls>) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            match tls.reload() {
                Ok(()) => info!(cert = %tls.files().cert.display(), "TLS certificate reloaded"),
                Err(e) => warn!(error = %e, "TLS reload failed; still serving the old certificate"),
            }
        }
    });
    Ok(())
}

/// Protected mode: without tokens, the master serves only what cannot be
/// reached from another host, unless told `--insecure-no-auth`.
fn check_exposure(settings: &Settings) -> anyhow::Result<()> {
    if settings.server.auth.is_some() || settings.insecure_no_auth || settings.stdio {
        return Ok(());
    }
    let tcp = (settings.listen.iter())
        .chain(&settings.msgpack)
        .chain(&settings.https)
        .chain(&settings.msgpack_tls)
        .cloned();
    let zmq = (settings.zerorpc.iter().chain(&settings.zerorpc_connect))
        .filter_map(|ep| ep.strip_prefix("tcp://").map(str::to_owned));
    for addr in tcp.chain(zmq) {
        if !is_loopback(&addr) {
            anyhow::bail!(
                "refusing to serve {addr} without authentication: anyone who can reach it could \
                 read and change everything. Give --auth FILE (make tokens with `rpcs token new`), \
                 listen on 127.0.0.1, or pass --insecure-no-auth if this network is trusted"
            );
        }
    }
    Ok(())
}

/// Whether every address `addr` (HOST:PORT) names is a loopback one. `*` (a
/// ZeroMQ wildcard) and names that do not resolve count as not loopback.
fn is_loopback(addr: &str) -> bool {
    use std::net::ToSocketAddrs;
    if addr.starts_with('*') {
        return false;
    }
    match addr.to_socket_addrs() {
        Ok(resolved) => {
            let resolved: Vec<_> = resolved.collect();
            !resolved.is_empty() && resolved.iter().all(|a| a.ip().is_loopback())
        }
        Err(_) => false,
    }
}

pub async fn master(args: MasterArgs) -> anyhow::Result<()> {
    let settings = args.settings()?;
    check_exposure(&settings)?;
    let shutdown = rpcs_net::server::shutdown_signal().context("installing signal handlers")?;
    let backend = (settings.backend.open(&settings.config.timing).await)
        .with_context(|| format!("opening the {:?} backend", settings.backend))?;
    crate::alloc::stop_huge_pages();
    let master = Master::new(backend.clone(), settings.config.clone());
    let server_config = fit_open_files(settings.server);
    let metrics = Arc::new(MasterSource(master.metrics()));
    let server =
        Server::new(Dispatcher::new(master.table()), server_config).with_metrics_source(metrics);
    let maintenance = master.spawn_maintenance();
    if settings.stdio {
        info!(backend = ?settings.backend, "master serving one session on stdin/stdout");
        server.serve_stdio(shutdown).await?;
        maintenance.abort();
        backend.shutdown().await.context("stopping the backend")?;
        return Ok(());
    }
    let mut listeners = Vec::new();
    for addr in &settings.listen {
        let l = Listener::http(addr).await;
        listeners.push(l.with_context(|| format!("listening on {addr}"))?);
    }
    for addr in &settings.msgpack {
        let l = Listener::msgpack_tcp(addr).await;
        listeners.push(l.with_context(|| format!("listening on {addr}"))?);
    }
    if let Some(tls) = &settings.tls {
        for addr in &settings.https {
            let l = Listener::https(addr, tls.clone()).await;
            listeners.push(l.with_context(|| format!("listening on {addr}"))?);
        }
        for addr in &settings.msgpack_tls {
            let l = Listener::msgpack_tls(addr, tls.clone()).await;
            listeners.push(l.with_context(|| format!("listening on {addr}"))?);
        }
        reload_on_hangup(tls.clone())?;
    }
    for path in &settings.msgpack_unix {
        let l = Listener::msgpack_unix(path).await;
        listeners.push(l.with_context(|| format!("listening on {}", path.display()))?);
    }
    if !settings.zerorpc.is_empty() || !settings.zerorpc_connect.is_empty() {
        let l = Listener::zerorpc(&settings.zerorpc, &settings.zerorpc_connect).await;
        listeners.push(l.context("zerorpc endpoints")?);
    }
    let mut urls = Vec::new();
    for l in &listeners {
        // Scripts and tests read these lines to learn the ports.
        urls.push(l.url()?);
        println!("listening on {}", l.url()?);
    }
    let tokens = server.config().auth.is_some();
    info!(backend = ?settings.backend, session_timeout = ?settings.config.session_timeout, auth = tokens, "master running");
    let registrar = settings.register.start(urls)?;
    // Leave the registries first, so clients stop choosing this master
    // while it drains.
    let shutdown = async move {
        shutdown.await;
        register::stop(registrar).await;
    };
    if settings.once {
        server.serve_one(listeners.remove(0), shutdown).await?;
    } else {
        server.run(listeners, shutdown).await?;
    }
    maintenance.abort();
    backend.shutdown().await.context("stopping the backend")?;
    info!("master stopped");
    Ok(())
}

/// The master's metrics, on the server's `GET /metrics`.
struct MasterSource(MasterMetrics);

impl MetricsSource for MasterSource {
    fn render(&self) -> rpcs_core::BoxFuture<String> {
        let metrics = self.0.clone();
        Box::pin(async move { metrics.render().await })
    }
}
