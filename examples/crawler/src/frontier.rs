//! The crawl's shared state, on the master: the URLs still to fetch (a stack,
//! which deduplicates them by canonical URL as they are pushed), taken under
//! a lease held by the crawler's provider session so that a crawler that
//! dies gives its URL back, and each host's next moment to be fetched (a
//! storage of reserved slots), shared by every crawler.

use rpcs_core::{Map, Value};
use rpcs_net::{Client, ClientError};
use std::time::Duration;
use url::Url;

/// The most links one call pushes (the master's batch limit is higher).
const BATCH: usize = 1000;

/// Why the master could not do what the crawler asked.
#[derive(Debug, thiserror::Error)]
pub enum FrontierError {
    /// The call failed (connection, or a fault from the master).
    #[error("master: {0}")]
    Master(#[from] ClientError),
    /// The master answered something that is not a crawl's.
    #[error("the master's answer is not what a crawl keeps: {0}")]
    Odd(String),
}

/// A URL to fetch, taken under a lease.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// The canonical URL.
    pub url: Url,
    /// How many links from a seed.
    pub depth: u32,
    /// The page it was found on.
    pub referrer: Option<String>,
    /// How many redirects led to it.
    pub hops: u32,
    /// The lease, for [`Frontier::done`] and [`Frontier::give_back`].
    pub lease: String,
}

/// A link to queue.
#[derive(Debug, Clone)]
pub struct Link {
    /// Its canonical URL.
    pub url: Url,
    /// Its depth.
    pub depth: u32,
    /// The page it was found on.
    pub referrer: Option<String>,
    /// How many redirects led to it.
    pub hops: u32,
}

/// One crawl's state on one master.
pub struct Frontier {
    client: Client,
    crawl: String,
    urls: String,
    hosts: String,
}

impl Frontier {
    /// The crawl named `crawl` on the master `client` talks to.
    pub fn new(client: Client, crawl: &str) -> Frontier {
        Frontier {
            client,
            crawl: crawl.to_owned(),
            urls: format!("crawl/{crawl}/urls"),
            hosts: format!("crawl/{crawl}/hosts"),
        }
    }

    /// The crawl's name.
    pub fn crawl(&self) -> &str {
        &self.crawl
    }

    /// The master's client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The name of the stack of URLs.
    pub fn stack(&self) -> &str {
        &self.urls
    }

