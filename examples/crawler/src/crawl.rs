//! One crawler process: several tasks that each take a URL from the crawl's
//! stack under a lease, ask its host's robots.txt, wait for the host's turn,
//! fetch it (retrying transient failures with back-off), save it, queue its
//! links and only then acknowledge it; and a session task that keeps the
//! crawler logged in to the provider with its connection bound to its
//! session (so that its death gives its URLs back at once), reports its
//! status and receives commands.

use crate::control::{command_of, Control, Mode};
use crate::fetch::{Answer, FetchConfig, FetchError, Fetcher};
use crate::frontier::{Frontier, FrontierError, Job, Link};
use crate::links;
use crate::normalize::Normalizer;
use crate::polite::Politeness;
use crate::robots_cache::{now_ms, RobotsCache, RobotsConfig};
use crate::save::{Output, PageRecord};
use crate::scope::{authority, Scope};
use crate::warc::WarcWriter;
use rpcs_core::{Map, MethodTable, Value};
use rpcs_net::{Client, ClientConfig, ClientError};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use url::Url;

/// How long a take waits for a URL before the crawler looks around.
const TAKE_WAIT: Duration = Duration::from_secs(1);

/// The same, for a crawler that exits when the crawl is done: how soon an idle
/// crawler sees that another finished the last page.
const TAKE_WAIT_UNTIL_DONE: Duration = Duration::from_millis(200);

/// The longest pause between tries of a master call that failed.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Everything a crawler is told at start.
#[derive(Debug, Clone)]
pub struct CrawlConfig {
    /// The master's URL (MessagePack-RPC or WebSocket: commands are pushed).
    pub master: String,
    /// How the crawler's client connects to the master (TLS settings).
    pub client: ClientConfig,
    /// The crawl's name: its stacks and storages are `crawl/NAME/...`.
    pub crawl: String,
    /// This crawler's provider client name, unique in the crawl.
    pub name: String,
    /// Where pages are saved.
    pub out: PathBuf,
    /// Where this crawler's WARC file goes, if one is wanted.
    pub warc: Option<PathBuf>,
    /// Pages fetched at once by this crawler.
    pub concurrency: usize,
    /// The lease on a taken URL.
    pub lease: Duration,
    /// The least time between two requests to one host, all crawlers together.
    pub delay: Duration,
    /// Retries of a transient failure (no answer, 429, 5xx).
    pub retries: u32,
    /// The first back-off; it doubles with every retry.
    pub retry_base: Duration,
    /// Redirects followed from one URL.
    pub max_redirects: u32,
    /// Fetches in the whole crawl, all crawlers together.
    pub max_pages: Option<u64>,
    /// Follow links to any host, not only the seeds'.
    pub any_host: bool,
    /// Only URLs matching one of these (regular expressions).
    pub allow: Vec<String>,
    /// No URL matching one of these.
    pub deny: Vec<String>,
    /// No deeper than this many links from a seed.
    pub max_depth: Option<u32>,
    /// Canonical URLs and trap guards.
    pub normalizer: Normalizer,
    /// How pages are fetched.
    pub fetch: FetchConfig,
    /// How long an unavailable robots.txt stands before it is asked again.
    pub robots_retry: Duration,
    /// Exit once nothing is queued nor being fetched by any crawler.
    pub exit_when_done: bool,
    /// How often the status is reported to the master.
    pub report_every: Duration,
}

/// Why a crawler stopped early.
#[derive(Debug, thiserror::Error)]
pub enum CrawlError {
    /// A bad URL or option.
    #[error("{0}")]
    Config(String),
    /// The HTTP client could not be set up.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The master refused something it must not.
    #[error(transparent)]
    Frontier(#[from] FrontierError),
}

/// What a crawler did.
#[derive(Debug, Default)]
pub struct Counts {
    /// Pages saved (any status).
    pub pages: AtomicU64,
    /// Pages that ended in an error (no answer, 4xx, 5xx).
    pub errors: AtomicU64,
    /// URLs robots.txt excluded.
    pub excluded: AtomicU64,
}

/// The numbers a finished crawler prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Pages saved.
    pub pages: u64,
    /// Of which errors.
    pub errors: u64,
    /// URLs excluded by robots.txt.
    pub excluded: u64,
}

