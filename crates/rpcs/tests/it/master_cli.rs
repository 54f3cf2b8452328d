//! `rpcs master` flags, config file and shutdown.

use crate::start_master;
use rpcs_core::Value;
use rpcs_net::Client;
use std::process::Command;

#[tokio::test]
async fn config_file_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("master.toml");
    std::fs::write(
        &config,
        "backend = \"memory\"\nsession_timeout = 30\nmax_item_bytes = 100\n",
    )
    .unwrap();
    let master = start_master(&["--config", config.to_str().unwrap()], dir.path());
    let client = Client::new(&master.url).unwrap();
    assert_eq!(client.call("ping", ()).await.unwrap(), Value::Bool(true));
    let err = client
        .call("stack.push", ("s", "x".repeat(200)))
        .await
        .unwrap_err();
    assert_eq!(
        err.fault().and_then(|f| f.name()),
        Some("ItemTooLargeError")
    );
    // The memory backend wrote nothing to disk.
    assert!(!dir.path().join("rpcs-data").exists());
}

#[tokio::test]
async fn default_data_directory_and_graceful_stop() {
    let dir = tempfile::tempdir().unwrap();
    let mut master = start_master(&["--durability", "relaxed"], dir.path());
    let client = Client::new(&master.url).unwrap();
    client.call("stack.push", ("s", 1)).await.unwrap();
    let pid = master.child.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    let exit = master.child.wait().unwrap();
    assert!(exit.success(), "master exited with {exit}");
    // A graceful stop compacts the journal into the next generation's snapshot.
    let data = dir.path().join("rpcs-data");
    assert!(data.join("snapshot-0000000000000001").exists());
    assert!(!data.join("journal-0000000000000000").exists());
    // A relaxed master flushes on a graceful stop: the push survives.
    let master = start_master(&[], dir.path());
    let client = Client::new(&master.url).unwrap();
    assert_eq!(
        client.call("stack.pop", ("s",)).await.unwrap(),
        Value::Int(1)
    );
}

#[test]
fn bad_configuration_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "colour = \"blue\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rpcs"))
        .args(["master", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown field"), "{stderr}");
    let out = Command::new(env!("CARGO_BIN_EXE_rpcs"))
        .args(["master", "--durability", "sometimes"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn stdio_mode_serves_one_session() {
    use std::io::{Read, Write};
    let mut child = Command::new(env!("CARGO_BIN_EXE_rpcs"))
        .args(["master", "--backend", "memory", "--stdio"])
        .env("RPCS_LOG", "warn")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut frame = Vec::new();
    rpcs_core::msgpack_rpc::write_request(
        &mut frame,
        1,
        "stack.push",
        &[Value::from("s"), Value::Int(7)],
    );
    rpcs_core::msgpack_rpc::write_request(&mut frame, 2, "stack.pop", &[Value::from("s")]);
    stdin.write_all(&frame).unwrap();
    drop(stdin);
    let mut out = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    assert!(child.wait().unwrap().success());
    let (first, used) = rpcs_core::msgpack::decode_prefix(&out, 64).unwrap();
    let (second, _) = rpcs_core::msgpack::decode_prefix(&out[used..], 64).unwrap();
    let answers = [first, second].map(|v| rpcs_core::msgpack_rpc::parse(v).unwrap());
    use rpcs_core::msgpack_rpc::RpcMessage;
    assert!(
        answers.contains(&RpcMessage::Response {
            msgid: 1,
            outcome: Ok(Value::Int(1))
        }),
        "{answers:?}"
    );
    assert!(
        answers.contains(&RpcMessage::Response {
            msgid: 2,
            outcome: Ok(Value::Int(7))
        }),
        "{answers:?}"
    );
}

#[tokio::test]
async fn once_mode_serves_one_connection_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("m.sock");
    let mut master = start_master(
        &[
            "--backend",
            "memory",
            "--once",
            "--msgpack-unix",
            sock.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        dir.path(),
    );
    // The first listener is the HTTP one.
    let client = Client::new(&master.url).unwrap();
    assert_eq!(client.call("ping", ()).await.unwrap(), Value::Bool(true));
    drop(client);
    let status = tokio::task::spawn_blocking(move || master.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
}
