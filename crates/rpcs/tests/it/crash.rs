//! Repeated kill -9 of the master under pushers, takers that ack and release,
//! counters and claims, some kills during recovery; then a check of the whole
//! history: no acknowledged item lost, no acked item delivered again, counters
//! within the acknowledged increments, one winner per claimed key.
//!
//! Every call's outcome is recorded as known (answered) or unknown (the master
//! died while it was in flight): an unknown operation may or may not have
//! happened, and the checks allow exactly that much.

use crate::{start_master, MasterProcess};
use rpcs_core::Value;
use rpcs_net::{Client, ClientError};
use std::collections::{HashMap, HashSet};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CYCLES: usize = 30;
const PUSHERS: usize = 4;
const TAKERS: usize = 3;
const COUNTERS: usize = 2;
const CLAIMERS: usize = 2;
/// Long enough that no lease expires during the test: a taker's items come
/// back only when it releases them, or at the end when it logs out.
const LEASE_SECS: f64 = 3600.0;

/// What the clients saw.
#[derive(Default)]
struct History {
    /// Set once the cycle's master is dead: the clients of a master that
    /// lives on stop too (their next call counts as unknown).
    stopped: bool,
    pushed: HashSet<String>,
    pushed_maybe: HashSet<String>,
    /// Taken and not (known to be) acked or released.
    held: HashSet<String>,
    acked: HashSet<String>,
    acked_maybe: HashSet<String>,
    /// Released with an unknown outcome: may be on the stack or still held.
    released_maybe: HashSet<String>,
    increments: u64,
    increments_maybe: u64,
    /// Per claimed key: who tried, and whether they won (`None`: unknown).
    claims: HashMap<String, Vec<(String, Option<bool>)>>,
    violations: Vec<String>,
    /// Calls answered in this cycle.
    answered: usize,
}

type Shared = Arc<Mutex<History>>;

/// A call's outcome: answered, refused with a fault, or unknown.
enum Outcome {
    Answer(Value),
    Fault(String),
    Unknown,
}

async fn call(client: &Client, history: &Shared, method: &str, params: Vec<Value>) -> Outcome {
    if history.lock().unwrap().stopped {
        return Outcome::Unknown;
    }
    let outcome = match client.call(method, params).await {
        Ok(v) => Outcome::Answer(v),
        Err(ClientError::Fault(f)) => Outcome::Fault(f.name().unwrap_or("").to_owned()),
        Err(_) => return Outcome::Unknown,
    };
    history.lock().unwrap().answered += 1;
    outcome
}

fn s(text: &str) -> Value {
    Value::String(text.to_owned())
}

async fn pusher(client: Client, history: Shared, tag: String) {
    for n in 0.. {
        let item = format!("{tag}-{n}");
        let outcome = call(&client, &history, "stack.push", vec![s("jobs"), s(&item)]).await;
        let mut h = history.lock().unwrap();
        match outcome {
            Outcome::Answer(_) => h.pushed.insert(item),
            Outcome::Fault(f) => panic!("push faulted {f}"),
            Outcome::Unknown => {
                h.pushed_maybe.insert(item);
                return;
            }
        };
    }
}

async fn taker(client: Client, history: Shared, name: String, seed: u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    if let Outcome::Unknown = call(&client, &history, "provider.login", vec![s(&name)]).await {
        return;
    }
    loop {
        let args = vec![
            s("jobs"),
            Value::Double(LEASE_SECS),
            Value::Double(0.0),
            s(&name),
        ];
        let taken = match call(&client, &history, "stack.take", args).await {
            Outcome::Answer(Value::Struct(t)) => t,
            Outcome::Fault(f) if f == "StackIndexError" => {
                tokio::time::sleep(Duration::from_millis(2)).await;
                continue;
            }
            Outcome::Unknown => return,
            _ => panic!("take answered neither a lease nor StackIndexError"),
        };
        let item = taken["item"].as_str().unwrap().to_owned();
        let id = taken["id"].clone();
        {
            let mut h = history.lock().unwrap();
            if h.acked.contains(&item) || h.acked_maybe.contains(&item) || h.held.contains(&item) {
                h.violations.push(format!("{item} delivered again"));
            }
            h.released_maybe.remove(&item);
            h.held.insert(item.clone());
        }
        let release = rng.u8(..4) == 0;
        if release {
            // Back on the stack as soon as the master has it, before the
            // answer arrives: another taker may get it meanwhile.
            let mut h = history.lock().unwrap();
            h.held.remove(&item);
            h.released_maybe.insert(item.clone());
        }
        let method = if release {
            "stack.release"
        } else {
            "stack.ack"
        };
        let outcome = call(&client, &history, method, vec![s("jobs"), id]).await;
        let mut h = history.lock().unwrap();
        match outcome {
            Outcome::Answer(Value::Bool(true)) if release => {}
            Outcome::Answer(Value::Bool(true)) => {
                h.held.remove(&item);
                h.acked.insert(item);
            }
            Outcome::Answer(v) => h
                .violations
                .push(format!("{method} of {item} answered {v:?}")),
            Outcome::Fault(f) => h.violations.push(format!("{method} of {item} faulted {f}")),
            Outcome::Unknown if release => return,
            Outcome::Unknown => {
                h.held.remove(&item);
                h.acked_maybe.insert(item);
                return;
            }
        }
    }
}

