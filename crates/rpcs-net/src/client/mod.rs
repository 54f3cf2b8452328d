//! Clients: one [`Client`] type whose URL selects the protocol, in async and
//! [blocking](BlockingClient) forms.
//!
//! | URL | protocol |
//! |---|---|
//! | `http://host:port/path`, `xmlrpc+http://...` | XML-RPC over HTTP; `http://host:port` alone means `/RPC2`, as in Python |
//! | `jsonrpc+http://host:port/path` | JSON-RPC 2.0 over HTTP (no path means `/`) |
//! | `msgpack://host:port`, `msgpack+tcp://host:port` | MessagePack-RPC over TCP |
//! | `msgpack+unix:///path/to/socket` | MessagePack-RPC over a Unix socket |
//! | `ws://host:port/path`, `jsonrpc+ws://...` | JSON-RPC 2.0 over WebSocket |
//! | `tcp://host:port`, `ipc:///path` | zerorpc over ZeroMQ (as zerorpc users write them) |
//!
//! Calls take any [`IntoParams`] (a tuple of serializable values, a `Vec<Value>`, or
//! `()`); [`Client::call`] returns a [`Value`] and [`Client::call_as`] converts it.

mod blocking;
mod http;
mod msgpack;

pub use blocking::BlockingClient;

use crate::zerorpc::client::{Answer, Endpoints, ZerorpcClient};
use crate::zerorpc::DEFAULT_HEARTBEAT;
use rpcs_core::{from_value, ConvertError, Dispatcher, Fault, IntoParams, Map, MethodTable, Value};
use serde::de::DeserializeOwned;
use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

/// The first pause before reconnecting; it doubles after each failure.
const FIRST_BACKOFF: std::time::Duration = std::time::Duration::from_millis(50);
/// The longest pause between reconnection attempts.
const MAX_BACKOFF: std::time::Duration = std::time::Duration::from_secs(5);

/// Opens a connection with `open`, retrying with exponential backoff until
/// `deadline`. `backoff` carries the next pause between calls, so a client that
/// keeps failing waits longer; it is reset on success.
pub(crate) async fn reconnect<T, F, Fut>(
    deadline: tokio::time::Instant,
    backoff: &mut std::time::Duration,
    timeout: std::time::Duration,
    mut open: F,
) -> Result<T, ClientError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ClientError>>,
{
    loop {
        match tokio::time::timeout_at(deadline, open()).await {
            Ok(Ok(conn)) => {
                *backoff = FIRST_BACKOFF;
                return Ok(conn);
            }
            Ok(Err(e)) => {
                let pause = (*backoff).max(FIRST_BACKOFF);
                *backoff = (pause * 2).min(MAX_BACKOFF);
                if tokio::time::Instant::now() + pause >= deadline {
                    return Err(e);
                }
                tokio::time::sleep(pause).await;
            }
            Err(_) => return Err(ClientError::Timeout(timeout)),
        }
    }
}

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

