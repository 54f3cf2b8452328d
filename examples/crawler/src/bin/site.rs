//! `rpcs-crawl-site`: serves the generated site (see `rpcs_crawler::site`)
//! until interrupted, to try a crawl on or to measure crawlers against.

use clap::Parser;
use rpcs_crawler::site::{serve, HostPlan};
use std::net::IpAddr;

/// Serves a generated multi-host site on loopback addresses.
#[derive(Parser)]
struct Cli {
    /// The addresses, one host each (any of 127.0.0.0/8 works on Linux).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "127.0.0.1,127.0.0.2,127.0.0.3"
    )]
    hosts: Vec<IpAddr>,
    /// The port every host listens on (0: a free one each).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Numbered pages per host.
    #[arg(long, default_value_t = 1000)]
    pages: usize,
    /// Only plain pages: no robots.txt rules, redirects, errors or trap.
    #[arg(long)]
    plain: bool,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let cli = Cli::parse();
    let plans: Vec<HostPlan> = cli
        .hosts
        .iter()
        .enumerate()
        .map(|(i, ip)| HostPlan {
            ip: *ip,
            port: cli.port,
            pages: cli.pages,
            crawl_delay: None,
            disallow_private: !cli.plain && i == 0,
            specials: !cli.plain && i == 0,
        })
        .collect();
    let site = serve(&plans).await?;
    for root in &site.roots {
        println!("{root}");
    }
    tokio::signal::ctrl_c().await
}
