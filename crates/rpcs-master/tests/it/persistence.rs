use crate::{config, env_with, i, s};
use rpcs_core::Value;
use rpcs_master::{BackendConfig, Durability};

#[tokio::test]
async fn state_survives_a_restart() {
    for durability in [Durability::Strict, Durability::Relaxed] {
        let dir = tempfile::tempdir().unwrap();
        let backend = BackendConfig::Embedded {
            dir: dir.path().to_owned(),
            durability,
        };
        let lease_id = {
            let e = env_with("first", backend.clone(), None, config()).await;
            e.ok(
                "stack.pushMany",
                vec![s("in"), Value::Array((0..100).map(i).collect())],
            )
            .await;
            e.ok(
                "storage.setParameter",
                vec![s("cfg"), s("k"), Value::Bytes(vec![1, 2, 3])],
            )
            .await;
            e.ok("provider.login", vec![s("w")]).await;
            e.ok("provider.sendMessage", vec![s("w"), s("hello")]).await;
            let taken = e
                .ok("stack.take", vec![s("in"), Value::Double(600.0)])
                .await;
            e.master.backend().flush().await.unwrap();
            taken.as_struct().unwrap()["id"].clone()
        };
        let e = env_with("second", backend, None, config()).await;
        assert_eq!(e.ok("stack.getSize", vec![s("in")]).await, i(99));
        assert_eq!(e.ok("stack.pop", vec![s("in")]).await, i(98));
        assert_eq!(
            e.ok("storage.getParameter", vec![s("cfg"), s("k")]).await,
            Value::Bytes(vec![1, 2, 3])
        );
        assert_eq!(e.ok("provider.visit", vec![s("w")]).await, s("hello"));
        // The lease survived too: releasing it puts item 99 back on top.
        assert_eq!(
            e.ok("stack.release", vec![s("in"), lease_id]).await,
            Value::Bool(true)
        );
        assert_eq!(e.ok("stack.pop", vec![s("in")]).await, i(99));
    }
}

#[tokio::test]
async fn a_second_master_cannot_open_the_same_directory() {
    let dir = tempfile::tempdir().unwrap();
    let backend = BackendConfig::Embedded {
        dir: dir.path().to_owned(),
        durability: Durability::Strict,
    };
    let timing = config().timing;
    let _first = backend.open(&timing).await.unwrap();
    let second = backend.open(&timing).await;
    assert!(second.is_err(), "two backends opened one directory");
}

#[tokio::test]
async fn seen_keys_survive_a_restart_from_the_journal_and_from_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let backend = BackendConfig::Embedded {
        dir: dir.path().to_owned(),
        durability: Durability::Strict,
    };
    let urls = |items: &[&str]| Value::Array(items.iter().map(|t| s(t)).collect());
    let first = env_with("first", backend.clone(), None, config()).await;
    first
        .ok("stack.pushNew", vec![s("u"), urls(&["a", "b"])])
        .await;
    first.ok("stack.markSeen", vec![s("u"), urls(&["c"])]).await;
    first.master.backend().flush().await.unwrap();
    drop(first);
    // From the journal, then compacted into a snapshot at a graceful stop.
    let second = env_with("second", backend.clone(), None, config()).await;
    let again = second
        .ok("stack.pushNew", vec![s("u"), urls(&["a", "c", "d"])])
        .await;
    let bools = |b: &[bool]| Value::Array(b.iter().map(|&b| Value::Bool(b)).collect());
    assert_eq!(again, bools(&[false, false, true]));
    second.master.backend().clone().shutdown().await.unwrap();
    drop(second);
    let third = env_with("third", backend, None, config()).await;
    let once_more = third
        .ok("stack.pushNew", vec![s("u"), urls(&["b", "d", "e"])])
        .await;
    assert_eq!(once_more, bools(&[false, false, true]));
    assert_eq!(third.ok("stack.getSize", vec![s("u")]).await, i(4));
}