struct Crawler {
    config: CrawlConfig,
    client: Client,
    frontier: Arc<Frontier>,
    fetcher: Fetcher,
    robots: RobotsCache,
    polite: Politeness,
    output: Output,
    warc: Option<Arc<WarcWriter>>,
    scope: RwLock<Scope>,
    control: Control,
    counts: Counts,
    /// The URL each task is on.
    current: Mutex<BTreeMap<usize, String>>,
}

/// The storages of a crawl.
pub fn seeds_storage(crawl: &str) -> String {
    format!("crawl/{crawl}/seeds")
}

/// The crawl's shared counters (pages, errors, excluded, fetches).
pub fn stats_storage(crawl: &str) -> String {
    format!("crawl/{crawl}/stats")
}

/// Runs a crawler until it is stopped (a `stop` or `abort` command, `ctrl_c`
/// resolving) or, with `exit_when_done`, until the crawl is done.
pub async fn run(mut config: CrawlConfig, control: Control) -> Result<Summary, CrawlError> {
    // A master given by service name: the crawler's session is bound to its
    // connection, so it keeps to one instance.
    config.master = Client::resolve_instance(&config.master, &config.client)
        .await
        .map_err(|e| CrawlError::Config(e.to_string()))?;
    tracing::info!(master = %rpcs_net::client::redacted(&config.master), "crawling");
    let crawler = Arc::new(Crawler::new(config, control)?);
    crawler.start_session().await;
    let session = tokio::spawn(crawler.clone().keep_session());
    let tasks: Vec<_> = (0..crawler.config.concurrency.max(1))
        .map(|task| tokio::spawn(crawler.clone().work(task)))
        .collect();
    for task in tasks {
        let _ = task.await;
    }
    session.abort();
    crawler.report().await.ok();
    let logout = vec![Value::String(crawler.config.name.clone())];
    if let Err(e) = crawler.client.call("provider.logout", logout).await {
        tracing::warn!(error = %e, "logout failed; the session ends when its connection does");
    }
    Ok(crawler.summary())
}

impl Crawler {
    fn new(config: CrawlConfig, control: Control) -> Result<Crawler, CrawlError> {
        let mut handlers = MethodTable::new();
        let commands = control.clone();
        handlers.register(
            "provider.message",
            "A command for this crawler: pause, resume, stop or abort.",
            move |_sub: String, _client: String, message: Value| obey(&commands, &message),
        );
        let client = Client::with_handlers(&config.master, config.client.clone(), handlers)
            .map_err(|e| CrawlError::Config(e.to_string()))?;
        let frontier = Arc::new(Frontier::new(client.clone(), &config.crawl));
        let robots = RobotsCache::new(
            client.clone(),
            &config.crawl,
            &config.name,
            RobotsConfig {
                agent: config.fetch.agent_token().to_owned(),
                retry: config.robots_retry,
                stale: config.fetch.timeout * 3 + Duration::from_secs(10),
            },
        );
        let scope = Scope::new(&[], config.any_host)
            .with_patterns(&config.allow, &config.deny)
            .map_err(|e| CrawlError::Config(format!("a scope pattern: {e}")))?
            .with_max_depth(config.max_depth);
        Ok(Crawler {
            fetcher: Fetcher::new(&config.fetch)?,
            polite: Politeness::new(frontier.clone(), config.delay),
            output: Output::new(&config.out),
            warc: match &config.warc {
                None => None,
                Some(dir) => {
                    let software = format!("rpcs-crawler/{}", env!("CARGO_PKG_VERSION"));
                    let writer = WarcWriter::create(dir, &config.name, now_ms(), &software)
                        .map_err(|e| {
                            CrawlError::Config(format!("WARC file in {}: {e}", dir.display()))
                        })?;
                    tracing::info!(path = %writer.path().display(), "writing WARC");
                    Some(Arc::new(writer))
                }
            },
            scope: RwLock::new(scope),
            robots,
            frontier,
            client,
            control,
            counts: Counts::default(),
            current: Mutex::new(BTreeMap::new()),
            config,
        })
    }

    fn summary(&self) -> Summary {
        Summary {
            pages: self.counts.pages.load(Ordering::Relaxed),
            errors: self.counts.errors.load(Ordering::Relaxed),
            excluded: self.counts.excluded.load(Ordering::Relaxed),
        }
    }

    fn name_param(&self) -> Value {
        Value::String(self.config.name.clone())
    }

