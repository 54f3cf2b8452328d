//! What a server counts, and `GET /metrics` in the Prometheus text format
//! (version 0.0.4): calls and faults per method and protocol, call latency
//! per method, connections per listener, bytes in and out per protocol,
//! failed authentications and the build; plus whatever the application adds
//! through [`MetricsSource`] (the master adds its stacks, leases and store).
//!
//! Label values come only from the method table and a fixed list of
//! protocols, never from the wire: a call to a method the table does not
//! have counts as `method="<unknown>"`, so no client can grow the output.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

pub use rpcs_core::metrics::{escape, family, Histogram, CONTENT_TYPE};
use rpcs_core::table::{BoxFuture, MethodTable};
use rpcs_core::value::{Map, Value};

/// The protocols calls are counted under (as `Context::protocol` names them);
/// anything else counts as the last, `other`.
const PROTOCOLS: [&str; 8] = [
    "xmlrpc",
    "jsonrpc",
    "jsonrpc-ws",
    "msgpack-rpc",
    "zerorpc",
    "rpyc",
    "msgpack",
    "other",
];

/// What the name of a method the table does not have counts as.
const UNKNOWN: &str = "<unknown>";

fn protocol_index(protocol: &str) -> usize {
    PROTOCOLS
        .iter()
        .position(|p| *p == protocol)
        .unwrap_or(PROTOCOLS.len() - 1)
}

/// Counts of one method.
#[derive(Default)]
pub(crate) struct MethodStats {
    calls: [AtomicU64; PROTOCOLS.len()],
    faults: [AtomicU64; PROTOCOLS.len()],
    latency: Histogram,
}

impl MethodStats {
    /// Counts one call answered after `took`, with a fault or not.
    pub(crate) fn record(&self, protocol: &str, fault: bool, took: Duration) {
        let protocol = protocol_index(protocol);
        self.calls[protocol].fetch_add(1, Ordering::Relaxed);
        if fault {
            self.faults[protocol].fetch_add(1, Ordering::Relaxed);
        }
        self.latency.observe(took);
    }

    fn count(&self) -> u64 {
        self.latency.count()
    }
}

/// Connections of one listener.
#[derive(Default)]
pub(crate) struct ListenerStats {
    /// Connections accepted (given a slot) so far.
    pub(crate) accepted: AtomicU64,
    /// Connections refused for want of a slot.
    pub(crate) refused: AtomicU64,
    /// Connections open now.
    pub(crate) open: AtomicU64,
}

/// Bytes one protocol moved.
#[derive(Default)]
struct Traffic {
    received: AtomicU64,
    sent: AtomicU64,
}

/// The metrics an application adds: called on every scrape, it returns text
/// in the same format (with its own `# HELP` and `# TYPE` lines).
pub trait MetricsSource: Send + Sync {
    /// The application's metrics, rendered.
    fn render(&self) -> BoxFuture<String>;
}

/// Everything a server counts.
pub(crate) struct Metrics {
    methods: HashMap<String, MethodStats>,
    unknown: MethodStats,
    traffic: [Traffic; PROTOCOLS.len()],
    listeners: Mutex<Vec<(String, Arc<ListenerStats>)>>,
    source: OnceLock<Arc<dyn MetricsSource>>,
}

impl Metrics {
    /// Counters for every method of `table`.
    pub(crate) fn new(table: &MethodTable) -> Metrics {
        Metrics {
            methods: table
                .method_names()
                .map(|name| (name.to_owned(), MethodStats::default()))
                .collect(),
            unknown: MethodStats::default(),
            traffic: Default::default(),
            listeners: Mutex::new(Vec::new()),
            source: OnceLock::new(),
        }
    }

    /// Adds the application's own metrics to every scrape (the first source
    /// set stays).
    pub(crate) fn set_source(&self, source: Arc<dyn MetricsSource>) {
        let _ = self.source.set(source);
    }

    /// The counts of `method` (of unknown methods when the table has none
    /// of that name).
    pub(crate) fn method(&self, method: &str) -> &MethodStats {
        self.methods.get(method).unwrap_or(&self.unknown)
    }

