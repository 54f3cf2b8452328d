//! `rpcs-crawler`: the distributed crawler's roles, as subcommands.

use anyhow::{bail, Context as _, Result};
use clap::{Args, Parser, Subcommand};
use rpcs_core::Value;
use rpcs_crawler::control::{Control, Mode};
use rpcs_crawler::crawl::{self, add_seeds, stats_storage, CrawlConfig};
use rpcs_crawler::fetch::{FetchConfig, Fetcher};
use rpcs_crawler::frontier::Frontier;
use rpcs_crawler::normalize::Normalizer;
use rpcs_crawler::sitemap;
use rpcs_net::{Client, ClientConfig};
use std::path::PathBuf;
use std::time::Duration;
use url::Url;

/// A distributed web crawler on the rpcs master: run `crawl` on as many hosts
/// as you like, `add` the first URLs, watch with `status` or `rpcs monitor`.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct Common {
    /// The master (msgpack://HOST:PORT or ws://HOST:PORT/: the crawler needs
    /// a connection the master can push commands on), or its service name
    /// rpcs://NAME (found in the registries of $RPCS_REGISTRY, or with
    /// ?registry=HOST:PORT; a crawler keeps to the one instance it finds).
    #[arg(
        long,
        global = true,
        env = "RPCS_MASTER",
        default_value = "ws://127.0.0.1:8000/"
    )]
    master: String,
    /// The crawl's name: several crawls can share one master.
    #[arg(long, global = true, default_value = "default")]
    crawl: String,
    /// Trust this CA file (PEM) for a master reached over TLS (wss://,
    /// msgpack+tls://) instead of the system's.
    #[arg(long, global = true, value_name = "FILE")]
    ca: Option<PathBuf>,
}

