//! `rpcs`: call, inspect and benchmark RPC servers from the command line.
//!
//! # Layout
//!
//! - `main.rs`: the clap command tree and exit codes.
//! - `call.rs`: `rpcs call` and `rpcs methods`.
//! - `master.rs`: `rpcs master`, flags and config file; `fdlimit.rs`: the
//!   open-file limit a server raises at start.
//! - `serving.rs`: what server commands share: listener, TLS, token and
//!   limit flags, protected mode, running the listeners.
//! - `serve/`: `rpcs serve`, programs as methods.
//! - `bench.rs`: `rpcs bench`, a closed-loop load generator.
//! - `registry.rs`: `rpcs registry` and `rpcs discover`; `register.rs`: the
//!   `--register` flags of servers.
//! - `output.rs`: rendering values for people and for machines.
//! - `docs.rs`: `rpcs completions` and `rpcs man`, generated from this tree.

mod alloc;
mod bench;
mod call;
mod cert;
mod docs;
mod fdlimit;
mod master;
mod monitor;
mod output;
mod register;
mod registry;
mod serve;
mod serving;
mod token;

use clap::{CommandFactory, Parser, Subcommand};

use std::process::ExitCode;

/// Exit status for a call the server answered with a fault.
const EXIT_FAULT: u8 = 1;
/// Exit status for any other failure (connection, protocol, bad input).
const EXIT_ERROR: u8 = 3;

#[derive(Parser)]
#[command(
    name = "rpcs",
    version,
    about = "Call, inspect and benchmark RPC servers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the master: named stacks, parameter storages and a client provider.
    Master(Box<master::MasterArgs>),
    /// Serve existing programs as RPC methods, as a config file maps them.
    Serve(Box<serve::ServeArgs>),
    /// Call a method; with no method, list the server's methods.
    Call(call::CallArgs),
    /// List a server's methods with their signatures and documentation.
    Methods(call::MethodsArgs),
    /// Measure calls per second and latency percentiles against a server.
    Bench(bench::BenchArgs),
    /// Watch a master live: clients, stacks, storages; steer clients with keys.
    Monitor(monitor::MonitorArgs),
    /// Run a registry: services find each other by name (RPyC's registry
    /// protocol on UDP and TCP, and ours).
    Registry(registry::RegistryArgs),
    /// List the instances of a service name, or every name, from the registries.
    Discover(registry::DiscoverArgs),
    /// Make tokens for servers run with --auth.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Make a CA and certificates, to try TLS (--https, --msgpack-tls).
    #[command(subcommand)]
    Cert(cert::CertCommand),
    /// Print the shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(docs::CompletionsArgs),
    /// Print the manual page, or write one per command into a directory.
    Man(docs::ManArgs),
}

/// An error that already knows its exit status.
#[derive(Debug)]
pub struct Exit(pub u8);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}", self.0)
    }
}

impl std::error::Error for Exit {}

/// zerorpc's CLI spells `--print-json` as `-pj`; accept that spelling too.
fn normalized_args() -> Vec<std::ffi::OsString> {
    std::env::args_os()
        .map(|a| if a == "-pj" { "--print-json".into() } else { a })
        .collect()
}

fn main() -> ExitCode {
    alloc::return_freed_memory();
    let cli = Cli::parse_from(normalized_args());
    // The master does this once it has loaded its state (see there).
    if !matches!(cli.command, Command::Master(_)) {
        alloc::stop_huge_pages();
    }
    // Servers report what they do; one-shot commands only warn.
    let default_level = match cli.command {
        Command::Master(_) | Command::Serve(_) | Command::Registry(_) => "info",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RPCS_LOG")
                .unwrap_or_else(|_| default_level.into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_park(alloc::collect_after_large_calls)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rpcs: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Master(args) => master::master(*args).await,
            Command::Serve(args) => serve::serve(*args).await,
            Command::Call(args) => call::call(args).await,
            Command::Methods(args) => call::methods(args).await,
            Command::Bench(args) => bench::bench(args).await,
            Command::Monitor(args) => monitor::monitor(args).await,
            Command::Registry(args) => registry::registry(args).await,
            Command::Discover(args) => registry::discover(args).await,
            Command::Token(command) => token::token(command),
            Command::Cert(command) => cert::cert(command),
            Command::Completions(args) => docs::completions(args, Cli::command()),
            Command::Man(args) => docs::man(args, Cli::command()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => match e.downcast_ref::<Exit>() {
            Some(Exit(code)) => ExitCode::from(*code),
            None if is_broken_pipe(&e) => ExitCode::SUCCESS,
            None => {
                eprintln!("rpcs: {e:#}");
                ExitCode::from(EXIT_ERROR)
            }
        },
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// clap checks a command's definition only when it is used: this checks
    /// every command's at once (a required positional after an optional one
    /// once broke `rpcs bench` and the generated completions).
    #[test]
    fn the_command_tree_is_consistent() {
        Cli::command().debug_assert();
    }
}