    /// Logs in and binds the session to this connection, trying until the
    /// master answers (or the crawler is told to end).
    async fn start_session(&self) {
        let mut backoff = Duration::from_millis(100);
        while !self.control.mode().is_ending() {
            match self.open_session().await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot log in to the master; trying again");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    async fn open_session(&self) -> Result<(), FrontierError> {
        let mut info = Map::new();
        info.insert("crawl".into(), Value::String(self.config.crawl.clone()));
        info.insert("role".into(), Value::String("crawler".into()));
        info.insert("pid".into(), Value::Int(i64::from(std::process::id())));
        let login = vec![self.name_param(), Value::Struct(info)];
        self.client.call("provider.login", login).await?;
        let subscribe = vec![self.name_param(), Value::Bool(false), Value::Bool(true)];
        self.client.call("provider.subscribe", subscribe).await?;
        self.refresh_seeds().await?;
        tracing::info!(name = %self.config.name, crawl = %self.config.crawl, "logged in");
        Ok(())
    }

    /// Reports the status every interval (and at once when the mode
    /// changes), applies a command a visit returns, and opens the session
    /// again when the master lost it (a restart, a network failure).
    async fn keep_session(self: Arc<Self>) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(self.config.report_every) => {}
                () = self.control.changed() => {}
            }
            if let Err(e) = self.report().await {
                tracing::warn!(error = %e, "status report failed");
                continue;
            }
            match self.subscribed().await {
                Ok(true) => {}
                Ok(false) => self.start_session().await,
                Err(e) => {
                    tracing::warn!(error = %e, "the master did not say how we are subscribed")
                }
            }
            if let Err(e) = self.refresh_seeds().await {
                tracing::warn!(error = %e, "reading the crawl's seeds failed");
            }
        }
    }

    async fn report(&self) -> Result<(), FrontierError> {
        let visit = vec![self.name_param(), self.status()];
        let message = self.client.call("provider.visit", visit).await?;
        if message != Value::Nil {
            obey(&self.control, &message);
        }
        Ok(())
    }

    /// Whether the master still pushes this crawler's messages to it.
    async fn subscribed(&self) -> Result<bool, FrontierError> {
        let answer = self
            .client
            .call("provider.getClient", vec![self.name_param()])
            .await;
        match answer {
            Ok(v) => Ok(v
                .as_struct()
                .and_then(|m| m.get("subscriptions"))
                .and_then(Value::as_i64)
                .is_some_and(|n| n > 0)),
            Err(e) if is_fault(&e, "ClientNotFoundError") => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    fn status(&self) -> Value {
        let current: Vec<Value> = lock(&self.current)
            .values()
            .map(|u| Value::String(u.clone()))
            .collect();
        let s = self.summary();
        let mut m = Map::new();
        m.insert("crawl".into(), Value::String(self.config.crawl.clone()));
        m.insert(
            "mode".into(),
            Value::String(self.control.mode().name().into()),
        );
        m.insert("pages".into(), Value::Int(s.pages as i64));
        m.insert("errors".into(), Value::Int(s.errors as i64));
        m.insert("excluded".into(), Value::Int(s.excluded as i64));
        m.insert("leases".into(), Value::Int(current.len() as i64));
        m.insert("url".into(), current.first().cloned().unwrap_or(Value::Nil));
        m.insert("current".into(), Value::Array(current));
        Value::Struct(m)
    }

    /// The seeds' hosts are the crawl's hosts (unless any host is crawled).
    async fn refresh_seeds(&self) -> Result<(), FrontierError> {
        let params = vec![Value::String(seeds_storage(&self.config.crawl))];
        let hosts = match self.client.call("storage.getAllParameters", params).await {
            Ok(Value::Struct(m)) => m.keys().cloned().collect(),
            Ok(_) => Vec::new(),
            Err(e) if is_fault(&e, "StorageNotFoundError") => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        self.scope
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .set_hosts(hosts);
        Ok(())
    }

    /// One task: takes and crawls URLs until the crawler ends.
    async fn work(self: Arc<Self>, task: usize) {
        let mut backoff = Duration::from_millis(100);
        loop {
            if self.control.unpaused().await.is_ending() {
                return;
            }
            let wait = if self.config.exit_when_done {
                TAKE_WAIT_UNTIL_DONE
            } else {
                TAKE_WAIT
            };
            // A crawler that is stopping does not wait out a take: a URL the
            // master leased to it meanwhile goes back when it logs out.
            let taken = tokio::select! {
                t = self.frontier.take(self.config.lease, wait, &self.config.name) => t,
                () = self.until_ending() => return,
            };
            match taken {
                Ok(Some(job)) => {
                    backoff = Duration::from_millis(100);
                    lock(&self.current).insert(task, job.url.to_string());
                    self.crawl_one(job).await;
                    let idle = {
                        let mut current = lock(&self.current);
                        current.remove(&task);
                        current.is_empty()
                    };
                    // The last page in flight here may have been the crawl's
                    // last: look now rather than after a take times out.
                    if idle {
                        self.stop_if_done().await;
                    }
                }
                Ok(None) => self.stop_if_done().await,
                Err(e) => {
                    tracing::warn!(error = %e, "taking a URL failed; trying again");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// With `exit_when_done`, stops the crawler once the whole crawl is done.
    async fn stop_if_done(&self) {
        if self.config.exit_when_done && self.crawl_is_done().await {
            tracing::info!("nothing queued and nothing in flight: the crawl is done");
            self.control.apply(Mode::Stopping);
        }
    }

    async fn until_ending(&self) {
        self.control.until(Mode::is_ending).await;
    }

    /// Nothing queued and no URL under lease, in the whole crawl. (A page's
    /// links are queued before its URL is acknowledged, so no link can
    /// appear once both are zero.)
    async fn crawl_is_done(&self) -> bool {
        matches!(self.frontier.pending().await, Ok(Some((0, 0))))
    }

    /// Crawls one URL, renewing its lease every third of it while the work
    /// lasts (politeness waits, retries and slow hosts can outlast one).
    async fn crawl_one(&self, job: Job) {
        let work = self.crawl_leased(&job);
        tokio::pin!(work);
        let mut renew = tokio::time::interval(self.config.lease / 3);
        renew.tick().await;
        loop {
            tokio::select! {
                () = &mut work => return,
                _ = renew.tick() => match self.frontier.extend(&job, self.config.lease).await {
                    Ok(true) => {}
                    Ok(false) => tracing::warn!(url = %job.url,
                        "the lease ran out; another crawler may fetch this URL too"),
                    Err(e) => tracing::warn!(url = %job.url, error = %e, "renewing the lease failed"),
                },
            }
        }
    }

    /// Crawls one URL and settles its lease.
    async fn crawl_leased(&self, job: &Job) {
        if let Some(max) = self.config.max_pages {
            match self.count("fetches").await {
                Ok(n) if n > max as i64 => {
                    tracing::info!(max, "the crawl's page budget is spent");
                    self.control.apply(Mode::Stopping);
                    return self.settle(job, false).await;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "counting the fetch failed");
                    return self.settle(job, false).await;
                }
            }
        }
        match self.outcome(job).await {
            Some(Outcome::Excluded) => {
                self.counts.excluded.fetch_add(1, Ordering::Relaxed);
                let _ = self.count("excluded").await;
                self.settle(job, true).await;
            }
            Some(Outcome::Page(page)) => self.finish_page(job, page).await,
            None => self.settle(job, false).await,
        }
    }

    /// Acks (`done`) or gives back the job's URL, through master failures.
    async fn settle(&self, job: &Job, done: bool) {
        let settled = self
            .retrying(|| async {
                if done {
                    self.frontier.done(job).await
                } else {
                    self.frontier.give_back(job).await
                }
            })
            .await;
        if let Some(false) = settled {
            tracing::warn!(url = %job.url, "the lease had run out; another crawler may fetch it again");
        }
    }

    /// A master call tried again, with back-off, while the master is out of
    /// reach; `None` if it kept failing for as long as the lease lasts or the
    /// crawler is aborting.
    async fn retrying<T, F, Fut>(&self, call: F) -> Option<T>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, FrontierError>>,
    {
        let deadline = tokio::time::Instant::now() + self.config.lease;
        let mut backoff = Duration::from_millis(100);
        loop {
            match call().await {
                Ok(v) => return Some(v),
                Err(FrontierError::Master(e)) if e.fault().is_none() => {
                    if tokio::time::Instant::now() >= deadline
                        || self.control.mode() == Mode::Aborting
                    {
                        tracing::warn!(error = %e, "the master stayed out of reach");
                        return None;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the master refused");
                    return None;
                }
            }
        }
    }

    async fn count(&self, what: &str) -> Result<i64, FrontierError> {
        let params = vec![
            Value::String(stats_storage(&self.config.crawl)),
            Value::String(what.into()),
            Value::Int(1),
        ];
        let n = self.client.call("storage.increment", params).await?;
        n.as_i64()
            .ok_or_else(|| FrontierError::Odd(format!("a count of {n:?}")))
    }

    /// What fetching the job's URL came to; `None` when the crawler is
    /// aborting (or the master is gone), so the URL goes back.
    async fn outcome(&self, job: &Job) -> Option<Outcome> {
        let robots = self.allowed(job).await?;
        if !robots {
            return Some(Outcome::Excluded);
        }
        let mut attempts = 0;
        loop {
            if self.control.mode() == Mode::Aborting {
                return None;
            }
            self.retrying(|| self.polite.wait_turn(&job.url)).await?;
            attempts += 1;
            let fetched_ms = now_ms();
            let answer = self.fetcher.get(&job.url).await;
            let wait = match &answer {
                Ok(a) if a.is_transient() => a.retry_after,
                Err(e) if e.is_transient() => None,
                _ => {
                    return Some(Outcome::Page(Page {
                        answer,
                        attempts,
                        fetched_ms,
                    }))
                }
            };
            if attempts > self.config.retries {
                return Some(Outcome::Page(Page {
                    answer,
                    attempts,
                    fetched_ms,
                }));
            }
            let backoff = self.config.retry_base * 2u32.saturating_pow(attempts - 1);
            let backoff = wait.map_or(backoff, |w| backoff.max(w.min(Duration::from_secs(60))));
            tracing::debug!(url = %job.url, ?backoff, "transient failure; trying again");
            tokio::time::sleep(backoff).await;
        }
    }

    /// Whether robots.txt allows the job's URL, waiting out an unavailable
    /// robots.txt up to `retries` times; `None` to give the URL back.
    async fn allowed(&self, job: &Job) -> Option<bool> {
        let mut rounds = 0;
        loop {
            let rules = self
                .retrying(|| self.robots.rules_for(&job.url, &self.fetcher, &self.polite))
                .await?;
            if !rules.is_unavailable() {
                return Some(rules.allowed(&job.url));
            }
            rounds += 1;
            if rounds > self.config.retries {
                tracing::info!(url = %job.url, "robots.txt stayed unavailable: not fetched");
                return Some(false);
            }
            tokio::select! {
                () = tokio::time::sleep(self.config.robots_retry) => {}
                () = self.until_aborting() => return None,
            }
        }
    }

    async fn until_aborting(&self) {
        self.control.until(|m| m == Mode::Aborting).await;
    }

    /// Saves the page, queues its links, and acks it, in that order.
    async fn finish_page(&self, job: &Job, page: Page) {
        if let Err(e) = self.archive(job, &page).await {
            tracing::error!(url = %job.url, error = %e, "cannot write the WARC record; giving it back");
            return self.settle(job, false).await;
        }
        let (record, body, links) = self.record(job, page);
        let failed = record.status == 0 || record.status >= 400;
        let output = self.output.clone();
        let url = job.url.clone();
        let saved = tokio::task::spawn_blocking(move || output.save(&url, &body, &record)).await;
        match saved {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::error!(url = %job.url, error = %e, "cannot save the page; giving it back");
                return self.settle(job, false).await;
            }
            Err(e) => {
                tracing::error!(url = %job.url, error = %e, "saving panicked; giving it back");
                return self.settle(job, false).await;
            }
        }
        if !links.is_empty() && self.retrying(|| self.frontier.add(&links)).await.is_none() {
            return self.settle(job, false).await;
        }
        self.settle(job, true).await;
        self.counts.pages.fetch_add(1, Ordering::Relaxed);
        let _ = self.count("pages").await;
        if failed {
            self.counts.errors.fetch_add(1, Ordering::Relaxed);
            let _ = self.count("errors").await;
        }
    }

    /// Appends the page's WARC records, when a WARC file is kept and an
    /// answer came.
    async fn archive(&self, job: &Job, page: &Page) -> std::io::Result<()> {
        let (Some(warc), Ok(answer)) = (&self.warc, &page.answer) else {
            return Ok(());
        };
        let (warc, answer, url) = (warc.clone(), answer.clone(), job.url.clone());
        let agent = self.config.fetch.user_agent.clone();
        let at = page.fetched_ms;
        tokio::task::spawn_blocking(move || warc.page(&url, &answer, at, &agent))
            .await
            .map_err(std::io::Error::other)?
    }

    /// The page's record, the body to save, and the links to queue.
    fn record(&self, job: &Job, page: Page) -> (PageRecord, Vec<u8>, Vec<Link>) {
        let mut record = PageRecord {
            url: job.url.to_string(),
            redirect_to: None,
            status: 0,
            error: None,
            attempts: page.attempts,
            crawler: self.config.name.clone(),
            content_type: None,
            fetched_ms: page.fetched_ms,
            depth: job.depth,
            referrer: job.referrer.clone(),
            bytes: 0,
            truncated: false,
        };
        let answer = match page.answer {
            Ok(a) => a,
            Err(e) => {
                record.error = Some(e.to_string());
                return (record, Vec::new(), Vec::new());
            }
        };
        record.status = answer.status;
        record.content_type = answer.content_type.clone();
        record.bytes = answer.body.len();
        record.truncated = answer.truncated;
        let links = self.links_of(job, &answer, &mut record);
        (record, answer.body, links)
    }

    fn links_of(&self, job: &Job, answer: &Answer, record: &mut PageRecord) -> Vec<Link> {
        let scope = self.scope.read().unwrap_or_else(|p| p.into_inner());
        let n = &self.config.normalizer;
        if (300..=399).contains(&answer.status) {
            let Some(location) = &answer.location else {
                return Vec::new();
            };
            let target = match n.link(Some(&job.url), location) {
                Ok(t) => t,
                Err(why) => {
                    record.error = Some(format!("redirect not followed: {why}"));
                    return Vec::new();
                }
            };
            record.redirect_to = Some(target.to_string());
            if job.hops >= self.config.max_redirects {
                record.error = Some("too many redirects".into());
                return Vec::new();
            }
            if let Err(why) = scope.admits(&target, job.depth) {
                record.error = Some(format!("redirect not followed: {why}"));
                return Vec::new();
            }
            return vec![Link {
                url: target,
                depth: job.depth,
                referrer: Some(job.url.to_string()),
                hops: job.hops + 1,
            }];
        }
        if !(200..=299).contains(&answer.status) || !answer.is_html() {
            return Vec::new();
        }
        let found = links::extract(&answer.body, &job.url);
        let base = found.base.as_ref().unwrap_or(&job.url);
        let depth = job.depth + 1;
        let mut seen = std::collections::HashSet::new();
        found
            .hrefs
            .iter()
            .filter_map(|href| n.link(Some(base), href).ok())
            .filter(|url| scope.admits(url, depth).is_ok())
            .filter(|url| seen.insert(url.to_string()))
            .map(|url| Link {
                url,
                depth,
                referrer: Some(job.url.to_string()),
                hops: 0,
            })
            .collect()
    }
}

enum Outcome {
    Excluded,
    Page(Page),
}

struct Page {
    answer: Result<Answer, FetchError>,
    attempts: u32,
    fetched_ms: i64,
}

fn obey(control: &Control, message: &Value) {
    match command_of(message) {
        Some(mode) => {
            tracing::info!(command = mode.name(), "command received");
            control.apply(mode);
        }
        None => tracing::info!(?message, "message received"),
    }
}

fn is_fault(e: &ClientError, name: &str) -> bool {
    e.fault().and_then(|f| f.name()) == Some(name)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Adds seed URLs to a crawl: their hosts join the crawl's hosts, and each
/// URL not queued before goes on the stack at depth 0; how many were new.
pub async fn add_seeds(
    client: &Client,
    crawl: &str,
    urls: &[Url],
    normalizer: &Normalizer,
) -> Result<usize, CrawlError> {
    let mut links = Vec::new();
    let mut hosts = Map::new();
    for url in urls {
        let url = normalizer
            .link(None, url.as_str())
            .map_err(|why| CrawlError::Config(format!("{url}: {why}")))?;
        hosts.insert(authority(&url), Value::Bool(true));
        links.push(Link {
            url,
            depth: 0,
            referrer: None,
            hops: 0,
        });
    }
    if links.is_empty() {
        return Ok(0);
    }
    let params = vec![Value::String(seeds_storage(crawl)), Value::Struct(hosts)];
    client
        .call("storage.setParameters", params)
        .await
        .map_err(FrontierError::from)?;
    Ok(Frontier::new(client.clone(), crawl).add(&links).await?)
}
