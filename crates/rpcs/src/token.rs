//! `rpcs token new`: a fresh secret and the token-file entry that accepts it.

use anyhow::Context as _;
use base64::Engine;
use clap::{Args, Subcommand};
use rpcs_core::auth::{digest_hex, hash_secret};
use rpcs_core::Access;

/// What `rpcs token` does.
#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Make a token: its `[[token]]` entry (with the secret's hash only) goes
    /// to standard output, to append to the --auth file; the secret itself
    /// goes to standard error, shown this once.
    New(NewArgs),
}

/// Arguments of `rpcs token new`.
#[derive(Args, Debug)]
pub struct NewArgs {
    /// The token's name (logs and HTTP Basic user name use it).
    #[arg(long, default_value = "client")]
    name: String,
    /// What the token may do: read, write or admin.
    #[arg(long, default_value = "write", value_parser = parse_access)]
    access: Access,
    /// Confine the token to names starting with this (its namespace).
    #[arg(long, value_name = "PREFIX")]
    prefix: Option<String>,
}

fn parse_access(text: &str) -> Result<Access, String> {
    text.parse()
        .map_err(|e: rpcs_core::auth::UnknownAccess| e.to_string())
}

/// A secret of 256 random bits, URL-safe (it can go in a URL's user part).
fn new_secret() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).context("reading the system's random source")?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The token-file entry for a secret.
fn entry(args: &NewArgs, secret: &str) -> String {
    let mut text = format!(
        "[[token]]\nname = {:?}\nsha256 = \"{}\"\naccess = \"{}\"\n",
        args.name,
        digest_hex(&hash_secret(secret)),
        args.access
    );
    if let Some(prefix) = &args.prefix {
        text.push_str(&format!("prefix = {prefix:?}\n"));
    }
    text
}

pub fn token(command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::New(args) => {
            anyhow::ensure!(
                !args.name.is_empty() && !args.name.contains(':'),
                "a token name must be non-empty and have no ':'"
            );
            let secret = new_secret()?;
            print!("{}", entry(&args, &secret));
            eprintln!(
                "secret of token {:?} (not stored anywhere; keep it): {secret}",
                args.name
            );
            Ok(())
        }
    }
}
