//! What a call can fail with, and the client's settings.

use rpcs_core::{ConvertError, Fault};
use std::time::Duration;

/// Why a call did not return a value.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with a fault.
    #[error("{0}")]
    Fault(Fault),
    /// The URL cannot be used.
    #[error("bad URL {url:?}: {reason}")]
    Url {
        /// The URL as given, credentials replaced by `***`.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No connection could be made, so the call was not sent: safe to send
    /// elsewhere.
    #[error("cannot connect: {0}")]
    NotSent(String),
    /// The TLS handshake failed (a certificate not trusted, or not for that
    /// name; a client certificate refused): trying again will not help.
    #[error("TLS: {0}")]
    Tls(String),
    /// The connection broke with the call sent or being sent: it may have run.
    #[error("connection failed: {0}")]
    Connect(String),
    /// No answer arrived within the timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The server answered with an HTTP error.
    #[error("HTTP {status}: {body}")]
    Http {
        /// The status code.
        status: u16,
        /// The start of the response body.
        body: String,
    },
    /// The call cannot be written in the protocol (a value it cannot carry).
    #[error("cannot encode the call: {0}")]
    Encode(String),
    /// The answer could not be decoded.
    #[error("undecodable answer: {0}")]
    Decode(String),
    /// The arguments, or the answer for [`Client::call_as`], could not be converted.
    #[error("conversion failed: {0}")]
    Convert(#[from] ConvertError),
}

impl ClientError {
    /// Whether the call surely did not reach a server (no connection could
    /// be made), so that sending it elsewhere cannot run it twice.
    pub fn not_sent(&self) -> bool {
        matches!(self, ClientError::NotSent(_))
    }

    /// The fault, if the server answered with one.
    pub fn fault(&self) -> Option<&Fault> {
        match self {
            ClientError::Fault(f) => Some(f),
            _ => None,
        }
    }
}

/// Settings for a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// How long one call may take, connection included.
    pub timeout: Duration,
    /// Requests larger than this are sent gzipped; `None` never compresses
    /// (the default, since not every server accepts it).
    pub gzip_requests_over: Option<usize>,
    /// The largest answer accepted, after decompression.
    pub max_response_bytes: usize,
    /// Whether a client that cannot connect tries again, with backoff, until
    /// the call's timeout (the default); a client by service name does not
    /// retry an instance, it tries the next.
    pub retry_connect: bool,
    /// A client by service name (`rpcs://NAME`) looks the name up again this
    /// often.
    pub resolve_every: Duration,
    /// Methods a client by service name may send to another instance when the
    /// connection broke after sending (the call may have run): exact names,
    /// or prefixes ending in `*` (`stack.get*`). `system.*` always may.
    pub idempotent_methods: Vec<String>,
    /// The token presented to a server that asks for one, when the URL
    /// carries none (`msgpack://NAME:SECRET@host:port` does); by default
    /// from the `RPCS_TOKEN` environment variable. Sent as an HTTP
    /// `Authorization` header, a first `auth` call on a stream, the `auth`
    /// key of every zerorpc request.
    pub credentials: Option<Credentials>,
    /// How servers reached over TLS (`https://`, `wss://`, `msgpack+tls://`)
    /// are verified: the system's CAs by default, or a CA file; a client
    /// certificate for mutual TLS.
    pub tls: crate::tls::ClientTls,
}

/// A token's secret, and optionally its name, as a client presents them.
/// `Debug` shows the name only.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The token's name (HTTP Basic sends it; elsewhere it narrows the match).
    pub name: Option<String>,
    /// The secret.
    pub secret: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// Reads `NAME:SECRET` or a bare `SECRET` (as the `RPCS_TOKEN` variable
    /// holds them, and URLs carry them before the `@`).
    pub fn parse(text: &str) -> Credentials {
        match text.split_once(':') {
            Some((name, secret)) => Credentials {
                name: (!name.is_empty()).then(|| name.to_owned()),
                secret: secret.to_owned(),
            },
            None => Credentials {
                name: None,
                secret: text.to_owned(),
            },
        }
    }

    /// The parameters of the `auth` call that presents these credentials.
    pub(crate) fn auth_params(&self) -> Vec<rpcs_core::Value> {
        let name = self.name.iter().map(|n| rpcs_core::Value::from(n.as_str()));
        name.chain([rpcs_core::Value::from(self.secret.as_str())])
            .collect()
    }

    /// The HTTP `Authorization` header value: Basic with a name, else Bearer.
    pub(crate) fn header(&self) -> String {
        use base64::Engine;
        match &self.name {
            Some(name) => format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{name}:{}", self.secret))
            ),
            None => format!("Bearer {}", self.secret),
        }
    }
}

/// The variable a client's default credentials come from: `SECRET` or
/// `NAME:SECRET`.
pub const TOKEN_VARIABLE: &str = "RPCS_TOKEN";

fn credentials_from_env() -> Option<Credentials> {
    let text = std::env::var(TOKEN_VARIABLE).ok()?;
    (!text.is_empty()).then(|| Credentials::parse(&text))
}

pub use rpcs_core::auth::redacted;

/// Splits the credentials off a URL's part after `://`: `NAME:SECRET@host:port/path`
/// gives the credentials and `host:port/path`.
pub(crate) fn split_credentials(rest: &str) -> (Option<Credentials>, &str) {
    let (userinfo, host) = rpcs_core::auth::split_userinfo(rest);
    (userinfo.map(Credentials::parse), host)
}

impl ClientConfig {
    /// Whether `method` may run twice without harm, by this configuration.
    pub fn is_idempotent(&self, method: &str) -> bool {
        method.starts_with("system.")
            || self
                .idempotent_methods
                .iter()
                .any(|m| match m.strip_suffix('*') {
                    Some(prefix) => method.starts_with(prefix),
                    None => m == method,
                })
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            timeout: Duration::from_secs(30),
            gzip_requests_over: None,
            max_response_bytes: 64 << 20,
            retry_connect: true,
            resolve_every: super::named_transport::DEFAULT_RESOLVE_EVERY,
            idempotent_methods: Vec::new(),
            credentials: credentials_from_env(),
            tls: crate::tls::ClientTls::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_read_from_text_and_show_no_secret() {
        let c = Credentials::parse("crawler:s3:cret");
        assert_eq!(
            (c.name.as_deref(), c.secret.as_str()),
            (Some("crawler"), "s3:cret")
        );
        assert_eq!(Credentials::parse("only").name, None);
        assert!(!format!("{c:?}").contains("s3"));
        assert_eq!(
            c.header(),
            format!("Basic {}", {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD.encode("crawler:s3:cret")
            })
        );
    }
}
