//! A real redis-server for the tests, on a Unix socket in a directory of its
//! own, stopped when dropped. `scripts/test.sh` installs redis-server.

use rpcs_master::remote::RedisConfig;
use rpcs_master::{BackendConfig, MasterConfig};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
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
        let child = Command::new("redis-server")
            .args(["--port", "0", "--save", "", "--appendonly", "no"])
            .arg("--unixsocket")
            .arg(&socket)
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server runs (scripts/test.sh installs it)");
        let server = RedisServer {
            child,
            socket,
            _dir: dir,
        };
        for _ in 0..500 {
            if std::os::unix::net::UnixStream::connect(&server.socket).is_ok() {
                return server;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("redis-server did not start");
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
            clock: Some(config.timing.clock.clone()),
        })
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
