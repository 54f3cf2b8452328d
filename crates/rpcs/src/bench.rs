//! `rpcs bench`: a closed-loop load generator.
//!
//! Each connection sends one request, waits for the whole answer, and sends the
//! next. Requests are encoded once and written as raw HTTP/1.1, so the generator
//! spends as little CPU as possible on its own side of the measurement. The first
//! call goes through the real client to check that the method answers.

use crate::call::{parse_args, Connection};
use anyhow::{bail, Context as _};
use clap::Args;
use rpcs_core::xmlrpc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Arguments of `rpcs bench`.
#[derive(Args)]
pub struct BenchArgs {
    #[command(flatten)]
    conn: Connection,
    /// The method to call.
    method: String,
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

pub async fn bench(args: BenchArgs) -> anyhow::Result<()> {
    let params = parse_args(&args.args, args.json_args)?;
    let client = args.conn.client()?;
    client
        .call(&args.method, params.clone())
        .await
        .context("the method does not answer; nothing to measure")?;
    let target = Target::parse(&args.conn.url)?;
    let body = xmlrpc::encode_request(&args.method, &params);
    let request = target.request(&body);
    let label = args.label.clone().unwrap_or_else(|| args.conn.url.clone());
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
        let round = run_round(&target, &request, n, warmup, measure).await?;
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
    target: &Target,
    request: &[u8],
    connections: usize,
    warmup: Duration,
    measure: Duration,
) -> anyhow::Result<Round> {
    let start = Instant::now() + warmup;
    let end = start + measure;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let addr = target.addr.clone();
        let request = request.to_vec();
        tasks.spawn(async move { drive(&addr, &request, start, end).await });
    }
    let mut latencies = Vec::new();
    let mut faults = 0;
    while let Some(done) = tasks.join_next().await {
        let (lat, f) = done??;
        latencies.extend(lat);
        faults += f;
    }
    latencies.sort_unstable();
    Ok(Round {
        connections,
        faults,
        calls: latencies.len(),
        elapsed: measure,
        latencies,
    })
}

/// One connection's loop: returns the latencies of calls that started inside
/// the window, and how many of those were answered with a fault.
async fn drive(
    addr: &str,
    request: &[u8],
    start: Instant,
    end: Instant,
) -> anyhow::Result<(Vec<u32>, usize)> {
    let mut conn: Option<TcpStream> = None;
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut latencies = Vec::with_capacity(1 << 16);
    let mut faults = 0;
    loop {
        let began = Instant::now();
        if began >= end {
            return Ok((latencies, faults));
        }
        let stream = match conn.as_mut() {
            Some(s) => s,
            None => {
                let s = TcpStream::connect(addr)
                    .await
                    .with_context(|| format!("connecting to {addr}"))?;
                s.set_nodelay(true)?;
                conn.insert(s)
            }
        };
        stream.write_all(request).await?;
        let (keep, body_at) = read_response(stream, &mut buf).await?;
        if began >= start {
            latencies.push(began.elapsed().as_micros().min(u32::MAX as u128) as u32);
            if find(&buf[body_at..], b"<fault>").is_some() {
                faults += 1;
            }
        }
        if !keep {
            conn = None;
        }
    }
}

/// Reads one HTTP response into `buf`; returns whether the connection stays
/// open and where the body starts.
async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> anyhow::Result<(bool, usize)> {
    buf.clear();
    let header_end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i + 4;
        }
        if read_more(stream, buf).await? == 0 {
            bail!("server closed the connection mid-response");
        }
    };
    let head = std::str::from_utf8(&buf[..header_end]).context("non-UTF-8 response head")?;
    let status_ok = head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200");
    if !status_ok {
        bail!("server answered {}", head.lines().next().unwrap_or(""));
    }
    let mut length = None;
    let mut keep = head.starts_with("HTTP/1.1");
    for line in head.lines().skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse::<usize>().context("bad Content-Length")?);
        } else if name.eq_ignore_ascii_case("connection") {
            keep = value.eq_ignore_ascii_case("keep-alive");
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            bail!("chunked responses are not supported by the benchmark");
        }
    }
    match length {
        Some(n) => {
            while buf.len() < header_end + n {
                if read_more(stream, buf).await? == 0 {
                    bail!("server closed the connection mid-body");
                }
            }
        }
        // No length: the body runs to the end of the connection.
        None => while read_more(stream, buf).await? != 0 {},
    }
    Ok((keep && length.is_some(), header_end))
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    buf.reserve(8192);
    stream.read_buf(buf).await
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Where raw requests go.
struct Target {
    addr: String,
    host: String,
    path: String,
}

impl Target {
    fn parse(url: &str) -> anyhow::Result<Target> {
        let rest = url
            .strip_prefix("http://")
            .context("rpcs bench measures http:// (XML-RPC) servers")?;
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/RPC2"),
        };
        let addr = if host.contains(':') {
            host.to_owned()
        } else {
            format!("{host}:80")
        };
        Ok(Target {
            addr,
            host: host.to_owned(),
            path: path.to_owned(),
        })
    }

    fn request(&self, body: &[u8]) -> Vec<u8> {
        let mut req = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n",
            self.path,
            self.host,
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(body);
        req
    }
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
    fn targets() {
        let t = Target::parse("http://127.0.0.1:8000").unwrap();
        assert_eq!(
            (t.addr.as_str(), t.path.as_str()),
            ("127.0.0.1:8000", "/RPC2")
        );
        let t = Target::parse("http://localhost/x").unwrap();
        assert_eq!((t.addr.as_str(), t.path.as_str()), ("localhost:80", "/x"));
        assert!(Target::parse("tcp://x").is_err());
    }
}
