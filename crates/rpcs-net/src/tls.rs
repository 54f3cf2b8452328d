//! TLS with rustls on ring: the server's certificate (reloadable while
//! serving, as on SIGHUP), optional client certificates (mutual TLS), and the
//! verification our clients do.
//!
//! A handshake has the server's handshake timeout to finish and holds the
//! connection's slot meanwhile, so half-sent ClientHellos cannot pile up;
//! plaintext sent to a TLS port fails the handshake and only closes that
//! connection.

use crate::accept::tune_tcp;
use crate::server::Shared;
use crate::tcp::ServeTcp;
use rpcs_core::BoxFuture;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

/// A TLS setting that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file cannot be read or holds nothing usable.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// rustls refused the certificates or the key.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    /// The client-certificate verifier cannot be built from the CA file.
    #[error("client CA: {0}")]
    ClientCa(#[from] rustls::server::VerifierBuilderError),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn file_error(path: &Path, reason: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Every certificate of a PEM file (a chain: the leaf first).
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, e))?;
    if certs.is_empty() {
        return Err(file_error(path, "no CERTIFICATE in the file"));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| file_error(path, e))
}

fn roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(path)? {
        roots.add(cert).map_err(|e| file_error(path, e))?;
    }
    Ok(roots)
}

/// Where a server's TLS material is.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The certificate chain (PEM, the leaf first).
    pub cert: PathBuf,
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// When set, clients must present a certificate signed by one of these CAs
    /// (PEM): mutual TLS.
    pub client_ca: Option<PathBuf>,
}

/// A server's TLS setting, reloadable while serving: connections accepted
/// after [`reload`](Tls::reload) use the new certificate.
pub struct Tls {
    files: TlsFiles,
    current: RwLock<Arc<ServerConfig>>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("files", &self.files).finish()
    }
}

impl Tls {
    /// Reads the files.
    pub fn load(files: TlsFiles) -> Result<Arc<Tls>, TlsError> {
        let config = server_config(&files)?;
        Ok(Arc::new(Tls {
            files,
            current: RwLock::new(Arc::new(config)),
        }))
    }

    /// Reads the files again; on an error the old setting stays in force.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = Arc::new(server_config(&self.files)?);
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = config;
        Ok(())
    }

    /// The files this setting comes from.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// The acceptor for a new connection, with the current setting.
    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        let config = self.current.read().unwrap_or_else(|p| p.into_inner());
        TlsAcceptor::from(config.clone())
    }
}

fn server_config(files: &TlsFiles) -> Result<ServerConfig, TlsError> {
    let certs = read_certs(&files.cert)?;
    let key = read_key(&files.key)?;
    let builder =
        ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let builder = match &files.client_ca {
        Some(ca) => {
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca)?), provider())
                    .build()?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// A server-side TLS connection.
pub(crate) type ServerStream = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;

/// What a TLS listener does with a connection once its handshake is done.
pub(crate) type ServeTls = Arc<
    dyn Fn(Arc<Shared>, ServerStream, SocketAddr, watch::Receiver<bool>) -> BoxFuture<()>
        + Send
        + Sync,
>;

/// The connection handler of a TLS listener: the handshake (within the
/// server's handshake timeout, with the current certificate), then `serve`.
pub(crate) fn handler(tls: Arc<Tls>, serve: ServeTls) -> ServeTcp {
    Arc::new(move |shared, stream, peer, stop| {
        let (tls, serve) = (tls.clone(), serve.clone());
        Box::pin(async move {
            tune_tcp(&stream, shared.config.tcp_keepalive);
            let timeout = shared.config.handshake_timeout;
            if let Some(stream) = accept(&tls, stream, peer, timeout).await {
                serve(shared, stream, peer, stop).await;
            }
        })
    })
}

/// Runs the server side of a handshake on an accepted connection, within
/// `timeout`; `None` (the connection is dropped) when it fails or is too slow.
async fn accept(
    tls: &Tls,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    timeout: std::time::Duration,
) -> Option<ServerStream> {
    match tokio::time::timeout(timeout, tls.acceptor().accept(stream)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake too slow; closing");
            None
        }
    }
}

/// How a client checks the servers it talks to over TLS.
#[derive(Debug, Clone, Default)]
pub struct ClientTls {
    /// Trust these CAs (PEM) instead of the system's.
    pub ca: Option<PathBuf>,
    /// Present this certificate (and `key`) to servers that ask (mutual TLS).
    pub cert: Option<PathBuf>,
    /// The key of `cert`.
    pub key: Option<PathBuf>,
    /// Accept any certificate: no protection against an attacker on the path.
    /// Only for tests and first steps; named so that nobody sets it by accident.
    pub insecure_skip_verify: bool,
}

impl ClientTls {
    /// The rustls client setting.
    pub fn config(&self) -> Result<ClientConfig, TlsError> {
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?;
        let builder = if self.insecure_skip_verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider())))
        } else {
            let roots = match &self.ca {
                Some(ca) => roots(ca)?,
                None => system_roots(),
            };
            builder.with_root_certificates(roots)
        };
        Ok(match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                builder.with_client_auth_cert(read_certs(cert)?, read_key(key)?)?
            }
            _ => builder.with_no_client_auth(),
        })
    }
}

/// Opens TLS connections as a client, with one setting.
#[derive(Clone)]
pub struct TlsConnector(Arc<ClientConfig>);

impl std::fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsConnector")
    }
}

impl ClientTls {
    /// A connector with this setting.
    pub fn connector(&self) -> Result<TlsConnector, TlsError> {
        Ok(TlsConnector(Arc::new(self.config()?)))
    }
}

impl TlsConnector {
    /// Runs the client side of a handshake over `io`, connected to `addr`
    /// (`host:port`): the server's certificate must be valid for the host.
    pub async fn connect<S>(
        &self,
        addr: &str,
        io: S,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let name =
            ServerName::try_from(host_of(addr).trim_start_matches('[').trim_end_matches(']'))
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?
                .to_owned();
        tokio_rustls::TlsConnector::from(self.0.clone())
            .connect(name, io)
            .await
    }
}

/// The host part of `host:port`.
fn host_of(addr: &str) -> &str {
    match addr.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => addr,
    }
}

/// The system's trusted CAs (those it has that rustls can use).
fn system_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for cert in found.certs {
        let _ = roots.add(cert);
    }
    roots
}

/// The verifier of `insecure_skip_verify`: any certificate passes, signatures
/// are still checked so the handshake itself is sound.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
