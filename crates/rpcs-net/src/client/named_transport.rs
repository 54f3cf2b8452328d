//! A client by service name: `rpcs://NAME` (or `@NAME`). The name is looked up
//! in the registries; calls go to its instances in turn (round robin); an
//! instance that fails is set aside until the next lookup, and the call goes to
//! the next one when that cannot run it twice: the call never reached the
//! failed instance (no connection could be made), or the method is idempotent.
//! The name is looked up again periodically, and at once when every instance
//! has failed.
//!
//! `rpcs://NAME?protocol=P&registry=R1,R2`: `P` picks the URL used among those
//! each instance registered (`msgpack`, `xmlrpc`, `jsonrpc`, `ws` or
//! `zerorpc`; by default the first of those, in that order, the instance
//! offers); `R` names the registries (see [`crate::discovery`]).

use super::{Client, ClientConfig, ClientError};
use crate::discovery::{self, Instance, Registries};
use rpcs_core::Value;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;
use tracing::debug;

/// The protocols a named client may use, by preference, and how to make the
/// URL from a registered one.
const PROTOCOLS: &[&str] = &["msgpack", "xmlrpc", "jsonrpc", "ws", "zerorpc"];

/// The URL speaking `protocol` among `urls`, made from the registered one it
/// runs on (the HTTP listener carries XML-RPC, JSON-RPC and WebSocket).
fn url_for(protocol: &str, urls: &[String]) -> Option<String> {
    let with = |scheme: &str| {
        urls.iter()
            .find_map(|u| u.strip_prefix(&format!("{scheme}://")).map(str::to_owned))
    };
    match protocol {
        "msgpack" => with("msgpack").map(|rest| format!("msgpack://{rest}")),
        "xmlrpc" => with("http").map(|rest| format!("http://{rest}")),
        "jsonrpc" => with("http").map(|rest| format!("jsonrpc+http://{rest}")),
        "ws" => with("http").map(|rest| format!("ws://{rest}")),
        "zerorpc" => with("tcp").map(|rest| format!("tcp://{rest}")),
        _ => None,
    }
}

/// The URL to reach `instance` on: `protocol`'s, or the first preferred one.
fn pick_url(instance: &Instance, protocol: Option<&str>) -> Option<String> {
    match protocol {
        Some(p) => url_for(p, &instance.urls),
        None => PROTOCOLS.iter().find_map(|p| url_for(p, &instance.urls)),
    }
}

/// A boxed future of a call.
type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One instance in use.
struct Member {
    id: String,
    url: String,
    client: Client,
    /// Set aside after a failure, until the next lookup.
    failed: bool,
}

struct Pool {
    members: Vec<Member>,
    next: usize,
    /// When the name was last looked up; `None` before the first.
    resolved: Option<Instant>,
}

/// The transport behind a [`Client`] made from `rpcs://NAME`.
pub(super) struct NamedTransport {
    name: String,
    protocol: Option<String>,
    registries: Registries,
    config: ClientConfig,
    pool: Mutex<Pool>,
    /// One lookup at a time.
    resolving: tokio::sync::Mutex<()>,
}

