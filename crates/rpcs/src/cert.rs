//! `rpcs cert new`: a certificate authority and certificates it signed, for
//! trying TLS and for tests (production should use its own CA).

use anyhow::Context as _;
use clap::{Args, Subcommand};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use std::path::{Path, PathBuf};

/// What `rpcs cert` does.
#[derive(Subcommand, Debug)]
pub enum CertCommand {
    /// Make a fresh CA (ca.pem) and a server certificate it signed
    /// (server.pem, server-key.pem); with --client, client certificates too
    /// (NAME.pem, NAME-key.pem) for mutual TLS. Keys are written readable by
    /// the owner only.
    New(NewArgs),
}

/// Arguments of `rpcs cert new`.
#[derive(Args, Debug)]
pub struct NewArgs {
    /// The directory to write into (created if missing).
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// A name or address the server certificate is for (repeat for several).
    #[arg(long = "host", value_name = "NAME", default_values_t = ["localhost".to_owned(), "127.0.0.1".to_owned()])]
    hosts: Vec<String>,
    /// Also make a client certificate of this name (repeat for several).
    #[arg(long = "client", value_name = "NAME")]
    clients: Vec<String>,
}

fn write_key(path: &Path, pem: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(pem.as_bytes())?;
    Ok(())
}

/// A certificate for `names` signed by `issuer`, written as NAME.pem and NAME-key.pem.
fn issue(
    dir: &Path,
    file: &str,
    names: Vec<String>,
    issuer: &Issuer<'_, KeyPair>,
) -> anyhow::Result<()> {
    let mut params = CertificateParams::new(names.clone())?;
    params
        .distinguished_name
        .push(DnType::CommonName, names[0].as_str());
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, issuer)?;
    std::fs::write(dir.join(format!("{file}.pem")), cert.pem())?;
    write_key(&dir.join(format!("{file}-key.pem")), &key.serialize_pem())
}

pub fn cert(command: CertCommand) -> anyhow::Result<()> {
    let CertCommand::New(args) = command;
    anyhow::ensure!(!args.hosts.is_empty(), "give at least one --host");
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "rpcs test CA");
    let ca_key = KeyPair::generate()?;
    let ca = params.self_signed(&ca_key)?;
    std::fs::write(args.dir.join("ca.pem"), ca.pem())?;
    let issuer = Issuer::new(params, ca_key);
    issue(&args.dir, "server", args.hosts.clone(), &issuer)?;
    for client in &args.clients {
        anyhow::ensure!(
            client != "server" && client != "ca" && !client.contains('/'),
            "a client name must not be server, ca, or contain '/'"
        );
        issue(&args.dir, client, vec![client.clone()], &issuer)?;
    }
    println!("{}", args.dir.join("ca.pem").display());
    Ok(())
}
