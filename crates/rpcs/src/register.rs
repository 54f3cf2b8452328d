//! `--register NAME`: keeping a server registered with registries while it runs.

use anyhow::Context as _;
use clap::Args;
use rpcs_core::registration::{Registration, Secret};
use rpcs_net::{Registrar, Registries};
use std::path::{Path, PathBuf};

/// Flags of every server that can register itself.
#[derive(Args, Debug, Default, Clone)]
pub struct RegisterArgs {
    /// Register this server under NAME with the registries while it runs
    /// (repeat for several names); every URL it listens on is registered.
    #[arg(long, value_name = "NAME")]
    pub register: Vec<String>,
    /// The registries to register with: HOST[:PORT] (UDP, port 18811 by
    /// default; a broadcast address reaches every registry on the LAN) or
    /// registry URLs, separated by commas [default: $RPCS_REGISTRY, else
    /// 127.0.0.1:18811,255.255.255.255:18811].
    #[arg(long, value_name = "LIST")]
    pub registry: Option<String>,
    /// Seconds a registration lives unless renewed; it is renewed at a third
    /// of that [default: 30].
    #[arg(long, value_name = "SECS")]
    pub register_ttl: Option<f64>,
    /// A file holding the secret shared with the registries; every
    /// registration is then signed with it [default: $RPCS_REGISTRY_SECRET,
    /// else unsigned].
    #[arg(long, value_name = "FILE")]
    pub registry_secret_file: Option<PathBuf>,
}

/// The environment variable holding a registry secret when no file is given.
pub const SECRET_ENV: &str = "RPCS_REGISTRY_SECRET";

/// The shared secret from `file` (its first line), or from [`SECRET_ENV`].
pub fn read_secret(file: Option<&Path>) -> anyhow::Result<Option<Secret>> {
    let text = match file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading the secret from {}", path.display()))?,
        None => match std::env::var(SECRET_ENV) {
            Ok(s) => s,
            Err(_) => return Ok(None),
        },
    };
    let secret = text.lines().next().unwrap_or_default().trim();
    anyhow::ensure!(!secret.is_empty(), "the registry secret is empty");
    Ok(Some(Secret::new(secret.as_bytes())))
}

impl RegisterArgs {
    /// Starts registering `urls`, if a name was given.
    pub fn start(&self, urls: Vec<String>) -> anyhow::Result<Option<Registrar>> {
        if self.register.is_empty() {
            return Ok(None);
        }
        let registries = Registries::given_or_env(self.registry.as_deref())?;
        let mut registration = Registration::new(self.register.clone(), urls);
        if let Some(secs) = self.register_ttl {
            anyhow::ensure!(
                secs.is_finite() && secs >= 1.0,
                "--register-ttl must be at least 1 second"
            );
            registration.ttl_secs = secs;
        }
        let secret = read_secret(self.registry_secret_file.as_deref())?;
        Ok(Some(Registrar::start(registries, registration, secret)))
    }
}

/// Unregisters, if registered.
pub async fn stop(registrar: Option<Registrar>) {
    if let Some(r) = registrar {
        r.stop().await;
    }
}
