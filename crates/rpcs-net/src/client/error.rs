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
    /// The connection failed or broke.
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
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            timeout: Duration::from_secs(30),
            gzip_requests_over: None,
            max_response_bytes: 64 << 20,
        }
    }
}