impl NamedTransport {
    /// Reads `rpcs://NAME?...` or `@NAME` (nothing is looked up yet).
    pub(super) fn new(url: &str, config: ClientConfig) -> Result<NamedTransport, ClientError> {
        let bad = |reason: &str| ClientError::Url {
            url: super::error::redacted(url),
            reason: reason.to_owned(),
        };
        let rest = url
            .strip_prefix('@')
            .or_else(|| url.strip_prefix("rpcs://"))
            .ok_or_else(|| bad("expected rpcs://NAME or @NAME"))?;
        let (name, query) = rest.split_once('?').unwrap_or((rest, ""));
        let name = name.trim_end_matches('/');
        if name.is_empty() || name.contains('/') {
            return Err(bad("expected rpcs://NAME or @NAME"));
        }
        let mut protocol = None;
        let mut registries = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("protocol", p)) if PROTOCOLS.contains(&p) => protocol = Some(p.to_owned()),
                Some(("protocol", _)) => {
                    return Err(bad("protocol is msgpack, xmlrpc, jsonrpc, ws or zerorpc"))
                }
                Some(("registry", r)) => registries = Some(r.to_owned()),
                _ => return Err(bad("the options are protocol= and registry=")),
            }
        }
        Ok(NamedTransport {
            name: name.to_owned(),
            protocol,
            registries: Registries::given_or_env(registries.as_deref())?,
            config,
            pool: Mutex::new(Pool {
                members: Vec::new(),
                next: 0,
                resolved: None,
            }),
            resolving: tokio::sync::Mutex::new(()),
        })
    }

    /// An instance's client: it gives up on a connection at once, so that
    /// the call goes to the next instance.
    fn member_config(&self) -> ClientConfig {
        ClientConfig {
            retry_connect: false,
            ..self.config.clone()
        }
    }

    fn pool(&self) -> std::sync::MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the name is due for a lookup: never looked up, looked up
    /// too long ago, or every instance failed.
    fn due(&self) -> bool {
        let pool = self.pool();
        match pool.resolved {
            None => true,
            Some(at) => {
                at.elapsed() >= self.config.resolve_every || pool.members.iter().all(|m| m.failed)
            }
        }
    }

    /// Looks the name up again; keeps the current instances if no registry
    /// answers, clears every failure mark otherwise (a restarted instance is
    /// used again).
    async fn resolve(&self) -> Result<(), ClientError> {
        let _one = self.resolving.lock().await;
        if !self.due() {
            return Ok(());
        }
        let timeout = self.config.timeout.min(discovery::DEFAULT_LOOKUP_TIMEOUT);
        let found = discovery::lookup(&self.registries, &self.name, timeout).await;
        let mut pool = self.pool();
        pool.resolved = Some(Instant::now());
        let found = match found {
            Ok(found) => found,
            Err(e) if pool.members.is_empty() => return Err(e),
            Err(e) => {
                debug!(name = %self.name, error = %e, "lookup failed; keeping the known instances");
                return Ok(());
            }
        };
        let serving: Vec<&Instance> = found.iter().filter(|i| i.health == "serving").collect();
        let usable = if serving.is_empty() {
            found.iter().collect()
        } else {
            serving
        };
        let mut members = Vec::with_capacity(usable.len());
        for instance in usable {
            let Some(url) = pick_url(instance, self.protocol.as_deref()) else {
                continue;
            };
            // A known instance keeps its connection.
            let kept = pool
                .members
                .iter()
                .position(|m| m.id == instance.id && m.url == url)
                .map(|i| pool.members.swap_remove(i).client);
            let client = match kept {
                Some(c) => c,
                None => match Client::with_config(&url, self.member_config()) {
                    Ok(c) => c,
                    Err(e) => {
                        debug!(%url, error = %e, "unusable registered URL");
                        continue;
                    }
                },
            };
            members.push(Member {
                id: instance.id.clone(),
                url,
                client,
                failed: false,
            });
        }
        pool.members = members;
        Ok(())
    }

    /// The members to try, in turn from the next one: those that have not
    /// failed, then those that have.
    fn order(&self) -> Vec<(String, Client)> {
        let mut pool = self.pool();
        let n = pool.members.len();
        if n == 0 {
            return Vec::new();
        }
        let start = pool.next % n;
        pool.next = pool.next.wrapping_add(1);
        let turn: Vec<&Member> = (0..n).map(|i| &pool.members[(start + i) % n]).collect();
        let (fresh, failed): (Vec<&Member>, Vec<&Member>) =
            turn.into_iter().partition(|m| !m.failed);
        fresh
            .into_iter()
            .chain(failed)
            .map(|m| (m.url.clone(), m.client.clone()))
            .collect()
    }

    fn mark_failed(&self, url: &str) {
        let mut pool = self.pool();
        if let Some(m) = pool.members.iter_mut().find(|m| m.url == url) {
            m.failed = true;
        }
    }

    /// Calls `method` on one instance after another until one answers, or the
    /// failure is one that must not be retried elsewhere.
    ///
    /// Boxed with its type erased: the lookup it may make calls registries
    /// with clients of their own, and the compiler cannot see through that
    /// loop of types otherwise.
    pub(super) fn call<'a>(
        &'a self,
        method: &'a str,
        params: &'a [Value],
        idempotent: bool,
        each: &'a mut (dyn FnMut(Value) + Send),
    ) -> BoxFuture<'a, Result<Option<Value>, ClientError>> {
        Box::pin(self.call_inner(method, params, idempotent, each))
    }

    async fn call_inner(
        &self,
        method: &str,
        params: &[Value],
        idempotent: bool,
        each: &mut (dyn FnMut(Value) + Send),
    ) -> Result<Option<Value>, ClientError> {
        if self.due() {
            self.resolve().await?;
        }
        let order = self.order();
        if order.is_empty() {
            return Err(ClientError::NotSent(format!(
                "no instance of {:?} found (registries: {})",
                self.name, self.registries
            )));
        }
        let idempotent = idempotent || self.config.is_idempotent(method);
        let mut last = None;
        for (url, client) in order {
            match client.call_each(method, params.to_vec(), each).await {
                Ok(v) => return Ok(v),
                Err(
                    e @ (ClientError::Fault(_) | ClientError::Encode(_) | ClientError::Convert(_)),
                ) => return Err(e),
                Err(e) => {
                    debug!(%url, error = %e, "instance failed");
                    self.mark_failed(&url);
                    if !(e.not_sent() || idempotent) {
                        return Err(e);
                    }
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| ClientError::NotSent("no instance answered".into())))
    }

    /// The URL of one instance, the first registered that is serving, for a
    /// client that must keep one connection (a session bound to it, calls
    /// from the server): MessagePack-RPC or WebSocket unless `protocol=`
    /// says otherwise.
    pub(super) async fn one_url(&self) -> Result<String, ClientError> {
        let timeout = self.config.timeout.min(discovery::DEFAULT_LOOKUP_TIMEOUT);
        let found = discovery::lookup(&self.registries, &self.name, timeout).await?;
        let serving = found.iter().filter(|i| i.health == "serving");
        let pick = |i: &Instance| match self.protocol.as_deref() {
            Some(p) => url_for(p, &i.urls),
            None => url_for("msgpack", &i.urls).or_else(|| url_for("ws", &i.urls)),
        };
        serving.chain(found.iter()).find_map(pick).ok_or_else(|| {
            ClientError::NotSent(format!(
                "no instance of {:?} with a stream URL found (registries: {})",
                self.name, self.registries
            ))
        })
    }

    /// The URLs in use, for diagnostics.
    pub(super) fn urls(&self) -> Vec<String> {
        self.pool().members.iter().map(|m| m.url.clone()).collect()
    }
}

