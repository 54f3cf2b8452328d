//! The master's own metrics on `GET /metrics`, beside the server's: stacks
//! (items and leased items, per stack), storages, logged-in clients and
//! their pending messages, and the embedded store's commit and sync times.

use std::fmt::Write as _;
use std::sync::Arc;

use rpcs_core::metrics::{escape, family};

use crate::backend::Backend;
use crate::journal::{COMMIT_TIMES, SYNC_TIMES};
use crate::traffic::Traffic;

/// Stacks listed one by one, at most (the first by name): a master with
/// millions of stacks must not answer a scrape with millions of lines.
const MAX_STACKS_LISTED: usize = 1000;

/// Renders the master's metrics from its backend on each scrape.
#[derive(Clone)]
pub struct MasterMetrics {
    backend: Arc<dyn Backend>,
    traffic: Option<Arc<Traffic>>,
}

impl MasterMetrics {
    /// Metrics read from `backend`.
    pub fn new(backend: Arc<dyn Backend>) -> MasterMetrics {
        MasterMetrics {
            backend,
            traffic: None,
        }
    }

    /// Adds the counters of items in and out per stack.
    pub fn with_traffic(mut self, traffic: Arc<Traffic>) -> MasterMetrics {
        self.traffic = Some(traffic);
        self
    }
}

impl MasterMetrics {
    /// The metrics as they are now, in the Prometheus text format.
    pub async fn render(&self) -> String {
        let mut out = String::new();
        stacks(&*self.backend, self.traffic.as_deref(), &mut out).await;
        storages_and_clients(&*self.backend, &mut out).await;
        store(&mut out);
        out
    }
}

async fn stacks(backend: &dyn Backend, traffic: Option<&Traffic>, out: &mut String) {
    // A backend that cannot answer (Redis down) leaves its families out; the
    // scrape still succeeds with the rest.
    let Ok(mut names) = backend.stack_names().await else {
        return;
    };
    names.sort();
    family(out, "rpcs_stacks", "gauge", "Stacks.");
    let _ = writeln!(out, "rpcs_stacks {}", names.len());
    let mut rows = Vec::new();
    for name in names.iter().take(MAX_STACKS_LISTED) {
        let size = backend.stack_size(name.clone()).await.ok().flatten();
        let leased = backend.stack_leased(name.clone()).await.ok().flatten();
        if let (Some(size), Some(leased)) = (size, leased) {
            let (added, removed) = traffic.map_or((0, 0), |t| t.of(name));
            rows.push(Row {
                name: escape(name),
                size,
                leased,
                added,
                removed,
            });
        }
    }
    let gauges: [Family; 2] = [
        (
            "rpcs_stack_items",
            "Items on a stack, waiting to be popped or taken.",
            |r| r.size,
        ),
        (
            "rpcs_stack_leased_items",
            "Items of a stack taken under a lease and not yet acked or released.",
            |r| r.leased,
        ),
    ];
    // Counters of items through this master: a rate is what Prometheus
    // makes of them.
    let counters: [Family; 2] = [
        (
            "rpcs_stack_items_in_total",
            "Items pushed on a stack or released back to it, through this master.",
            |r| r.added,
        ),
        (
            "rpcs_stack_items_out_total",
            "Items popped or taken from a stack, through this master.",
            |r| r.removed,
        ),
    ];
    per_stack(out, "gauge", &gauges, &rows);
    if traffic.is_some() {
        per_stack(out, "counter", &counters, &rows);
    }
    family(
        out,
        "rpcs_leases",
        "gauge",
        "Leases held, over every stack.",
    );
    let held: u64 = rows.iter().map(|r| r.leased).sum();
    let _ = writeln!(out, "rpcs_leases {held}");
}

/// One listed stack's numbers.
struct Row {
    /// Escaped for a label.
    name: String,
    size: u64,
    leased: u64,
    added: u64,
    removed: u64,
}

/// A family of one sample per stack: its name, help, and what it reads.
type Family = (&'static str, &'static str, fn(&Row) -> u64);

fn per_stack(out: &mut String, kind: &str, families: &[Family], rows: &[Row]) {
    for (name, help, pick) in families {
        family(out, name, kind, help);
        for row in rows {
            let _ = writeln!(out, "{name}{{stack=\"{}\"}} {}", row.name, pick(row));
        }
    }
}

async fn storages_and_clients(backend: &dyn Backend, out: &mut String) {
    if let Ok(names) = backend.storage_names().await {
        family(out, "rpcs_storages", "gauge", "Parameter storages.");
        let _ = writeln!(out, "rpcs_storages {}", names.len());
    }
    if let Ok(sessions) = backend.sessions().await {
        family(
            out,
            "rpcs_clients",
            "gauge",
            "Clients logged in to the provider.",
        );
        let _ = writeln!(out, "rpcs_clients {}", sessions.len());
        family(
            out,
            "rpcs_client_messages_pending",
            "gauge",
            "Messages waiting for their client, over every client.",
        );
        let pending: u64 = sessions.iter().map(|(_, s)| s.pending).sum();
        let _ = writeln!(out, "rpcs_client_messages_pending {pending}");
    }
}

/// The embedded store's times, once it has any (memory and Redis backends
/// never do).
fn store(out: &mut String) {
    for (name, help, times) in [
        (
            "rpcs_store_commit_duration_seconds",
            "Strict durability: writing a batch of records and syncing it.",
            &COMMIT_TIMES,
        ),
        (
            "rpcs_store_sync_duration_seconds",
            "Relaxed durability: the periodic sync of the journal.",
            &SYNC_TIMES,
        ),
    ] {
        if times.count() > 0 {
            family(out, name, "histogram", help);
            times.render(out, name, "");
        }
    }
}
