//! Whole crawls: a real master (`rpcs master` on its embedded store), three
//! `rpcs-crawler` processes, and the generated site on three loopback
//! addresses, whose request log tells what was fetched, how often and how
//! far apart. Once plainly, once with a crawler killed by SIGKILL half way,
//! once with the master killed and restarted half way.

use rpcs_crawler::save::record_path;
use rpcs_crawler::site::{serve, HostPlan, Logged, Site};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The base politeness delay the crawlers are given.
const DELAY: f64 = 0.2;
/// The third host's robots.txt Crawl-delay.
const CRAWL_DELAY: u32 = 1;
/// How much closer than the delay two requests may reach the site: the slots
/// are the master's, a delay apart; the site sees each after its crawler woke
/// and sent it, which on a loaded machine can be late by some milliseconds
/// for one request and not the next.
const JITTER: Duration = Duration::from_millis(50);

fn bin(name: &str) -> PathBuf {
    let crawler = PathBuf::from(env!("CARGO_BIN_EXE_rpcs-crawler"));
    let dir = std::env::var_os("RPCS_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crawler.parent().unwrap().to_owned());
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace's binaries first (cargo build --workspace --bins)",
        path.display()
    );
    path
}

/// A child process killed when dropped.
struct Proc {
    child: Child,
    name: String,
    log: PathBuf,
}