/// How often a named client looks its name up again, by default.
pub const DEFAULT_RESOLVE_EVERY: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(urls: &[&str]) -> Instance {
        Instance {
            id: "i".into(),
            names: vec!["S".into()],
            host: "10.0.0.1".into(),
            port: None,
            urls: urls.iter().map(|u| u.to_string()).collect(),
            metadata: Default::default(),
            health: "serving".into(),
            source: "rpcs".into(),
            age_secs: 0.0,
        }
    }

    #[test]
    fn the_preferred_protocol_is_picked_from_what_an_instance_offers() {
        let both = instance(&[
            "http://10.0.0.1:8000/",
            "msgpack://10.0.0.1:8001",
            "tcp://10.0.0.1:4242",
        ]);
        assert_eq!(
            pick_url(&both, None).as_deref(),
            Some("msgpack://10.0.0.1:8001")
        );
        assert_eq!(
            pick_url(&both, Some("ws")).as_deref(),
            Some("ws://10.0.0.1:8000/")
        );
        assert_eq!(
            pick_url(&both, Some("jsonrpc")).as_deref(),
            Some("jsonrpc+http://10.0.0.1:8000/")
        );
        assert_eq!(
            pick_url(&both, Some("zerorpc")).as_deref(),
            Some("tcp://10.0.0.1:4242")
        );
        let http = instance(&["http://10.0.0.1:8000/"]);
        assert_eq!(
            pick_url(&http, None).as_deref(),
            Some("http://10.0.0.1:8000/")
        );
        assert_eq!(pick_url(&http, Some("msgpack")), None);
        assert_eq!(
            pick_url(&instance(&[]), None),
            None,
            "RPyC's instances have no URL"
        );
    }

    #[test]
    fn names_and_options_are_read_from_the_url() {
        let config = ClientConfig::default();
        let t = NamedTransport::new(
            "rpcs://master?protocol=ws&registry=10.0.0.1,10.0.0.2:9",
            config.clone(),
        )
        .unwrap();
        assert_eq!(t.name, "master");
        assert_eq!(t.protocol.as_deref(), Some("ws"));
        assert_eq!(t.registries.to_string(), "10.0.0.1:18811,10.0.0.2:9");
        assert_eq!(
            NamedTransport::new("@crawl-master", config.clone())
                .unwrap()
                .name,
            "crawl-master"
        );
        for bad in [
            "rpcs://",
            "@",
            "rpcs://a/b",
            "rpcs://a?protocol=ftp",
            "rpcs://a?colour=red",
        ] {
            assert!(NamedTransport::new(bad, config.clone()).is_err(), "{bad}");
        }
    }
}
