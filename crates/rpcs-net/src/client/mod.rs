//! Clients: one [`Client`] type whose URL selects the protocol, in async and
//! [blocking](BlockingClient) forms.
//!
//! | URL | protocol |
//! |---|---|
//! | `http://host:port/path`, `xmlrpc+http://...` | XML-RPC over HTTP; `http://host:port` alone means `/RPC2`, as in Python |
//! | `https://...`, `jsonrpc+https://...`, `wss://...`, `msgpack+tls://host:port` | the same over TLS, verified against [`ClientConfig::tls`] |
//! | `jsonrpc+http://host:port/path` | JSON-RPC 2.0 over HTTP (no path means `/`) |
//! | `msgpack://host:port`, `msgpack+tcp://host:port` | MessagePack-RPC over TCP |
//! | `msgpack+unix:///path/to/socket` | MessagePack-RPC over a Unix socket |
//! | `ws://host:port/path`, `jsonrpc+ws://...` | JSON-RPC 2.0 over WebSocket |
//! | `tcp://host:port`, `ipc:///path` | zerorpc over ZeroMQ (as zerorpc users write them) |
//! | `rpcs://NAME`, `@NAME` | every instance of the service NAME, found in the registries ([`crate::discovery`]), in turn and failing over |
//!
//! Calls take any [`IntoParams`] (a tuple of serializable values, a `Vec<Value>`, or
//! `()`); [`Client::call`] returns a [`Value`] and [`Client::call_as`] converts it.
//!
//! One file per concern: the transports (`http_transport`, `stream_transport`
//! for MessagePack-RPC and WebSocket, `zerorpc_transport`, `named_transport`
//! for a service by name), `retry` (reconnecting
//! with backoff), `describe` (introspection), `error` (errors and settings) and
//! `blocking` (the blocking facade).

mod blocking;
mod describe;
mod error;
mod http_transport;
mod named_transport;
mod retry;
mod stream_transport;
mod zerorpc_transport;

pub use blocking::BlockingClient;
pub use error::{redacted, ClientConfig, ClientError, Credentials};

use crate::zerorpc::DEFAULT_HEARTBEAT;
use http_transport::{Format, HttpTransport};
use named_transport::NamedTransport;
use rpcs_core::{from_value, Dispatcher, Fault, IntoParams, Map, MethodTable, Value};
use serde::de::DeserializeOwned;
use std::any::Any;
use std::sync::Arc;
use stream_transport::{StreamTransport, Target};
use zerorpc_transport::{Answer, Endpoints, ZerorpcTransport};

/// The TLS connector of a client, or why it cannot be made.
fn tls_connector(config: &ClientConfig, url: &str) -> Result<crate::TlsConnector, ClientError> {
    config.tls.connector().map_err(|e| ClientError::Url {
        url: error::redacted(url),
        reason: e.to_string(),
    })
}

#[derive(Clone)]
enum Transport {
    Http(Box<HttpTransport>),
    Stream(Arc<StreamTransport>),
    Zerorpc(Arc<ZerorpcTransport>),
    Named(Arc<NamedTransport>),
}

/// A connection-reusing RPC client; the URL picks the protocol.
///
/// Cloning is cheap and clones share connections.
#[derive(Clone)]
pub struct Client {
    transport: Transport,
}

/// Introspection data about one remote method, as [`Client::describe`] gathers it.
#[derive(Debug, Clone, PartialEq)]
pub struct MethodInfo {
    /// The method name.
    pub name: String,
    /// Signatures as `[result, param, ...]` type-name lists; empty if the server has none.
    pub signatures: Vec<Vec<String>>,
    /// The documentation string.
    pub help: String,
}

impl Client {
    /// A client for `url` with default settings.
    ///
    /// `http://host:port/path` speaks XML-RPC; a missing path means `/RPC2`, the
    /// path Python's client uses. Credentials in the URL (`http://user:pass@host/`)
    /// are sent as HTTP basic authentication.
    pub fn new(url: &str) -> Result<Client, ClientError> {
        Client::with_config(url, ClientConfig::default())
    }

    /// A client for `url` with the given settings.
    pub fn with_config(url: &str, config: ClientConfig) -> Result<Client, ClientError> {
        Client::with_handlers(url, config, MethodTable::new())
    }

