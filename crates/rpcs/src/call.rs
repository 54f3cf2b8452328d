//! `rpcs call` and `rpcs methods`.

use crate::output::{print_human, print_json};
use crate::{Exit, EXIT_FAULT};
use anyhow::Context as _;
use clap::Args;
use rpcs_core::{json, Value};
use rpcs_net::{Client, ClientConfig, ClientError, ClientTls, MethodInfo};
use std::io::Write;
use std::time::Duration;

/// Where and how to connect.
#[derive(Args, Clone)]
pub struct Connection {
    /// Server URL: http://HOST:PORT/ (XML-RPC; no path means /RPC2),
    /// jsonrpc+http://, ws://, msgpack://, msgpack+unix:///PATH (and over TLS
    /// https://, jsonrpc+https://, wss://, msgpack+tls://), a zerorpc
    /// endpoint tcp://HOST:PORT or ipc:///PATH, or a service name rpcs://NAME
    /// (or @NAME) found in the registries. With --connect or --bind, leave it
    /// out: the first word is then the method.
    pub url: Option<String>,
    /// zerorpc: connect to this endpoint (repeat for several).
    #[arg(long, value_name = "ENDPOINT")]
    pub connect: Vec<String>,
    /// zerorpc, reversed mode: bind this endpoint and wait for a server to
    /// connect (repeat for several).
    #[arg(long, value_name = "ENDPOINT")]
    pub bind: Vec<String>,
    /// Seconds to wait for an answer.
    #[arg(long, default_value_t = 30.0)]
    pub timeout: f64,
    /// zerorpc heartbeat interval in seconds.
    #[arg(long, default_value_t = 5.0)]
    pub heartbeat: f64,
    /// Gzip requests larger than this many bytes.
    #[arg(long, value_name = "BYTES")]
    pub gzip_over: Option<usize>,
    /// With rpcs://NAME: the call may run twice without harm, so it is retried
    /// on another instance even when a connection broke after sending it
    /// (calls that never reached an instance are always retried).
    #[arg(long)]
    pub idempotent: bool,
    #[command(flatten)]
    pub tls: TlsArgs,
}

/// How a client checks a TLS server and shows itself to one.
#[derive(Args, Clone, Debug, Default)]
pub struct TlsArgs {
    /// TLS (https://, wss://, msgpack+tls://): trust this CA file (PEM)
    /// instead of the system's.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<std::path::PathBuf>,
    /// TLS: present this client certificate (PEM) to a server that asks.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<std::path::PathBuf>,
    /// TLS: the client certificate's key (PEM).
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<std::path::PathBuf>,
    /// TLS: accept any server certificate. Anyone on the path can then read
    /// and change the calls; for tests only.
    #[arg(long)]
    pub insecure: bool,
}

impl TlsArgs {
    /// The client's TLS settings.
    pub fn client_tls(&self) -> ClientTls {
        ClientTls {
            ca: self.ca.clone(),
            cert: self.cert.clone(),
            key: self.key.clone(),
            insecure_skip_verify: self.insecure,
        }
    }
}

fn seconds(value: f64, flag: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|t| !t.is_zero())
        .with_context(|| format!("{flag} must be a positive number of seconds"))
}

impl Connection {
    /// Whether zerorpc endpoints were given with --connect or --bind.
    fn has_endpoints(&self) -> bool {
        !self.connect.is_empty() || !self.bind.is_empty()
    }

    /// The URL, which every mode but --connect/--bind needs.
    pub fn url(&self) -> anyhow::Result<&str> {
        self.url
            .as_deref()
            .context("a server URL is needed, e.g. http://127.0.0.1:8000/")
    }

    /// The client settings the flags give.
    pub fn config(&self) -> anyhow::Result<ClientConfig> {
        Ok(ClientConfig {
            timeout: seconds(self.timeout, "--timeout")?,
            gzip_requests_over: self.gzip_over,
            idempotent_methods: if self.idempotent {
                vec!["*".into()]
            } else {
                Vec::new()
            },
            tls: self.tls.client_tls(),
            ..ClientConfig::default()
        })
    }

    pub fn client(&self) -> anyhow::Result<Client> {
        let config = self.config()?;
        let heartbeat = seconds(self.heartbeat, "--heartbeat")?;
        if self.has_endpoints() {
            return Ok(Client::zerorpc(
                self.connect.clone(),
                self.bind.clone(),
                config,
                heartbeat,
            )?);
        }
        let url = self.url()?;
        if url.starts_with("tcp://") || url.starts_with("ipc://") {
            return Ok(Client::zerorpc(
                vec![url.to_owned()],
                vec![],
                config,
                heartbeat,
            )?);
        }
        Ok(Client::with_config(url, config)?)
    }
}

/// Arguments of `rpcs call`.
#[derive(Args)]
pub struct CallArgs {
    #[command(flatten)]
    conn: Connection,
    /// The method to call; omit it to list the server's methods.
    method: Option<String>,
    /// Arguments, passed as strings unless --json is given.
    #[arg(allow_negative_numbers = true)]
    args: Vec<String>,
    /// Parse each argument as JSON (numbers, true/false/null, arrays, objects, "strings").
    #[arg(short = 'j', long = "json")]
    json_args: bool,
    /// Print the result as one line of JSON (also spelled -pj).
    #[arg(long)]
    print_json: bool,
}

