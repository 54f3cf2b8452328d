//! Discovery: finding the instances of a service by name in one or more
//! registries ([`lookup`], [`services`]), and keeping a server registered
//! ([`Registrar`]).
//!
//! A registry is given as `HOST[:PORT]` (MessagePack-RPC over UDP, RPyC's port
//! 18811 when none is given; a broadcast address such as `255.255.255.255`
//! asks every registry on the LAN) or as the URL of a registry's RPC listener
//! (`msgpack://HOST:PORT`, `http://HOST:PORT/`, ...). Several, separated by
//! commas, are all asked and their answers merged, so no one registry is a
//! single point of failure. Without any, the list comes from the
//! `RPCS_REGISTRY` environment variable, and failing that it is this host's
//! registry and a LAN broadcast: `127.0.0.1:18811,255.255.255.255:18811`.

mod datagram;
mod registrar;

pub use registrar::Registrar;

use crate::client::{Client, ClientConfig, ClientError};
use rpcs_core::rpyc_registry::DEFAULT_PORT;
use rpcs_core::{Fault, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::task::JoinSet;
use tracing::debug;

/// The environment variable naming the registries when none are given.
pub const REGISTRY_ENV: &str = "RPCS_REGISTRY";

/// The registries asked when none are given and [`REGISTRY_ENV`] is unset.
pub const DEFAULT_REGISTRIES: &str = "127.0.0.1:18811,255.255.255.255:18811";

/// How long a lookup waits for registries, by default (RPyC's client waits 2 s).
pub const DEFAULT_LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

/// One registry address.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Registry {
    /// MessagePack-RPC datagrams to `HOST:PORT`.
    Udp {
        /// `HOST:PORT`, resolved at each use.
        addr: String,
        /// The broadcast address: every registry that hears it answers.
        broadcast: bool,
    },
    /// An RPC URL, called with a [`Client`].
    Rpc(String),
}

/// The registries a lookup or a registration talks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registries(Vec<Registry>);

impl Registries {
    /// Reads a comma-separated list of `HOST[:PORT]` and registry URLs.
    pub fn parse(spec: &str) -> Result<Registries, ClientError> {
        let bad = |reason: &str| ClientError::Url {
            url: spec.to_owned(),
            reason: reason.to_owned(),
        };
        let mut list = Vec::new();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if item.starts_with('@') || item.starts_with("rpcs://") {
                return Err(bad("a registry is found by its address, not by name"));
            }
            if item.contains("://") {
                list.push(Registry::Rpc(item.to_owned()));
                continue;
            }
            let addr = with_port(item);
            let host = addr.rsplit_once(':').map_or("", |(h, _)| h);
            if host.is_empty() {
                return Err(bad("a registry is HOST[:PORT] or a URL"));
            }
            let broadcast = host == "255.255.255.255" || host.ends_with(".255");
            list.push(Registry::Udp { addr, broadcast });
        }
        if list.is_empty() {
            return Err(bad("no registry given"));
        }
        Ok(Registries(list))
    }

    /// The registries named by [`REGISTRY_ENV`], or [`DEFAULT_REGISTRIES`].
    pub fn from_env() -> Registries {
        std::env::var(REGISTRY_ENV)
            .ok()
            .and_then(|spec| Registries::parse(&spec).ok())
            .unwrap_or_else(|| Registries::parse(DEFAULT_REGISTRIES).expect("the default parses"))
    }

    /// `spec` if given, else [`Registries::from_env`].
    pub fn given_or_env(spec: Option<&str>) -> Result<Registries, ClientError> {
        match spec {
            Some(s) => Registries::parse(s),
            None => Ok(Registries::from_env()),
        }
    }
}

impl std::fmt::Display for Registries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let items: Vec<&str> = self
            .0
            .iter()
            .map(|r| match r {
                Registry::Udp { addr, .. } => addr.as_str(),
                Registry::Rpc(url) => url.as_str(),
            })
            .collect();
        f.write_str(&items.join(","))
    }
}

