//! The frontier against a real master over MessagePack-RPC on 127.0.0.1.

use rpcs_core::Dispatcher;
use rpcs_crawler::frontier::{Frontier, Link};
use rpcs_master::clock::{ManualClock, Timing};
use rpcs_master::{BackendConfig, Master, MasterConfig};
use rpcs_net::{Client, Listener, Server, ServerConfig};
use std::time::Duration;
use url::Url;

/// A master on the memory backend, on a clock the test moves; its URL.
async fn master(clock: std::sync::Arc<ManualClock>) -> String {
    let config = MasterConfig {
        timing: Timing {
            clock,
            recheck: Duration::from_secs(3600),
        },
        ..MasterConfig::default()
    };
    let backend = BackendConfig::Memory.open(&config.timing).await.unwrap();
    let master = Master::new(backend, config);
    let listener = Listener::msgpack_tcp("127.0.0.1:0").await.unwrap();
    let url = listener.url().unwrap();
    let server = Server::new(Dispatcher::new(master.table()), ServerConfig::default());
    tokio::spawn(async move { server.run(vec![listener], std::future::pending()).await });
    url
}

fn link(url: &str, depth: u32) -> Link {
    Link {
        url: Url::parse(url).unwrap(),
        depth,
        referrer: Some("http://h/".into()),
        hops: 0,
    }
}

#[tokio::test]
async fn links_are_queued_once_and_taken_under_leases() {
    let url = master(ManualClock::new()).await;
    let frontier = Frontier::new(Client::new(&url).unwrap(), "test");
    let added = frontier
        .add(&[
            link("http://h/a", 1),
            link("http://h/b", 1),
            link("http://h/a", 2),
        ])
        .await
        .unwrap();
    assert_eq!(added, 2);
    assert_eq!(frontier.add(&[link("http://h/b", 3)]).await.unwrap(), 0);
    // A redirect's target is claimed without being queued.
    assert_eq!(
        frontier
            .mark_seen(&[Url::parse("http://h/c").unwrap()])
            .await
            .unwrap(),
        1
    );
    assert_eq!(frontier.add(&[link("http://h/c", 1)]).await.unwrap(), 0);

    let no_wait = Duration::ZERO;
    let lease = Duration::from_secs(60);
    let first = frontier.take(lease, no_wait, "w1").await.unwrap().unwrap();
    assert_eq!(first.url.as_str(), "http://h/b");
    assert_eq!(first.depth, 1);
    assert_eq!(first.referrer.as_deref(), Some("http://h/"));
    assert!(frontier.give_back(&first).await.unwrap());
    let again = frontier.take(lease, no_wait, "w1").await.unwrap().unwrap();
    assert_eq!(again.url, first.url);
    assert!(frontier.done(&again).await.unwrap());
    assert!(
        !frontier.done(&again).await.unwrap(),
        "a lease is done once"
    );
    let second = frontier.take(lease, no_wait, "w1").await.unwrap().unwrap();
    assert_eq!(second.url.as_str(), "http://h/a");
    assert!(frontier.done(&second).await.unwrap());
    assert_eq!(frontier.take(lease, no_wait, "w1").await.unwrap(), None);
}

#[tokio::test]
async fn turns_on_a_host_are_a_delay_apart_for_every_crawler() {
    let clock = ManualClock::new();
    let url = master(clock.clone()).await;
    let one = Frontier::new(Client::new(&url).unwrap(), "test");
    let two = Frontier::new(Client::new(&url).unwrap(), "test");
    let delay = Duration::from_millis(500);
    assert_eq!(one.turn("h:80", delay).await.unwrap(), Duration::ZERO);
    assert_eq!(two.turn("h:80", delay).await.unwrap(), delay);
    assert_eq!(one.turn("h:80", delay).await.unwrap(), delay * 2);
    assert_eq!(two.turn("other:80", delay).await.unwrap(), Duration::ZERO);
    clock.advance(Duration::from_secs(10));
    assert_eq!(two.turn("h:80", delay).await.unwrap(), Duration::ZERO);
}
