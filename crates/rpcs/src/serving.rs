//! What every server command shares (`rpcs master`, `rpcs serve`): the
//! listener, TLS, authentication and limit flags with their config-file keys,
//! protected mode, and running the listeners until shutdown.

use crate::register::{self, RegisterArgs};
use anyhow::Context as _;
use clap::{Args, ValueEnum};
use rpcs_net::{Listener, Server, ServerConfig, Tls, TlsFiles};
use serde::Deserialize;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

/// The flags of a server: where it listens, TLS, tokens and limits. Each
/// overrides the same key of the command's config file.
#[derive(Args, Debug, Default)]
pub struct ServerArgs {
    /// Address to serve HTTP on: XML-RPC and JSON-RPC (repeat for several)
    /// [default: 127.0.0.1:8000 for the master, 127.0.0.1:8010 for serve].
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
    /// binds and this server is its worker (repeat for several).
    #[arg(long, value_name = "ENDPOINT")]
    zerorpc_connect: Vec<String>,
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
    /// the server stops reading its requests [default: 1048576].
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
    /// A web origin (https://dash.example.com) whose pages may open a
    /// WebSocket here besides the server's own page (repeat for several; `*`
    /// for any). Browsers send an Origin; programs do not and are never refused.
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    allowed_origins: Vec<String>,
    /// Listen beyond loopback with no --auth: anyone who reaches a port can
    /// then do anything. Without it the server refuses to start that way.
    #[arg(long)]
    insecure_no_auth: bool,
    /// Serve one session on standard input and output, then exit (for inetd,
    /// systemd socket activation or a parent process); no listeners.
    /// MessagePack-RPC, or with --stdio=jsonrpc JSON-RPC, one document per line.
    #[arg(long, conflicts_with = "once", value_enum, value_name = "PROTOCOL",
          num_args = 0..=1, require_equals = true, default_missing_value = "msgpack")]
    stdio: Option<StdioProtocol>,
    /// Serve one connection on the first listener, then exit.
    #[arg(long)]
    once: bool,
    #[command(flatten)]
    register: RegisterArgs,
}

/// What a `--stdio` session speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StdioProtocol {
    /// MessagePack-RPC (the default).
    Msgpack,
    /// JSON-RPC 2.0, one document per line each way.
    Jsonrpc,
}

/// Serves one session of `protocol` on standard input and output.
pub async fn serve_stdio(
    server: &Server,
    protocol: StdioProtocol,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    match protocol {
        StdioProtocol::Msgpack => server.serve_stdio(shutdown).await,
        StdioProtocol::Jsonrpc => server.serve_stdio_jsonrpc(shutdown).await,
    }
}

/// The config-file keys of [`ServerArgs`], flattened into each command's file
/// (whose own `deny_unknown_fields` then refuses any key neither knows).
#[derive(Debug, Default, Deserialize)]
pub struct ServerFile {
    listen: Option<Vec<String>>,
    msgpack: Option<Vec<String>>,
    msgpack_unix: Option<Vec<PathBuf>>,
    zerorpc: Option<Vec<String>>,
    zerorpc_connect: Option<Vec<String>>,
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
    allowed_origins: Option<Vec<String>>,
    insecure_no_auth: Option<bool>,
    https: Option<Vec<String>>,
    msgpack_tls: Option<Vec<String>>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_client_ca: Option<PathBuf>,
}

/// The server settings in force after merging flags over the file over defaults.
#[derive(Debug)]
pub struct ServerSettings {
    pub stdio: Option<StdioProtocol>,
    pub once: bool,
    pub listen: Vec<String>,
    pub msgpack: Vec<String>,
    pub msgpack_unix: Vec<PathBuf>,
    pub zerorpc: Vec<String>,
    pub zerorpc_connect: Vec<String>,
    pub https: Vec<String>,
    pub msgpack_tls: Vec<String>,
    /// The certificate of the TLS listeners, when there are any.
    pub tls: Option<Arc<Tls>>,
    pub register: RegisterArgs,
    /// Whether listening beyond loopback without tokens was asked for.
    pub insecure_no_auth: bool,
    /// The limits and tokens of the server.
    pub config: ServerConfig,
}

