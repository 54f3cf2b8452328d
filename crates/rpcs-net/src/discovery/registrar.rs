//! Keeping a server registered: register with every registry, renew at a
//! third of the time to live (every second while no registry acknowledges,
//! as RPyC's servers retry), and unregister when stopped.

use super::{ask_all, Registries};
use rpcs_core::registration::{put_signature, sign_unregister, Registration, Secret};
use rpcs_core::{Map, Value};
use std::time::Duration;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

/// How long a registration round waits for answers (broadcasts included).
const ROUND_TIMEOUT: Duration = Duration::from_secs(1);

/// The pause before trying again while no registry acknowledges.
const RETRY: Duration = Duration::from_secs(1);

/// A running registration; [`Registrar::stop`] unregisters.
pub struct Registrar {
    id: String,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Registrar {
    /// Registers `registration` with `registries` now and keeps it renewed
    /// until stopped (a registration without an id is given a random one),
    /// signing every request with `secret` when given.
    pub fn start(
        registries: Registries,
        mut registration: Registration,
        secret: Option<Secret>,
    ) -> Registrar {
        if registration.id.is_empty() {
            registration.id = format!("{:016x}", fastrand::u64(..));
        }
        let id = registration.id.clone();
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(keep_registered(registries, registration, secret, stopped));
        Registrar { id, stop, task }
    }

    /// The id registries know this instance by.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Stops renewing and unregisters from every registry (waiting at most
    /// about a second for them).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

async fn keep_registered(
    registries: Registries,
    mut registration: Registration,
    secret: Option<Secret>,
    mut stopped: watch::Receiver<bool>,
) {
    let ttl = Duration::try_from_secs_f64(registration.ttl_secs).unwrap_or(Duration::from_secs(30));
    let renew = (ttl / 3).max(Duration::from_millis(100));
    let mut acknowledged = None;
    loop {
        if let Some(secret) = &secret {
            registration.sign(secret.bytes(), now_ms());
        }
        let answers = ask_all(
            &registries,
            "registry.register",
            vec![registration.to_value()],
            ROUND_TIMEOUT,
            |_| false,
        )
        .await;
        let refusal = match &answers {
            Ok(a) => a
                .iter()
                .find_map(|r| r.as_ref().err().map(|f| f.to_string())),
            Err(e) => Some(e.to_string()),
        };
        let ok = answers.is_ok_and(|a| a.iter().any(Result::is_ok));
        if acknowledged != Some(ok) {
            if ok {
                info!(names = ?registration.names, %registries, "registered");
            } else {
                let why = refusal.unwrap_or_default();
                warn!(names = ?registration.names, %registries, %why, "no registry acknowledged; retrying every second");
            }
            acknowledged = Some(ok);
        }
        let pause = if ok { renew } else { RETRY };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stopped.changed() => break,
        }
    }
    let id = Value::String(registration.id.clone());
    let request = match &secret {
        None => id,
        Some(secret) => {
            let mut m = Map::new();
            m.insert("id".into(), id);
            put_signature(
                &mut m,
                &sign_unregister(secret.bytes(), &registration.id, now_ms()),
            );
            Value::Struct(m)
        }
    };
    let _ = ask_all(
        &registries,
        "registry.unregister",
        vec![request],
        ROUND_TIMEOUT,
        |_| false,
    )
    .await;
    info!(names = ?registration.names, "unregistered");
}

/// The wall clock in milliseconds since the epoch, as signatures carry it.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
