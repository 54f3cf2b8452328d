//! Kill -9 during concurrent pushes: every acknowledged push must survive.

use crate::start_master;
use rpcs_core::Value;
use rpcs_net::Client;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const WRITERS: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_pushes_survive_sigkill_in_strict_mode() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_arg = data.to_str().unwrap();
    let mut master = start_master(
        &["--data-dir", data_arg, "--durability", "strict"],
        dir.path(),
    );
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let client = Client::new(&master.url).unwrap();
        let acked = acked.clone();
        writers.push(tokio::spawn(async move {
            for n in 0.. {
                let item = format!("w{w}-{n}");
                match client.call("stack.push", ("crash", item.clone())).await {
                    Ok(_) => acked.lock().unwrap().push(item),
                    Err(_) => return,
                }
            }
        }));
    }
    // Let the writers get well under way, then kill the master mid-stream.
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if acked.lock().unwrap().len() >= 400 {
            break;
        }
    }
    master.child.kill().unwrap();
    master.child.wait().unwrap();
    for w in writers {
        let _ = tokio::time::timeout(Duration::from_secs(60), w).await;
    }
    let acked: Vec<String> = acked.lock().unwrap().clone();

    let master = start_master(&["--data-dir", data_arg], dir.path());
    let client = Client::new(&master.url).unwrap();
    let size: i64 = client.call_as("stack.getSize", ("crash",)).await.unwrap();
    let mut stored = Vec::new();
    loop {
        let batch = client.call("stack.popMany", ("crash", 5000)).await.unwrap();
        let Value::Array(items) = batch else {
            panic!("popMany answers an array")
        };
        if items.is_empty() {
            break;
        }
        stored.extend(items.into_iter().map(|v| v.as_str().unwrap().to_owned()));
    }
    assert_eq!(stored.len() as i64, size);
    let unique: HashSet<&String> = stored.iter().collect();
    assert_eq!(unique.len(), stored.len(), "an item was stored twice");
    let lost: Vec<&String> = acked.iter().filter(|a| !unique.contains(a)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged pushes lost, e.g. {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(5)]
    );
    // Each writer's items are stored in the order it pushed them.
    for w in 0..WRITERS {
        let prefix = format!("w{w}-");
        let mine: Vec<u64> = stored
            .iter()
            .rev()
            .filter_map(|s| s.strip_prefix(&prefix))
            .map(|n| n.parse().unwrap())
            .collect();
        assert!(
            mine.windows(2).all(|p| p[0] < p[1]),
            "writer {w} out of order"
        );
    }
}
