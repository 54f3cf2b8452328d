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
    /// Items pushed or released back, and popped or taken, through the
    /// master so far (`stack.getStats`).
    pub items_in: i64,
    pub items_out: i64,
    /// Change in size per second since the snapshot before.
    pub rate: Option<f64>,
    /// Items in and out per second since the snapshot before.
    pub in_rate: Option<f64>,
    pub out_rate: Option<f64>,
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
            calls.push(("stack.getStats".to_owned(), vec![Value::String(s.clone())]));
        }
        for s in &storage_names {
            calls.push(("storage.getSize".to_owned(), vec![Value::String(s.clone())]));
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
        let stacks = stack_names
            .into_iter()
            .enumerate()
            .map(|(i, name)| {
                let stats = answers.get(i).and_then(|a| a.as_ref().ok()?.as_struct());
                stack_row(name, stats, before, at)
            })
            .collect::<Vec<_>>();
        let first = stacks.len();
        let storages = storage_names
            .into_iter()
            .enumerate()
            .map(|(i, name)| {
                let n = answers
                    .get(first + i)
                    .and_then(|a| a.as_ref().ok()?.as_i64())
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
                m.insert("itemsIn".into(), Value::Int(s.items_in));
                m.insert("itemsOut".into(), Value::Int(s.items_out));
                let rate = |r: Option<f64>| r.map_or(Value::Nil, Value::Double);
                m.insert("rate".into(), rate(s.rate));
                m.insert("inPerSecond".into(), rate(s.in_rate));
                m.insert("outPerSecond".into(), rate(s.out_rate));
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

/// A stack's row from its `stack.getStats`, with rates against `before`.
fn stack_row(
    name: String,
    stats: Option<&Map>,
    before: Option<&Snapshot>,
    at: Instant,
) -> StackRow {
    let get = |k: &str| stats.and_then(|m| m.get(k)?.as_i64()).unwrap_or(0);
    let mut row = StackRow {
        size: get("size"),
        leased: get("leased"),
        items_in: get("itemsIn"),
        items_out: get("itemsOut"),
        rate: None,
        in_rate: None,
        out_rate: None,
        name,
    };
    let old = before.and_then(|b| Some((b.at, b.stacks.iter().find(|s| s.name == row.name)?)));
    if let Some((then, old)) = old {
        let secs = at.duration_since(then).as_secs_f64();
        if secs > 0.0 {
            let per_second = |now: i64, was: i64| (now - was) as f64 / secs;
            row.rate = Some(per_second(row.size, old.size));
            // A master that restarted counts from zero again.
            row.in_rate = Some(per_second(row.items_in, old.items_in).max(0.0));
            row.out_rate = Some(per_second(row.items_out, old.items_out).max(0.0));
        }
    }
    row
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
    format!(
        "{} size {} leased {} in {} out {} change {}",
        s.name,
        s.size,
        s.leased,
        per_second(s.in_rate),
        per_second(s.out_rate),
        change(s.rate)
    )
}

/// `12.0/s`, or `-` before there is a rate.
pub fn per_second(r: Option<f64>) -> String {
    r.map_or("-".into(), |r| format!("{r:.1}/s"))
}

/// `+1.5/s`, or `-` before there is a rate.
pub fn change(r: Option<f64>) -> String {
    r.map_or("-".into(), |r| format!("{r:+.1}/s"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn stats(size: i64, items_in: i64, items_out: i64) -> Map {
        let mut m = Map::new();
        m.insert("size".into(), Value::Int(size));
        m.insert("leased".into(), Value::Int(1));
        m.insert("itemsIn".into(), Value::Int(items_in));
        m.insert("itemsOut".into(), Value::Int(items_out));
        m
    }

    fn snapshot_with(stack: StackRow, at: Instant) -> Snapshot {
        Snapshot {
            at,
            clients: Vec::new(),
            stacks: vec![stack],
            storages: Vec::new(),
            server: None,
        }
    }

    #[test]
    fn a_stack_has_rates_in_and_out_against_the_look_before() {
        let then = Instant::now();
        let first = stack_row("jobs".into(), Some(&stats(10, 100, 90)), None, then);
        assert_eq!(
            (first.in_rate, first.out_rate, first.rate),
            (None, None, None)
        );
        let before = snapshot_with(first, then);
        let now = then + Duration::from_secs(2);
        let row = stack_row(
            "jobs".into(),
            Some(&stats(14, 120, 106)),
            Some(&before),
            now,
        );
        assert_eq!(row.in_rate, Some(10.0));
        assert_eq!(row.out_rate, Some(8.0));
        assert_eq!(row.rate, Some(2.0));
        assert_eq!(
            stack_line(&row),
            "jobs size 14 leased 1 in 10.0/s out 8.0/s change +2.0/s"
        );
    }

    #[test]
    fn a_restarted_master_gives_no_negative_rates() {
        let then = Instant::now();
        let before = snapshot_with(
            stack_row("jobs".into(), Some(&stats(10, 100, 90)), None, then),
            then,
        );
        let now = then + Duration::from_secs(1);
        let row = stack_row("jobs".into(), Some(&stats(10, 3, 1)), Some(&before), now);
        assert_eq!((row.in_rate, row.out_rate), (Some(0.0), Some(0.0)));
    }
}