async fn counter(client: Client, history: Shared) {
    loop {
        let args = vec![s("counters"), s("n"), Value::Int(1)];
        match call(&client, &history, "storage.increment", args).await {
            Outcome::Answer(_) => history.lock().unwrap().increments += 1,
            Outcome::Fault(f) => panic!("increment faulted {f}"),
            Outcome::Unknown => return history.lock().unwrap().increments_maybe += 1,
        }
    }
}

async fn claimer(client: Client, history: Shared, cycle: usize, me: String) {
    for k in 0.. {
        let key = format!("k{cycle}-{k}");
        let args = vec![s("claims"), s(&key), s(&me)];
        let won = match call(&client, &history, "storage.setIfAbsent", args).await {
            Outcome::Answer(Value::Bool(won)) => Some(won),
            Outcome::Unknown => None,
            _ => panic!("setIfAbsent answered oddly"),
        };
        let mut h = history.lock().unwrap();
        h.claims.entry(key).or_default().push((me.clone(), won));
        if won.is_none() {
            return;
        }
    }
}

/// One cycle: clients against `master` (and, when given, half of them
/// against another master that stays up) until `master` is killed after a
/// random number of answered calls.
async fn run_cycle(
    mut master: MasterProcess,
    other: Option<&str>,
    cycle: usize,
    rng: &mut fastrand::Rng,
    history: &Shared,
) {
    {
        let mut h = history.lock().unwrap();
        h.answered = 0;
        h.stopped = false;
    }
    let mut tasks = Vec::new();
    let mut n = 0;
    let mut client = || {
        n += 1;
        let url = match other {
            Some(url) if n % 2 == 0 => url,
            _ => &master.url,
        };
        Client::new(url).unwrap()
    };
    for p in 0..PUSHERS {
        let tag = format!("c{cycle}p{p}");
        tasks.push(tokio::spawn(pusher(client(), history.clone(), tag)));
    }
    for t in 0..TAKERS {
        let (name, seed) = (format!("taker{t}"), rng.u64(..));
        tasks.push(tokio::spawn(taker(client(), history.clone(), name, seed)));
    }
    for _ in 0..COUNTERS {
        tasks.push(tokio::spawn(counter(client(), history.clone())));
    }
    for c in 0..CLAIMERS {
        let me = format!("w{c}");
        tasks.push(tokio::spawn(claimer(client(), history.clone(), cycle, me)));
    }
    let kill_after = rng.usize(20..400);
    while history.lock().unwrap().answered < kill_after {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    master.child.kill().unwrap();
    master.child.wait().unwrap();
    history.lock().unwrap().stopped = true;
    for t in tasks {
        t.await.unwrap();
    }
}

/// Starts a master and kills it a moment later, while it may still be
/// recovering.
fn kill_during_recovery(dir: &std::path::Path, data: &str, rng: &mut fastrand::Rng) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rpcs"))
        .args(["master", "--listen", "127.0.0.1:0", "--data-dir", data])
        .current_dir(dir)
        .env("RPCS_LOG", "error")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(rng.u64(0..20)));
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_acknowledged_is_lost_across_kill_9_cycles() {
    let seed = 0x5eed_c0de;
    let mut rng = fastrand::Rng::with_seed(seed);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    // One history for the whole run: items held when a master died stay
    // held by their takers' sessions, and must not be delivered again.
    let history: Shared = Arc::default();
    for cycle in 0..CYCLES {
        let durability = if cycle.is_multiple_of(2) {
            "strict"
        } else {
            "relaxed"
        };
        let master = start_master(
            &["--data-dir", data, "--durability", durability],
            dir.path(),
        );
        run_cycle(master, None, cycle, &mut rng, &history).await;
        if rng.u8(..4) == 0 {
            kill_during_recovery(dir.path(), data, &mut rng);
        }
    }
    let all = Arc::try_unwrap(history).ok().unwrap().into_inner().unwrap();
    assert!(
        all.violations.is_empty(),
        "seed {seed:#x}: {:?}",
        &all.violations[..all.violations.len().min(10)]
    );
    check_final_state(start_master(&["--data-dir", data], dir.path()), &all).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_acknowledged_is_lost_when_one_of_two_masters_on_redis_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let redis = crate::Redis::start(dir.path());
    let on_redis = ["--backend", "redis", "--redis", &redis.url];
    kill_masters_sharing(&on_redis, dir.path(), 0x2ed1_5eed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_acknowledged_is_lost_when_one_of_two_masters_on_a_redis_cluster_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = crate::redis_cluster::RedisCluster::start();
    let urls = cluster.urls();
    let on_cluster = ["--backend", "redis", "--redis", &urls, "--redis-cluster"];
    kill_masters_sharing(&on_cluster, dir.path(), 0xc1a5_7e25).await;
}

/// Kill -9 cycles of a master sharing a store with a survivor started with
/// the same `backend` flags; checks nothing acknowledged was lost.
async fn kill_masters_sharing(backend: &[&str], dir: &std::path::Path, seed: u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let on_redis = backend;
    let survivor = start_master(on_redis, dir);
    let history: Shared = Arc::default();
    for cycle in 0..CYCLES {
        let victim = start_master(on_redis, dir);
        run_cycle(victim, Some(&survivor.url), cycle, &mut rng, &history).await;
    }
    let all = Arc::try_unwrap(history).ok().unwrap().into_inner().unwrap();
    assert!(
        all.violations.is_empty(),
        "seed {seed:#x}: {:?}",
        &all.violations[..all.violations.len().min(10)]
    );
    check_final_state(survivor, &all).await;
}

/// Ends the takers' sessions through `master` (their items go back), and
/// checks what is stored against the history.
async fn check_final_state(master: MasterProcess, all: &History) {
    let client = Client::new(&master.url).unwrap();
    for t in 0..TAKERS {
        let _ = client.call("provider.logout", (format!("taker{t}"),)).await;
    }
    let mut stored = Vec::new();
    loop {
        // A missing stack holds nothing (the checks below then tell what is lost).
        let batch = match client.call("stack.popMany", ("jobs", 5000)).await {
            Ok(Value::Array(batch)) => batch,
            Err(ClientError::Fault(f)) if f.name() == Some("StackNotFoundError") => vec![],
            other => panic!("popMany answered {other:?}"),
        };
        if batch.is_empty() {
            break;
        }
        stored.extend(batch.into_iter().map(|v| v.as_str().unwrap().to_owned()));
    }
    let on_stack: HashSet<&String> = stored.iter().collect();
    assert_eq!(on_stack.len(), stored.len(), "an item is stored twice");
    let lost: Vec<&String> = all
        .pushed
        .iter()
        .filter(|i| {
            !on_stack.contains(i) && !all.acked.contains(*i) && !all.acked_maybe.contains(*i)
        })
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged pushes lost: {:?}",
        lost.len(),
        all.pushed.len(),
        &lost[..lost.len().min(5)]
    );
    let back: Vec<&&String> = on_stack
        .iter()
        .filter(|i| all.acked.contains(**i))
        .collect();
    assert!(
        back.is_empty(),
        "acked items are back on the stack: {back:?}"
    );
    let unknown: Vec<&&String> = on_stack
        .iter()
        .filter(|i| !all.pushed.contains(**i) && !all.pushed_maybe.contains(**i))
        .collect();
    assert!(unknown.is_empty(), "items nobody pushed: {unknown:?}");

    let n: i64 = client
        .call_as("storage.getParameter", ("counters", "n"))
        .await
        .unwrap();
    let (low, high) = (all.increments, all.increments + all.increments_maybe);
    assert!(
        (low..=high).contains(&(n as u64)),
        "counter {n}, acknowledged {low}, at most {high}"
    );

    let Value::Struct(claimed) = client
        .call("storage.getAllParameters", ("claims",))
        .await
        .unwrap()
    else {
        panic!("getAllParameters answers a struct");
    };
    for (key, tries) in &all.claims {
        let winners: Vec<&String> = tries
            .iter()
            .filter(|(_, w)| *w == Some(true))
            .map(|(who, _)| who)
            .collect();
        assert!(winners.len() <= 1, "{key} won by {winners:?}");
        let stored = claimed.get(key).and_then(Value::as_str);
        match winners.first() {
            Some(w) => assert_eq!(
                stored,
                Some(w.as_str()),
                "{key}: the winner's claim is stored"
            ),
            None => {
                let maybe: Vec<&str> = tries
                    .iter()
                    .filter(|(_, w)| w.is_none())
                    .map(|(who, _)| who.as_str())
                    .collect();
                assert!(
                    stored.is_none_or(|s| maybe.contains(&s)),
                    "{key} holds {stored:?}, claimed by none"
                );
            }
        }
    }
    assert!(
        all.pushed.len() > 1000 && all.acked.len() > 100,
        "the run did too little to show anything"
    );
}
