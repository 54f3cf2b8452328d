//! MessagePack-RPC (TCP and Unix) and JSON-RPC over HTTP, through our clients.

use crate::{serve, table, Gate};
use rpcs_core::{Context, Fault, MethodTable, Value};
use rpcs_net::{Client, ClientConfig, ClientError, Listener, ServerConfig};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

struct Multi {
    http: String,
    msgpack: String,
    unix: String,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Multi {
    async fn shutdown(mut self) {
        let _ = self.stop.take().map(|s| s.send(()));
        self.task.await.unwrap().unwrap();
    }
}

fn callback_table() -> MethodTable {
    let mut t = table();
    t.register_async(
        "line_counter",
        "Calls the client's `noisy` once per line; returns the number of lines.",
        |ctx: Context, text: String| async move {
            let mut n = 0;
            for line in text.lines() {
                ctx.call_peer("noisy", (line.to_owned(),)).await?;
                n += 1;
            }
            Ok::<_, Fault>(n)
        },
    );
    t
}

async fn start_all(config: ServerConfig) -> Multi {
    start_all_with(config, callback_table()).await
}

async fn start_all_with(config: ServerConfig, t: MethodTable) -> Multi {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("rpcs.sock");
    let listeners = vec![
        Listener::http("127.0.0.1:0").await.unwrap(),
        Listener::msgpack_tcp("127.0.0.1:0").await.unwrap(),
        Listener::msgpack_unix(&sock).await.unwrap(),
    ];
    let urls: Vec<String> = listeners.iter().map(|l| l.url().unwrap()).collect();
    let (tx, task) = serve(listeners, t, config);
    Multi {
        http: urls[0].clone(),
        msgpack: urls[1].clone(),
        unix: urls[2].clone(),
        stop: Some(tx),
        task,
        _dir: dir,
    }
}

fn json_url(http: &str) -> String {
    http.replacen("http://", "jsonrpc+http://", 1)
}

fn ws_url(http: &str) -> String {
    http.replacen("http://", "ws://", 1)
}

#[tokio::test]
async fn every_protocol_answers_the_same() {
    let srv = start_all(ServerConfig::default()).await;
    assert!(srv.unix.starts_with("msgpack+unix://"));
    for url in [
        srv.http.clone(),
        json_url(&srv.http),
        ws_url(&srv.http),
        srv.msgpack.clone(),
        srv.unix.clone(),
    ] {
        let client = Client::new(&url).unwrap();
        assert_eq!(
            client.call("add", (2, 3)).await.unwrap(),
            Value::Int(5),
            "{url}"
        );
        let bytes = Value::Bytes(vec![0, 1, 255]);
        let back = client.call("echo", vec![bytes.clone()]).await.unwrap();
        if url.starts_with("jsonrpc") || url.starts_with("ws") {
            // JSON carries bytes as base64 text.
            assert_eq!(back, Value::from("AAH/"), "{url}");
        } else {
            assert_eq!(back, bytes, "{url}");
        }
        let err = client.call("fail", ()).await.unwrap_err();
        assert_eq!(
            err.fault().and_then(|f| f.name()),
            Some("StackIndexError"),
            "{url}"
        );
        let missing = client.call("nope", ()).await.unwrap_err();
        assert_eq!(
            missing.fault().map(|f| f.code),
            Some(Fault::METHOD_NOT_FOUND),
            "{url}"
        );
        client.notify("add", (1, 1)).await.unwrap();
        let names = client.describe().await.unwrap();
        assert!(names.iter().any(|m| m.name == "line_counter"), "{url}");
    }
    srv.shutdown().await;
}

#[tokio::test]
async fn pipelined_calls_do_not_wait_for_slow_ones() {
    let gate = Gate::default();
    let mut t = callback_table();
    gate.register(&mut t);
    let srv = start_all_with(ServerConfig::default(), t).await;
    let client = Client::new(&srv.msgpack).unwrap();
    let slow = tokio::spawn({
        let client = client.clone();
        async move { client.call("gate", ()).await }
    });
    gate.started().await;
    // Many calls on the same connection finish while the slow one still runs.
    let mut fast = Vec::new();
    for i in 0..200 {
        let client = client.clone();
        fast.push(tokio::spawn(
            async move { client.call("add", (i, 1)).await },
        ));
    }
    for (i, f) in fast.into_iter().enumerate() {
        assert_eq!(f.await.unwrap().unwrap(), Value::Int(i as i64 + 1));
    }
    // The slow call is still held: the fast ones did not wait behind it.
    assert!(!slow.is_finished());
    gate.open();
    assert_eq!(slow.await.unwrap().unwrap(), Value::Bool(true));
    // All of that went over one connection.
    let a: u64 = client.call_as("conn", ()).await.unwrap();
    let b: u64 = client.call_as("conn", ()).await.unwrap();
    assert_eq!(a, b);
    srv.shutdown().await;
}

#[tokio::test]
async fn the_server_calls_back_into_the_client() {
    let srv = start_all(ServerConfig::default()).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let mut handlers = MethodTable::new();
    handlers.register("noisy", "Records a line.", move |line: String| {
        let _ = tx.send(line);
        true
    });
    for url in [srv.msgpack.clone(), srv.unix.clone(), ws_url(&srv.http)] {
        let client =
            Client::with_handlers(&url, ClientConfig::default(), handlers.clone()).unwrap();
        let n: i64 = client
            .call_as("line_counter", ("Simple\nis\nbetter\nthan\ncomplex.",))
            .await
            .unwrap();
        assert_eq!(n, 5);
        let mut got = Vec::new();
        while let Ok(line) = rx.try_recv() {
            got.push(line);
        }
        assert_eq!(got, ["Simple", "is", "better", "than", "complex."]);
    }
    // Over HTTP there is no way back to the caller: a clear fault.
    let http = Client::new(&srv.http).unwrap();
    let err = http.call("line_counter", ("a\nb",)).await.unwrap_err();
    assert_eq!(err.fault().and_then(|f| f.name()), Some("CallbackError"));
    // A client without the method answers method-not-found to the server.
    let bare = Client::new(&srv.msgpack).unwrap();
    let err = bare.call("line_counter", ("a",)).await.unwrap_err();
    assert_eq!(err.fault().map(|f| f.code), Some(Fault::METHOD_NOT_FOUND));
    srv.shutdown().await;
}

#[tokio::test]
async fn a_bad_frame_closes_only_its_own_connection() {
    let srv = start_all(ServerConfig::default()).await;
    let good = Client::new(&srv.msgpack).unwrap();
    assert_eq!(good.call("add", (1, 1)).await.unwrap(), Value::Int(2));
    let addr = srv.msgpack.trim_start_matches("msgpack://").to_owned();
    // Reserved byte 0xc1: not MessagePack at all.
    let mut bad = tokio::net::TcpStream::connect(&addr).await.unwrap();
    bad.write_all(&[0xc1, 0x00]).await.unwrap();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), bad.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the bad connection was not closed");
    // A well-formed value that is not a message: answered when it has an id.
    let mut odd = tokio::net::TcpStream::connect(&addr).await.unwrap();
    odd.write_all(&[0x94, 0x00, 0x07, 0x01, 0x90])
        .await
        .unwrap();
    let mut reply = [0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(10), odd.read(&mut reply))
        .await
        .unwrap()
        .unwrap();
    let value = rpcs_core::msgpack::decode(&reply[..n], 64).unwrap();
    let msg = rpcs_core::msgpack_rpc::parse(value).unwrap();
    assert!(
        matches!(
            msg,
            rpcs_core::msgpack_rpc::RpcMessage::Response {
                msgid: 7,
                outcome: Err(_)
            }
        ),
        "{msg:?}"
    );
    // A truncated frame that never completes is dropped after the frame timeout,
    // while the good client carries on.
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(&[0x94, 0x00]).await.unwrap();
    for i in 0..20 {
        assert_eq!(good.call("add", (i, 1)).await.unwrap(), Value::Int(i + 1));
    }
    srv.shutdown().await;
}

