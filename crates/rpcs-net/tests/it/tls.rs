//! TLS on the HTTP and MessagePack-RPC listeners, with certificates made at
//! test time: verification by our clients, mutual TLS, reload, and what a
//! bad handshake costs.

use crate::serve;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rpcs_core::{MethodTable, Value};
use rpcs_net::{Client, ClientConfig, ClientTls, Listener, ServerConfig, Tls, TlsFiles};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A CA and what it signed, as PEM files in a directory.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let pki = Pki {
            dir: tempfile::tempdir().unwrap(),
        };
        pki.issue("a");
        pki
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A CA named `ca` (ca-CA.pem), a server certificate for 127.0.0.1 and
    /// localhost (server.pem, server-key.pem) and a client one (client.pem,
    /// client-key.pem), both signed by it.
    fn issue(&self, ca: &str) {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = params.self_signed(&ca_key).unwrap();
        std::fs::write(self.path(&format!("ca-{ca}.pem")), ca_cert.pem()).unwrap();
        let issuer = Issuer::new(params, ca_key);
        for (name, sans) in [
            ("server", vec!["127.0.0.1", "localhost"]),
            ("client", vec!["client"]),
        ] {
            let params =
                CertificateParams::new(sans.into_iter().map(String::from).collect::<Vec<_>>())
                    .unwrap();
            let key = KeyPair::generate().unwrap();
            let cert = params.signed_by(&key, &issuer).unwrap();
            std::fs::write(self.path(&format!("{name}.pem")), cert.pem()).unwrap();
            std::fs::write(self.path(&format!("{name}-key.pem")), key.serialize_pem()).unwrap();
        }
    }

    fn server(&self, mtls: bool) -> Arc<Tls> {
        Tls::load(TlsFiles {
            cert: self.path("server.pem"),
            key: self.path("server-key.pem"),
            client_ca: mtls.then(|| self.path("ca-a.pem")),
        })
        .unwrap()
    }

    fn client_tls(&self, ca: &str, with_cert: bool) -> ClientTls {
        ClientTls {
            ca: Some(self.path(&format!("ca-{ca}.pem"))),
            cert: with_cert.then(|| self.path("client.pem")),
            key: with_cert.then(|| self.path("client-key.pem")),
            insecure_skip_verify: false,
        }
    }
}

fn table() -> MethodTable {
    let mut t = MethodTable::new();
    t.register("add", "Add.", |a: i64, b: i64| a + b);
    t
}

/// HTTPS and MessagePack-RPC over TLS; the URLs of XML-RPC, JSON-RPC,
/// WebSocket and MessagePack-RPC on them.
async fn served(
    tls: Arc<Tls>,
    config: ServerConfig,
) -> (Vec<String>, tokio::sync::oneshot::Sender<()>) {
    let https = Listener::https("127.0.0.1:0", tls.clone()).await.unwrap();
    let msgpack = Listener::msgpack_tls("127.0.0.1:0", tls).await.unwrap();
    let base = https.url().unwrap();
    let urls = vec![
        base.clone(),
        format!("jsonrpc+{base}"),
        base.replacen("https://", "wss://", 1),
        msgpack.url().unwrap(),
    ];
    assert!(urls[3].starts_with("msgpack+tls://"), "{urls:?}");
    let (stop, _) = serve(vec![https, msgpack], table(), config);
    (urls, stop)
}

async fn add(url: &str, tls: ClientTls) -> Result<Value, rpcs_net::ClientError> {
    let config = ClientConfig {
        timeout: Duration::from_secs(10),
        retry_connect: false,
        tls,
        ..ClientConfig::default()
    };
    Client::with_config(url, config)?.call("add", (2, 3)).await
}

#[tokio::test]
async fn every_tls_url_works_when_the_ca_is_trusted_and_fails_when_not() {
    let pki = Pki::new();
    let other = Pki::new(); // a CA of the same name that signed nothing of the server's
    let (urls, _stop) = served(pki.server(false), ServerConfig::default()).await;
    for url in &urls {
        assert_eq!(
            add(url, pki.client_tls("a", false)).await.unwrap(),
            Value::Int(5),
            "{url}"
        );
        // Another CA, or the system's: the server's certificate is not trusted.
        assert!(
            add(url, other.client_tls("a", false)).await.is_err(),
            "{url}"
        );
        assert!(add(url, ClientTls::default()).await.is_err(), "{url}");
        let insecure = ClientTls {
            insecure_skip_verify: true,
            ..ClientTls::default()
        };
        assert_eq!(add(url, insecure).await.unwrap(), Value::Int(5), "{url}");
    }
}

#[tokio::test]
async fn mutual_tls_needs_a_client_certificate_from_the_ca() {
    let pki = Pki::new();
    let (urls, _stop) = served(pki.server(true), ServerConfig::default()).await;
    for url in &urls {
        assert!(
            add(url, pki.client_tls("a", false)).await.is_err(),
            "{url}: served without a client certificate"
        );
        assert_eq!(
            add(url, pki.client_tls("a", true)).await.unwrap(),
            Value::Int(5),
            "{url}"
        );
    }
}

#[tokio::test]
async fn a_reload_serves_the_new_certificate_to_new_connections() {
    let pki = Pki::new();
    let tls = pki.server(false);
    let (urls, _stop) = served(tls.clone(), ServerConfig::default()).await;
    pki.issue("b");
    // Until the reload the old certificate is served.
    assert!(add(&urls[3], pki.client_tls("a", false)).await.is_ok());
    tls.reload().unwrap();
    for url in &urls {
        assert_eq!(
            add(url, pki.client_tls("b", false)).await.unwrap(),
            Value::Int(5),
            "{url}"
        );
        assert!(add(url, pki.client_tls("a", false)).await.is_err(), "{url}");
    }
    // A reload that fails keeps what is served.
    std::fs::write(pki.path("server-key.pem"), "not a key").unwrap();
    assert!(tls.reload().is_err());
    assert_eq!(
        add(&urls[0], pki.client_tls("b", false)).await.unwrap(),
        Value::Int(5)
    );
}

fn addr_of(url: &str) -> String {
    url.split("://")
        .nth(1)
        .unwrap()
        .trim_end_matches('/')
        .to_owned()
}

async fn closed_by_server(stream: &mut tokio::net::TcpStream) -> bool {
    let mut buf = [0u8; 256];
    loop {
        match tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // A TLS alert may come first; then the close.
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn plaintext_and_stalled_handshakes_only_close_their_own_connection() {
    let pki = Pki::new();
    let config = ServerConfig {
        handshake_timeout: Duration::from_millis(300),
        ..ServerConfig::default()
    };
    let (urls, _stop) = served(pki.server(false), config).await;
    for url in [&urls[0], &urls[3]] {
        let addr = addr_of(url);
        let mut plain = tokio::net::TcpStream::connect(&addr).await.unwrap();
        plain
            .write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            .await
            .unwrap();
        assert!(
            closed_by_server(&mut plain).await,
            "{url}: plaintext kept open"
        );
        let mut stalled = tokio::net::TcpStream::connect(&addr).await.unwrap();
        stalled.write_all(&[0x16, 0x03, 0x01]).await.unwrap(); // a ClientHello's first bytes
        assert!(
            closed_by_server(&mut stalled).await,
            "{url}: a stalled handshake kept open"
        );
        assert_eq!(
            add(url, pki.client_tls("a", false)).await.unwrap(),
            Value::Int(5),
            "{url}"
        );
    }
}
