//! `rpcs serve`: existing programs as RPC methods, unchanged. A config file
//! maps method names to executables with argument templates (never a shell),
//! and the methods are served on every protocol with the server's limits,
//! tokens and metrics.
//!
//! # Layout
//!
//! - `config.rs`: the TOML file, checked and resolved at start.
//! - `param.rs`: declared parameters and the checks of a caller's values.
//! - `template.rs`: argument templates and the option-injection guard.
//! - `process.rs`: a program in its own process group, and ending that group.
//! - `run.rs`: running a program to its end with capped output and a timeout.
//! - `stream.rs`: standard output line by line, for streaming methods.
//! - `limit.rs`: programs running at once, per method and overall.
//! - `methods.rs`: the methods on a method table.

mod config;
mod limit;
mod methods;
mod param;
mod process;
mod run;
mod stream;
mod template;

use crate::serving::{fit_open_files, read_config, ServerArgs};
use anyhow::Context as _;
use clap::Args;
use config::ServeFile;
use rpcs_core::Dispatcher;
use rpcs_net::Server;
use std::path::PathBuf;
use tracing::info;

/// Arguments of `rpcs serve`; the server flags override the same keys of the
/// config file.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The TOML file of methods ([[method]] tables) and, optionally, the
    /// server keys `rpcs master` takes (listen, zerorpc, auth, ...).
    #[arg(value_name = "CONFIG")]
    config: PathBuf,
    /// Programs running at once over all methods; a call beyond it is
    /// refused with a Busy fault [default: 16, or the file's max_concurrent].
    #[arg(long, value_name = "N")]
    max_concurrent: Option<usize>,
    /// Check the config file, print the methods it serves and exit.
    #[arg(long)]
    check: bool,
    #[command(flatten)]
    server: ServerArgs,
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let file: ServeFile = read_config(Some(&args.config))?;
    let base = match args.config.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let defs = file
        .methods(&base)
        .with_context(|| format!("in {}", args.config.display()))?;
    anyhow::ensure!(
        !defs.is_empty(),
        "{} serves no method: add a [[method]] table",
        args.config.display()
    );
    let max_concurrent =
        (args.max_concurrent.or(file.max_concurrent)).unwrap_or(config::DEFAULT_MAX_CONCURRENT);
    anyhow::ensure!(max_concurrent > 0, "max_concurrent must be at least 1");
    let count = defs.len();
    let table = methods::table(defs, &limit::Global::new(max_concurrent));
    if args.check {
        for method in table.methods() {
            println!("{}  {}", method.synopsis(), method.doc());
        }
        return Ok(());
    }
    let settings = args.server.settings(file.server, "127.0.0.1:8010")?;
    settings.check_exposure("run the served programs")?;
    let shutdown = rpcs_net::server::shutdown_signal().context("installing signal handlers")?;
    let server = Server::new(
        Dispatcher::new(table),
        fit_open_files(settings.config.clone()),
    );
    if let Some(protocol) = settings.stdio {
        info!(
            methods = count,
            ?protocol,
            "serving one session on stdin/stdout"
        );
        crate::serving::serve_stdio(&server, protocol, shutdown).await?;
        return Ok(());
    }
    let listeners = settings.bind().await?;
    let tokens = server.config().auth.is_some();
    info!(
        methods = count,
        max_concurrent,
        auth = tokens,
        "serving programs"
    );
    settings.run(server, listeners, shutdown).await?;
    info!("stopped");
    Ok(())
}