#[tokio::test]
async fn oversized_frames_are_refused() {
    let config = ServerConfig {
        max_request_bytes: 1024,
        ..ServerConfig::default()
    };
    let srv = start_all(config).await;
    let client = Client::new(&srv.msgpack).unwrap();
    let err = client
        .call("echo", vec![Value::String("x".repeat(4096))])
        .await;
    assert!(
        matches!(err, Err(ClientError::Connect(_))),
        "an oversized frame was served"
    );
    // The client reconnects for the next call.
    assert_eq!(client.call("add", (1, 2)).await.unwrap(), Value::Int(3));
    srv.shutdown().await;
}

#[tokio::test]
async fn the_client_reconnects_after_the_server_restarts() {
    let listener = Listener::msgpack_tcp("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().unwrap();
    let run = |listener: Listener| serve(vec![listener], table(), ServerConfig::default());
    let (stop, task) = run(listener);
    let client = Client::new(&format!("msgpack://{addr}")).unwrap();
    assert_eq!(client.call("add", (1, 1)).await.unwrap(), Value::Int(2));
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    assert!(client.call("add", (1, 1)).await.is_err());
    let listener = Listener::msgpack_tcp(&addr.to_string()).await.unwrap();
    let (stop, task) = run(listener);
    assert_eq!(client.call("add", (2, 2)).await.unwrap(), Value::Int(4));
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn json_rpc_named_parameters_and_discover() {
    let srv = start_all(ServerConfig::default()).await;
    let body = r#"{"jsonrpc":"2.0","method":"add","params":{"arg1":2,"arg0":40},"id":"x"}"#;
    let http = hyper_post(&srv.http, body).await;
    assert!(
        http.ends_with(r#"{"jsonrpc":"2.0","id":"x","result":42}"#),
        "{http}"
    );
    let client = Client::new(&json_url(&srv.http)).unwrap();
    let doc = client.call("rpc.discover", ()).await.unwrap();
    assert_eq!(doc.as_struct().unwrap()["openrpc"], Value::from("1.2.6"));
    srv.shutdown().await;
}

async fn hyper_post(url: &str, body: &str) -> String {
    let addr = url.trim_start_matches("http://").trim_end_matches('/');
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test]
async fn big_websocket_answers_arrive_whole_in_fragments() {
    let srv = start_all(ServerConfig::default()).await;
    let client = Client::new(&ws_url(&srv.http)).unwrap();
    // Over a megabyte, with multi-byte characters across fragment boundaries.
    let text = "é☺x".repeat(300_000);
    let back = client
        .call("echo", vec![Value::String(text.clone())])
        .await
        .unwrap();
    assert_eq!(back, Value::String(text));
    srv.shutdown().await;
}
