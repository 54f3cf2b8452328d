//! `rpcs bench`: a closed-loop load generator for every protocol.
//!
//! Each connection keeps `--pipeline` calls outstanding (one, by default: send,
//! wait for the whole answer, send the next). Requests are encoded once and written
//! raw, so the generator spends as little CPU as possible on its own side of the
//! measurement. The first call goes through the real client to check that the
//! method answers.
//!
//! # Layout
//!
//! - `mod.rs`: arguments, rounds, percentiles and the report.
//! - `http.rs`: XML-RPC and JSON-RPC over raw HTTP/1.1 keep-alive.
//! - `stream.rs`: MessagePack-RPC (TCP, Unix), JSON-RPC over WebSocket and zerorpc,
//!   pipelined.

mod http;
mod stream;

use crate::call::{parse_args, Connection};
use anyhow::{bail, Context as _};
use clap::Args;
use rpcs_core::Value;
use std::time::{Duration, Instant};

/// Arguments of `rpcs bench`.
#[derive(Args)]
pub struct BenchArgs {
    #[command(flatten)]
    conn: Connection,
    /// The method to call (after the URL; clap cannot make it required
    /// after the URL, which `rpcs call` lets be left out).
    method: Option<String>,
    /// Arguments, as strings unless --json is given.
    #[arg(allow_negative_numbers = true)]
    args: Vec<String>,
    /// Parse each argument as JSON.
    #[arg(short = 'j', long = "json")]
    json_args: bool,
    /// Concurrent connections; a comma-separated list runs one round per value.
    #[arg(short, long, value_delimiter = ',', default_value = "1,16")]
    connections: Vec<usize>,
    /// Seconds each round measures.
    #[arg(short, long, default_value_t = 5.0)]
    duration: f64,
    /// Seconds of unmeasured calls before each round.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Calls each connection keeps outstanding (MessagePack-RPC and WebSocket only).
    #[arg(short = 'P', long, default_value_t = 1)]
    pipeline: usize,
    /// A label for the result rows (defaults to the URL).
    #[arg(long)]
    label: Option<String>,
    /// Print results as JSON lines instead of a table.
    #[arg(long = "print-json")]
    print_json: bool,
}

/// The outcome of one round.
struct Round {
    connections: usize,
    calls: usize,
    /// Calls answered with a fault (counted in `calls` too).
    faults: usize,
    elapsed: Duration,
    /// Sorted call latencies in microseconds.
    latencies: Vec<u32>,
}