impl Common {
    /// How clients of the master connect.
    fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::default();
        config.tls.ca = self.ca.clone();
        config
    }

    /// A client of the master.
    fn client(&self) -> Result<Client, rpcs_net::ClientError> {
        Client::with_config(&self.master, self.client_config())
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run a crawler: take URLs, fetch and save pages, queue their links.
    Crawl(Box<CrawlArgs>),
    /// Add seed URLs (their hosts join the crawl): given, from a file, or from a sitemap.
    Add(AddArgs),
    /// Show the crawl: queued and in-flight URLs, pages, and every crawler.
    Status {
        /// One JSON object instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// Tell crawlers to pause, resume, stop (finish the pages in flight) or
    /// abort (give them back at once).
    Control {
        /// pause, resume, stop or abort.
        command: String,
        /// The crawler's client name; every crawler of the crawl when left out.
        client: Option<String>,
    },
}

#[derive(Args)]
struct CrawlArgs {
    /// Where pages go (one file per URL and a .json record beside it).
    #[arg(long, default_value = "crawl-out")]
    out: PathBuf,
    /// Also write every fetched page to a WARC file of this crawler's own
    /// under DIR (NAME-START.warc.gz: a request and a response record per
    /// page, synced before the page is acknowledged).
    #[arg(long, value_name = "DIR")]
    warc: Option<PathBuf>,
    /// This crawler's name (unique in the crawl); HOST-PID by default.
    #[arg(long)]
    name: Option<String>,
    /// Pages fetched at once by this crawler.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Seconds between two requests to one host, all crawlers together (0:
    /// no spacing); a robots.txt Crawl-delay can only raise it.
    #[arg(long, default_value_t = 1.0)]
    delay: f64,
    /// Seconds a taken URL is leased for, renewed every third of it while
    /// the crawler works on it: a crawler that vanishes without its connection
    /// closing has its URLs back this long after; one that dies on a live
    /// host (its connection closes) at once.
    #[arg(long, default_value_t = 30.0)]
    lease: f64,
    /// Seconds one request may take, body included.
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
    /// Tries again after a transient failure (no answer, 429, 5xx).
    #[arg(long, default_value_t = 2)]
    retries: u32,
    /// Seconds before the first retry; doubled for each next (Retry-After wins if longer).
    #[arg(long, default_value_t = 1.0)]
    retry_base: f64,
    /// Seconds an unavailable robots.txt (5xx, 429, no answer) stands before it is asked again.
    #[arg(long, default_value_t = 30.0)]
    robots_retry: f64,
    /// Redirects followed from one URL.
    #[arg(long, default_value_t = 5)]
    max_redirects: u32,
    /// Body bytes kept per page; the rest is not read.
    #[arg(long, default_value_t = 10 << 20)]
    max_bytes: usize,
    /// Fetches in the whole crawl, all crawlers together.
    #[arg(long)]
    max_pages: Option<u64>,
    /// Links followed from a seed at most.
    #[arg(long)]
    max_depth: Option<u32>,
    /// Follow links to any host (by default only the seeds' hosts).
    #[arg(long)]
    any_host: bool,
    /// Only URLs matching this regular expression (repeatable: any of them).
    #[arg(long)]
    allow: Vec<String>,
    /// No URL matching this regular expression (repeatable).
    #[arg(long)]
    deny: Vec<String>,
    /// Sort query parameters, for sites that write them in any order.
    #[arg(long)]
    sort_query: bool,
    /// Longest URL followed, in bytes (a crawl-trap guard).
    #[arg(long, default_value_t = 2048)]
    max_url_length: usize,
    /// How often one path segment may repeat in a URL (a crawl-trap guard).
    #[arg(long, default_value_t = 3)]
    max_repeats: usize,
    /// Most path segments in a URL (a crawl-trap guard).
    #[arg(long, default_value_t = 32)]
    max_segments: usize,
    /// The User-Agent; its first word is what robots.txt groups are matched against.
    #[arg(long)]
    user_agent: Option<String>,
    /// Exit once nothing is queued nor being fetched by any crawler.
    #[arg(long)]
    exit_when_done: bool,
    /// Seconds between status reports to the master.
    #[arg(long, default_value_t = 1.0)]
    report_every: f64,
}

#[derive(Args)]
struct AddArgs {
    /// URLs to add.
    urls: Vec<String>,
    /// A file of URLs, one per line (`#` starts a comment).
    #[arg(long)]
    file: Option<PathBuf>,
    /// A sitemap (or sitemap index) whose URLs to add.
    #[arg(long)]
    sitemap: Option<String>,
    /// Sort query parameters (give the crawlers the same).
    #[arg(long)]
    sort_query: bool,
}

fn seconds(what: &str, s: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(s).with_context(|| format!("--{what} {s}: not a number of seconds"))
}

fn normalizer(a: &CrawlArgs) -> Normalizer {
    Normalizer {
        sort_query: a.sort_query,
        max_length: a.max_url_length,
        max_repeats: a.max_repeats,
        max_segments: a.max_segments,
    }
}

fn crawl_config(common: &Common, a: &CrawlArgs) -> Result<CrawlConfig> {
    let mut fetch = FetchConfig {
        timeout: seconds("timeout", a.timeout)?,
        max_bytes: a.max_bytes,
        ..FetchConfig::default()
    };
    if let Some(ua) = &a.user_agent {
        fetch.user_agent = ua.clone();
    }
    let name = a.name.clone().unwrap_or_else(|| {
        let host = std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "crawler".into());
        format!("{host}-{}", std::process::id())
    });
    Ok(CrawlConfig {
        master: common.master.clone(),
        client: common.client_config(),
        crawl: common.crawl.clone(),
        name,
        out: a.out.clone(),
        warc: a.warc.clone(),
        concurrency: a.concurrency,
        lease: seconds("lease", a.lease)?,
        delay: seconds("delay", a.delay)?,
        retries: a.retries,
        retry_base: seconds("retry-base", a.retry_base)?,
        max_redirects: a.max_redirects,
        max_pages: a.max_pages,
        any_host: a.any_host,
        allow: a.allow.clone(),
        deny: a.deny.clone(),
        max_depth: a.max_depth,
        normalizer: normalizer(a),
        fetch,
        robots_retry: seconds("robots-retry", a.robots_retry)?,
        exit_when_done: a.exit_when_done,
        report_every: seconds("report-every", a.report_every)?,
    })
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match &cli.command {
        Command::Crawl(a) => run_crawler(crawl_config(&cli.common, a)?).await,
        Command::Add(a) => add(&cli.common, a).await,
        Command::Status { json } => status(&cli.common, *json).await,
        Command::Control { command, client } => {
            control(&cli.common, command, client.as_deref()).await
        }
    }
}

async fn run_crawler(config: CrawlConfig) -> Result<()> {
    let control = Control::new();
    let on_signal = control.clone();
    tokio::spawn(async move {
        // The first signal stops after the pages in flight; a second gives
        // them back at once.
        let mut mode = Mode::Stopping;
        loop {
            if wait_signal().await.is_err() {
                return;
            }
            tracing::info!(mode = mode.name(), "signal received");
            on_signal.apply(mode);
            mode = Mode::Aborting;
        }
    });
    let summary = crawl::run(config, control).await?;
    println!(
        "pages {} errors {} excluded {}",
        summary.pages, summary.errors, summary.excluded
    );
    Ok(())
}

async fn wait_signal() -> std::io::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r,
        _ = term.recv() => Ok(()),
    }
}

async fn add(common: &Common, a: &AddArgs) -> Result<()> {
    let mut texts = a.urls.clone();
    if let Some(file) = &a.file {
        let body = std::fs::read_to_string(file).with_context(|| format!("{}", file.display()))?;
        texts.extend(
            body.lines()
                .map(|l| l.split('#').next().unwrap_or("").trim())
                .filter(|l| !l.is_empty())
                .map(str::to_owned),
        );
    }
    if let Some(map) = &a.sitemap {
        texts.extend(sitemap_urls(map).await?);
    }
    if texts.is_empty() {
        bail!("no URL to add: give URLs, --file or --sitemap");
    }
    let urls = texts
        .iter()
        .map(|t| Url::parse(t).with_context(|| format!("{t}: not a URL")))
        .collect::<Result<Vec<_>>>()?;
    let client = common.client()?;
    let normalizer = Normalizer {
        sort_query: a.sort_query,
        ..Normalizer::default()
    };
    let new = add_seeds(&client, &common.crawl, &urls, &normalizer).await?;
    println!(
        "{new} of {} URLs added to crawl {:?}",
        urls.len(),
        common.crawl
    );
    Ok(())
}

