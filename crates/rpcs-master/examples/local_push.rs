//! Pushes per second through the local backend with the embedded journal, in
//! process (no network), against the floor a strict writer cannot pass: one
//! append and one fdatasync per write on the same disk.
//!
//!     cargo run --release -p rpcs-master --example local_push [SECONDS] [DIR]
//!
//! DIR defaults to a fresh directory under the system's temporary directory;
//! give one on the disk the master will use.

use rpcs_master::journal::dir::DiskDir;
use rpcs_master::local::LocalBackend;
use rpcs_master::state::Change;
use rpcs_master::Durability;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let secs: f64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let base = args
        .next()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("rpcs-local-push-{}", std::process::id()));
    let run = Duration::from_secs_f64(secs);
    println!("| what | writers | writes/s |");
    println!("|---|---:|---:|");
    println!(
        "| append + fdatasync, raw | 1 | {:.0} |",
        raw_fsync(&base.join("raw"), run)
    );
    for durability in [Durability::Strict, Durability::Relaxed] {
        for writers in [1, 16] {
            let dir = base.join(format!("{durability}-{writers}"));
            let rate = pushes(&dir, durability, writers, run).await;
            println!("| local backend, {durability} push | {writers} | {rate:.0} |");
        }
    }
    let _ = std::fs::remove_dir_all(&base);
}

fn raw_fsync(path: &std::path::Path, run: Duration) -> f64 {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < run {
        f.write_all(b"sixteen bytes...").unwrap();
        f.sync_data().unwrap();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

async fn pushes(
    dir: &std::path::Path,
    durability: Durability,
    writers: usize,
    run: Duration,
) -> f64 {
    let disk = Arc::new(DiskDir::open(dir).unwrap());
    let backend = Arc::new(LocalBackend::open(disk, durability).unwrap());
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (backend, done) = (backend.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let name = format!("s{w}");
            while start.elapsed() < run {
                let change = Change::Push {
                    name: name.clone(),
                    items: vec![b"fifteen bytes..".to_vec()],
                };
                backend
                    .write(move |_| Ok(((), vec![change])))
                    .await
                    .unwrap();
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let rate = done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
    backend.close();
    rate
}
