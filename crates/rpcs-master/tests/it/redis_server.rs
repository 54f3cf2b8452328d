//! A real redis-server for the tests, on a Unix socket in a directory of its
//! own, stopped when dropped. `scripts/test.sh` installs redis-server.

use crate::redis_cluster::wait_for;
pub use crate::redis_cluster::RedisCluster;
use rpcs_master::remote::RedisConfig;
use rpcs_master::{BackendConfig, MasterConfig};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use tempfile::TempDir;

pub struct RedisServer {
    child: Child,
    socket: PathBuf,
    _dir: TempDir,
}

impl RedisServer {
    /// Starts redis-server and waits until it answers.
    pub fn start() -> RedisServer {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("redis.sock");
        let child = spawn(&socket, dir.path());
        let server = RedisServer {
            child,
            socket,
            _dir: dir,
        };
        wait_for(|| std::os::unix::net::UnixStream::connect(&server.socket).is_ok());
        server
    }

    /// Kills the server (SIGKILL), for as long as `down` runs, then starts it
    /// again on the same socket, with the append-only file it kept.
    pub async fn outage<F: std::future::Future>(&mut self, down: F) -> F::Output {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.socket);
        let out = down.await;
        self.child = spawn(&self.socket, self._dir.path());
        wait_for(|| std::os::unix::net::UnixStream::connect(&self.socket).is_ok());
        out
    }

    /// Runs one command through redis-cli; its answer.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .arg("-s")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Where it listens.
    pub fn url(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// The Redis backend on it, on the test's clock.
    pub fn backend(&self, config: &MasterConfig) -> BackendConfig {
        BackendConfig::Redis(RedisConfig {
            url: self.url(),
            namespace: "rpcs".into(),
            cluster: false,
            clock: Some(config.timing.clock.clone()),
        })
    }
}

/// redis-server on `socket`, appending every write to its file (fsynced
/// always), as a deployment that must not lose acknowledged writes runs it.
fn spawn(socket: &std::path::Path, dir: &std::path::Path) -> Child {
    Command::new("redis-server")
        .args(["--port", "0", "--save", ""])
        .args(["--appendonly", "yes", "--appendfsync", "always"])
        .arg("--unixsocket")
        .arg(socket)
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server runs (scripts/test.sh installs it)")
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl RedisCluster {
    /// The Redis backend on it, on the test's clock.
    pub fn backend(&self, config: &MasterConfig) -> BackendConfig {
        BackendConfig::Redis(RedisConfig {
            clock: Some(config.timing.clock.clone()),
            ..self.config("rpcs")
        })
    }
}

impl RedisCluster {
    /// A connection setting for the cluster, its nodes named by address.
    pub fn config(&self, namespace: &str) -> RedisConfig {
        RedisConfig {
            url: self.urls(),
            namespace: namespace.into(),
            cluster: true,
            clock: None,
        }
    }
}
