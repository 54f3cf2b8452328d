//! End-to-end tests of the `rpcs` binary.

mod crash;
mod master_cli;

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

/// Starts `rpcs master` with extra arguments and waits for its URL.
pub fn start_master(args: &[&str], cwd: &Path) -> MasterProcess {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rpcs"))
        .arg("master")
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .current_dir(cwd)
        .env("RPCS_LOG", "warn")
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
    let url = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the master prints its URL");
    MasterProcess { child, url }
}
