//! Wake-ups by name: blocked pops wait on a stack's name, subscriptions on a
//! client's; a backend wakes them when it changes what they wait for.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// The callers waiting, by name. An entry lives only while someone waits on
/// it, so names that callers make up cannot grow the map.
#[derive(Default)]
pub struct Waiters(Arc<Mutex<HashMap<String, Entry>>>);

struct Entry {
    notify: Arc<Notify>,
    waiting: usize,
}

type Map = HashMap<String, Entry>;

fn lock(map: &Mutex<Map>) -> std::sync::MutexGuard<'_, Map> {
    map.lock().unwrap_or_else(|p| p.into_inner())
}

/// One caller waiting on a name; dropping it ends the wait.
pub struct Waiting {
    map: Arc<Mutex<Map>>,
    name: String,
    /// Notified when the name is woken.
    pub notify: Arc<Notify>,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let mut map = lock(&self.map);
        if let Some(entry) = map.get_mut(&self.name) {
            entry.waiting -= 1;
            if entry.waiting == 0 {
                map.remove(&self.name);
            }
        }
    }
}

impl Waiters {
    /// Starts waiting on `name`.
    pub fn wait_on(&self, name: &str) -> Waiting {
        let mut map = lock(&self.0);
        let entry = map.entry(name.to_owned()).or_insert_with(|| Entry {
            notify: Arc::default(),
            waiting: 0,
        });
        entry.waiting += 1;
        Waiting {
            map: self.0.clone(),
            name: name.to_owned(),
            notify: entry.notify.clone(),
        }
    }

    /// How many wait on `name`.
    pub fn waiting(&self, name: &str) -> usize {
        lock(&self.0).get(name).map_or(0, |e| e.waiting)
    }

    /// Wakes whoever waits on `name`.
    pub fn wake(&self, name: &str) {
        if let Some(e) = lock(&self.0).get(name) {
            e.notify.notify_waiters();
        }
    }

    /// Wakes everyone.
    pub fn wake_all(&self) {
        for e in lock(&self.0).values() {
            e.notify.notify_waiters();
        }
    }
}