    /// Counts bytes a protocol received and sent.
    pub(crate) fn record_bytes(&self, protocol: &str, received: usize, sent: usize) {
        let t = &self.traffic[protocol_index(protocol)];
        t.received.fetch_add(received as u64, Ordering::Relaxed);
        t.sent.fetch_add(sent as u64, Ordering::Relaxed);
    }

    /// The counters of a new listener reached at `url`.
    pub(crate) fn listener(&self, url: &str) -> Arc<ListenerStats> {
        let stats = Arc::new(ListenerStats::default());
        let mut listeners = self.listeners.lock().unwrap_or_else(|p| p.into_inner());
        listeners.push((url.to_owned(), stats.clone()));
        stats
    }

    /// The totals `rpc.stats` answers: calls and faults over every method
    /// and protocol, and the connections open now.
    pub(crate) fn totals(&self) -> Value {
        let sum = |pick: fn(&MethodStats) -> &[AtomicU64; PROTOCOLS.len()]| -> i64 {
            let all = self.methods.values().chain(std::iter::once(&self.unknown));
            let n: u64 = all
                .flat_map(|m| pick(m).iter())
                .map(|c| c.load(Ordering::Relaxed))
                .sum();
            i64::try_from(n).unwrap_or(i64::MAX)
        };
        let listeners = self.listeners.lock().unwrap_or_else(|p| p.into_inner());
        let open: u64 = listeners
            .iter()
            .map(|(_, s)| s.open.load(Ordering::Relaxed))
            .sum();
        let mut map = Map::new();
        map.insert("calls".into(), Value::Int(sum(|m| &m.calls)));
        map.insert("faults".into(), Value::Int(sum(|m| &m.faults)));
        map.insert(
            "connections".into(),
            Value::Int(i64::try_from(open).unwrap_or(i64::MAX)),
        );
        Value::Struct(map)
    }

    /// Every metric, in the text format; `auth_failures` when the server
    /// checks tokens.
    pub(crate) async fn render(&self, auth_failures: Option<u64>) -> String {
        let mut out = String::with_capacity(8 * 1024);
        self.render_build(&mut out);
        self.render_calls(&mut out);
        self.render_latency(&mut out);
        self.render_listeners(&mut out);
        self.render_traffic(&mut out);
        if let Some(failures) = auth_failures {
            family(
                &mut out,
                "rpcs_auth_failures_total",
                "counter",
                "Credentials refused.",
            );
            let _ = writeln!(out, "rpcs_auth_failures_total {failures}");
        }
        if let Some(source) = self.source.get() {
            out.push_str(&source.render().await);
        }
        out
    }