    /// A client that also answers calls and notifications the server sends back to
    /// it, from `handlers` (stream transports only: MessagePack-RPC and WebSocket;
    /// over HTTP they are unused).
    pub fn with_handlers(
        url: &str,
        config: ClientConfig,
        handlers: MethodTable,
    ) -> Result<Client, ClientError> {
        let bad = |reason: &str| ClientError::Url {
            url: error::redacted(url),
            reason: reason.to_owned(),
        };
        if url.starts_with('@') || url.starts_with("rpcs://") {
            let named = NamedTransport::new(url, config)?;
            return Ok(Client {
                transport: Transport::Named(Arc::new(named)),
            });
        }
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(bad("expected a URL such as http://127.0.0.1:8000/"));
        };
        let http_url = match scheme.to_ascii_lowercase().ends_with("https") {
            true => format!("https://{rest}"),
            false => format!("http://{rest}"),
        };
        // Credentials in the URL win over the configured ones. (The HTTP
        // transport reads them from its URL itself.)
        let (in_url, rest) = error::split_credentials(rest);
        let mut config = config;
        if in_url.is_some() {
            config.credentials = in_url;
        }
        let transport = match scheme.to_ascii_lowercase().as_str() {
            "http" | "xmlrpc+http" | "https" | "xmlrpc+https" => Transport::Http(Box::new(HttpTransport::new(
                &http_url,
                config,
                Format::XmlRpc,
            )?)),
            "jsonrpc+http" | "json+http" | "jsonrpc+https" => {
                // JSON-RPC servers usually listen on "/", not Python's "/RPC2".
                let with_path = if rest.contains('/') {
                    http_url
                } else {
                    format!("{http_url}/")
                };
                Transport::Http(Box::new(HttpTransport::new(
                    &with_path,
                    config,
                    Format::JsonRpc,
                )?))
            }
            "msgpack" | "msgpack+tcp" | "msgpack+tls" => {
                let addr = rest.trim_end_matches('/');
                if addr.is_empty() || !addr.contains(':') {
                    return Err(bad("expected msgpack://host:port"));
                }
                let target = match scheme.ends_with("tls") {
                    true => Target::Tls(addr.to_owned(), tls_connector(&config, url)?),
                    false => Target::Tcp(addr.to_owned()),
                };
                let handlers = Arc::new(Dispatcher::new(handlers));
                Transport::Stream(Arc::new(StreamTransport::new(target, config, handlers)))
            }
            "msgpack+unix" => {
                if rest.is_empty() {
                    return Err(bad("expected msgpack+unix:///path/to/socket"));
                }
                let target = Target::Unix(rest.into());
                let handlers = Arc::new(Dispatcher::new(handlers));
                Transport::Stream(Arc::new(StreamTransport::new(target, config, handlers)))
            }
            "ws" | "jsonrpc+ws" | "wss" | "jsonrpc+wss" => {
                let path = if rest.contains('/') {
                    rest.to_owned()
                } else {
                    format!("{rest}/")
                };
                let target = match scheme.ends_with("wss") {
                    true => Target::Wss(format!("wss://{path}"), tls_connector(&config, url)?),
                    false => Target::Ws(format!("ws://{path}")),
                };
                let handlers = Arc::new(Dispatcher::new(handlers));
                Transport::Stream(Arc::new(StreamTransport::new(target, config, handlers)))
            }
            "tcp" | "ipc" => {
                let endpoints = Endpoints::Connect(vec![format!("{scheme}://{rest}")]);
                Transport::Zerorpc(Arc::new(ZerorpcTransport::new(
                    endpoints,
                    config,
                    DEFAULT_HEARTBEAT,
                )))
            }
            _ => return Err(bad(
                "unknown scheme (use http[s]://, jsonrpc+http[s]://, ws[s]://, msgpack[+tls]://, msgpack+unix://, tcp://, rpcs://NAME)",
            )),
        };
        Ok(Client { transport })
    }

    /// For a service name (`rpcs://NAME`, `@NAME`), the URL of one of its
    /// instances: the first registered that is serving, on MessagePack-RPC or
    /// WebSocket (or the `protocol=` asked for). A client whose session is
    /// bound to its connection, or that answers calls from the server
    /// ([`Client::with_handlers`]), connects to that one instance. Any other
    /// URL comes back as it is.
    pub async fn resolve_instance(url: &str, config: &ClientConfig) -> Result<String, ClientError> {
        if !(url.starts_with('@') || url.starts_with("rpcs://")) {
            return Ok(url.to_owned());
        }
        NamedTransport::new(url, config.clone())?.one_url().await
    }

    /// A zerorpc client that connects to every endpoint of `connect` (or, when
    /// `bind` is set instead, binds them and waits for servers to connect: the
    /// reversed mode), heartbeating every `heartbeat`.
    pub fn zerorpc(
        connect: Vec<String>,
        bind: Vec<String>,
        config: ClientConfig,
        heartbeat: std::time::Duration,
    ) -> Result<Client, ClientError> {
        let endpoints = match (connect.is_empty(), bind.is_empty()) {
            (false, true) => Endpoints::Connect(connect),
            (true, false) => Endpoints::Bind(bind),
            _ => {
                return Err(ClientError::Url {
                    url: format!("{connect:?} {bind:?}"),
                    reason: "give endpoints to connect to, or to bind, not both".into(),
                })
            }
        };
        let client = ZerorpcTransport::new(endpoints, config, heartbeat);
        Ok(Client {
            transport: Transport::Zerorpc(Arc::new(client)),
        })
    }

    /// Calls `method` with `params` and returns the result (a streamed result
    /// as an array of its items).
    pub async fn call(&self, method: &str, params: impl IntoParams) -> Result<Value, ClientError> {
        let mut items = Vec::new();
        let answer = self
            .call_each(method, params, &mut |item| items.push(item))
            .await?;
        Ok(answer.unwrap_or(Value::Array(items)))
    }

    /// Calls `method`; a result streamed item by item (zerorpc) goes to `each` as
    /// it arrives and the answer is `None`; any other result is `Some(value)`.
    pub async fn call_each(
        &self,
        method: &str,
        params: impl IntoParams,
        each: &mut (dyn FnMut(Value) + Send),
    ) -> Result<Option<Value>, ClientError> {
        self.call_each_inner(method, params, false, each).await
    }

    /// Calls `method`, which may run twice without harm: a client by service
    /// name sends it to another instance even when the connection broke after
    /// sending. Other clients call as [`Client::call`] does.
    pub async fn call_idempotent(
        &self,
        method: &str,
        params: impl IntoParams,
    ) -> Result<Value, ClientError> {
        let mut items = Vec::new();
        let answer = self
            .call_each_inner(method, params, true, &mut |item| items.push(item))
            .await?;
        Ok(answer.unwrap_or(Value::Array(items)))
    }

    /// The instances' URLs a client by service name uses now (none before its
    /// first call); a client by address gives none.
    pub fn instance_urls(&self) -> Vec<String> {
        match &self.transport {
            Transport::Named(t) => t.urls(),
            _ => Vec::new(),
        }
    }

    async fn call_each_inner(
        &self,
        method: &str,
        params: impl IntoParams,
        idempotent: bool,
        each: &mut (dyn FnMut(Value) + Send),
    ) -> Result<Option<Value>, ClientError> {
        let params = params.into_params()?;
        match &self.transport {
            Transport::Named(t) => t.call(method, &params, idempotent, each).await,
            Transport::Http(t) => t.call(method, &params).await.map(Some),
            Transport::Stream(t) => t.call(method, &params).await.map(Some),
            Transport::Zerorpc(t) => match t.call(method, &params, each).await? {
                Answer::Value(v) => Ok(Some(v)),
                Answer::Streamed => Ok(None),
            },
        }
    }

    /// Sends a notification: the server runs the method and answers nothing.
    pub async fn notify(&self, method: &str, params: impl IntoParams) -> Result<(), ClientError> {
        let params = params.into_params()?;
        match &self.transport {
            Transport::Http(t) => t.notify(method, &params).await,
            Transport::Stream(t) => t.notify(method, &params).await,
            // zerorpc has no notifications: make the call and drop its answer.
            Transport::Zerorpc(t) => t.call(method, &params, &mut |_| {}).await.map(|_| ()),
            // One instance gets it; which one does not matter.
            Transport::Named(t) => t
                .call(method, &params, false, &mut |_| {})
                .await
                .map(|_| ()),
        }
    }

    /// Calls `method` and converts the result to `T`.
    pub async fn call_as<T: DeserializeOwned + Any>(
        &self,
        method: &str,
        params: impl IntoParams,
    ) -> Result<T, ClientError> {
        let value = self.call(method, params).await?;
        Ok(from_value(value)?)
    }

    /// Runs several calls in one round trip with `system.multicall`; each
    /// result is the value or the fault of that call.
    pub async fn multicall(
        &self,
        calls: Vec<(String, Vec<Value>)>,
    ) -> Result<Vec<Result<Value, Fault>>, ClientError> {
        let entries = calls
            .into_iter()
            .map(|(name, params)| {
                let mut m = Map::with_capacity(2);
                m.insert("methodName".into(), Value::String(name));
                m.insert("params".into(), Value::Array(params));
                Value::Struct(m)
            })
            .collect();
        let out = self
            .call("system.multicall", vec![Value::Array(entries)])
            .await?;
        let Value::Array(items) = out else {
            return Err(ClientError::Decode(
                "system.multicall did not return an array".into(),
            ));
        };
        items.into_iter().map(multicall_item).collect()
    }
}

fn multicall_item(item: Value) -> Result<Result<Value, Fault>, ClientError> {
    match item {
        Value::Array(mut one) if one.len() == 1 => Ok(Ok(one.pop().unwrap_or_default())),
        Value::Struct(m) => {
            let code = m.get("faultCode").and_then(Value::as_i64);
            let text = m.get("faultString").and_then(Value::as_str);
            match (code, text) {
                (Some(code), Some(text)) => Ok(Err(Fault::new(
                    i32::try_from(code).unwrap_or(Fault::APPLICATION),
                    text,
                ))),
                _ => Err(ClientError::Decode("malformed multicall fault".into())),
            }
        }
        _ => Err(ClientError::Decode("malformed multicall result".into())),
    }
}