#[derive(Clone)]
enum Transport {
    Http(Box<http::HttpTransport>),
    Msgpack(Arc<msgpack::MsgpackClient>),
    Zerorpc(Arc<ZerorpcClient>),
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
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(bad("expected a URL such as http://127.0.0.1:8000/"));
        };
        let http_url = format!("http://{rest}");
        let transport = match scheme.to_ascii_lowercase().as_str() {
            "http" | "xmlrpc+http" => Transport::Http(Box::new(http::HttpTransport::new(
                &http_url,
                config,
                http::Format::XmlRpc,
            )?)),
            "jsonrpc+http" | "json+http" => {
                // JSON-RPC servers usually listen on "/", not Python's "/RPC2".
                let with_path = if rest.contains('/') {
                    http_url
                } else {
                    format!("{http_url}/")
                };
                Transport::Http(Box::new(http::HttpTransport::new(
                    &with_path,
                    config,
                    http::Format::JsonRpc,
                )?))
            }
            "msgpack" | "msgpack+tcp" => {
                let addr = rest.trim_end_matches('/');
                if addr.is_empty() || !addr.contains(':') {
                    return Err(bad("expected msgpack://host:port"));
                }
                let target = msgpack::Target::Tcp(addr.to_owned());
                let handlers = Arc::new(Dispatcher::new(handlers));
                Transport::Msgpack(Arc::new(msgpack::MsgpackClient::new(
                    target, config, handlers,
                )))
            }
            "msgpack+unix" => {
                if rest.is_empty() {
                    return Err(bad("expected msgpack+unix:///path/to/socket"));
                }
                let target = msgpack::Target::Unix(rest.into());
                let handlers = Arc::new(Dispatcher::new(handlers));
                Transport::Msgpack(Arc::new(msgpack::MsgpackClient::new(
                    target, config, handlers,
                )))
            }
            "ws" | "jsonrpc+ws" => {
                let path = if rest.contains('/') {
                    rest.to_owned()
                } else {
                    format!("{rest}/")
                };
                let target = msgpack::Target::Ws(format!("ws://{path}"));
                let handlers = Arc::new(Dispatcher::new(handlers));
                Transport::Msgpack(Arc::new(msgpack::MsgpackClient::new(
                    target, config, handlers,
                )))
            }
            "tcp" | "ipc" => {
                let endpoints = Endpoints::Connect(vec![url.to_owned()]);
                Transport::Zerorpc(Arc::new(ZerorpcClient::new(
                    endpoints,
                    config,
                    DEFAULT_HEARTBEAT,
                )))
            }
            "https" | "wss" => return Err(bad("TLS is not supported; use http:// or ws://")),
            _ => return Err(bad(
                "unknown scheme (use http://, jsonrpc+http://, ws://, msgpack://, msgpack+unix://)",
            )),
        };
        Ok(Client { transport })
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
        let client = ZerorpcClient::new(endpoints, config, heartbeat);
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
        let params = params.into_params()?;
        match &self.transport {
            Transport::Http(t) => t.call(method, &params).await.map(Some),
            Transport::Msgpack(t) => t.call(method, &params).await.map(Some),
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
            Transport::Msgpack(t) => t.notify(method, &params).await,
            // zerorpc has no notifications: make the call and drop its answer.
            Transport::Zerorpc(t) => t.call(method, &params, &mut |_| {}).await.map(|_| ()),
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

    /// Lists the server's methods with signatures and docs: through the `system.*`
    /// introspection methods (one multicall when the server has it), or from
    /// `rpc.discover` when the server has no `system.listMethods`.
    pub async fn describe(&self) -> Result<Vec<MethodInfo>, ClientError> {
        if let Transport::Zerorpc(_) = &self.transport {
            return self.describe_zerorpc().await;
        }
        let names: Vec<String> = match self.call_as("system.listMethods", ()).await {
            Ok(names) => names,
            Err(ClientError::Fault(f)) if f.code == Fault::METHOD_NOT_FOUND => {
                return match self.call("rpc.discover", ()).await {
                    Ok(doc) => Ok(from_openrpc(&doc)),
                    Err(_) => Err(ClientError::Fault(f)),
                };
            }
            Err(e) => return Err(e),
        };
        let calls = names
            .iter()
            .flat_map(|n| {
                [
                    (
                        "system.methodSignature".to_owned(),
                        vec![Value::from(n.as_str())],
                    ),
                    (
                        "system.methodHelp".to_owned(),
                        vec![Value::from(n.as_str())],
                    ),
                ]
            })
            .collect::<Vec<_>>();
        let answers = match self.multicall(calls.clone()).await {
            Ok(answers) if answers.len() == calls.len() => answers,
            _ => {
                let mut answers = Vec::with_capacity(calls.len());
                for (method, params) in calls {
                    answers.push(match self.call(&method, params).await {
                        Ok(v) => Ok(v),
                        Err(ClientError::Fault(f)) => Err(f),
                        Err(e) => return Err(e),
                    });
                }
                answers
            }
        };
        let mut answers = answers.into_iter();
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let sig = answers.next().and_then(Result::ok);
            let help = answers.next().and_then(Result::ok);
            out.push(MethodInfo {
                name,
                signatures: parse_signatures(sig),
                help: help
                    .and_then(|h| h.as_str().map(str::to_owned))
                    .unwrap_or_default(),
            });
        }
        Ok(out)
    }
}

