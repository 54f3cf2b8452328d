//! zerorpc through our server and our client.

use crate::{serve, table};
use rpcs_core::{Fault, Value};
use rpcs_net::{Client, ClientConfig, Listener, ServerConfig};
use std::time::Duration;
use tokio::sync::oneshot;

/// A stream over an iterator, ready at once.
struct Iter<I>(I);

impl<I: Iterator + Unpin> futures_util::Stream for Iter<I> {
    type Item = I::Item;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<I::Item>> {
        std::task::Poll::Ready(self.0.next())
    }
}

async fn start() -> (
    String,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let mut t = table();
    t.register_stream("count", "Counts from 1 to n.", |n: i64| {
        Iter((1..=n).map(Value::Int))
    })
    .params(&["n"]);
    let listener = Listener::zerorpc(&["tcp://127.0.0.1:0".into()], &[])
        .await
        .unwrap();
    let url = listener.url().unwrap();
    let config = ServerConfig {
        heartbeat: Duration::from_millis(300),
        ..ServerConfig::default()
    };
    let (tx, task) = serve(vec![listener], t, config);
    (url, tx, task)
}

#[tokio::test]
async fn calls_faults_streams_and_builtins() {
    let (url, stop, task) = start().await;
    assert!(url.starts_with("tcp://127.0.0.1:"), "{url}");
    let client = Client::new(&url).unwrap();
    assert_eq!(client.call("add", (2, 3)).await.unwrap(), Value::Int(5));
    let err = client.call("fail", ()).await.unwrap_err();
    assert_eq!(err.fault().and_then(|f| f.name()), Some("StackIndexError"));
    let missing = client.call("nope", ()).await.unwrap_err();
    assert_eq!(
        missing.fault().map(|f| f.code),
        Some(Fault::METHOD_NOT_FOUND)
    );
    // A stream longer than the first credit grants: 100 after the first item, topped up.
    let mut items = Vec::new();
    let answer = client
        .call_each("count", (350,), &mut |v| items.push(v))
        .await
        .unwrap();
    assert_eq!(answer, None);
    assert_eq!(items, (1..=350).map(Value::Int).collect::<Vec<_>>());
    assert_eq!(
        client.call("_zerorpc_ping", ()).await.unwrap(),
        Value::Array(vec!["pong".into(), "rpcs".into()])
    );
    let methods = client.describe().await.unwrap();
    let count = methods.iter().find(|m| m.name == "count").unwrap();
    assert_eq!(count.help, "Counts from 1 to n.");
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn long_calls_survive_on_heartbeats() {
    let (url, stop, task) = start().await;
    // Heartbeats every 300 ms; the call takes several intervals.
    let client = Client::zerorpc(
        vec![url],
        vec![],
        ClientConfig::default(),
        Duration::from_millis(300),
    )
    .unwrap();
    assert_eq!(
        client.call("sleep", (1500,)).await.unwrap(),
        Value::Int(1500)
    );
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn the_client_finds_a_restarted_server() {
    let (url, stop, task) = start().await;
    let config = ClientConfig {
        timeout: Duration::from_secs(10),
        ..ClientConfig::default()
    };
    let client = Client::zerorpc(
        vec![url.clone()],
        vec![],
        config,
        Duration::from_millis(200),
    )
    .unwrap();
    assert_eq!(client.call("add", (1, 1)).await.unwrap(), Value::Int(2));
    let _ = stop.send(());
    task.await.unwrap().unwrap();
    // Same port again.
    let listener = Listener::zerorpc(std::slice::from_ref(&url), &[])
        .await
        .unwrap();
    let (tx, task) = serve(vec![listener], table(), ServerConfig::default());
    let mut answer = client.call("add", (2, 2)).await;
    if answer.is_err() {
        // The first call may find the old socket dead; the next one reconnects.
        answer = client.call("add", (2, 2)).await;
    }
    assert_eq!(answer.unwrap(), Value::Int(4));
    let _ = tx.send(());
    task.await.unwrap().unwrap();
}
