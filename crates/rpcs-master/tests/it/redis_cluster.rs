//! A three-node Redis Cluster for the tests, on free ports, stopped when
//! dropped; shared by the test crates that need one (`#[path]`-included).
//! `scripts/test.sh` installs redis-server.

use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tempfile::TempDir;

/// A three-node Redis Cluster (no replicas) on 127.0.0.1, stopped when dropped.
pub struct RedisCluster {
    nodes: Vec<Child>,
    pub ports: Vec<u16>,
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

impl RedisCluster {
    /// Its nodes as a comma-separated list of `redis://` URLs.
    pub fn urls(&self) -> String {
        let urls: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect();
        urls.join(",")
    }
}

/// Waits (up to ten seconds) until `ready`.
pub fn wait_for(ready: impl Fn() -> bool) {
    for _ in 0..1000 {
        if ready() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("Redis did not come up");
}
