//! Each host's robots.txt, fetched once per crawl by whichever crawler needs
//! it first and kept in the master (storage `crawl/NAME/robots`, one
//! parameter per `host:port`), so that every crawler obeys the same rules and
//! the host sees one request for them.
//!
//! The first crawler to need a host claims its entry (`setIfAbsent` of a
//! "pending" mark), fetches the file and stores the answer; the others wait
//! for it. A claim older than the stale limit (its crawler died) is taken
//! over with `compareAndSet`, as is an "unavailable" answer (5xx, 429, no
//! answer) once its retry time has come.

use crate::fetch::Fetcher;
use crate::frontier::FrontierError;
use crate::polite::Politeness;
use crate::robots::{robots_url, Robots};
use crate::scope::authority;
use rpcs_core::{Map, Value};
use rpcs_net::Client;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use url::Url;

/// How many redirects a robots.txt may go through (RFC 9309: at least five).
const MAX_REDIRECTS: usize = 5;

/// How often a crawler waiting for another's fetch looks again.
const POLL: Duration = Duration::from_millis(100);

/// The time now, in milliseconds since the epoch.
pub fn now_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// What the master holds for a host.
enum Entry {
    /// A crawler is fetching it.
    Pending { since_ms: i64 },
    /// The answer: status (0: no answer) and body.
    Answered {
        status: u16,
        body: String,
        fetched_ms: i64,
    },
}

impl Entry {
    fn parse(value: &Value) -> Option<Entry> {
        let m = value.as_struct()?;
        let int = |k: &str| m.get(k).and_then(Value::as_i64);
        if m.contains_key("pending") {
            return Some(Entry::Pending {
                since_ms: int("sinceMs")?,
            });
        }
        Some(Entry::Answered {
            status: u16::try_from(int("status")?).ok()?,
            body: m.get("body").and_then(Value::as_str)?.to_owned(),
            fetched_ms: int("fetchedMs")?,
        })
    }
}

fn pending(owner: &str) -> Value {
    let mut m = Map::new();
    m.insert("pending".into(), Value::String(owner.to_owned()));
    m.insert("sinceMs".into(), Value::Int(now_ms()));
    Value::Struct(m)
}

fn answered(status: u16, body: &str) -> Value {
    let mut m = Map::new();
    m.insert("status".into(), Value::Int(i64::from(status)));
    m.insert("body".into(), Value::String(body.to_owned()));
    m.insert("fetchedMs".into(), Value::Int(now_ms()));
    Value::Struct(m)
}

struct Cached {
    robots: Arc<Robots>,
    /// When an unavailable answer is asked again.
    retry_at_ms: Option<i64>,
}

/// How robots.txt answers are shared.
#[derive(Debug, Clone)]
pub struct RobotsConfig {
    /// The product token groups are matched against.
    pub agent: String,
    /// How long an unavailable answer stands before it is asked again.
    pub retry: Duration,
    /// How old a claim may get before another crawler takes it over.
    pub stale: Duration,
}

/// The crawl's robots.txt answers, shared through the master.
pub struct RobotsCache {
    client: Client,
    storage: String,
    owner: String,
    config: RobotsConfig,
    local: Mutex<HashMap<String, Cached>>,
}

