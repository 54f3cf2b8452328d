//! `rpcs call` and `rpcs methods`.

use crate::output::{print_human, print_json};
use crate::{Exit, EXIT_FAULT};
use anyhow::Context as _;
use clap::Args;
use rpcs_core::{json, Value};
use rpcs_net::{Client, ClientConfig, ClientError, MethodInfo};
use std::io::Write;
use std::time::Duration;

/// Where and how to connect.
#[derive(Args, Clone)]
pub struct Connection {
    /// Server URL, e.g. http://127.0.0.1:8000/ (XML-RPC over HTTP; a URL without
    /// a path uses /RPC2).
    pub url: String,
    /// Seconds to wait for an answer.
    #[arg(long, default_value_t = 30.0)]
    pub timeout: f64,
    /// Gzip requests larger than this many bytes.
    #[arg(long, value_name = "BYTES")]
    pub gzip_over: Option<usize>,
}

impl Connection {
    pub fn client(&self) -> anyhow::Result<Client> {
        let timeout = Duration::try_from_secs_f64(self.timeout)
            .ok()
            .filter(|t| !t.is_zero())
            .context("--timeout must be a positive number of seconds")?;
        let config = ClientConfig {
            timeout,
            gzip_requests_over: self.gzip_over,
            ..ClientConfig::default()
        };
        Ok(Client::with_config(&self.url, config)?)
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

pub async fn call(args: CallArgs) -> anyhow::Result<()> {
    let Some(method) = args.method else {
        return list(&args.conn, args.print_json).await;
    };
    let client = args.conn.client()?;
    let params = parse_args(&args.args, args.json_args)?;
    let value = client.call(&method, params).await.map_err(fault_exit)?;
    if args.print_json {
        print_json(&value)?;
    } else {
        print_human(&value)?;
    }
    Ok(())
}

pub async fn methods(args: MethodsArgs) -> anyhow::Result<()> {
    list(&args.conn, args.json).await
}

async fn list(conn: &Connection, as_json: bool) -> anyhow::Result<()> {
    let client = conn.client()?;
    let methods = client.describe().await.map_err(fault_exit)?;
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
