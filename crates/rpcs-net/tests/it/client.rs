use crate::{start, table};
use rpcs_core::{Dispatcher, Fault, Value};
use rpcs_net::{BlockingClient, Client, ClientConfig, ClientError, ServerConfig};
use std::time::Duration;

#[tokio::test]
async fn typed_and_dynamic_calls() {
    let srv = start(ServerConfig::default()).await;
    let client = Client::new(&srv.url).unwrap();
    assert_eq!(client.call("add", (2, 3)).await.unwrap(), Value::Int(5));
    let sum: i64 = client.call_as("add", (40, 2)).await.unwrap();
    assert_eq!(sum, 42);
    let big = Value::Int(i64::MAX);
    assert_eq!(client.call("echo", vec![big.clone()]).await.unwrap(), big);
    let err = client.call("fail", ()).await.unwrap_err();
    let fault = err.fault().expect("a fault");
    assert_eq!(fault.name(), Some("StackIndexError"));
    let missing = client.call("nope", ()).await.unwrap_err();
    assert_eq!(
        missing.fault().map(|f| f.code),
        Some(Fault::METHOD_NOT_FOUND)
    );
    srv.shutdown().await;
}

#[tokio::test]
async fn connections_are_reused() {
    let srv = start(ServerConfig::default()).await;
    let client = Client::new(&srv.url).unwrap();
    let first: u64 = client.call_as("conn", ()).await.unwrap();
    for _ in 0..5 {
        let again: u64 = client.call_as("conn", ()).await.unwrap();
        assert_eq!(again, first);
    }
    srv.shutdown().await;
}

#[tokio::test]
async fn multicall_and_describe() {
    let srv = start(ServerConfig::default()).await;
    let client = Client::new(&srv.url).unwrap();
    let out = client
        .multicall(vec![
            ("add".into(), vec![1.into(), 2.into()]),
            ("fail".into(), vec![]),
        ])
        .await
        .unwrap();
    assert_eq!(out[0], Ok(Value::Int(3)));
    assert_eq!(out[1].as_ref().unwrap_err().name(), Some("StackIndexError"));
    let methods = client.describe().await.unwrap();
    let add = methods.iter().find(|m| m.name == "add").unwrap();
    assert_eq!(add.signatures, vec![vec!["int", "int", "int"]]);
    assert_eq!(add.help, "Add.");
    assert!(methods.iter().any(|m| m.name == "system.multicall"));
    srv.shutdown().await;
}

#[tokio::test]
async fn gzip_requests_and_large_replies() {
    let srv = start(ServerConfig::default()).await;
    let config = ClientConfig {
        gzip_requests_over: Some(0),
        ..ClientConfig::default()
    };
    let client = Client::with_config(&srv.url, config).unwrap();
    let text = Value::String("x".repeat(100_000));
    assert_eq!(client.call("echo", vec![text.clone()]).await.unwrap(), text);
    srv.shutdown().await;
}

#[tokio::test]
async fn timeouts_and_errors() {
    let srv = start(ServerConfig::default()).await;
    let config = ClientConfig {
        timeout: Duration::from_millis(200),
        ..ClientConfig::default()
    };
    let client = Client::with_config(&srv.url, config).unwrap();
    let err = client.call("sleep", (5_000,)).await.unwrap_err();
    assert!(matches!(err, ClientError::Timeout(_)), "{err:?}");
    let wrong_path = Client::new(&format!("http://{}/nowhere", srv.addr)).unwrap();
    let err = wrong_path.call("add", (1, 2)).await.unwrap_err();
    assert!(
        matches!(err, ClientError::Http { status: 404, .. }),
        "{err:?}"
    );
    let refused = Client::new("http://127.0.0.1:1/").unwrap();
    assert!(matches!(
        refused.call("add", (1, 2)).await,
        Err(ClientError::NotSent(_))
    ));
    assert!(matches!(
        Client::new("ftp://x/"),
        Err(ClientError::Url { .. })
    ));
    assert!(matches!(
        Client::new("nonsense"),
        Err(ClientError::Url { .. })
    ));
    srv.shutdown().await;
}

#[tokio::test]
async fn the_blocking_client_works_outside_async() {
    let srv = start(ServerConfig::default()).await;
    let url = srv.url.clone();
    let answer = tokio::task::spawn_blocking(move || {
        let client = BlockingClient::new(&url).unwrap();
        let sum: i64 = client.call_as("add", (2, 2)).unwrap();
        let names = client.describe().unwrap();
        (sum, names.len())
    })
    .await
    .unwrap();
    assert_eq!(answer.0, 4);
    // The table, its built-ins, and the server's `rpc.stats`.
    assert_eq!(answer.1, Dispatcher::new(table()).table().len() + 1);
    srv.shutdown().await;
}
