//! A service by name across real processes: `rpcs registry`, several
//! `rpcs master --register`, and a client by name that spreads its calls,
//! survives an instance killed with SIGKILL and takes it back once it returns.

use rpcs_core::Value;
use rpcs_net::discovery::{self, Registries};
use rpcs_net::{Client, ClientConfig};
use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;
use tokio::time::Instant;

/// A running `rpcs` server process; killed when dropped.
struct Process {
    child: Child,
    urls: Vec<String>,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `rpcs ARGS` and waits for its `listening on` lines (`listeners` of them).
fn start(args: &[&str], listeners: usize) -> Process {
    let (child, rx) = crate::spawn_rpcs(args, Path::new("."));
    let urls = (0..listeners)
        .map(|_| {
            rx.recv_timeout(Duration::from_secs(30))
                .expect("a listening line")
        })
        .collect();
    Process { child, urls }
}

/// `rpcs registry` on any port; its UDP address.
fn start_registry() -> (Process, String) {
    let p = start(&["registry", "--listen", "127.0.0.1:0"], 2);
    let udp = p.urls[0]
        .strip_prefix("rpyc+udp://")
        .expect("the UDP listener first")
        .to_owned();
    (p, udp)
}

/// An in-memory master registered as `name`, whose storage says `who`.
async fn start_instance(name: &str, registry: &str, who: &str) -> Process {
    let p = start(
        &[
            "master",
            "--backend",
            "memory",
            "--listen",
            "127.0.0.1:0",
            "--msgpack",
            "127.0.0.1:0",
            "--register",
            name,
            "--registry",
            registry,
        ],
        2,
    );
    let direct = Client::new(&p.urls[1]).expect("a msgpack URL");
    direct
        .call("storage.setParameter", ("id", "who", who.to_owned()))
        .await
        .expect("the instance answers directly");
    p
}

/// Waits until the registry lists `n` instances of `name`.
async fn until_registered(registry: &str, name: &str, n: usize) {
    let registries = Registries::parse(registry).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found = discovery::lookup(&registries, name, Duration::from_secs(1))
            .await
            .map(|f| f.len())
            .unwrap_or(0);
        if found == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{found} of {n} instances registered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn who(client: &Client, idempotent: bool) -> String {
    let params = ("id", "who");
    let answer = if idempotent {
        client.call_idempotent("storage.getParameter", params).await
    } else {
        client.call("storage.getParameter", params).await
    };
    match answer {
        Ok(Value::String(s)) => s,
        other => panic!("a call by name failed: {other:?}"),
    }
}

fn named(registry: &str, resolve_every: Duration) -> Client {
    let config = ClientConfig {
        resolve_every,
        timeout: Duration::from_secs(10),
        ..ClientConfig::default()
    };
    Client::with_config(&format!("rpcs://counter?registry={registry}"), config).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_by_name_spreads_calls_and_survives_an_instance_killed() {
    let (_registry, reg) = start_registry();
    let mut instances = Vec::new();
    for who in ["a", "b", "c"] {
        instances.push(start_instance("counter", &reg, who).await);
    }
    until_registered(&reg, "COUNTER", 3).await;

    // Round robin: each instance answers every third call.
    let client = named(&reg, Duration::from_secs(3600));
    let mut counts: HashMap<String, usize> = HashMap::new();
    for _ in 0..12 {
        *counts.entry(who(&client, false).await).or_default() += 1;
    }
    assert_eq!(counts.len(), 3, "{counts:?}");
    assert!(counts.values().all(|&n| n == 4), "{counts:?}");

    // SIGKILL one: idempotent calls never fail; the others answer.
    let killed = instances.remove(0);
    drop(killed);
    for _ in 0..30 {
        let w = who(&client, true).await;
        assert_ne!(w, "a", "the killed instance answered");
    }
    // A client that never connected to it retries every call elsewhere, since
    // none reached the dead instance.
    let fresh = named(&reg, Duration::from_secs(3600));
    for _ in 0..30 {
        assert_ne!(who(&fresh, false).await, "a");
    }

    // Brought back (a new process, as after a restart), it is used again once
    // the name is looked up again.
    let client = named(&reg, Duration::from_millis(200));
    let _back = start_instance("counter", &reg, "a2").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if who(&client, true).await == "a2" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the restarted instance was never used"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_unregisters_at_once() {
    let (_registry, reg) = start_registry();
    let mut instance = start_instance("leaver", &reg, "x").await;
    until_registered(&reg, "LEAVER", 1).await;
    // SIGTERM: the master leaves the registry before it stops.
    let pid = instance.child.id() as i32;
    // SAFETY: sending a signal to a child process this test owns.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = instance.child.wait().expect("the master exits");
    assert!(status.success(), "{status:?}");
    let registries = Registries::parse(&reg).unwrap();
    let found = discovery::lookup(&registries, "leaver", Duration::from_secs(1))
        .await
        .unwrap();
    assert!(found.is_empty(), "still registered: {found:?}");
}

#[test]
fn discover_lists_instances_and_says_when_there_are_none() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (_registry, reg) = start_registry();
    let _instance = rt.block_on(start_instance("shown", &reg, "x"));
    rt.block_on(until_registered(&reg, "SHOWN", 1));
    let out = Command::new(env!("CARGO_BIN_EXE_rpcs"))
        .args(["discover", "shown", "--registry", &reg, "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let urls = listed[0]["urls"].as_array().expect("urls");
    assert_eq!(urls.len(), 2, "both listeners registered: {urls:?}");
    assert!(urls
        .iter()
        .any(|u| u.as_str().unwrap().starts_with("msgpack://127.0.0.1:")));
    assert_eq!(listed[0]["health"], "serving");

    // A client that must keep one connection is given one instance's stream URL.
    let named = format!("rpcs://shown?registry={reg}");
    let one = rt
        .block_on(Client::resolve_instance(&named, &ClientConfig::default()))
        .unwrap();
    assert_eq!(
        Some(&one),
        urls.iter()
            .filter_map(|u| u.as_str().map(str::to_owned))
            .find(|u| u.starts_with("msgpack://"))
            .as_ref()
    );
    let ws = rt
        .block_on(Client::resolve_instance(
            &format!("{named}&protocol=ws"),
            &ClientConfig::default(),
        ))
        .unwrap();
    assert!(ws.starts_with("ws://127.0.0.1:"), "{ws}");

    let out = Command::new(env!("CARGO_BIN_EXE_rpcs"))
        .args(["discover", "nobody", "--registry", &reg])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no instance"));

    let out = Command::new(env!("CARGO_BIN_EXE_rpcs"))
        .args([
            "call",
            &format!("rpcs://shown?registry={reg}"),
            "storage.getParameter",
            "id",
            "who",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "x");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registries_sharing_redis_serve_one_view_and_survive_one_killed() {
    let dir = tempfile::tempdir().unwrap();
    let redis = crate::Redis::start(dir.path());
    let shared = ["registry", "--listen", "127.0.0.1:0", "--redis", &redis.url];
    let a = start(&shared, 2);
    let b = start(&shared, 2);
    let addr = |p: &Process| p.urls[0].strip_prefix("rpyc+udp://").unwrap().to_owned();
    let (reg_a, reg_b) = (addr(&a), addr(&b));
    // Registered through A only, seen through B.
    let _instance = start_instance("shared", &reg_a, "s").await;
    until_registered(&reg_b, "SHARED", 1).await;
    drop(a);
    let registries = Registries::parse(&reg_b).unwrap();
    let found = discovery::lookup(&registries, "shared", Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(
        found.len(),
        1,
        "the registration outlived the registry it came through"
    );
    let both = format!("{reg_a},{reg_b}");
    let client = Client::new(&format!("rpcs://shared?registry={both}")).unwrap();
    let answer = client
        .call("storage.getParameter", ("id", "who"))
        .await
        .unwrap();
    assert_eq!(answer, Value::from("s"));
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_with_a_secret_takes_only_servers_that_share_it() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good");
    let bad = dir.path().join("bad");
    std::fs::write(&good, "correct horse battery staple\n").unwrap();
    std::fs::write(&bad, "something else\n").unwrap();
    let registry = start(
        &[
            "registry",
            "--listen",
            "127.0.0.1:0",
            "--secret-file",
            good.to_str().unwrap(),
        ],
        2,
    );
    let reg = registry.urls[0]
        .strip_prefix("rpyc+udp://")
        .unwrap()
        .to_owned();
    let member = |name: &str, secret: &std::path::Path| {
        start(
            &[
                "master",
                "--backend",
                "memory",
                "--listen",
                "127.0.0.1:0",
                "--register",
                name,
                "--registry",
                &reg,
                "--registry-secret-file",
                secret.to_str().unwrap(),
            ],
            1,
        )
    };
    let _outsider = member("insider", &bad);
    let insider = member("insider", &good);
    until_registered(&reg, "INSIDER", 1).await;
    // Both registered under the one name; only the one with the secret is there.
    let registries = Registries::parse(&reg).unwrap();
    let found = discovery::lookup(&registries, "insider", Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].urls, insider.urls);
}
