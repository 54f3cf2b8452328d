//! What one client can make the server hold: connections (per listener and in
//! all), idle sockets, queued answers, calls in flight, answer sizes and time.

use crate::{serve, table};
use rpcs_core::{msgpack, msgpack_rpc, Fault, Value};
use rpcs_net::{Client, ClientConfig, ClientError, Listener, ServerConfig};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// A guard against a test hanging forever; never a statement about speed.
const PATIENCE: Duration = Duration::from_secs(20);

struct Two {
    http: SocketAddr,
    msgpack: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Two {
    async fn shutdown(mut self) {
        let _ = self.stop.take().map(|s| s.send(()));
        self.task.await.unwrap().unwrap();
    }
    fn http_url(&self) -> String {
        format!("http://{}/", self.http)
    }
    fn msgpack_url(&self) -> String {
        format!("msgpack://{}", self.msgpack)
    }
}

async fn start_two(config: ServerConfig, t: rpcs_core::MethodTable) -> Two {
    let http = Listener::http("127.0.0.1:0").await.unwrap();
    let msgpack = Listener::msgpack_tcp("127.0.0.1:0").await.unwrap();
    let addrs = (
        http.local_addr().unwrap().unwrap(),
        msgpack.local_addr().unwrap().unwrap(),
    );
    let (tx, task) = serve(vec![http, msgpack], t, config);
    Two {
        http: addrs.0,
        msgpack: addrs.1,
        stop: Some(tx),
        task,
    }
}

/// Reads until the peer closes; what it sent.
async fn read_all(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    tokio::time::timeout(PATIENCE, s.read_to_end(&mut out))
        .await
        .expect("the server did not close the connection")
        .unwrap_or_default();
    out
}

/// Repeats `attempt` until it succeeds (the server frees a slot only once it
/// has seen a connection close, which takes a moment).
async fn eventually<F, Fut>(mut attempt: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !attempt().await {
        assert!(tokio::time::Instant::now() < deadline, "never happened");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A whole HTTP request calling `method()` over XML-RPC, kept alive.
fn xmlrpc_post(method: &str) -> Vec<u8> {
    let call = rpcs_core::xmlrpc::encode_request(method, &[]).unwrap();
    let mut request = format!(
        "POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n",
        call.len()
    )
    .into_bytes();
    request.extend_from_slice(&call);
    request
}

/// POSTs a JSON document and returns the response body.
async fn post_json(addr: SocketAddr, body: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body.as_bytes()).await.unwrap();
    let answer = String::from_utf8(read_all(&mut s).await).unwrap();
    answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_connection_over_the_cap_is_refused_at_once() {
    let config = ServerConfig {
        max_connections: 1,
        ..ServerConfig::default()
    };
    let srv = start_two(config, table()).await;
    let first = Client::new(&srv.http_url()).unwrap();
    assert_eq!(first.call("add", (1, 1)).await.unwrap(), Value::Int(2));
    // The only slot is taken: a second connection hears 503 and is closed.
    let mut second = TcpStream::connect(srv.http).await.unwrap();
    let answer = String::from_utf8(read_all(&mut second).await).unwrap();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    // The first client is still served, and once it leaves a new one is.
    assert_eq!(first.call("add", (2, 2)).await.unwrap(), Value::Int(4));
    drop(first);
    eventually(|| async {
        let c = Client::new(&srv.http_url()).unwrap();
        c.call("add", (3, 3)).await.is_ok()
    })
    .await;
    srv.shutdown().await;
}

#[tokio::test]
async fn idle_sockets_on_one_listener_do_not_lock_out_another() {
    let config = ServerConfig {
        max_connections: 100,
        max_connections_per_listener: 5,
        ..ServerConfig::default()
    };
    let srv = start_two(config, table()).await;
    let mut idle = Vec::new();
    for _ in 0..5 {
        idle.push(TcpStream::connect(srv.msgpack).await.unwrap());
    }
    // The MessagePack-RPC listener is full: one more is closed unserved...
    let mut extra = TcpStream::connect(srv.msgpack).await.unwrap();
    let mut ping = Vec::new();
    msgpack_rpc::write_request(&mut ping, 1, "add", &[Value::Int(1), Value::Int(1)]);
    let _ = extra.write_all(&ping).await;
    assert!(read_all(&mut extra).await.is_empty());
    // ...while the HTTP listener serves as usual.
    let http = Client::new(&srv.http_url()).unwrap();
    for i in 0..10 {
        assert_eq!(http.call("add", (i, 1)).await.unwrap(), Value::Int(i + 1));
    }
    // The idle sockets still hold their slots: they are served when they speak.
    idle[0].write_all(&ping).await.unwrap();
    let mut reply = [0u8; 64];
    let n = tokio::time::timeout(PATIENCE, idle[0].read(&mut reply))
        .await
        .unwrap()
        .unwrap();
    let answer = msgpack_rpc::parse(msgpack::decode(&reply[..n], 8).unwrap()).unwrap();
    assert!(matches!(
        answer,
        msgpack_rpc::RpcMessage::Response {
            outcome: Ok(Value::Int(2)),
            ..
        }
    ));
    srv.shutdown().await;
}

#[tokio::test]
async fn a_websocket_keeps_its_slot_and_is_drained_on_shutdown() {
    let config = ServerConfig {
        max_connections: 1,
        ..ServerConfig::default()
    };
    let started = Arc::new(tokio::sync::Notify::new());
    let mut t = table();
    let signal = started.clone();
    t.register_async("hold", "Says it started, then sleeps.", move |ms: u64| {
        let signal = signal.clone();
        async move {
            signal.notify_one();
            tokio::time::sleep(Duration::from_millis(ms)).await;
            ms
        }
    });
    let srv = start_two(config, t).await;
    let ws = Client::new(&format!("ws://{}/", srv.http)).unwrap();
    assert_eq!(ws.call("add", (1, 2)).await.unwrap(), Value::Int(3));
    // The upgraded connection still counts: HTTP is refused while it lives.
    let mut other = TcpStream::connect(srv.http).await.unwrap();
    let answer = String::from_utf8(read_all(&mut other).await).unwrap();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    // A call in flight on the WebSocket is answered before shutdown completes.
    let slow = tokio::spawn({
        let ws = ws.clone();
        async move { ws.call("hold", (300,)).await }
    });
    started.notified().await;
    srv.shutdown().await;
    assert_eq!(slow.await.unwrap().unwrap(), Value::Int(300));
}

#[tokio::test]
async fn idle_stream_connections_close_but_busy_ones_stay() {
    let config = ServerConfig {
        idle_timeout: Duration::from_millis(100),
        ..ServerConfig::default()
    };
    let srv = start_two(config, table()).await;
    // Silent, nothing in flight: closed.
    let mut silent = TcpStream::connect(srv.msgpack).await.unwrap();
    assert!(read_all(&mut silent).await.is_empty());
    // A call running longer than the idle timeout keeps its connection.
    let client = Client::new(&srv.msgpack_url()).unwrap();
    assert_eq!(client.call("sleep", (500,)).await.unwrap(), Value::Int(500));
    srv.shutdown().await;
}

#[tokio::test]
async fn a_client_that_never_reads_stops_being_read() {
    let served = Arc::new(AtomicUsize::new(0));
    let mut t = table();
    let counter = served.clone();
    t.register("count", "Counts calls; returns 8 KiB.", move |_: Value| {
        counter.fetch_add(1, Ordering::Relaxed);
        "x".repeat(8192)
    });
    let config = ServerConfig {
        max_queued_bytes: 64 * 1024,
        ..ServerConfig::default()
    };
    let srv = start_two(config, t).await;
    let mut flood = TcpStream::connect(srv.msgpack).await.unwrap();
    // 40 MB of requests (more than the kernel's socket buffers hold), big
    // answers, never read: writing stalls once the server stops reading, long
    // before every request is in.
    let total = 20_000;
    let padding = Value::String("p".repeat(2000));
    let mut requests = Vec::new();
    for id in 0..total {
        msgpack_rpc::write_request(&mut requests, id, "count", std::slice::from_ref(&padding));
    }
    let written = tokio::time::timeout(Duration::from_secs(3), flood.write_all(&requests)).await;
    assert!(
        written.is_err(),
        "the server read every request of a client that reads nothing"
    );
    let count = served.load(Ordering::Relaxed);
    assert!(count < total as usize, "{count}");
    // Others are served meanwhile.
    let other = Client::new(&srv.msgpack_url()).unwrap();
    assert_eq!(other.call("add", (1, 1)).await.unwrap(), Value::Int(2));
    // The calls it did get in were run; the rest are not run while it is stuck.
    assert!(served.load(Ordering::Relaxed) <= count + 64);
    drop(flood);
    srv.shutdown().await;
}

#[tokio::test]
async fn a_batch_stops_running_calls_once_its_answers_reach_the_limit() {
    let config = ServerConfig {
        max_batch_answer_bytes: 2000,
        ..ServerConfig::default()
    };
    let srv = start_two(config, table()).await;
    // One answer is never cut, whatever its size: a call that ran (a pop) must
    // deliver what it took.
    let big = vec![Value::String("x".repeat(5000))];
    let client = Client::new(&format!("jsonrpc+http://{}/", srv.http)).unwrap();
    assert_eq!(client.call("echo", big.clone()).await.unwrap(), big[0]);
    // A batch stops running calls once its answers reach the limit.
    let text = "y".repeat(300);
    let entries: Vec<String> = (0..20)
        .map(|i| format!(r#"{{"jsonrpc":"2.0","method":"echo","params":["{text}"],"id":{i}}}"#))
        .collect();
    let batch = format!("[{}]", entries.join(","));
    let answers = post_json(srv.http, &batch).await;
    let answers: Vec<serde_json::Value> = serde_json::from_str(&answers).unwrap();
    assert_eq!(answers.len(), 20);
    assert!(answers[0]["result"].is_string());
    assert_eq!(answers[19]["error"]["code"], Fault::LIMIT_EXCEEDED);
    let ran = answers.iter().filter(|a| a["result"].is_string()).count();
    // Calls run until their answers reach 2000 bytes (the one that crosses the
    // line included), none after.
    let one = serde_json::to_string(&answers[0]).unwrap().len() + 1;
    assert_eq!(ran, 2000_usize.div_ceil(one));
    srv.shutdown().await;
}

#[tokio::test]
async fn calls_past_the_time_limit_are_cut_short() {
    let config = ServerConfig {
        call_timeout: Some(Duration::from_millis(50)),
        ..ServerConfig::default()
    };
    let srv = start_two(config, table()).await;
    for url in [srv.http_url(), srv.msgpack_url()] {
        let client = Client::new(&url).unwrap();
        let err = client.call("sleep", (60_000,)).await.unwrap_err();
        assert_eq!(
            err.fault().map(|f| f.code),
            Some(Fault::LIMIT_EXCEEDED),
            "{err}"
        );
    }
    srv.shutdown().await;
}

#[tokio::test]
async fn slow_request_heads_get_408_and_idle_keep_alive_is_closed_silently() {
    let config = ServerConfig {
        header_timeout: Duration::from_millis(200),
        ..ServerConfig::default()
    };
    let srv = start_two(config, table()).await;
    let mut partial = TcpStream::connect(srv.http).await.unwrap();
    partial
        .write_all(b"POST /RPC2 HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let answer = String::from_utf8(read_all(&mut partial).await).unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    let mut silent = TcpStream::connect(srv.http).await.unwrap();
    assert!(read_all(&mut silent).await.is_empty());
    srv.shutdown().await;
}

#[tokio::test]
async fn zerorpc_calls_beyond_the_in_flight_cap_are_refused() {
    let config = ServerConfig {
        max_in_flight: 2,
        ..ServerConfig::default()
    };
    let listener = Listener::zerorpc(&["tcp://127.0.0.1:*".into()], &[])
        .await
        .unwrap();
    let url = listener.url().unwrap();
    let (stop, task) = serve(vec![listener], table(), config);
    let client = Client::with_config(&url, ClientConfig::default()).unwrap();
    let calls: Vec<_> = (0..3)
        .map(|_| {
            let c = client.clone();
            tokio::spawn(async move { c.call("sleep", (500,)).await })
        })
        .collect();
    let mut refused = 0;
    for call in calls {
        match call.await.unwrap() {
            Ok(v) => assert_eq!(v, Value::Int(500)),
            Err(ClientError::Fault(f)) => {
                assert_eq!(f.name(), Some("LimitExceeded"), "{f}");
                refused += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(refused, 1);
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn zmtp_frames_claiming_huge_lengths_close_only_their_connection() {
    let listener = Listener::zerorpc(&["tcp://127.0.0.1:*".into()], &[])
        .await
        .unwrap();
    let url = listener.url().unwrap();
    let addr = url.trim_start_matches("tcp://").to_owned();
    let (stop, task) = serve(vec![listener], table(), ServerConfig::default());
    for claim in [1u64 << 62, 1 << 40, 1 << 32, u64::MAX] {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        let mut hello = rpcs_core::zmtp::greeting().to_vec();
        rpcs_core::zmtp::write_frame(
            &mut hello,
            &rpcs_core::zmtp::ready("DEALER", b""),
            false,
            true,
        );
        hello.push(0x02);
        hello.extend_from_slice(&claim.to_be_bytes());
        s.write_all(&hello).await.unwrap();
        read_all(&mut s).await;
    }
    let client = Client::new(&url).unwrap();
    assert_eq!(client.call("add", (2, 3)).await.unwrap(), Value::Int(5));
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_client_that_takes_no_answers_is_let_go() {
    let config = ServerConfig {
        max_queued_bytes: 16 * 1024,
        write_timeout: Duration::from_millis(200),
        max_connections_per_listener: 1,
        ..ServerConfig::default()
    };
    let srv = start_two(config, table()).await;
    let mut stuck = TcpStream::connect(srv.msgpack).await.unwrap();
    let padding = Value::String("p".repeat(2000));
    let mut requests = Vec::new();
    for id in 0..100 {
        msgpack_rpc::write_request(&mut requests, id, "echo", std::slice::from_ref(&padding));
    }
    // Keep sending, never reading: once the server has given up on writing, it
    // closes the connection and the sends fail.
    let flood = async {
        loop {
            if stuck.write_all(&requests).await.is_err() {
                return;
            }
        }
    };
    tokio::time::timeout(PATIENCE, flood)
        .await
        .expect("the server kept a client that takes no answers");
    // Its slot (the listener's only one) is free again.
    eventually(|| async {
        let c = Client::new(&srv.msgpack_url()).unwrap();
        c.call("add", (1, 1)).await.is_ok()
    })
    .await;
    srv.shutdown().await;
}

#[tokio::test]
async fn an_http_client_that_reads_no_answer_is_let_go() {
    let config = ServerConfig {
        write_timeout: Duration::from_millis(200),
        max_connections_per_listener: 1,
        ..ServerConfig::default()
    };
    let mut t = table();
    t.register("big", "64 MiB of text.", || "b".repeat(64 << 20));
    let srv = start_two(config, t).await;
    let request = xmlrpc_post("big");
    // Asks for far more than the socket buffers hold, and reads none of it.
    let mut slow = TcpStream::connect(srv.http).await.unwrap();
    slow.write_all(&request).await.unwrap();
    // Its slot, the listener's only one, comes free once the server gives up.
    eventually(|| async {
        let c = Client::new(&srv.http_url()).unwrap();
        c.call("add", (1, 1)).await.is_ok()
    })
    .await;
    drop(slow);
    srv.shutdown().await;
}

/// Tells a channel when it is dropped: a call's future was dropped, finished
/// or not.
struct DropSignal(Option<oneshot::Sender<()>>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

#[tokio::test]
async fn an_http_caller_that_hangs_up_has_its_call_dropped_and_its_slot_freed() {
    let config = ServerConfig {
        max_connections_per_listener: 1,
        ..ServerConfig::default()
    };
    let (started_tx, started) = tokio::sync::mpsc::unbounded_channel::<()>();
    let (dropped_tx, dropped) = oneshot::channel();
    let dropped_tx = Arc::new(std::sync::Mutex::new(Some(dropped_tx)));
    let mut t = table();
    t.register_async("hold", "Waits for ever.", move || {
        let started = started_tx.clone();
        let signal = DropSignal(dropped_tx.lock().unwrap().take());
        async move {
            let _signal = signal;
            let _ = started.send(());
            std::future::pending::<()>().await;
            true
        }
    });
    let srv = start_two(config, t).await;
    let request = xmlrpc_post("hold");
    let mut caller = TcpStream::connect(srv.http).await.unwrap();
    caller.write_all(&request).await.unwrap();
    let mut started = started;
    tokio::time::timeout(PATIENCE, started.recv())
        .await
        .unwrap();
    drop(caller);
    tokio::time::timeout(PATIENCE, dropped)
        .await
        .expect("the call outlived its caller")
        .unwrap();
    // The listener's only slot is free again.
    eventually(|| async {
        let c = Client::new(&srv.http_url()).unwrap();
        c.call("add", (1, 1)).await.is_ok()
    })
    .await;
    srv.shutdown().await;
}
