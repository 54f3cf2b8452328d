//! XML-RPC and JSON-RPC over HTTP/1.1, with pooled keep-alive connections.

use super::{ClientConfig, ClientError};
use crate::compress::{self, Encoding};
use base64::Engine as _;
use bytes::Bytes;
use http::header::{HeaderValue, ACCEPT_ENCODING, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE};
use http::{Request, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use rpcs_core::{jsonrpc, xmlrpc, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Which encoding the HTTP transport speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    XmlRpc,
    JsonRpc,
}

#[derive(Clone)]
pub(super) struct HttpTransport {
    format: Format,
    next_id: Arc<AtomicU64>,
    http: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    uri: Uri,
    auth: Option<HeaderValue>,
    config: ClientConfig,
    limits: xmlrpc::Limits,
}

impl HttpTransport {
    /// `url` must be a plain `http://` URL (any `xxx+` scheme prefix already removed).
    pub(super) fn new(
        url: &str,
        config: ClientConfig,
        format: Format,
    ) -> Result<HttpTransport, ClientError> {
        let bad = |reason: String| ClientError::Url {
            url: super::error::redacted(url),
            reason,
        };
        let parsed: Uri = url.parse().map_err(|e| bad(format!("{e}")))?;
        let authority = parsed
            .authority()
            .ok_or_else(|| bad("no host".into()))?
            .clone();
        let (auth, host) = match authority.as_str().rsplit_once('@') {
            Some((userinfo, host)) => {
                let token = base64::engine::general_purpose::STANDARD.encode(userinfo);
                (Some(format!("Basic {token}")), host.to_owned())
            }
            None => (
                config.credentials.as_ref().map(|c| c.header()),
                authority.as_str().to_owned(),
            ),
        };
        let auth = match auth {
            Some(text) => {
                let mut value = HeaderValue::from_str(&text).map_err(|e| bad(e.to_string()))?;
                // Kept out of hyper's debug output and header compression.
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        let path = match parsed.path_and_query().map(|p| p.as_str()) {
            None | Some("") | Some("/") if !url.trim_end().ends_with('/') => "/RPC2",
            Some(p) => p,
            None => "/",
        };
        let scheme = if parsed.scheme_str() == Some("https") {
            "https"
        } else {
            "http"
        };
        let uri = Uri::builder()
            .scheme(scheme)
            .authority(host)
            .path_and_query(path)
            .build()
            .map_err(|e| bad(e.to_string()))?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(config.timeout));
        // hyper-rustls insists on the scheme; plain http:// passes through.
        connector.enforce_http(false);
        let tls = config.tls.config().map_err(|e| bad(e.to_string()))?;
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let http = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(std::time::Duration::from_secs(60))
            .build(connector);
        let limits = xmlrpc::Limits {
            max_size: config.max_response_bytes,
            ..xmlrpc::Limits::default()
        };
        Ok(HttpTransport {
            format,
            next_id: Arc::new(AtomicU64::new(1)),
            http,
            uri,
            auth,
            config,
            limits,
        })
    }

    pub(super) async fn call(&self, method: &str, params: &[Value]) -> Result<Value, ClientError> {
        let timeout = self.config.timeout;
        match tokio::time::timeout(timeout, self.exchange(method, params, true)).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::Timeout(timeout)),
        }
    }

    /// Sends a JSON-RPC notification (XML-RPC has none: the call is made and its
    /// answer dropped).
    pub(super) async fn notify(&self, method: &str, params: &[Value]) -> Result<(), ClientError> {
        let timeout = self.config.timeout;
        match tokio::time::timeout(timeout, self.exchange(method, params, false)).await {
            Ok(result) => result.map(|_| ()),
            Err(_) => Err(ClientError::Timeout(timeout)),
        }
    }

    fn encode(
        &self,
        method: &str,
        params: &[Value],
        answer: bool,
    ) -> Result<(Vec<u8>, Option<u64>), ClientError> {
        Ok(match self.format {
            Format::XmlRpc => (
                xmlrpc::encode_request(method, params)
                    .map_err(|e| ClientError::Encode(e.to_string()))?,
                None,
            ),
            Format::JsonRpc if answer => {
                let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                (
                    jsonrpc::encode_request(Some(&id.into()), method, params),
                    Some(id),
                )
            }
            Format::JsonRpc => (jsonrpc::encode_request(None, method, params), None),
        })
    }

    async fn exchange(
        &self,
        method: &str,
        params: &[Value],
        answer: bool,
    ) -> Result<Value, ClientError> {
        let (mut body, id) = self.encode(method, params, answer)?;
        let content_type = match self.format {
            Format::XmlRpc => "text/xml",
            Format::JsonRpc => "application/json",
        };
        let mut req = Request::post(self.uri.clone())
            .header(CONTENT_TYPE, content_type)
            .header(ACCEPT_ENCODING, "gzip");
        if self
            .config
            .gzip_requests_over
            .is_some_and(|limit| body.len() > limit)
        {
            body = compress::gzip(&body);
            req = req.header(CONTENT_ENCODING, "gzip");
        }
        if let Some(auth) = &self.auth {
            req = req.header(AUTHORIZATION, auth.clone());
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ClientError::Connect(e.to_string()))?;
        let resp = self.http.request(req).await.map_err(|e| {
            if e.is_connect() {
                ClientError::NotSent(error_chain(&e))
            } else {
                ClientError::Connect(error_chain(&e))
            }
        })?;
        let status = resp.status();
        let encoding = resp
            .headers()
            .get(CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let max = self.config.max_response_bytes;
        let bytes = Limited::new(resp.into_body(), max)
            .collect()
            .await
            .map_err(|e| ClientError::Decode(format!("reading the answer: {e}")))?
            .to_bytes();
        let encoding = Encoding::parse(encoding.as_deref())
            .ok_or_else(|| ClientError::Decode("unsupported Content-Encoding".into()))?;
        let bytes = compress::inflate(&bytes, encoding, max)
            .map_err(|e| ClientError::Decode(e.to_string()))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]);
            return Err(ClientError::Http {
                status: status.as_u16(),
                body: text.trim().to_owned(),
            });
        }
        match self.format {
            Format::XmlRpc => match xmlrpc::decode_response(&bytes, &self.limits) {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(fault)) => Err(ClientError::Fault(fault)),
                Err(e) => Err(ClientError::Decode(e.to_string())),
            },
            Format::JsonRpc if !answer => Ok(Value::Nil),
            Format::JsonRpc => json_outcome(&bytes, id),
        }
    }
}

/// Reads a JSON-RPC answer to the call with `id`.
fn json_outcome(bytes: &[u8], id: Option<u64>) -> Result<Value, ClientError> {
    match jsonrpc::decode(bytes) {
        jsonrpc::Incoming::Single(jsonrpc::Message::Response { id: got, outcome }) => {
            if id.is_some_and(|want| got.as_u64() != Some(want)) {
                return Err(ClientError::Decode(format!(
                    "answer to call {got}, not {id:?}"
                )));
            }
            outcome.map_err(ClientError::Fault)
        }
        jsonrpc::Incoming::Single(jsonrpc::Message::Invalid { fault, .. }) => {
            Err(ClientError::Decode(fault.message))
        }
        _ => Err(ClientError::Decode("expected one JSON-RPC response".into())),
    }
}

/// The error with its causes, which hyper keeps in the source chain.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
