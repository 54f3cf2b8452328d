//! Tokens on every transport: without credentials every call is refused,
//! with them a token gets what its level allows, and a stream connection
//! that never authenticates is closed.

use crate::serve;
use rpcs_core::auth::{digest_hex, hash_secret};
use rpcs_core::{Access, Fault, MethodTable, Value};
use rpcs_net::{
    Authenticator, Client, ClientConfig, ClientError, Credentials, Listener, ServerConfig,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;

const WRITER: &str = "writer-secret-0123456789";
const READER: &str = "reader-secret-0123456789";

fn tokens() -> Arc<Authenticator> {
    let entry = |name: &str, secret: &str, access: &str| {
        format!(
            "[[token]]\nname = \"{name}\"\nsha256 = \"{}\"\naccess = \"{access}\"\n",
            digest_hex(&hash_secret(secret))
        )
    };
    let text = entry("writer", WRITER, "write") + &entry("reader", READER, "read");
    Arc::new(Authenticator::parse(&text).unwrap())
}

fn table() -> MethodTable {
    let mut t = MethodTable::new();
    t.register("look", "A read.", || 1).access(Access::Read);
    t.register("change", "A write.", |v: i64| v + 1)
        .access(Access::Write);
    t
}

/// A server with tokens on HTTP, MessagePack-RPC (TCP and Unix) and zerorpc;
/// the URLs a client uses for each protocol, and the authenticator.
struct Served {
    urls: Vec<String>,
    auth: Arc<Authenticator>,
    _dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn served(auth_timeout: Duration) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let http = Listener::http("127.0.0.1:0").await.unwrap();
    let msgpack = Listener::msgpack_tcp("127.0.0.1:0").await.unwrap();
    let unix = Listener::msgpack_unix(dir.path().join("s.sock"))
        .await
        .unwrap();
    let zerorpc = Listener::zerorpc(&["tcp://127.0.0.1:0".into()], &[])
        .await
        .unwrap();
    let http_url = http.url().unwrap();
    let urls = vec![
        http_url.clone(),
        format!("jsonrpc+{http_url}"),
        http_url.replacen("http://", "ws://", 1),
        msgpack.url().unwrap(),
        unix.url().unwrap(),
        zerorpc.url().unwrap(),
    ];
    let auth = tokens();
    let config = ServerConfig {
        auth: Some(auth.clone()),
        auth_timeout,
        ..ServerConfig::default()
    };
    let (stop, _) = serve(vec![http, msgpack, unix, zerorpc], table(), config);
    Served {
        urls,
        auth,
        _dir: dir,
        _stop: stop,
    }
}

fn client(url: &str, credentials: Option<Credentials>) -> Client {
    let config = ClientConfig {
        timeout: Duration::from_secs(10),
        retry_connect: false,
        credentials,
        ..ClientConfig::default()
    };
    Client::with_config(url, config).unwrap()
}

fn token(name: &str, secret: &str) -> Option<Credentials> {
    Some(Credentials {
        name: Some(name.into()),
        secret: secret.into(),
    })
}

/// Whether `err` is a refusal for missing or wrong credentials: HTTP 401, or
/// a NOAUTH fault on the other protocols.
fn unauthenticated(err: &ClientError) -> bool {
    match err {
        ClientError::Http { status, .. } => *status == 401,
        ClientError::Fault(f) => f.name() == Some("NOAUTH"),
        _ => false,
    }
}

#[tokio::test]
async fn without_credentials_every_transport_refuses_every_call() {
    let s = served(Duration::from_secs(30)).await;
    for url in &s.urls {
        let c = client(url, None);
        for method in ["look", "change", "system.listMethods", "no.such.method"] {
            let err = c.call(method, vec![Value::Int(1)]).await.unwrap_err();
            assert!(unauthenticated(&err), "{url} {method}: {err:?}");
        }
    }
}

#[tokio::test]
async fn a_token_gets_what_its_level_allows_on_every_transport() {
    let s = served(Duration::from_secs(30)).await;
    for url in &s.urls {
        let writer = client(url, token("writer", WRITER));
        assert_eq!(
            writer.call("look", ()).await.unwrap(),
            Value::Int(1),
            "{url}"
        );
        assert_eq!(
            writer.call("change", (41,)).await.unwrap(),
            Value::Int(42),
            "{url}"
        );
        let reader = client(url, token("reader", READER));
        assert_eq!(
            reader.call("look", ()).await.unwrap(),
            Value::Int(1),
            "{url}"
        );
        match reader.call("change", (1,)).await {
            Err(ClientError::Fault(f)) => assert_eq!(f.name(), Some("NOPERM"), "{url}: {f:?}"),
            other => panic!("{url}: a read token changed something: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_wrong_secret_is_refused_and_counted() {
    let s = served(Duration::from_secs(30)).await;
    for url in &s.urls {
        let before = s.auth.failures();
        let c = client(url, token("writer", "not-a-secret-of-any-token"));
        let err = c.call("look", ()).await.unwrap_err();
        assert!(unauthenticated(&err), "{url}: {err:?}");
        assert!(
            s.auth.failures() > before,
            "{url}: the failure was not counted"
        );
    }
}

#[tokio::test]
async fn credentials_in_the_url_are_presented() {
    let s = served(Duration::from_secs(30)).await;
    // HTTP (Basic), WebSocket and MessagePack-RPC TCP URLs carry NAME:SECRET@.
    for url in [&s.urls[0], &s.urls[1], &s.urls[2], &s.urls[3]] {
        let (scheme, rest) = url.split_once("://").unwrap();
        let with = format!("{scheme}://writer:{WRITER}@{rest}");
        assert_eq!(
            client(&with, None).call("change", (1,)).await.unwrap(),
            Value::Int(2),
            "{url}"
        );
    }
}

#[tokio::test]
async fn a_stream_connection_that_never_authenticates_is_closed() {
    let s = served(Duration::from_millis(200)).await;
    let addr = s.urls[3].trim_start_matches("msgpack://").to_owned();
    let mut silent = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut buf = [0u8; 16];
    // The server closes it (end of stream); nothing is ever answered.
    let read = tokio::time::timeout(Duration::from_secs(30), silent.read(&mut buf)).await;
    assert!(matches!(read, Ok(Ok(0))), "{read:?}");
    // An authenticated connection stays: it is served after the timeout too.
    let c = client(&s.urls[3], token("writer", WRITER));
    assert_eq!(c.call("look", ()).await.unwrap(), Value::Int(1));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(c.call("look", ()).await.unwrap(), Value::Int(1));
}

#[tokio::test]
async fn an_auth_call_answers_the_token_name_and_level() {
    let s = served(Duration::from_secs(30)).await;
    let c = client(&s.urls[3], None);
    let answer = c.call("auth", ("reader", READER)).await.unwrap();
    let answer = answer.as_struct().unwrap();
    assert_eq!(answer.get("name"), Some(&Value::from("reader")));
    assert_eq!(answer.get("access"), Some(&Value::from("read")));
    assert_eq!(c.call("look", ()).await.unwrap(), Value::Int(1));
    let bad = c.call("auth", (1,)).await.unwrap_err();
    assert_eq!(bad.fault().map(|f| f.code), Some(Fault::INVALID_PARAMS));
}
