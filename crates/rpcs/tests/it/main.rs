//! End-to-end tests of the `rpcs` binary.

mod crash;
// Shared with the master's tests; not every helper is used here.
mod master_cli;
#[allow(dead_code)]
#[path = "../../../rpcs-master/tests/it/redis_cluster.rs"]
mod redis_cluster;
mod registry;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running `rpcs master`; killed when dropped.
pub struct MasterProcess {
    pub child: Child,
    pub url: String,
}

impl Drop for MasterProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `rpcs ARGS` in `cwd`; the URLs of its `listening on` lines arrive
/// on the receiver as it prints them.
pub fn spawn_rpcs(args: &[&str], cwd: &Path) -> (Child, std::sync::mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rpcs"))
        .args(args)
        .current_dir(cwd)
        .env("RPCS_LOG", "warn")
        .env_remove("RPCS_REGISTRY")
        .env_remove("RPCS_REGISTRY_SECRET")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("rpcs starts");
    let stdout = child.stdout.take().expect("stdout piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("listening on ") {
                let _ = tx.send(url.to_owned());
            }
        }
    });
    (child, rx)
}

/// Starts `rpcs master` with extra arguments and waits for its URL.
pub fn start_master(args: &[&str], cwd: &Path) -> MasterProcess {
    let all: Vec<&str> = ["master", "--listen", "127.0.0.1:0"]
        .into_iter()
        .chain(args.iter().copied())
        .collect();
    let (child, rx) = spawn_rpcs(&all, cwd);
    let url = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the master prints its URL");
    MasterProcess { child, url }
}

/// A redis-server that fsyncs every write to its append-only file, on a Unix
/// socket under `dir`; killed when dropped.
pub struct Redis {
    child: std::process::Child,
    pub url: String,
}

impl Redis {
    pub fn start(dir: &std::path::Path) -> Redis {
        let socket = dir.join("redis.sock");
        let mut child = Command::new("redis-server")
            .args(["--port", "0", "--save", "", "--appendonly", "yes"])
            .args(["--appendfsync", "always"])
            .arg("--unixsocket")
            .arg(&socket)
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server runs (scripts/test.sh installs it)");
        for _ in 0..500 {
            if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
                let url = format!("unix://{}", socket.display());
                return Redis { child, url };
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("redis-server did not start");
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