/// The URLs of a sitemap, following a sitemap index (up to 100 sitemaps).
async fn sitemap_urls(first: &str) -> Result<Vec<String>> {
    let fetcher = Fetcher::new(&FetchConfig::default())?;
    let mut todo = vec![first.to_owned()];
    let mut urls = Vec::new();
    let mut read = 0;
    while let Some(map) = todo.pop() {
        read += 1;
        if read > 100 {
            bail!("more than 100 sitemaps from {first}");
        }
        let url = Url::parse(&map).with_context(|| format!("{map}: not a URL"))?;
        let answer = fetcher.get(&url).await?;
        if answer.status != 200 {
            bail!("{map}: HTTP {}", answer.status);
        }
        let found = sitemap::parse(&String::from_utf8_lossy(&answer.body));
        urls.extend(found.urls);
        todo.extend(found.sitemaps);
    }
    Ok(urls)
}

async fn status(common: &Common, json: bool) -> Result<()> {
    let client = common.client()?;
    let frontier = Frontier::new(client.clone(), &common.crawl);
    let (queued, leased) = frontier.pending().await?.unwrap_or((0, 0));
    let stats = match client
        .call("storage.getAllParameters", (stats_storage(&common.crawl),))
        .await
    {
        Ok(v) => v,
        Err(e) if e.fault().and_then(|f| f.name()) == Some("StorageNotFoundError") => {
            Value::Struct(Default::default())
        }
        Err(e) => return Err(e.into()),
    };
    let crawlers = crawlers_of(&client, &common.crawl).await?;
    if json {
        let mut out = rpcs_core::Map::new();
        out.insert("crawl".into(), Value::String(common.crawl.clone()));
        out.insert("queued".into(), Value::Int(queued as i64));
        out.insert("inFlight".into(), Value::Int(leased as i64));
        out.insert("stats".into(), stats);
        out.insert(
            "crawlers".into(),
            Value::Struct(crawlers.into_iter().collect()),
        );
        println!("{}", rpcs_core::json::to_json(&Value::Struct(out)));
        return Ok(());
    }
    let stat = |k: &str| {
        stats
            .as_struct()
            .and_then(|m| m.get(k))
            .and_then(Value::as_i64)
            .unwrap_or(0)
    };
    println!(
        "crawl {}: {queued} queued, {leased} in flight, {} pages saved, {} errors, {} excluded by robots.txt",
        common.crawl,
        stat("pages"),
        stat("errors"),
        stat("excluded")
    );
    for (name, c) in &crawlers {
        let s = c
            .as_struct()
            .and_then(|m| m.get("status"))
            .and_then(Value::as_struct);
        let field = |k: &str| s.and_then(|s| s.get(k)).cloned().unwrap_or(Value::Nil);
        let url = field("url");
        println!(
            "  {name}: {} pages {} errors {} url {}",
            field("mode").as_str().unwrap_or("?"),
            field("pages").as_i64().unwrap_or(0),
            field("errors").as_i64().unwrap_or(0),
            url.as_str().unwrap_or("-")
        );
    }
    Ok(())
}

/// The provider clients that are crawlers of `crawl` (their login info
/// says), by name.
async fn crawlers_of(client: &Client, crawl: &str) -> Result<Vec<(String, Value)>> {
    Ok(match client.call("provider.getAllClients", ()).await? {
        Value::Struct(m) => m.into_iter().filter(|(_, c)| in_crawl(c, crawl)).collect(),
        _ => Vec::new(),
    })
}

/// Whether a provider client is a crawler of `crawl` (its login info says).
fn in_crawl(client: &Value, crawl: &str) -> bool {
    let info = client
        .as_struct()
        .and_then(|m| m.get("info"))
        .and_then(Value::as_struct);
    info.and_then(|i| i.get("crawl")).and_then(Value::as_str) == Some(crawl)
}

fn message(to: &str, command: &str) -> Vec<Value> {
    vec![Value::String(to.into()), Value::String(command.into())]
}

async fn control(common: &Common, command: &str, client: Option<&str>) -> Result<()> {
    if rpcs_crawler::control::command_of(&Value::String(command.into())).is_none() {
        bail!("{command:?}: expected pause, resume, stop or abort");
    }
    let master = common.client()?;
    match client {
        Some(name) => {
            master
                .call("provider.sendMessage", message(name, command))
                .await
                .with_context(|| format!("sending {command} to {name}"))?;
            println!("{command} sent to {name}");
        }
        None => {
            let crawlers = crawlers_of(&master, &common.crawl).await?;
            for (name, _) in &crawlers {
                master
                    .call("provider.sendMessage", message(name, command))
                    .await?;
            }
            println!(
                "{command} sent to {} crawlers of crawl {:?}",
                crawlers.len(),
                common.crawl
            );
        }
    }
    Ok(())
}
