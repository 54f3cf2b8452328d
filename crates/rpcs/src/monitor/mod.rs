//! `rpcs monitor URL`: a live view of a master — its logged-in clients with
//! their status, current URL, last visit and leases; its stacks with sizes,
//! items under lease and how fast they change; its storages with sizes —
//! refreshed in place in a terminal (with keys to send commands to a client
//! or to all), as plain lines when standard output is not a terminal, or as
//! JSON.

mod snapshot;
mod tui;

use anyhow::{Context as _, Result};
use clap::Args;
use rpcs_core::Value;
use rpcs_net::Client;
use snapshot::Snapshot;
use std::io::IsTerminal;
use std::time::Duration;

/// Arguments of `rpcs monitor`.
#[derive(Args)]
pub struct MonitorArgs {
    /// The master's URL (any protocol).
    #[arg(default_value = "http://127.0.0.1:8000/")]
    url: String,
    /// Seconds between refreshes.
    #[arg(long, default_value_t = 1.0)]
    interval: f64,
    /// Print one snapshot and exit.
    #[arg(long)]
    once: bool,
    /// Print snapshots as JSON objects, one per line.
    #[arg(long)]
    json: bool,
    /// Plain lines even on a terminal.
    #[arg(long)]
    plain: bool,
    #[command(flatten)]
    tls: crate::call::TlsArgs,
}

/// Runs the monitor.
pub async fn monitor(args: MonitorArgs) -> Result<()> {
    let config = rpcs_net::ClientConfig {
        tls: args.tls.client_tls(),
        ..rpcs_net::ClientConfig::default()
    };
    let client = Client::with_config(&args.url, config)
        .with_context(|| rpcs_net::client::redacted(&args.url))?;
    let interval = Duration::try_from_secs_f64(args.interval)
        .ok()
        .filter(|d| !d.is_zero())
        .context("--interval: a positive number of seconds")?;
    let live = !args.once && !args.json && !args.plain && std::io::stdout().is_terminal();
    if live {
        return tui::run(client, &args.url, interval).await;
    }
    let mut previous: Option<Snapshot> = None;
    loop {
        let now = Snapshot::gather(&client, previous.as_ref()).await?;
        if args.json {
            println!("{}", rpcs_core::json::to_json(&now.to_value()));
        } else {
            for line in now.lines() {
                println!("{line}");
            }
            println!();
        }
        if args.once {
            return Ok(());
        }
        previous = Some(now);
        tokio::time::sleep(interval).await;
    }
}

/// Sends `message` to the client `to`, or to every logged-in client; how
/// many got it.
async fn send(client: &Client, to: Option<&str>, message: &str) -> Result<usize> {
    let names: Vec<String> = match to {
        Some(name) => vec![name.to_owned()],
        None => match client.call("provider.getAllClientNames", ()).await? {
            Value::Array(names) => names
                .into_iter()
                .filter_map(|n| n.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        },
    };
    for name in &names {
        let params = vec![Value::String(name.clone()), Value::String(message.into())];
        client.call("provider.sendMessage", params).await?;
    }
    Ok(names.len())
}