/// `HOST:PORT`, adding RPyC's port to a bare host (`[::1]` included).
fn with_port(item: &str) -> String {
    let has_port = match item.rsplit_once(':') {
        Some((host, port)) => {
            port.parse::<u16>().is_ok() && (!host.contains(':') || host.ends_with(']'))
        }
        None => false,
    };
    if has_port {
        item.to_owned()
    } else {
        format!("{item}:{DEFAULT_PORT}")
    }
}

/// One instance of a service, as a registry describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    /// Unique among the registry's instances.
    pub id: String,
    /// The names it serves (upper-cased).
    pub names: Vec<String>,
    /// The address it registered from.
    pub host: String,
    /// RPyC's port, for instances RPyC registered.
    pub port: Option<u16>,
    /// Every URL it listens on.
    pub urls: Vec<String>,
    /// What it says about itself.
    pub metadata: rpcs_core::Map,
    /// Its own word on its health (`serving`, `draining`).
    pub health: String,
    /// `rpcs` or `rpyc`.
    pub source: String,
    /// Seconds since it last renewed its registration.
    pub age_secs: f64,
}

impl Instance {
    /// Reads one entry of `registry.lookup`'s answer.
    pub fn from_value(v: &Value) -> Option<Instance> {
        let m = v.as_struct()?;
        let text = |k: &str| {
            m.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let strings = |k: &str| -> Vec<String> {
            m.get(k)
                .and_then(Value::as_array)
                .unwrap_or_default()
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        };
        Some(Instance {
            id: m.get("id")?.as_str()?.to_owned(),
            names: strings("names"),
            host: text("host"),
            port: m
                .get("port")
                .and_then(Value::as_i64)
                .and_then(|p| u16::try_from(p).ok()),
            urls: strings("urls"),
            metadata: m
                .get("metadata")
                .and_then(Value::as_struct)
                .cloned()
                .unwrap_or_default(),
            health: text("health"),
            source: text("source"),
            age_secs: m.get("age").and_then(Value::as_f64).unwrap_or(0.0),
        })
    }
}

/// Calls `method` on every registry; the answers of those that answered.
async fn ask_all(
    registries: &Registries,
    method: &'static str,
    params: Vec<Value>,
    timeout: Duration,
    enough: impl Fn(&[Result<Value, Fault>]) -> bool,
) -> Result<Vec<Result<Value, Fault>>, ClientError> {
    let mut tasks = JoinSet::new();
    let mut unicast = 0;
    for registry in &registries.0 {
        let registry = registry.clone();
        let params = params.clone();
        if !matches!(
            registry,
            Registry::Udp {
                broadcast: true,
                ..
            }
        ) {
            unicast += 1;
        }
        tasks.spawn(async move { ask_one(&registry, method, &params, timeout).await });
    }
    let mut answers = Vec::new();
    let mut unicast_done = 0;
    let mut errors = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let Ok((was_broadcast, outcome)) = done else {
            continue;
        };
        match outcome {
            Ok(got) => answers.extend(got),
            Err(e) => errors.push(e),
        }
        if !was_broadcast {
            unicast_done += 1;
        }
        // Broadcasts are only waited for when the registries asked directly
        // had nothing to say.
        if unicast > 0 && unicast_done == unicast && enough(&answers) {
            break;
        }
    }
    if answers.is_empty() {
        let why = if errors.is_empty() {
            "no answer".to_owned()
        } else {
            errors.join("; ")
        };
        return Err(ClientError::NotSent(format!(
            "no registry answered ({registries}): {why}"
        )));
    }
    Ok(answers)
}