impl Round {
    fn rate(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> u32 {
        if self.latencies.is_empty() {
            return 0;
        }
        let rank = ((p / 100.0) * self.latencies.len() as f64).ceil() as usize;
        self.latencies[rank.clamp(1, self.latencies.len()) - 1]
    }
}

/// What one connection drives.
#[derive(Clone)]
enum Load {
    Http(http::HttpLoad),
    Stream(stream::StreamLoad),
}

impl Load {
    fn new(
        url: &str,
        method: &str,
        params: &[Value],
        pipeline: usize,
        config: &rpcs_net::ClientConfig,
    ) -> anyhow::Result<Load> {
        let (scheme, rest) = url.split_once("://").context("expected a URL")?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme.ends_with("http") {
            if pipeline != 1 {
                bail!("--pipeline works on msgpack://, ws:// and zerorpc URLs; HTTP sends one call per request");
            }
            return Ok(Load::Http(http::HttpLoad::new(
                &scheme,
                rest,
                method,
                params,
                config.credentials.as_ref(),
            )?));
        }
        Ok(Load::Stream(stream::StreamLoad::new(
            &scheme, rest, method, params, pipeline, config,
        )?))
    }
}

pub async fn bench(args: BenchArgs) -> anyhow::Result<()> {
    let Some(method) = args.method.clone() else {
        bail!("usage: rpcs bench URL METHOD [ARGS...]: name the method to measure");
    };
    let params = parse_args(&args.args, args.json_args)?;
    let client = args.conn.client()?;
    client
        .call(&method, params.clone())
        .await
        .context("the method does not answer; nothing to measure")?;
    if args.pipeline == 0 {
        bail!("--pipeline must be at least 1");
    }
    let url = args.conn.url()?;
    let load = Load::new(url, &method, &params, args.pipeline, &args.conn.config()?)?;
    let label = args.label.clone().unwrap_or_else(|| url.to_owned());
    let measure = Duration::try_from_secs_f64(args.duration).context("--duration")?;
    let warmup = Duration::try_from_secs_f64(args.warmup).context("--warmup")?;
    if !args.print_json {
        println!(
            "{:<28} {:>5} {:>10} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8}",
            "target", "conns", "calls", "calls/s", "p50µs", "p90µs", "p99µs", "p99.9µs", "maxµs"
        );
    }
    for &n in &args.connections {
        if n == 0 {
            bail!("--connections must be at least 1");
        }
        let round = run_round(&load, n, warmup, measure).await?;
        report(&label, &round, args.print_json);
    }
    Ok(())
}

fn report(label: &str, r: &Round, as_json: bool) {
    if as_json {
        let line = serde_json::json!({
            "target": label, "connections": r.connections, "calls": r.calls,
            "seconds": r.elapsed.as_secs_f64(), "calls_per_sec": r.rate(),
            "p50_us": r.percentile(50.0), "p90_us": r.percentile(90.0),
            "p99_us": r.percentile(99.0), "p999_us": r.percentile(99.9),
            "max_us": r.latencies.last().copied().unwrap_or(0), "faults": r.faults,
        });
        println!("{line}");
        return;
    }
    if r.faults > 0 {
        eprintln!(
            "{label}: {} of {} calls answered with a fault",
            r.faults, r.calls
        );
    }
    println!(
        "{:<28} {:>5} {:>10} {:>10.0} {:>8} {:>8} {:>8} {:>8} {:>8}",
        label,
        r.connections,
        r.calls,
        r.rate(),
        r.percentile(50.0),
        r.percentile(90.0),
        r.percentile(99.0),
        r.percentile(99.9),
        r.latencies.last().copied().unwrap_or(0)
    );
}

async fn run_round(
    load: &Load,
    connections: usize,
    warmup: Duration,
    measure: Duration,
) -> anyhow::Result<Round> {
    let window = Window {
        start: Instant::now() + warmup,
        end: Instant::now() + warmup + measure,
    };
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let load = load.clone();
        tasks.spawn(async move {
            match load {
                Load::Http(l) => l.drive(window).await,
                Load::Stream(l) => l.drive(window).await,
            }
        });
    }
    let mut tally = Tally::default();
    while let Some(done) = tasks.join_next().await {
        let t = done??;
        tally.latencies.extend(t.latencies);
        tally.faults += t.faults;
    }
    tally.latencies.sort_unstable();
    Ok(Round {
        connections,
        faults: tally.faults,
        calls: tally.latencies.len(),
        elapsed: measure,
        latencies: tally.latencies,
    })
}

/// When calls count: those sent from `start` on; none are sent after `end`.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    end: Instant,
}

/// What one connection measured.
#[derive(Default)]
struct Tally {
    latencies: Vec<u32>,
    faults: usize,
}

impl Tally {
    /// Records a call sent at `sent` that just got its answer.
    fn record(&mut self, window: &Window, sent: Instant, fault: bool) {
        if sent >= window.start {
            self.latencies
                .push(sent.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
            if fault {
                self.faults += 1;
            }
        }
    }
}

/// Where `needle` first occurs in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let r = Round {
            connections: 1,
            calls: 100,
            faults: 0,
            elapsed: Duration::from_secs(1),
            latencies: (1..=100).collect(),
        };
        assert_eq!(r.percentile(50.0), 50);
        assert_eq!(r.percentile(99.0), 99);
        assert_eq!(r.percentile(100.0), 100);
        assert_eq!(r.rate(), 100.0);
    }

    #[test]
    fn loads() {
        let p = [Value::Int(1)];
        assert!(matches!(
            Load::new(
                "http://127.0.0.1:8000",
                "m",
                &p,
                1,
                &rpcs_net::ClientConfig::default()
            ),
            Ok(Load::Http(_))
        ));
        assert!(matches!(
            Load::new(
                "jsonrpc+http://h:1/",
                "m",
                &p,
                1,
                &rpcs_net::ClientConfig::default()
            ),
            Ok(Load::Http(_))
        ));
        assert!(matches!(
            Load::new(
                "msgpack://h:1",
                "m",
                &p,
                8,
                &rpcs_net::ClientConfig::default()
            ),
            Ok(Load::Stream(_))
        ));
        assert!(matches!(
            Load::new("ws://h:1/", "m", &p, 8, &rpcs_net::ClientConfig::default()),
            Ok(Load::Stream(_))
        ));
        assert!(Load::new(
            "http://h:1/",
            "m",
            &p,
            8,
            &rpcs_net::ClientConfig::default()
        )
        .is_err());
        assert!(Load::new("ftp://h:1/", "m", &p, 1, &rpcs_net::ClientConfig::default()).is_err());
    }
}