    fn render_build(&self, out: &mut String) {
        family(
            out,
            "rpcs_build_info",
            "gauge",
            "The running build (always 1).",
        );
        let _ = writeln!(
            out,
            "rpcs_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
    }

    /// The methods with calls, sorted by name, then the unknown ones.
    fn called(&self) -> Vec<(&str, &MethodStats)> {
        let mut called: Vec<(&str, &MethodStats)> = self
            .methods
            .iter()
            .map(|(name, stats)| (name.as_str(), stats))
            .filter(|(_, stats)| stats.count() > 0)
            .collect();
        called.sort_by(|a, b| a.0.cmp(b.0));
        if self.unknown.count() > 0 {
            called.push((UNKNOWN, &self.unknown));
        }
        called
    }

    fn render_calls(&self, out: &mut String) {
        let called = self.called();
        for (name, help, counters) in [
            (
                "rpcs_calls_total",
                "Calls answered, by method and protocol.",
                (|s: &MethodStats| &s.calls) as fn(&MethodStats) -> &[AtomicU64; PROTOCOLS.len()],
            ),
            (
                "rpcs_faults_total",
                "Calls answered with a fault, by method and protocol.",
                |s: &MethodStats| &s.faults,
            ),
        ] {
            family(out, name, "counter", help);
            for (method, stats) in &called {
                for (protocol, n) in PROTOCOLS.iter().zip(counters(stats)) {
                    let n = n.load(Ordering::Relaxed);
                    if n > 0 {
                        let method = escape(method);
                        let _ = writeln!(
                            out,
                            "{name}{{method=\"{method}\",protocol=\"{protocol}\"}} {n}"
                        );
                    }
                }
            }
        }
    }

    fn render_latency(&self, out: &mut String) {
        let name = "rpcs_call_duration_seconds";
        family(
            out,
            name,
            "histogram",
            "Time from decoded call to answer, by method.",
        );
        for (method, stats) in self.called() {
            let labels = format!("method=\"{}\"", escape(method));
            stats.latency.render(out, name, &labels);
        }
    }

    fn render_listeners(&self, out: &mut String) {
        let listeners = self.listeners.lock().unwrap_or_else(|p| p.into_inner());
        for (name, kind, help, field) in [
            (
                "rpcs_connections_open",
                "gauge",
                "Connections open now, by listener.",
                (|s: &ListenerStats| &s.open) as fn(&ListenerStats) -> &AtomicU64,
            ),
            (
                "rpcs_connections_accepted_total",
                "counter",
                "Connections accepted, by listener.",
                |s: &ListenerStats| &s.accepted,
            ),
            (
                "rpcs_connections_refused_total",
                "counter",
                "Connections refused at the connection cap, by listener.",
                |s: &ListenerStats| &s.refused,
            ),
        ] {
            family(out, name, kind, help);
            for (url, stats) in listeners.iter() {
                let n = field(stats).load(Ordering::Relaxed);
                let _ = writeln!(out, "{name}{{listener=\"{}\"}} {n}", escape(url));
            }
        }
    }

    fn render_traffic(&self, out: &mut String) {
        for (name, help, field) in [
            (
                "rpcs_received_bytes_total",
                "Bytes of requests received, by protocol.",
                (|t: &Traffic| &t.received) as fn(&Traffic) -> &AtomicU64,
            ),
            (
                "rpcs_sent_bytes_total",
                "Bytes of answers sent, by protocol.",
                |t: &Traffic| &t.sent,
            ),
        ] {
            family(out, name, "counter", help);
            for (protocol, traffic) in PROTOCOLS.iter().zip(&self.traffic) {
                let n = field(traffic).load(Ordering::Relaxed);
                if n > 0 {
                    let _ = writeln!(out, "{name}{{protocol=\"{protocol}\"}} {n}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> MethodTable {
        rpcs_core::dispatch::Dispatcher::new(MethodTable::new())
            .table()
            .clone()
    }

    #[test]
    fn a_method_outside_the_table_counts_as_unknown() {
        let metrics = Metrics::new(&table());
        metrics
            .method("no.such\"method")
            .record("xmlrpc", false, Duration::from_micros(10));
        let text = block_on(metrics.render(None));
        assert!(text.contains("rpcs_calls_total{method=\"<unknown>\",protocol=\"xmlrpc\"} 1"));
        assert!(!text.contains("no.such"));
    }

    #[test]
    fn faults_and_buckets_are_counted_per_method_and_protocol() {
        let metrics = Metrics::new(&table());
        metrics
            .method("system.listMethods")
            .record("msgpack-rpc", true, Duration::from_millis(3));
        metrics.method("system.listMethods").record(
            "msgpack-rpc",
            false,
            Duration::from_micros(20),
        );
        metrics.method("system.listMethods").record(
            "carrier-pigeon",
            false,
            Duration::from_secs(99),
        );
        let text = block_on(metrics.render(Some(2)));
        let m = "method=\"system.listMethods\"";
        assert!(text.contains(&format!(
            "rpcs_calls_total{{{m},protocol=\"msgpack-rpc\"}} 2"
        )));
        assert!(text.contains(&format!("rpcs_calls_total{{{m},protocol=\"other\"}} 1")));
        assert!(text.contains(&format!(
            "rpcs_faults_total{{{m},protocol=\"msgpack-rpc\"}} 1"
        )));
        assert!(text.contains(&format!(
            "rpcs_call_duration_seconds_bucket{{{m},le=\"0.00005\"}} 1"
        )));
        assert!(text.contains(&format!(
            "rpcs_call_duration_seconds_bucket{{{m},le=\"0.005\"}} 2"
        )));
        assert!(text.contains(&format!(
            "rpcs_call_duration_seconds_bucket{{{m},le=\"+Inf\"}} 3"
        )));
        assert!(text.contains(&format!("rpcs_call_duration_seconds_count{{{m}}} 3")));
        assert!(text.contains("rpcs_auth_failures_total 2"));
    }

    /// Runs a future that never waits (no source is set).
    fn block_on<F: std::future::Future>(fut: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(fut)
    }
}
