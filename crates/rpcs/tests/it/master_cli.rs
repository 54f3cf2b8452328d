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
    assert!(dir.path().join("rpcs-data").join("master.redb").exists());
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