impl Proc {
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for it to exit by itself (a hung crawl fails the test after
    /// minutes rather than never); its success.
    fn wait(&mut self) -> bool {
        let give_up = Instant::now() + Duration::from_secs(300);
        while Instant::now() < give_up {
            match self.child.try_wait() {
                Ok(Some(status)) => return status.success(),
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                Err(_) => return false,
            }
        }
        false
    }

    fn log(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        format!("--- {} ---\n{text}", self.name)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The master on the embedded store in `data`, MessagePack-RPC on `port` (0:
/// any); its process and its MessagePack-RPC URL.
fn master(dir: &Path, port: u16) -> (Proc, String) {
    static STARTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = STARTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let log = dir.join(format!("master-{n}.log"));
    let mut child = Command::new(bin("rpcs"))
        .args(["master", "--listen", "127.0.0.1:0", "--msgpack"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(dir.join("data"))
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().expect("the master exited").unwrap();
        if let Some(url) = line.strip_prefix("listening on msgpack://") {
            break format!("msgpack://{}", url.trim_end_matches('/'));
        }
    };
    let name = "master".to_owned();
    (Proc { child, name, log }, url)
}

fn crawler(dir: &Path, master: &str, name: &str) -> Proc {
    let log = dir.join(format!("{name}.log"));
    let child = Command::new(bin("rpcs-crawler"))
        .args([
            "--master", master, "--crawl", "site", "crawl", "--name", name,
        ])
        .arg("--out")
        .arg(dir.join("out"))
        .args(["--concurrency", "4", "--delay", &DELAY.to_string()])
        .args([
            "--retry-base",
            "0.2",
            "--lease",
            "10",
            "--report-every",
            "0.2",
        ])
        .args(["--any-host", "--allow", r"^http://127\.0\.0\.[123]:"])
        .arg("--exit-when-done")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    Proc {
        child,
        name: name.to_owned(),
        log,
    }
}

fn cli(master: &str, args: &[&str]) -> String {
    let out = Command::new(bin("rpcs-crawler"))
        .args(["--master", master, "--crawl", "site"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "rpcs-crawler {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

async fn site() -> Site {
    let host = |last: u8, pages, crawl_delay, specials| HostPlan {
        ip: [127, 0, 0, last].into(),
        port: 0,
        pages,
        crawl_delay,
        disallow_private: specials,
        specials,
    };
    serve(&[
        host(1, 80, None, true),
        host(2, 120, None, false),
        host(3, 12, Some(CRAWL_DELAY), false),
    ])
    .await
    .unwrap()
}

/// Every path a correct crawl fetches, per host root.
fn expected(site: &Site) -> BTreeSet<String> {
    let mut urls = BTreeSet::new();
    for (root, pages) in site.roots.iter().zip([80, 120, 12]) {
        urls.insert(root.clone());
        for n in 0..pages {
            urls.insert(format!("{root}p/{n}.html"));
        }
    }
    let first = &site.roots[0];
    for path in [
        "r/1",
        "r/2",
        "r/3",
        "loop/a",
        "loop/b",
        "missing.html",
        "flaky.html",
        "data.bin",
        "trap/x/",
        "trap/x/x/",
        "trap/x/x/x/",
    ] {
        urls.insert(format!("{first}{path}"));
    }
    urls
}

/// How often each URL was requested (robots.txt apart).
fn counts(requests: &[Logged]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for r in requests.iter().filter(|r| r.path != "/robots.txt") {
        *counts
            .entry(format!("http://{}{}", r.host, r.path))
            .or_default() += 1;
    }
    counts
}

/// The records saved under `out`, by URL.
/// A crawler killed while writing a page leaves its temporary file (named
/// after its process id) behind; `dead` are those ids.
fn records(out: &Path, dead: &[u32]) -> BTreeMap<String, serde_json::Value> {
    let mut found = BTreeMap::new();
    for host in std::fs::read_dir(out).unwrap() {
        for file in std::fs::read_dir(host.unwrap().path()).unwrap() {
            let path = file.unwrap().path();
            if path.extension().is_some_and(|e| e == "page") {
                let record: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(record_path(&path)).unwrap()).unwrap();
                let url = record["url"].as_str().unwrap().to_owned();
                assert!(found.insert(url, record).is_none());
            } else if !dead
                .iter()
                .any(|pid| path.to_string_lossy().ends_with(&format!(".tmp{pid}")))
            {
                assert!(
                    path.to_string_lossy().ends_with(".page.json"),
                    "only pages and their records are left: {}",
                    path.display()
                );
            }
        }
    }
    found
}

/// What every crawl must have done, whatever happened on the way.
fn check_crawl(site: &Site, out: &Path, dead: &[u32]) {
    let requests = site.requests();
    let want = expected(site);
    let saved = records(out, dead);
    let saved_urls: BTreeSet<String> = saved.keys().cloned().collect();
    assert_eq!(saved_urls, want, "every reachable allowed page saved");
    let counts = counts(&requests);
    let first = &site.roots[0];
    for never in ["private/secret.html", "never.html", "nofollow.html"] {
        let url = format!("{first}{never}");
        assert!(!counts.contains_key(&url), "{url} was requested");
    }
    assert!(
        counts.keys().all(|u| want.contains(u)),
        "nothing outside the crawl was requested: {:?}",
        counts
            .keys()
            .filter(|u| !want.contains(*u))
            .collect::<Vec<_>>()
    );
    for root in &site.roots {
        let host = root.trim_start_matches("http://").trim_end_matches('/');
        let robots = requests
            .iter()
            .filter(|r| r.host == host && r.path == "/robots.txt")
            .count();
        assert_eq!(robots, 1, "{host}'s robots.txt fetched once");
    }
    let flaky = &saved[&format!("{first}flaky.html")];
    assert_eq!(flaky["status"], 200, "the page that failed once recovered");
    assert_eq!(flaky["attempts"], 2);
    assert_eq!(saved[&format!("{first}missing.html")]["status"], 404);
    let r1 = &saved[&format!("{first}r/1")];
    assert_eq!(r1["status"], 301);
    assert_eq!(r1["redirect_to"], format!("{first}r/2"));
    assert_eq!(saved[&format!("{first}r/3")]["status"], 200);
    let data = &saved[&format!("{first}data.bin")];
    assert_eq!(data["content_type"], "application/octet-stream");
    check_spacing(site, &requests);
}

/// Requests to one host never came closer than its delay, all crawlers
/// together.
fn check_spacing(site: &Site, requests: &[Logged]) {
    for (i, root) in site.roots.iter().enumerate() {
        let host = root.trim_start_matches("http://").trim_end_matches('/');
        let delay = if i == 2 {
            Duration::from_secs(u64::from(CRAWL_DELAY))
        } else {
            Duration::from_secs_f64(DELAY)
        };
        let times: Vec<Instant> = requests
            .iter()
            .filter(|r| r.host == host)
            .map(|r| r.at)
            .collect();
        for pair in times.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(
                gap + JITTER >= delay,
                "{host}: two requests {gap:?} apart, under the delay of {delay:?}: {:?}",
                requests
                    .iter()
                    .filter(|r| r.host == host)
                    .map(|r| (r.path.clone(), r.at - times[0]))
                    .collect::<Vec<_>>()
            );
        }
    }
}

/// Waits until the site has seen `n` requests.
async fn until_requests(site: &Site, n: usize) {
    while site.requests().len() < n {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits for every crawler to exit by itself, successfully.
async fn finish(mut crawlers: Vec<Proc>) {
    tokio::task::spawn_blocking(move || {
        for c in crawlers.iter_mut() {
            assert!(c.wait(), "{} failed:\n{}", c.name, c.log());
        }
    })
    .await
    .unwrap();
}

/// The URLs requested more than once, but for the page that fails once.
fn fetched_twice(site: &Site) -> Vec<String> {
    counts(&site.requests())
        .into_iter()
        .filter(|(u, n)| *n > 1 && !u.ends_with("flaky.html"))
        .map(|(u, _)| u)
        .collect()
}

fn start_crawl(dir: &Path, master: &str, site: &Site) -> Vec<Proc> {
    let added = cli(master, &["add", &site.roots[0]]);
    assert!(added.starts_with("1 of 1"), "{added}");
    (0..3)
        .map(|i| crawler(dir, master, &format!("crawler-{i}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_crawlers_fetch_every_allowed_page_once_politely() {
    let dir = tempfile::tempdir().unwrap();
    let site = site().await;
    let (_master, url) = master(dir.path(), 0);
    finish(start_crawl(dir.path(), &url, &site)).await;
    check_crawl(&site, &dir.path().join("out"), &[]);
    let twice = fetched_twice(&site);
    assert!(twice.is_empty(), "fetched more than once: {twice:?}");
    let status: serde_json::Value =
        serde_json::from_str(&cli(&url, &["status", "--json"])).unwrap();
    assert_eq!(status["queued"], 0);
    assert_eq!(status["inFlight"], 0);
    assert_eq!(status["stats"]["pages"], expected(&site).len());
    assert_eq!(status["stats"]["excluded"], 1, "the robots.txt exclusion");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawler_killed_half_way_loses_no_url_and_refetches_only_what_it_held() {
    let dir = tempfile::tempdir().unwrap();
    let site = site().await;
    let (_master, url) = master(dir.path(), 0);
    let mut crawlers = start_crawl(dir.path(), &url, &site);
    until_requests(&site, 60).await;
    // SIGKILL: no goodbye; the master sees its connection close.
    let dead = crawlers[0].child.id();
    crawlers[0].kill();
    let killed_at = Instant::now();
    finish(crawlers.split_off(1)).await;
    check_crawl(&site, &dir.path().join("out"), &[dead]);
    let requests = site.requests();
    let twice = fetched_twice(&site);
    assert!(
        twice.len() <= 4,
        "more than the dead crawler's 4 URLs: {twice:?}"
    );
    for url in &twice {
        let first = requests
            .iter()
            .find(|r| format!("http://{}{}", r.host, r.path) == *url)
            .unwrap();
        assert!(
            first.at < killed_at,
            "{url} fetched twice, first after the kill"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawl_survives_its_master_killed_and_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let site = site().await;
    let (mut first, url) = master(dir.path(), 0);
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    let crawlers = start_crawl(dir.path(), &url, &site);
    until_requests(&site, 60).await;
    first.kill();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_again, _) = master(dir.path(), port);
    finish(crawlers).await;
    check_crawl(&site, &dir.path().join("out"), &[]);
    let twice = fetched_twice(&site);
    assert!(twice.is_empty(), "fetched more than once: {twice:?}");
}

/// The crawler's own status in the master, once it reported one.
fn crawler_status(master: &str, name: &str) -> serde_json::Value {
    let status: serde_json::Value =
        serde_json::from_str(&cli(master, &["status", "--json"])).unwrap();
    status["crawlers"][name]["status"].clone()
}

async fn until_status(master: &str, name: &str, check: impl Fn(&serde_json::Value) -> bool) {
    let mut last = serde_json::Value::Null;
    for _ in 0..1500 {
        last = crawler_status(master, name);
        if check(&last) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{name} never reached the state looked for; last status {last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_resume_and_stop_from_the_command_line_steer_a_crawler() {
    let dir = tempfile::tempdir().unwrap();
    let site = site().await;
    let (_master, url) = master(dir.path(), 0);
    cli(&url, &["add", &site.roots[0]]);
    let mut c = crawler(dir.path(), &url, "steered");
    until_requests(&site, 10).await;
    let sent = cli(&url, &["control", "pause", "steered"]);
    assert!(sent.contains("pause sent to steered"), "{sent}");
    until_status(&url, "steered", |s| {
        s["mode"] == "paused" && s["leases"] == 0
    })
    .await;
    // Paused, with nothing in flight: no request for many delays.
    let paused_at = site.requests().len();
    tokio::time::sleep(Duration::from_secs_f64(DELAY * 10.0)).await;
    assert_eq!(site.requests().len(), paused_at, "a paused crawler fetched");
    // Resumed by a message to every crawler of the crawl.
    let sent = cli(&url, &["control", "resume"]);
    assert!(sent.contains("resume sent to 1 crawlers"), "{sent}");
    until_requests(&site, paused_at + 5).await;
    cli(&url, &["control", "stop", "steered"]);
    let stopped = tokio::task::spawn_blocking(move || c.wait()).await.unwrap();
    assert!(stopped, "a stopped crawler exits cleanly");
    let status: serde_json::Value =
        serde_json::from_str(&cli(&url, &["status", "--json"])).unwrap();
    assert!(
        status["queued"].as_i64().unwrap() > 0,
        "stopped before the end: {status}"
    );
    assert_eq!(status["inFlight"], 0, "its pages in flight were finished");
    assert_eq!(status["crawlers"], serde_json::json!({}), "it logged out");
}

/// A tmux session running a command in a pane of a fixed size, killed when
/// dropped.
struct Tmux(String);

impl Tmux {
    fn start(name: &str, command: &str) -> Tmux {
        let ok = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                name,
                "-x",
                "200",
                "-y",
                "50",
                command,
            ])
            .status()
            .expect("tmux is installed (the test command installs it)");
        assert!(ok.success());
        Tmux(name.to_owned())
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.0])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &str) {
        let ok = Command::new("tmux")
            .args(["send-keys", "-t", &self.0, keys])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    async fn until_screen(&self, check: impl Fn(&str) -> bool) -> String {
        let mut last = String::new();
        for _ in 0..1500 {
            last = self.screen();
            if check(&last) {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the monitor never showed what was looked for:\n{last}");
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.0])
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monitor_shows_the_crawler_and_its_stack_and_steers_it_with_keys() {
    let dir = tempfile::tempdir().unwrap();
    let site = site().await;
    let (_master, url) = master(dir.path(), 0);
    cli(&url, &["add", &site.roots[0]]);
    let mut c = crawler(dir.path(), &url, "watched");
    until_requests(&site, 5).await;
    let session = format!("rpcs-monitor-{}", std::process::id());
    let command = format!("{} monitor {url} --interval 0.2", bin("rpcs").display());
    let tmux = Tmux::start(&session, &command);
    let screen = tmux
        .until_screen(|s| {
            s.contains("watched") && s.contains("crawl/site/urls") && s.contains("http://127.0.0.")
        })
        .await;
    assert!(
        screen.contains("crawl/site/robots"),
        "storages shown:\n{screen}"
    );
    // The only client is selected: pause it, resume it, stop it.
    tmux.keys("p");
    until_status(&url, "watched", |s| s["mode"] == "paused").await;
    tmux.until_screen(|s| s.contains("paused")).await;
    tmux.keys("r");
    until_status(&url, "watched", |s| s["mode"] == "running").await;
    tmux.keys("s");
    let stopped = tokio::task::spawn_blocking(move || c.wait()).await.unwrap();
    assert!(stopped, "a crawler stopped from the monitor exits cleanly");
    tmux.until_screen(|s| s.contains("clients 0")).await;
    // Not on a terminal: one plain snapshot, or JSON.
    let once = Command::new(bin("rpcs"))
        .args(["monitor", &url, "--once", "--json"])
        .output()
        .unwrap();
    let snapshot: serde_json::Value = serde_json::from_slice(&once.stdout).unwrap();
    let urls = snapshot["stacks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "crawl/site/urls")
        .expect("the crawl's stack is listed");
    assert!(urls["size"].as_i64().unwrap() > 0, "{snapshot}");
}
