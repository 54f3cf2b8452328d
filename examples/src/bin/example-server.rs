//! Serves the example methods (`add`, `addtogether`, `quadratic`, `remote_repr`,
//! `spin`, `spinList`, `line_counter`) over XML-RPC and JSON-RPC (HTTP), and
//! MessagePack-RPC when asked.
//!
//! `cargo run -p rpcs-examples --bin example-server -- --listen 127.0.0.1:8008`

use clap::Parser;
use rpcs_core::registration::Registration;
use rpcs_core::Dispatcher;
use rpcs_net::{Listener, Registrar, Registries, Server, ServerConfig};

#[derive(Parser)]
#[command(about = "Serve the rpcs example methods over XML-RPC")]
struct Args {
    /// HTTP address (XML-RPC and JSON-RPC; repeat for several); port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8008")]
    listen: Vec<String>,
    /// MessagePack-RPC address (repeat for several).
    #[arg(long)]
    msgpack: Vec<String>,
    /// zerorpc endpoint to bind, e.g. tcp://127.0.0.1:4242 (repeat for several).
    #[arg(long)]
    zerorpc: Vec<String>,
    /// Register with the registries under NAME while serving (repeat for
    /// several names); clients then reach it as rpcs://NAME.
    #[arg(long, value_name = "NAME")]
    register: Vec<String>,
    /// The registries: HOST[:PORT] or URLs, separated by commas [default:
    /// $RPCS_REGISTRY, else 127.0.0.1:18811,255.255.255.255:18811].
    #[arg(long, value_name = "LIST")]
    registry: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    let shutdown = rpcs_net::server::shutdown_signal()?;
    let mut listeners = Vec::new();
    for addr in &args.listen {
        listeners.push(Listener::http(addr).await?);
    }
    for addr in &args.msgpack {
        listeners.push(Listener::msgpack_tcp(addr).await?);
    }
    if !args.zerorpc.is_empty() {
        listeners.push(Listener::zerorpc(&args.zerorpc, &[]).await?);
    }
    let mut urls = Vec::new();
    for l in &listeners {
        // Tests and scripts read these lines to learn the ports.
        println!("listening on {}", l.url()?);
        urls.push(l.url()?);
    }
    let registrar = if args.register.is_empty() {
        None
    } else {
        let registries = Registries::given_or_env(args.registry.as_deref())?;
        let registration = Registration::new(args.register.clone(), urls);
        Some(Registrar::start(registries, registration, None))
    };
    // Leave the registries before draining, so clients stop choosing it.
    let shutdown = async move {
        shutdown.await;
        if let Some(r) = registrar {
            r.stop().await;
        }
    };
    let server = Server::new(
        Dispatcher::new(rpcs_examples::seed::table()),
        ServerConfig::default(),
    );
    server.run(listeners, shutdown).await?;
    Ok(())
}