impl RobotsCache {
    /// The answers of the crawl `crawl`; `owner` names this crawler in claims.
    pub fn new(client: Client, crawl: &str, owner: &str, config: RobotsConfig) -> RobotsCache {
        RobotsCache {
            client,
            storage: format!("crawl/{crawl}/robots"),
            owner: owner.to_owned(),
            config,
            local: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, host: &str) -> Option<Arc<Robots>> {
        let local = self.local.lock().unwrap_or_else(|p| p.into_inner());
        let c = local.get(host)?;
        let fresh = c.retry_at_ms.is_none_or(|t| now_ms() < t);
        fresh.then(|| c.robots.clone())
    }

    /// The rules for `url`'s host, fetching its robots.txt if no crawler has.
    pub async fn rules_for(
        &self,
        url: &Url,
        fetcher: &Fetcher,
        polite: &Politeness,
    ) -> Result<Arc<Robots>, FrontierError> {
        let host = authority(url);
        if let Some(robots) = self.cached(&host) {
            return Ok(robots);
        }
        loop {
            let Some(seen) = self.get(&host).await? else {
                if self.claim_new(&host).await? {
                    return self.fetch_and_store(&host, url, fetcher, polite).await;
                }
                continue;
            };
            let take_over = match Entry::parse(&seen) {
                // What no crawler of ours wrote is fetched again.
                None => true,
                Some(Entry::Pending { since_ms }) => {
                    let stale = now_ms() - since_ms > self.config.stale.as_millis() as i64;
                    if !stale {
                        tokio::time::sleep(POLL).await;
                    }
                    stale
                }
                Some(Entry::Answered {
                    status,
                    body,
                    fetched_ms,
                }) => {
                    let robots = self.remember(&host, status, &body, fetched_ms, polite);
                    if self.cached(&host).is_some() {
                        return Ok(robots);
                    }
                    // An unavailable answer whose retry time has come.
                    true
                }
            };
            if take_over && self.take_over(&host, seen).await? {
                return self.fetch_and_store(&host, url, fetcher, polite).await;
            }
        }
    }

    /// Fetches the host's robots.txt (this crawler holds the claim) and
    /// stores the answer for every crawler.
    async fn fetch_and_store(
        &self,
        host: &str,
        url: &Url,
        fetcher: &Fetcher,
        polite: &Politeness,
    ) -> Result<Arc<Robots>, FrontierError> {
        let (status, body) = self.fetch(url, fetcher, polite).await?;
        let params = vec![
            self.storage.clone().into(),
            host.into(),
            answered(status, &body),
        ];
        self.client.call("storage.setParameter", params).await?;
        Ok(self.remember(host, status, &body, now_ms(), polite))
    }

    /// Reads the answer into the local cache and the host's delay floor.
    fn remember(
        &self,
        host: &str,
        status: u16,
        body: &str,
        fetched_ms: i64,
        polite: &Politeness,
    ) -> Arc<Robots> {
        let robots = if status == 0 {
            Robots::unreachable()
        } else {
            Robots::from_answer(status, body.as_bytes(), &self.config.agent)
        };
        if let Some(delay) = robots.crawl_delay() {
            polite.set_floor(host, Duration::from_secs_f64(delay.min(86_400.0)));
        }
        let retry_at_ms = robots
            .is_unavailable()
            .then(|| fetched_ms.saturating_add(self.config.retry.as_millis() as i64));
        let robots = Arc::new(robots);
        let mut local = self.local.lock().unwrap_or_else(|p| p.into_inner());
        local.insert(
            host.to_owned(),
            Cached {
                robots: robots.clone(),
                retry_at_ms,
            },
        );
        robots
    }

    async fn get(&self, host: &str) -> Result<Option<Value>, FrontierError> {
        let params = vec![self.storage.clone().into(), host.into()];
        match self.client.call("storage.getParameter", params).await {
            Ok(v) => Ok(Some(v)),
            Err(e)
                if e.fault().and_then(|f| f.name()).is_some_and(|n| {
                    n == "ParameterNotFoundError" || n == "StorageNotFoundError"
                }) =>
            {
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn claim_new(&self, host: &str) -> Result<bool, FrontierError> {
        let params = vec![
            self.storage.clone().into(),
            host.into(),
            pending(&self.owner),
        ];
        let won = self.client.call("storage.setIfAbsent", params).await?;
        Ok(won == Value::Bool(true))
    }

    async fn take_over(&self, host: &str, seen: Value) -> Result<bool, FrontierError> {
        let params = vec![
            self.storage.clone().into(),
            host.into(),
            seen,
            pending(&self.owner),
        ];
        let won = self.client.call("storage.compareAndSet", params).await?;
        Ok(won == Value::Bool(true))
    }

    /// GETs the host's robots.txt through up to five redirects, each request
    /// spaced like any other; status 0 when no answer came.
    async fn fetch(
        &self,
        page: &Url,
        fetcher: &Fetcher,
        polite: &Politeness,
    ) -> Result<(u16, String), FrontierError> {
        let Some(mut url) = robots_url(page) else {
            return Ok((404, String::new()));
        };
        for _ in 0..=MAX_REDIRECTS {
            polite.wait_turn(&url).await?;
            let answer = match fetcher.get(&url).await {
                Ok(a) => a,
                Err(e) => {
                    tracing::info!(%url, error = %e, "robots.txt unreachable");
                    return Ok((0, String::new()));
                }
            };
            let next = answer
                .location
                .as_deref()
                .filter(|_| (300..=399).contains(&answer.status))
                .and_then(|l| url.join(l).ok());
            match next {
                Some(next) => url = next,
                None => {
                    let body = String::from_utf8_lossy(&answer.body).into_owned();
                    return Ok((answer.status, body));
                }
            }
        }
        // Too many redirects: as if there were no file (RFC 9309, 2.3.1.2).
        Ok((404, String::new()))
    }
}
