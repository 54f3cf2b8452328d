//! One look at a master: a few calls (the listings, then one
//! `system.multicall` for every stack's and storage's numbers), and the rates
//! against the look before.

use anyhow::{bail, Result};
use rpcs_core::msgpack::unix_seconds;
use rpcs_core::{DateTime, Map, Value};
use rpcs_net::Client;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The most stacks and storages looked at in one snapshot.
const MAX_LISTED: usize = 500;

/// A logged-in client.
#[derive(Debug, Clone)]
pub struct ClientRow {
    pub name: String,
    pub host: String,
    /// What its status says it is doing (a crawler's `mode`).
    pub mode: String,
    /// Its current URL (a crawler's `url`).
    pub url: String,
    /// Seconds since its last visit.
    pub idle: Option<i64>,
    /// Leases it says it holds.
    pub leases: Option<i64>,
    pub pages: Option<i64>,
    pub errors: Option<i64>,
    /// Messages queued for it.
    pub pending: i64,
}

/// A stack.
#[derive(Debug, Clone)]
pub struct StackRow {
    pub name: String,
    pub size: i64,
    pub leased: i64,
    /// Change in size per second since the snapshot before.
    pub rate: Option<f64>,
}

/// The server's own totals (`rpc.stats`) and their rates.
#[derive(Debug, Clone, Default)]
pub struct ServerRow {
    /// Calls answered since the server started.
    pub calls: i64,
    /// Of which faults.
    pub faults: i64,
    /// Connections open now.
    pub connections: i64,
    /// Calls per second since the snapshot before, the monitor's own left out.
    pub calls_rate: Option<f64>,
    /// Faults per second since the snapshot before.
    pub faults_rate: Option<f64>,
}

/// What a master looks like now.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub at: Instant,
    pub clients: Vec<ClientRow>,
    pub stacks: Vec<StackRow>,
    pub storages: Vec<(String, i64)>,
    /// `None` from a server without `rpc.stats`.
    pub server: Option<ServerRow>,
}

fn names(v: Value) -> Vec<String> {
    match v {
        Value::Array(a) => a
            .into_iter()
            .filter_map(|n| n.as_str().map(str::to_owned))
            .take(MAX_LISTED)
            .collect(),
        _ => Vec::new(),
    }
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn datetime(v: &Value) -> Option<DateTime> {
    match v {
        Value::DateTime(d) => Some(*d),
        Value::String(s) => DateTime::parse(s).ok(),
        _ => None,
    }
}

fn client_row(name: String, c: &Map) -> ClientRow {
    let status = c.get("status").and_then(Value::as_struct);
    let text = |k: &str| {
        status
            .and_then(|s| s.get(k))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let int = |k: &str| status.and_then(|s| s.get(k)).and_then(Value::as_i64);
    let mode = match status {
        Some(_) => text("mode"),
        // A client that reports a plain value shows it as is.
        None => match c.get("status") {
            Some(Value::Nil) | None => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => rpcs_core::json::to_json(other).to_string(),
        },
    };
    ClientRow {
        name,
        host: c.get("host").and_then(Value::as_str).unwrap_or("").into(),
        mode,
        url: text("url"),
        idle: c
            .get("lastVisit")
            .and_then(datetime)
            .map(|d| (now_unix() - unix_seconds(&d)).max(0)),
        leases: int("leases"),
        pages: int("pages"),
        errors: int("errors"),
        pending: c
            .get("pendingMessages")
            .and_then(Value::as_i64)
            .unwrap_or(0),
    }
}

impl Snapshot {
    /// Looks at the master now; rates against `before`.
    pub async fn gather(client: &Client, before: Option<&Snapshot>) -> Result<Snapshot> {
        let clients = match client.call("provider.getAllClients", ()).await? {
            Value::Struct(m) => m
                .into_iter()
                .filter_map(|(name, c)| c.as_struct().map(|c| client_row(name, c)))
                .collect(),
            other => bail!("provider.getAllClients answered {other:?}"),
        };
        let stack_names = names(client.call("stack.getAllNames", ()).await?);
        let storage_names = names(client.call("storage.getAllNames", ()).await?);
        let mut calls = Vec::new();
        for s in &stack_names {
            calls.push(("stack.getSize".to_owned(), vec![Value::String(s.clone())]));
            calls.push((
                "stack.getLeaseCount".to_owned(),
                vec![Value::String(s.clone())],
            ));
        }
        for s in &storage_names {
            calls.push((
                "storage.getAllParameters".to_owned(),
                vec![Value::String(s.clone())],
            ));
        }
        // The calls this look costs, counted in the server's totals: three
        // listings, the multicall, and the previous look's `rpc.stats`.
        let own = 3 + i64::from(!calls.is_empty()) + 1;
        let answers = if calls.is_empty() {
            Vec::new()
        } else {
            client.multicall(calls).await?
        };
        let stats = client.call("rpc.stats", ()).await.ok();
        let at = Instant::now();
        let server = stats.and_then(|v| server_row(&v, before, at, own));
        let int = |i: usize| {
            answers
                .get(i)
                .and_then(|a| a.as_ref().ok()?.as_i64())
                .unwrap_or(0)
        };
        let stacks = stack_names
            .into_iter()
            .enumerate()
            .map(|(i, name)| {
                let size = int(2 * i);
                let rate = before.and_then(|b| {
                    let old = b.stacks.iter().find(|s| s.name == name)?;
                    let secs = at.duration_since(b.at).as_secs_f64();
                    (secs > 0.0).then(|| (size - old.size) as f64 / secs)
                });
                StackRow {
                    name,
                    size,
                    leased: int(2 * i + 1),
                    rate,
                }
            })
            .collect::<Vec<_>>();
        let first = 2 * stacks.len();
        let storages = storage_names
            .into_iter()
            .enumerate()
            .map(|(i, name)| {
                let n = answers
                    .get(first + i)
                    .and_then(|a| a.as_ref().ok()?.as_struct().map(|m| m.len() as i64))
                    .unwrap_or(0);
                (name, n)
            })
            .collect();
        Ok(Snapshot {
            at,
            clients,
            stacks,
            storages,
            server,
        })
    }

    /// As JSON-friendly values.
    pub fn to_value(&self) -> Value {
        let opt = |v: Option<i64>| v.map_or(Value::Nil, Value::Int);
        let clients = self
            .clients
            .iter()
            .map(|c| {
                let mut m = Map::new();
                m.insert("name".into(), Value::String(c.name.clone()));
                m.insert("host".into(), Value::String(c.host.clone()));
                m.insert("mode".into(), Value::String(c.mode.clone()));
                m.insert("url".into(), Value::String(c.url.clone()));
                m.insert("idleSeconds".into(), opt(c.idle));
                m.insert("leases".into(), opt(c.leases));
                m.insert("pages".into(), opt(c.pages));
                m.insert("errors".into(), opt(c.errors));
                m.insert("pendingMessages".into(), Value::Int(c.pending));
                Value::Struct(m)
            })
            .collect();
        let stacks = self
            .stacks
            .iter()
            .map(|s| {
                let mut m = Map::new();
                m.insert("name".into(), Value::String(s.name.clone()));
                m.insert("size".into(), Value::Int(s.size));
                m.insert("leased".into(), Value::Int(s.leased));
                m.insert("rate".into(), s.rate.map_or(Value::Nil, Value::Double));
                Value::Struct(m)
            })
            .collect();
        let storages = self
            .storages
            .iter()
            .map(|(n, size)| (n.clone(), Value::Int(*size)))
            .collect();
        let mut m = Map::new();
        if let Some(server) = &self.server {
            let rate = |r: Option<f64>| r.map_or(Value::Nil, Value::Double);
            let mut s = Map::new();
            s.insert("calls".into(), Value::Int(server.calls));
            s.insert("faults".into(), Value::Int(server.faults));
            s.insert("connections".into(), Value::Int(server.connections));
            s.insert("callsPerSecond".into(), rate(server.calls_rate));
            s.insert("faultsPerSecond".into(), rate(server.faults_rate));
            m.insert("server".into(), Value::Struct(s));
        }
        m.insert("clients".into(), Value::Array(clients));
        m.insert("stacks".into(), Value::Array(stacks));
        m.insert("storages".into(), Value::Struct(storages));
        Value::Struct(m)
    }

    /// As plain lines.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(server) = &self.server {
            out.push(server_line(server));
        }
        out.push(format!("clients {}", self.clients.len()));
        for c in &self.clients {
            out.push(format!("  {}", client_line(c)));
        }
        out.push(format!("stacks {}", self.stacks.len()));
        for s in &self.stacks {
            out.push(format!("  {}", stack_line(s)));
        }
        out.push(format!("storages {}", self.storages.len()));
        for (name, n) in &self.storages {
            out.push(format!("  {name} {n} parameters"));
        }
        out
    }
}