impl Client {
    /// zerorpc's introspection: `_zerorpc_inspect`, or `_zerorpc_list` and
    /// `_zerorpc_help` where inspect fails (Python servers from 3.11 on).
    async fn describe_zerorpc(&self) -> Result<Vec<MethodInfo>, ClientError> {
        let field = |v: &Value, k: &str| v.as_struct().and_then(|m| m.get(k)).cloned();
        if let Ok(doc) = self.call("_zerorpc_inspect", ()).await {
            if let Some(Value::Struct(methods)) = field(&doc, "methods") {
                return Ok(methods
                    .into_iter()
                    .map(|(name, info)| MethodInfo {
                        signatures: Vec::new(),
                        help: field(&info, "doc")
                            .and_then(|d| d.as_str().map(str::to_owned))
                            .unwrap_or_default(),
                        name,
                    })
                    .collect());
            }
        }
        let names: Vec<String> = self.call_as("_zerorpc_list", ()).await?;
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let help = match self.call("_zerorpc_help", (name.clone(),)).await {
                Ok(Value::String(h)) => h,
                _ => String::new(),
            };
            out.push(MethodInfo {
                name,
                signatures: Vec::new(),
                help,
            });
        }
        Ok(out)
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

/// Reads the methods of an OpenRPC document.
fn from_openrpc(doc: &Value) -> Vec<MethodInfo> {
    let field = |v: &Value, k: &str| v.as_struct().and_then(|m| m.get(k)).cloned();
    let kind = |schema: Option<Value>| -> String {
        let t = schema.as_ref().and_then(|s| field(s, "type"));
        match t.as_ref().and_then(Value::as_str) {
            Some("integer") => "int",
            Some("number") => "double",
            Some("string") => "string",
            Some("boolean") => "boolean",
            Some("array") => "array",
            Some("object") => "struct",
            Some("null") => "nil",
            _ => "any",
        }
        .to_owned()
    };
    let methods = field(doc, "methods");
    let methods = methods
        .as_ref()
        .and_then(Value::as_array)
        .unwrap_or_default();
    methods
        .iter()
        .filter_map(|m| {
            let name = field(m, "name")?.as_str()?.to_owned();
            let help = field(m, "description")
                .and_then(|d| d.as_str().map(str::to_owned))
                .unwrap_or_default();
            let mut sig = vec![kind(field(m, "result").and_then(|r| field(&r, "schema")))];
            let params = field(m, "params");
            for p in params
                .as_ref()
                .and_then(Value::as_array)
                .unwrap_or_default()
            {
                sig.push(kind(field(p, "schema")));
            }
            Some(MethodInfo {
                name,
                signatures: vec![sig],
                help,
            })
        })
        .collect()
}

/// Reads a `system.methodSignature` answer; anything but a list of lists of
/// strings (Python answers the string "signatures not supported") means none.
fn parse_signatures(answer: Option<Value>) -> Vec<Vec<String>> {
    let Some(Value::Array(sigs)) = answer else {
        return Vec::new();
    };
    sigs.iter()
        .filter_map(|sig| {
            sig.as_array().map(|types| {
                types
                    .iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect()
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_from_an_openrpc_document() {
        let mut table = MethodTable::new();
        table
            .register("add", "Add.", |a: i64, b: f64| a as f64 + b)
            .params(&["a", "b"]);
        let doc = rpcs_core::openrpc::document(&table);
        let methods = from_openrpc(&doc);
        assert_eq!(
            methods,
            vec![MethodInfo {
                name: "add".into(),
                signatures: vec![vec!["double".into(), "int".into(), "double".into()]],
                help: "Add.".into(),
            }]
        );
        assert!(from_openrpc(&Value::Nil).is_empty());
    }
}
