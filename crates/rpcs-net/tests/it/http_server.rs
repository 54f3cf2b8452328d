use crate::{start, start_with, table, Gate};
use rpcs_core::xmlrpc;
use rpcs_core::Value;
use rpcs_net::{Client, ServerConfig};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends raw bytes and returns the whole response (the server closes after it,
/// because the request asks it to).
async fn raw(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

fn post(path: &str, extra_headers: &str, body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra_headers}Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req
}

fn status(resp: &str) -> u16 {
    resp.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn status_codes() {
    let srv = start(ServerConfig::default()).await;
    let call = xmlrpc::encode_request("add", &[Value::Int(1), Value::Int(2)]).unwrap();
    let ok = raw(
        srv.addr,
        &post("/RPC2", "Content-Type: text/xml\r\n", &call),
    )
    .await;
    assert_eq!(status(&ok), 200);
    assert!(ok.contains("<int>3</int>"), "{ok}");
    assert_eq!(status(&raw(srv.addr, &post("/", "", &call)).await), 200);
    assert_eq!(status(&raw(srv.addr, &post("/x", "", &call)).await), 404);
    let put = raw(
        srv.addr,
        b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status(&put), 405);
    assert!(
        put.to_ascii_lowercase().contains("allow: get, head, post"),
        "{put}"
    );
    // A plain GET is the page listing the methods.
    let get = raw(
        srv.addr,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status(&get), 200);
    assert!(get.contains("data-name=\"add\""), "{get}");
    let plain_text = raw(srv.addr, &post("/", "Content-Type: text/plain\r\n", &call)).await;
    assert_eq!(status(&plain_text), 415);
    // XML sent as JSON is answered as JSON-RPC: a parse error.
    let json = raw(
        srv.addr,
        &post("/", "Content-Type: application/json\r\n", &call),
    )
    .await;
    assert_eq!(status(&json), 200);
    assert!(json.contains("-32700"), "{json}");
    let br = raw(srv.addr, &post("/", "Content-Encoding: br\r\n", &call)).await;
    assert_eq!(status(&br), 415);
    let corrupt = raw(
        srv.addr,
        &post("/", "Content-Encoding: gzip\r\n", b"not gzip"),
    )
    .await;
    assert_eq!(status(&corrupt), 400);
    let garbage = raw(srv.addr, &post("/", "", b"<methodCall><oops")).await;
    assert_eq!(status(&garbage), 200);
    assert!(garbage.contains("<int>-32700</int>"), "{garbage}");
    srv.shutdown().await;
}

#[tokio::test]
async fn size_limits() {
    let config = ServerConfig {
        max_request_bytes: 1000,
        max_decompressed_bytes: 2000,
        ..ServerConfig::default()
    };
    let srv = start(config).await;
    let big = xmlrpc::encode_request("echo", &[Value::String("x".repeat(1500))]).unwrap();
    // Declared too large: refused before reading.
    assert_eq!(status(&raw(srv.addr, &post("/", "", &big)).await), 413);
    // Undeclared (chunked) and too large: refused while reading.
    let mut chunked =
        b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec();
    chunked.extend_from_slice(format!("{:x}\r\n", big.len()).as_bytes());
    chunked.extend_from_slice(&big);
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    assert_eq!(status(&raw(srv.addr, &chunked).await), 413);
    // Small when compressed, too large once inflated.
    let bomb = rpcs_net::compress::gzip(
        &xmlrpc::encode_request("echo", &[Value::String("x".repeat(5000))]).unwrap(),
    );
    assert!(bomb.len() < 1000);
    assert_eq!(
        status(&raw(srv.addr, &post("/", "Content-Encoding: gzip\r\n", &bomb)).await),
        413
    );
    srv.shutdown().await;
}

#[tokio::test]
async fn slow_bodies_time_out() {
    let config = ServerConfig {
        body_timeout: Duration::from_millis(200),
        ..ServerConfig::default()
    };
    let srv = start(config).await;
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n<metho")
        .await
        .unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("the server answers and closes")
        .unwrap();
    assert_eq!(status(&String::from_utf8_lossy(&out)), 408);
    srv.shutdown().await;
}

#[tokio::test]
async fn a_stuck_client_does_not_block_others() {
    let srv = start(ServerConfig::default()).await;
    let mut stuck = TcpStream::connect(srv.addr).await.unwrap();
    stuck
        .write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n<meth")
        .await
        .unwrap();
    let mut junk = TcpStream::connect(srv.addr).await.unwrap();
    junk.write_all(b"\x00\x01\x02 garbage\r\n\r\n")
        .await
        .unwrap();
    let client = Client::new(&srv.url).unwrap();
    for i in 0..20 {
        assert_eq!(client.call("add", (i, 1)).await.unwrap(), Value::Int(i + 1));
    }
    drop(stuck);
    srv.shutdown().await;
}

#[tokio::test]
async fn shutdown_drains_in_flight_calls() {
    let gate = Gate::default();
    let mut t = table();
    gate.register(&mut t);
    let srv = start_with(ServerConfig::default(), t).await;
    let client = Client::new(&srv.url).unwrap();
    let in_flight = tokio::spawn({
        let client = client.clone();
        async move { client.call("gate", ()).await }
    });
    gate.started().await;
    let addr = srv.addr;
    let stopping = tokio::spawn(srv.shutdown());
    // Once the server has stopped accepting, shutdown is under way: it waits
    // for the call in flight, which answers once let go.
    for _ in 0..10_000 {
        if TcpStream::connect(addr).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    gate.open();
    stopping.await.unwrap();
    assert_eq!(in_flight.await.unwrap().unwrap(), Value::Bool(true));
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "still accepting after shutdown"
    );
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed() {
    let config = ServerConfig {
        header_timeout: Duration::from_millis(300),
        ..ServerConfig::default()
    };
    let srv = start(config).await;
    let call = xmlrpc::encode_request("add", &[Value::Int(1), Value::Int(2)]).unwrap();
    let mut req = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        call.len()
    )
    .into_bytes();
    req.extend_from_slice(&call);
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    s.write_all(&req).await.unwrap();
    let mut out = Vec::new();
    // The answer arrives, then the idle connection is closed by the server.
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("the server closes an idle connection")
        .unwrap();
    assert!(String::from_utf8_lossy(&out).contains("<int>3</int>"));
    srv.shutdown().await;
}

#[tokio::test]
async fn a_refused_request_with_a_body_keeps_the_connection() {
    let srv = start(ServerConfig::default()).await;
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    // The refused request's body comes in a write of its own, as Python's
    // http.client sends it.
    s.write_all(
        b"POST /other HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: 1\r\n\r\n",
    )
    .await
    .unwrap();
    s.write_all(b"x").await.unwrap();
    let call = xmlrpc::encode_request("add", &[Value::Int(20), Value::Int(22)]).unwrap();
    let mut next = format!(
        "POST /RPC2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n",
        call.len()
    )
    .into_bytes();
    next.extend_from_slice(&call);
    s.write_all(&next).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 404"), "{text}");
    assert!(text.contains("<int>42</int>"), "{text}");
    srv.shutdown().await;
}