    /// How many URLs are queued and how many are being fetched (under lease),
    /// all crawlers together; `None` before the first URL was added.
    pub async fn pending(&self) -> Result<Option<(u64, u64)>, FrontierError> {
        let name = || vec![Value::String(self.urls.clone())];
        let count = |v: Value| {
            v.as_i64()
                .and_then(|n| u64::try_from(n).ok())
                .ok_or_else(|| FrontierError::Odd(format!("a count of {v:?}")))
        };
        let queued = match self.client.call("stack.getSize", name()).await {
            Ok(v) => count(v)?,
            Err(e) if is_named(&e, &["StackNotFoundError"]) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let leased = count(self.client.call("stack.getLeaseCount", name()).await?)?;
        Ok(Some((queued, leased)))
    }

    /// Queues the links this crawl has never queued (nor marked seen); how
    /// many were new. A page's links cost one call per thousand.
    pub async fn add(&self, links: &[Link]) -> Result<usize, FrontierError> {
        let mut new = 0;
        for batch in links.chunks(BATCH) {
            let items = batch.iter().map(item).collect();
            let keys = batch
                .iter()
                .map(|l| Value::String(l.url.to_string()))
                .collect();
            let answer = self
                .client
                .call(
                    "stack.pushNew",
                    vec![
                        self.urls.clone().into(),
                        Value::Array(items),
                        Value::Array(keys),
                    ],
                )
                .await?;
            new += count_true(&answer)?;
        }
        Ok(new)
    }

    /// Marks URLs seen without queueing them (where a redirect ended, so that
    /// a link straight to it is not fetched again).
    pub async fn mark_seen(&self, urls: &[Url]) -> Result<usize, FrontierError> {
        let keys = urls.iter().map(|u| Value::String(u.to_string())).collect();
        let answer = self
            .client
            .call(
                "stack.markSeen",
                vec![self.urls.clone().into(), Value::Array(keys)],
            )
            .await?;
        count_true(&answer)
    }

    /// Takes the next URL under a lease of `lease` held by the provider
    /// session `owner`, waiting up to `wait` for one; `None` if none came.
    pub async fn take(
        &self,
        lease: Duration,
        wait: Duration,
        owner: &str,
    ) -> Result<Option<Job>, FrontierError> {
        let params = vec![
            self.urls.clone().into(),
            Value::Double(lease.as_secs_f64()),
            Value::Double(wait.as_secs_f64()),
            owner.into(),
        ];
        match self.client.call("stack.take", params).await {
            Ok(taken) => job(taken).map(Some),
            Err(e) if is_named(&e, &["StackIndexError", "StackNotFoundError"]) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The job is done (its page saved); false if its lease had run out.
    pub async fn done(&self, job: &Job) -> Result<bool, FrontierError> {
        self.finish("stack.ack", job).await
    }

    /// Renews the job's lease for `lease` from now; false if it had run out.
    pub async fn extend(&self, job: &Job, lease: Duration) -> Result<bool, FrontierError> {
        let params = vec![
            self.urls.clone().into(),
            job.lease.clone().into(),
            Value::Double(lease.as_secs_f64()),
        ];
        match self.client.call("stack.extend", params).await? {
            Value::Bool(b) => Ok(b),
            other => Err(FrontierError::Odd(format!(
                "stack.extend answered {other:?}"
            ))),
        }
    }

    /// Puts the job's URL back for another crawler (or a later try).
    pub async fn give_back(&self, job: &Job) -> Result<bool, FrontierError> {
        self.finish("stack.release", job).await
    }

    async fn finish(&self, method: &str, job: &Job) -> Result<bool, FrontierError> {
        let params = vec![self.urls.clone().into(), job.lease.clone().into()];
        match self.client.call(method, params).await? {
            Value::Bool(b) => Ok(b),
            other => Err(FrontierError::Odd(format!("{method} answered {other:?}"))),
        }
    }

    /// Reserves this crawler's next turn on `host`, `delay` after the last
    /// one any crawler reserved; how long to wait before fetching.
    pub async fn turn(&self, host: &str, delay: Duration) -> Result<Duration, FrontierError> {
        let params = vec![
            self.hosts.clone().into(),
            host.into(),
            Value::Double(delay.as_secs_f64()),
        ];
        let wait = self.client.call("storage.reserveSlot", params).await?;
        let seconds = match wait {
            Value::Double(d) => d,
            Value::Int(i) => i as f64,
            other => return Err(FrontierError::Odd(format!("a wait of {other:?}"))),
        };
        Duration::try_from_secs_f64(seconds).map_err(|e| FrontierError::Odd(e.to_string()))
    }
}

fn is_named(e: &ClientError, names: &[&str]) -> bool {
    e.fault()
        .and_then(|f| f.name())
        .is_some_and(|n| names.contains(&n))
}

fn item(link: &Link) -> Value {
    let mut m = Map::new();
    m.insert("url".into(), Value::String(link.url.to_string()));
    m.insert("depth".into(), Value::Int(i64::from(link.depth)));
    if let Some(r) = &link.referrer {
        m.insert("referrer".into(), Value::String(r.clone()));
    }
    if link.hops > 0 {
        m.insert("hops".into(), Value::Int(i64::from(link.hops)));
    }
    Value::Struct(m)
}

fn job(taken: Value) -> Result<Job, FrontierError> {
    let odd = |what: &str| FrontierError::Odd(format!("a taken item without {what}"));
    let taken = taken.as_struct().ok_or_else(|| odd("fields"))?;
    let lease = taken
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| odd("an id"))?;
    let item = taken
        .get("item")
        .and_then(Value::as_struct)
        .ok_or_else(|| odd("an item"))?;
    let url = item
        .get("url")
        .and_then(Value::as_str)
        .ok_or_else(|| odd("a URL"))?;
    let count = |key: &str| {
        item.get(key)
            .and_then(Value::as_i64)
            .and_then(|d| u32::try_from(d).ok())
            .unwrap_or(0)
    };
    Ok(Job {
        url: Url::parse(url).map_err(|e| FrontierError::Odd(e.to_string()))?,
        depth: count("depth"),
        hops: count("hops"),
        referrer: item
            .get("referrer")
            .and_then(Value::as_str)
            .map(str::to_owned),
        lease: lease.to_owned(),
    })
}

fn count_true(answer: &Value) -> Result<usize, FrontierError> {
    match answer {
        Value::Array(flags) => Ok(flags.iter().filter(|f| **f == Value::Bool(true)).count()),
        other => Err(FrontierError::Odd(format!("a claim answered {other:?}"))),
    }
}