/// Arguments of `rpcs methods`.
#[derive(Args)]
pub struct MethodsArgs {
    #[command(flatten)]
    conn: Connection,
    /// Print the list as JSON.
    #[arg(long)]
    json: bool,
    /// Also list the underscore aliases (`stack_push` beside `stack.push`),
    /// which are hidden by default.
    #[arg(long)]
    all: bool,
}

/// Turns command-line arguments into call parameters.
pub fn parse_args(args: &[String], as_json: bool) -> anyhow::Result<Vec<Value>> {
    args.iter()
        .enumerate()
        .map(|(i, a)| {
            if !as_json {
                return Ok(Value::String(a.clone()));
            }
            let parsed: serde_json::Value = serde_json::from_str(a)
                .with_context(|| format!("argument {} is not valid JSON: {a}", i + 1))?;
            Ok(json::from_json(parsed))
        })
        .collect()
}

/// Reports a fault on stderr and turns it into the fault exit status.
fn fault_exit(err: ClientError) -> anyhow::Error {
    match err {
        ClientError::Fault(f) => {
            eprintln!("fault {}: {}", f.code, f.message);
            Exit(EXIT_FAULT).into()
        }
        other => other.into(),
    }
}

pub async fn call(mut args: CallArgs) -> anyhow::Result<()> {
    // With --connect/--bind there is no URL: the words move up one place.
    if args.conn.has_endpoints() {
        if let Some(first) = args.conn.url.take() {
            if let Some(method) = args.method.replace(first) {
                args.args.insert(0, method);
            }
        }
    }
    let Some(method) = args.method else {
        return list(&args.conn, args.print_json, false).await;
    };
    let client = args.conn.client()?;
    let params = parse_args(&args.args, args.json_args)?;
    let as_json = args.print_json;
    let mut print_error = None;
    // A streamed result prints item by item, as it arrives.
    let mut each = |item: Value| {
        let printed = if as_json {
            print_json(&item)
        } else {
            print_human(&item)
        };
        if let Err(e) = printed {
            print_error.get_or_insert(e);
        }
    };
    let answer = client
        .call_each(&method, params, &mut each)
        .await
        .map_err(fault_exit)?;
    if let Some(e) = print_error {
        return Err(e.into());
    }
    if let Some(value) = answer {
        if as_json {
            print_json(&value)?;
        } else {
            print_human(&value)?;
        }
    }
    Ok(())
}

pub async fn methods(args: MethodsArgs) -> anyhow::Result<()> {
    list(&args.conn, args.json, args.all).await
}

async fn list(conn: &Connection, as_json: bool, aliases: bool) -> anyhow::Result<()> {
    let client = conn.client()?;
    let mut methods = client.describe().await.map_err(fault_exit)?;
    if !aliases {
        methods = without_aliases(methods);
    }
    if as_json {
        let items: Vec<serde_json::Value> = methods.iter().map(method_json).collect();
        println!("{}", serde_json::to_string(&items)?);
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    for m in &methods {
        writeln!(out, "{}", synopsis(m))?;
        for line in m.help.lines().filter(|l| !l.trim().is_empty()) {
            writeln!(out, "    {}", line.trim())?;
        }
    }
    Ok(())
}

/// The methods without the underscore aliases of dotted names: `stack_push`
/// goes when `stack.push` is there too (the master keeps the original
/// rpcServices names beside its own).
fn without_aliases(methods: Vec<MethodInfo>) -> Vec<MethodInfo> {
    let names: std::collections::HashSet<String> = methods.iter().map(|m| m.name.clone()).collect();
    methods
        .into_iter()
        .filter(|m| {
            let dotted = m.name.replacen('_', ".", 1);
            dotted == m.name || !names.contains(&dotted)
        })
        .collect()
}

fn method_json(m: &MethodInfo) -> serde_json::Value {
    serde_json::json!({"name": m.name, "signatures": m.signatures, "help": m.help})
}

/// `name(int, int) -> int`, one line per signature; just the name when there is none.
pub fn synopsis(m: &MethodInfo) -> String {
    if m.signatures.is_empty() {
        return m.name.clone();
    }
    m.signatures
        .iter()
        .map(|sig| {
            let (ret, params) = sig
                .split_first()
                .map_or(("", &[][..]), |(r, p)| (r.as_str(), p));
            format!("{}({}) -> {}", m.name, params.join(", "), ret)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_as_strings_or_json() {
        let args = vec!["3".to_owned(), "[1, \"x\"]".to_owned()];
        assert_eq!(
            parse_args(&args, false).unwrap(),
            vec![Value::from("3"), Value::from("[1, \"x\"]")]
        );
        assert_eq!(
            parse_args(&args, true).unwrap(),
            vec![
                Value::Int(3),
                Value::Array(vec![Value::Int(1), Value::from("x")])
            ]
        );
        assert!(parse_args(&["{".to_owned()], true).is_err());
    }

    #[test]
    fn synopsis_lines() {
        let m = MethodInfo {
            name: "add".into(),
            signatures: vec![vec!["int".into(), "int".into(), "int".into()]],
            help: String::new(),
        };
        assert_eq!(synopsis(&m), "add(int, int) -> int");
        let bare = MethodInfo {
            signatures: vec![],
            ..m
        };
        assert_eq!(synopsis(&bare), "add");
    }
}
