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

/// A three-node Redis Cluster (no replicas) on 127.0.0.1, stopped when dropped.
pub struct RedisCluster {
    nodes: Vec<Child>,
    ports: Vec<u16>,
    _dir: TempDir,
}

/// A port free for a node and for its cluster bus (port + 10000).
fn cluster_port() -> u16 {
    loop {
        let port = fastrand::u16(20000..30000);
        let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
        if free(port) && free(port + 10000) {
            return port;
        }
    }
}

impl RedisCluster {
    /// Starts three nodes, joins them (`redis-cli --cluster create`) and waits
    /// until the cluster serves every slot.
    pub fn start() -> RedisCluster {
        let dir = tempfile::tempdir().unwrap();
        let mut nodes = Vec::new();
        let mut ports = Vec::new();
        for n in 0..3 {
            let port = cluster_port();
            let node_dir = dir.path().join(format!("node{n}"));
            std::fs::create_dir(&node_dir).unwrap();
            let child = Command::new("redis-server")
                .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .args(["--cluster-enabled", "yes", "--port", &port.to_string()])
                .arg("--dir")
                .arg(&node_dir)
                .stdout(Stdio::null())
                .spawn()
                .expect("redis-server runs (scripts/test.sh installs it)");
            nodes.push(child);
            ports.push(port);
        }
        let cluster = RedisCluster {
            nodes,
            ports,
            _dir: dir,
        };
        for port in &cluster.ports {
            wait_for(|| std::net::TcpStream::connect(("127.0.0.1", *port)).is_ok());
        }
        let addrs: Vec<String> = cluster
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        let created = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .status()
            .expect("redis-cli runs");
        assert!(created.success(), "redis-cli --cluster create failed");
        let port = cluster.ports[0].to_string();
        wait_for(|| {
            Command::new("redis-cli")
                .args(["-p", &port, "cluster", "info"])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("cluster_state:ok"))
        });
        cluster
    }

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
        let urls: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect();
        RedisConfig {
            url: urls.join(","),
            namespace: namespace.into(),
            cluster: true,
            clock: None,
        }
    }

    /// How many keys each node holds.
    pub fn keys_per_node(&self) -> Vec<u64> {
        self.ports
            .iter()
            .map(|p| {
                let out = Command::new("redis-cli")
                    .args(["-p", &p.to_string(), "dbsize"])
                    .output()
                    .expect("redis-cli runs");
                String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
            })
            .collect()
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            let _ = node.kill();
            let _ = node.wait();
        }
    }
}

fn wait_for(ready: impl Fn() -> bool) {
    for _ in 0..1000 {
        if ready() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("Redis did not come up");
}
