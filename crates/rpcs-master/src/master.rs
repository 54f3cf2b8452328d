//! The master: the services over one backend, with their maintenance.

use crate::backend::Backend;
use crate::clock::Timing;
use crate::journal::dir::DiskDir;
use crate::journal::Durability;
use crate::local::LocalBackend;
use crate::remote::{RedisBackend, RedisConfig};
use crate::services::{provider, stack, storage};
use crate::services::{provider::Provider, stack::Stacks, storage::Storages, Limits};
use rpcs_core::MethodTable;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tracing::warn;

/// Where the master keeps its state.
#[derive(Debug, Clone)]
pub enum BackendConfig {
    /// In memory only: lost when the master stops.
    Memory,
    /// In memory, every change journaled to files under a directory (with
    /// snapshots), recovered at start.
    Embedded {
        /// The data directory.
        dir: PathBuf,
        /// What an acknowledged write survives.
        durability: Durability,
    },
    /// In a Redis server (or cluster) that several masters may share.
    Redis(RedisConfig),
}

/// Why a backend did not open.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The embedded backend's directory.
    #[error(transparent)]
    Files(#[from] io::Error),
    /// The Redis backend's server.
    #[error(transparent)]
    Redis(#[from] crate::remote::RedisError),
}

impl BackendConfig {
    /// Opens the backend; the local ones read the time from `timing`'s clock
    /// (Redis uses its own).
    pub async fn open(&self, timing: &Timing) -> Result<Arc<dyn Backend>, OpenError> {
        let local = match self {
            BackendConfig::Memory => LocalBackend::memory(),
            BackendConfig::Embedded { dir, durability } => {
                LocalBackend::open(Arc::new(DiskDir::open(dir)?), *durability)?
            }
            BackendConfig::Redis(config) => {
                return Ok(Arc::new(RedisBackend::connect(config).await?))
            }
        };
        Ok(Arc::new(local.with_clock(timing.clock.clone())))
    }
}

/// Settings of the services.
#[derive(Debug, Clone)]
pub struct MasterConfig {
    /// Sessions idle longer than this are ended by `provider.cleanUp`.
    pub session_timeout: Duration,
    /// Bounds on names, items and waits.
    pub limits: Limits,
    /// The clock, and how often waits look again.
    pub timing: Timing,
}

impl Default for MasterConfig {
    fn default() -> Self {
        MasterConfig {
            session_timeout: Duration::from_secs(600),
            limits: Limits::default(),
            timing: Timing::default(),
        }
    }
}

/// The stack, storage and provider services over one backend.
#[derive(Clone)]
pub struct Master {
    backend: Arc<dyn Backend>,
    stacks: Arc<Stacks>,
    storages: Arc<Storages>,
    provider: Arc<Provider>,
    config: MasterConfig,
}

impl Master {
    /// The services over `backend`.
    pub fn new(backend: Arc<dyn Backend>, config: MasterConfig) -> Master {
        let timing = config.timing.clone();
        let stacks = Arc::new(Stacks::new(
            backend.clone(),
            config.limits.clone(),
            timing.clone(),
        ));
        let storages = Arc::new(Storages::new(backend.clone(), config.limits.clone()));
        let provider = Arc::new(Provider::new(
            backend.clone(),
            config.limits.clone(),
            config.session_timeout,
            timing,
        ));
        Master {
            backend,
            stacks,
            storages,
            provider,
            config,
        }
    }

    /// The backend.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// The stack service.
    pub fn stacks(&self) -> &Arc<Stacks> {
        &self.stacks
    }

    /// The master's metrics for `GET /metrics`: the backend's state and the
    /// stacks' traffic.
    pub fn metrics(&self) -> crate::metrics::MasterMetrics {
        crate::metrics::MasterMetrics::new(self.backend.clone())
            .with_traffic(self.stacks.traffic().clone())
    }

    /// The provider service.
    pub fn provider(&self) -> &Arc<Provider> {
        &self.provider
    }

    /// Every method of every service: dotted names (`stack.push`), the original
    /// rpcServices underscore names (`stack_push`), and `ping`.
    pub fn table(&self) -> MethodTable {
        let mut t = MethodTable::new();
        stack::register(&mut t, &self.stacks);
        storage::register(&mut t, &self.storages);
        provider::register(&mut t, &self.provider);
        // A token confined to a prefix passes only names under it, sees only
        // them in listings, and cannot end every idle session.
        t.namespace_params(&["name", "recipient", "client"]);
        let listings = [
            "stack.getAllNames",
            "storage.getAllNames",
            "provider.getAllClientNames",
            "provider.getAllClients",
        ];
        let marked = t.namespace_listings(&listings) && t.whole_server(&["provider.cleanUp"]);
        debug_assert!(marked, "a method marked for namespaces is not registered");
        let dotted: Vec<String> = t.method_names().map(str::to_owned).collect();
        for name in dotted {
            t.alias(&name.replacen('.', "_", 1), &name);
        }
        t.register(
            "ping",
            "Check that the master answers: returns true.",
            || true,
        )
        .access(rpcs_core::Access::Read);
        t
    }

    /// Starts the background work: expired leases go back and the backend
    /// keeps itself up (compaction) every second, and idle sessions are ended
    /// every tenth of the session timeout (at most 30 s).
    pub fn spawn_maintenance(&self) -> JoinHandle<()> {
        let master = self.clone();
        tokio::spawn(async move {
            let cleanup_every = (master.config.session_timeout / 10)
                .clamp(Duration::from_secs(1), Duration::from_secs(30));
            let mut ticks = tokio::time::interval(Duration::from_secs(1));
            let mut last_cleanup = tokio::time::Instant::now();
            loop {
                ticks.tick().await;
                if let Err(e) = master.stacks.expire_leases().await {
                    warn!(error = %e, "lease expiry failed");
                }
                if let Err(e) = master.backend.clone().maintain().await {
                    warn!(error = %e, "backend upkeep failed");
                }
                if last_cleanup.elapsed() >= cleanup_every {
                    last_cleanup = tokio::time::Instant::now();
                    if let Err(e) = master.provider.clean_up().await {
                        warn!(error = %e, "session clean-up failed");
                    }
                }
            }
        })
    }
}