impl ServerArgs {
    /// Merges the flags over the file's keys over the defaults; `default_listen`
    /// is the HTTP address when neither names one.
    pub fn settings(
        self,
        file: ServerFile,
        default_listen: &str,
    ) -> anyhow::Result<ServerSettings> {
        let listen = if self.listen.is_empty() {
            file.listen.unwrap_or_else(|| vec![default_listen.into()])
        } else {
            self.listen
        };
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
            Some(path) => Some(Arc::new(
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
        let config = ServerConfig {
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
            auth,
            auth_timeout,
            allowed_origins: flag_or_file(self.allowed_origins, file.allowed_origins),
            ..defaults
        };
        Ok(ServerSettings {
            stdio: self.stdio,
            once: self.once,
            listen,
            msgpack: flag_or_file(self.msgpack, file.msgpack),
            msgpack_unix: flag_or_file(self.msgpack_unix, file.msgpack_unix),
            zerorpc: flag_or_file(self.zerorpc, file.zerorpc),
            zerorpc_connect: flag_or_file(self.zerorpc_connect, file.zerorpc_connect),
            https,
            msgpack_tls,
            tls,
            register,
            insecure_no_auth: self.insecure_no_auth || file.insecure_no_auth.unwrap_or(false),
            config,
        })
    }
}

/// A positive number of seconds.
pub fn seconds(key: &str, secs: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| !d.is_zero())
        .with_context(|| format!("{key} must be a positive number of seconds"))
}

/// A list flag wins over the config file's list when given.
fn flag_or_file<T>(flag: Vec<T>, file: Option<Vec<T>>) -> Vec<T> {
    if flag.is_empty() {
        file.unwrap_or_default()
    } else {
        flag
    }
}

/// Reads a command's TOML config file, or gives the default when there is none.
pub fn read_config<T: Default + serde::de::DeserializeOwned>(
    path: Option<&std::path::Path>,
) -> anyhow::Result<T> {
    let Some(path) = path else {
        return Ok(T::default());
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str::<T>(&text).with_context(|| format!("parsing {}", path.display()))
}

impl ServerSettings {
    /// Protected mode: without tokens, serve only what cannot be reached from
    /// another host, unless told `--insecure-no-auth`. `exposes` says what
    /// anyone could then do (for the refusal's message).
    pub fn check_exposure(&self, exposes: &str) -> anyhow::Result<()> {
        if self.config.auth.is_some() || self.insecure_no_auth || self.stdio.is_some() {
            return Ok(());
        }
        let tcp = (self.listen.iter())
            .chain(&self.msgpack)
            .chain(&self.https)
            .chain(&self.msgpack_tls)
            .cloned();
        let zmq = (self.zerorpc.iter().chain(&self.zerorpc_connect))
            .filter_map(|ep| ep.strip_prefix("tcp://").map(str::to_owned));
        for addr in tcp.chain(zmq) {
            if !is_loopback(&addr) {
                anyhow::bail!(
                    "refusing to serve {addr} without authentication: anyone who can reach it \
                     could {exposes}. Give --auth FILE (make tokens with `rpcs token new`), \
                     listen on 127.0.0.1, or pass --insecure-no-auth if this network is trusted"
                );
            }
        }
        Ok(())
    }

    /// Opens every listener and prints one `listening on URL` line for each
    /// (scripts and tests read them to learn the ports).
    pub async fn bind(&self) -> anyhow::Result<Vec<Listener>> {
        let mut listeners = Vec::new();
        for addr in &self.listen {
            let l = Listener::http(addr).await;
            listeners.push(l.with_context(|| format!("listening on {addr}"))?);
        }
        for addr in &self.msgpack {
            let l = Listener::msgpack_tcp(addr).await;
            listeners.push(l.with_context(|| format!("listening on {addr}"))?);
        }
        if let Some(tls) = &self.tls {
            for addr in &self.https {
                let l = Listener::https(addr, tls.clone()).await;
                listeners.push(l.with_context(|| format!("listening on {addr}"))?);
            }
            for addr in &self.msgpack_tls {
                let l = Listener::msgpack_tls(addr, tls.clone()).await;
                listeners.push(l.with_context(|| format!("listening on {addr}"))?);
            }
            reload_on_hangup(tls.clone())?;
        }
        for path in &self.msgpack_unix {
            let l = Listener::msgpack_unix(path).await;
            listeners.push(l.with_context(|| format!("listening on {}", path.display()))?);
        }
        if !self.zerorpc.is_empty() || !self.zerorpc_connect.is_empty() {
            let l = Listener::zerorpc(&self.zerorpc, &self.zerorpc_connect).await;
            listeners.push(l.context("zerorpc endpoints")?);
        }
        for l in &listeners {
            println!("listening on {}", l.url()?);
        }
        Ok(listeners)
    }

    /// Serves `listeners` until `shutdown` (or, with `--once`, one connection),
    /// registered with the registries meanwhile when asked.
    pub async fn run(
        &self,
        server: Server,
        mut listeners: Vec<Listener>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let urls = listeners
            .iter()
            .map(Listener::url)
            .collect::<Result<_, _>>()?;
        let registrar = self.register.start(urls)?;
        // Leave the registries first, so clients stop choosing this server
        // while it drains.
        let shutdown = async move {
            shutdown.await;
            register::stop(registrar).await;
        };
        if self.once {
            server.serve_one(listeners.remove(0), shutdown).await?;
        } else {
            server.run(listeners, shutdown).await?;
        }
        Ok(())
    }
}

/// Raises the open-file limit for the connections to serve, and lowers the
/// connection caps (with a warning) when the system allows fewer.
pub fn fit_open_files(mut config: ServerConfig) -> ServerConfig {
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
