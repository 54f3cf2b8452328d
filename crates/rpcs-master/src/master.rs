//! The master: the services over one store, with their maintenance.

use crate::clock::Timing;
use crate::services::{provider, stack, storage};
use crate::services::{provider::Provider, stack::Stacks, storage::Storages, Limits};
use crate::store::{Durability, EmbeddedStore, MemoryStore, Store, StoreError};
use rpcs_core::MethodTable;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tracing::warn;

/// Where the master keeps its state.
#[derive(Debug, Clone)]
pub enum Backend {
    /// In memory only: lost when the master stops.
    Memory,
    /// A crash-safe database file under a directory.
    Embedded {
        /// The data directory.
        dir: PathBuf,
        /// What an acknowledged write survives.
        durability: Durability,
    },
}

impl Backend {
    /// Opens the store.
    pub fn open(&self) -> Result<Arc<dyn Store>, StoreError> {
        Ok(match self {
            Backend::Memory => Arc::new(MemoryStore::new()),
            Backend::Embedded { dir, durability } => {
                Arc::new(EmbeddedStore::open(dir, *durability)?)
            }
        })
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

/// The stack, storage and provider services over one store.
#[derive(Clone)]
pub struct Master {
    store: Arc<dyn Store>,
    stacks: Arc<Stacks>,
    storages: Arc<Storages>,
    provider: Arc<Provider>,
    config: MasterConfig,
}

impl Master {
    /// The services over `store`.
    pub fn new(store: Arc<dyn Store>, config: MasterConfig) -> Master {
        let timing = config.timing.clone();
        let stacks = Arc::new(Stacks::new(
            store.clone(),
            config.limits.clone(),
            timing.clone(),
        ));
        let storages = Arc::new(Storages::new(store.clone(), config.limits.clone()));
        let provider = Arc::new(Provider::new(
            store.clone(),
            config.limits.clone(),
            config.session_timeout,
            timing,
            stacks.clone(),
        ));
        Master {
            store,
            stacks,
            storages,
            provider,
            config,
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The stack service.
    pub fn stacks(&self) -> &Arc<Stacks> {
        &self.stacks
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
        let dotted: Vec<String> = t.method_names().map(str::to_owned).collect();
        for name in dotted {
            t.alias(&name.replacen('.', "_", 1), &name);
        }
        t.register(
            "ping",
            "Check that the master answers: returns true.",
            || true,
        );
        t
    }

    /// Starts the background work: expired leases go back every second, and
    /// idle sessions are ended every tenth of the session timeout (at most 30 s).
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