/// One registry's answers, and whether it was a broadcast.
async fn ask_one(
    registry: &Registry,
    method: &str,
    params: &[Value],
    timeout: Duration,
) -> (bool, Result<Vec<Result<Value, Fault>>, String>) {
    match registry {
        Registry::Udp { addr, broadcast } => {
            let outcome = async {
                let target: SocketAddr = tokio::net::lookup_host(addr.as_str())
                    .await
                    .map_err(|e| format!("{addr}: {e}"))?
                    .next()
                    .ok_or_else(|| format!("{addr}: no address"))?;
                let answers = datagram::call(target, *broadcast, method, params, timeout)
                    .await
                    .map_err(|e| format!("{addr}: {e}"))?;
                Ok(answers.into_iter().map(|(_, outcome)| outcome).collect())
            }
            .await;
            (*broadcast, outcome)
        }
        Registry::Rpc(url) => {
            let config = ClientConfig {
                timeout,
                ..ClientConfig::default()
            };
            let outcome = match Client::with_config(url, config) {
                Ok(client) => match client.call(method, params.to_vec()).await {
                    Ok(v) => Ok(vec![Ok(v)]),
                    Err(ClientError::Fault(f)) => Ok(vec![Err(f)]),
                    Err(e) => Err(format!("{url}: {e}")),
                },
                Err(e) => Err(e.to_string()),
            };
            (false, outcome)
        }
    }
}

/// The live instances of `name` in `registries`, merged (by id) over every
/// registry that answered, first registered first.
pub async fn lookup(
    registries: &Registries,
    name: &str,
    timeout: Duration,
) -> Result<Vec<Instance>, ClientError> {
    let found_some = |answers: &[Result<Value, Fault>]| {
        answers.iter().any(|a| {
            a.as_ref()
                .is_ok_and(|v| v.as_array().is_some_and(|a| !a.is_empty()))
        })
    };
    let answers = ask_all(
        registries,
        "registry.lookup",
        vec![Value::from(name)],
        timeout,
        found_some,
    )
    .await?;
    let mut seen = HashMap::new();
    let mut out: Vec<Instance> = Vec::new();
    for answer in answers {
        match answer {
            Ok(v) => {
                for item in v.as_array().unwrap_or_default() {
                    if let Some(instance) = Instance::from_value(item) {
                        if seen.insert(instance.id.clone(), ()).is_none() {
                            out.push(instance);
                        }
                    }
                }
            }
            Err(fault) => debug!(%fault, "a registry refused a lookup"),
        }
    }
    Ok(out)
}

/// Every name registered, with its number of instances (the largest count
/// any registry gave), from the registries that allow listing.
pub async fn services(
    registries: &Registries,
    timeout: Duration,
) -> Result<Vec<(String, usize)>, ClientError> {
    let answers = ask_all(registries, "registry.services", vec![], timeout, |_| true).await?;
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut refusals = Vec::new();
    let mut listed = false;
    for answer in answers {
        match answer {
            Ok(v) => {
                listed = true;
                for item in v.as_array().unwrap_or_default() {
                    let Some(m) = item.as_struct() else { continue };
                    let Some(name) = m.get("name").and_then(Value::as_str) else {
                        continue;
                    };
                    let n = m.get("instances").and_then(Value::as_i64).unwrap_or(0);
                    let entry = names.entry(name.to_owned()).or_default();
                    *entry = (*entry).max(usize::try_from(n).unwrap_or(0));
                }
            }
            Err(fault) => refusals.push(fault),
        }
    }
    if !listed {
        if let Some(fault) = refusals.into_iter().next() {
            return Err(ClientError::Fault(fault));
        }
    }
    let mut names: Vec<(String, usize)> = names.into_iter().collect();
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_parse_hosts_ports_and_urls() {
        let r = Registries::parse("10.0.0.1, reg.lan:9000,[::1],msgpack://r:1,255.255.255.255")
            .unwrap();
        assert_eq!(
            r.0,
            vec![
                Registry::Udp {
                    addr: "10.0.0.1:18811".into(),
                    broadcast: false
                },
                Registry::Udp {
                    addr: "reg.lan:9000".into(),
                    broadcast: false
                },
                Registry::Udp {
                    addr: "[::1]:18811".into(),
                    broadcast: false
                },
                Registry::Rpc("msgpack://r:1".into()),
                Registry::Udp {
                    addr: "255.255.255.255:18811".into(),
                    broadcast: true
                },
            ]
        );
        assert!(Registries::parse("").is_err());
        assert!(Registries::parse(":80").is_err());
    }
}
