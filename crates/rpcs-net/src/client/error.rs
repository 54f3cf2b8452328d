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
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No connection could be made, so the call was not sent: safe to send
    /// elsewhere.
    #[error("cannot connect: {0}")]
    NotSent(String),
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
        }
    }
}
