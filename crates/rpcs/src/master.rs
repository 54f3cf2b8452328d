//! `rpcs master`: run the master (stacks, storages, provider).

use crate::serving::{fit_open_files, read_config, ServerArgs, ServerFile, ServerSettings};
use anyhow::Context as _;
use clap::{Args, ValueEnum};
use rpcs_core::Dispatcher;
use rpcs_master::metrics::MasterMetrics;
use rpcs_master::remote::RedisConfig;
use rpcs_master::{BackendConfig, Durability, Limits, Master, MasterConfig};
use rpcs_net::{MetricsSource, Server};
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tracing::info;

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
    /// registry, register_ttl, registry_secret_file, auth, auth_timeout, allowed_origins,
    /// insecure_no_auth, https, msgpack_tls, tls_cert, tls_key, tls_client_ca.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
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
    #[command(flatten)]
    server: ServerArgs,
}

/// The config file's keys: the server's (listeners, TLS, tokens, limits) and
/// the master's own.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(flatten)]
    server: ServerFile,
    data_dir: Option<PathBuf>,
    backend: Option<BackendKind>,
    durability: Option<DurabilityKind>,
    redis: Option<String>,
    redis_namespace: Option<String>,
    redis_cluster: Option<bool>,
    session_timeout: Option<f64>,
    max_item_bytes: Option<usize>,
}

/// The settings in force after merging flags over the file over defaults.
#[derive(Debug)]
pub struct Settings {
    pub backend: BackendConfig,
    pub config: MasterConfig,
    /// Listeners, TLS, tokens and limits.
    pub server: ServerSettings,
}

impl MasterArgs {
    pub fn settings(self) -> anyhow::Result<Settings> {
        let file: FileConfig = read_config(self.config.as_deref())?;
        self.settings_from(file)
    }

    /// The settings of these flags over `file`'s keys.
    fn settings_from(self, file: FileConfig) -> anyhow::Result<Settings> {
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
        let mut server = self.server.settings(file.server, "127.0.0.1:8000")?;
        // A request carries at most a batch of items, each within the item limit.
        let config = &mut server.config;
        config.max_request_bytes = (item_bytes * 4).max(config.max_request_bytes);
        config.max_decompressed_bytes = (item_bytes * 4).max(config.max_decompressed_bytes);
        Ok(Settings {
            backend,
            config: MasterConfig {
                session_timeout,
                limits,
                ..MasterConfig::default()
            },
            server,
        })
    }
}

pub async fn master(args: MasterArgs) -> anyhow::Result<()> {
    let settings = args.settings()?;
    settings
        .server
        .check_exposure("read and change everything")?;
    let shutdown = rpcs_net::server::shutdown_signal().context("installing signal handlers")?;
    let backend = (settings.backend.open(&settings.config.timing).await)
        .with_context(|| format!("opening the {:?} backend", settings.backend))?;
    crate::alloc::stop_huge_pages();
    let master = Master::new(backend.clone(), settings.config.clone());
    let server_config = fit_open_files(settings.server.config.clone());
    let metrics = Arc::new(MasterSource(master.metrics()));
    let server =
        Server::new(Dispatcher::new(master.table()), server_config).with_metrics_source(metrics);
    let maintenance = master.spawn_maintenance();
    if let Some(protocol) = settings.server.stdio {
        info!(backend = ?settings.backend, ?protocol, "master serving one session on stdin/stdout");
        crate::serving::serve_stdio(&server, protocol, shutdown).await?;
        maintenance.abort();
        backend.shutdown().await.context("stopping the backend")?;
        return Ok(());
    }
    let listeners = settings.server.bind().await?;
    let tokens = server.config().auth.is_some();
    info!(backend = ?settings.backend, session_timeout = ?settings.config.session_timeout, auth = tokens, "master running");
    settings.server.run(server, listeners, shutdown).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_mixes_server_and_master_keys_and_refuses_others() {
        let text = "listen = [\"127.0.0.1:0\"]\nauth_timeout = 3\nidle_timeout = 1.5\n\
                    backend = \"memory\"\nsession_timeout = 30\n\
                    allowed_origins = [\"https://dash.example\"]\n";
        let file: FileConfig = toml::from_str(text).unwrap();
        assert_eq!(file.backend, Some(BackendKind::Memory));
        let settings = MasterArgs::default().settings_from(file).unwrap();
        assert_eq!(settings.server.listen, ["127.0.0.1:0"]);
        assert_eq!(settings.server.config.auth_timeout, Duration::from_secs(3));
        assert_eq!(
            settings.server.config.idle_timeout,
            Duration::from_millis(1500)
        );
        assert_eq!(settings.config.session_timeout, Duration::from_secs(30));
        assert_eq!(
            settings.server.config.allowed_origins,
            ["https://dash.example"]
        );
        let unknown = toml::from_str::<FileConfig>("listen = []\ncolour = \"blue\"\n");
        let message = unknown.unwrap_err().to_string();
        assert!(message.contains("unknown field `colour`"), "{message}");
    }
}