/// The server's row from an `rpc.stats` answer, with rates against `before`
/// (`own`: the calls the monitor itself made in between).
fn server_row(v: &Value, before: Option<&Snapshot>, at: Instant, own: i64) -> Option<ServerRow> {
    let m = v.as_struct()?;
    let get = |k: &str| m.get(k).and_then(Value::as_i64).unwrap_or(0);
    let mut row = ServerRow {
        calls: get("calls"),
        faults: get("faults"),
        connections: get("connections"),
        ..ServerRow::default()
    };
    if let Some(old) = before.and_then(|b| Some((b.at, b.server.as_ref()?))) {
        let secs = at.duration_since(old.0).as_secs_f64();
        if secs > 0.0 {
            let calls = (row.calls - old.1.calls - own).max(0);
            row.calls_rate = Some(calls as f64 / secs);
            row.faults_rate = Some((row.faults - old.1.faults).max(0) as f64 / secs);
        }
    }
    Some(row)
}

/// `calls 1234 (56.0/s)  faults 2 (0.0/s)  connections 5`.
pub fn server_line(s: &ServerRow) -> String {
    let rate = |r: Option<f64>| r.map_or(String::new(), |r| format!(" ({r:.1}/s)"));
    format!(
        "calls {}{}  faults {}{}  connections {}",
        s.calls,
        rate(s.calls_rate),
        s.faults,
        rate(s.faults_rate),
        s.connections
    )
}

fn or_dash(v: Option<i64>) -> String {
    v.map_or("-".into(), |n| n.to_string())
}

/// One client, as the plain view and the terminal view show it.
pub fn client_line(c: &ClientRow) -> String {
    format!(
        "{} {} {} url {} idle {}s leases {} pages {} errors {} messages {}",
        c.name,
        c.host,
        if c.mode.is_empty() { "-" } else { &c.mode },
        if c.url.is_empty() { "-" } else { &c.url },
        or_dash(c.idle),
        or_dash(c.leases),
        or_dash(c.pages),
        or_dash(c.errors),
        c.pending
    )
}

/// One stack, likewise.
pub fn stack_line(s: &StackRow) -> String {
    let rate = s.rate.map_or("-".into(), |r| format!("{r:+.1}/s"));
    format!(
        "{} size {} leased {} change {rate}",
        s.name, s.size, s.leased
    )
}
