//! The master's services, one file each. Each registers its methods on a
//! [`MethodTable`](rpcs_core::MethodTable) and talks only to the [`Store`](crate::store::Store).

pub mod provider;
pub mod stack;
pub mod storage;

use crate::store::StoreError;
use rpcs_core::{msgpack, Fault, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// Bounds on what clients may store.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The largest item, parameter value or message, encoded.
    pub max_item_bytes: usize,
    /// The longest stack, storage, parameter or client name, in bytes.
    pub max_name_bytes: usize,
    /// The most items one `pushMany` or `popMany` moves.
    pub max_batch: usize,
    /// `popMany` stops taking items once they reach this many bytes (encoded),
    /// so that its answer stays within what every protocol carries.
    pub max_answer_bytes: usize,
    /// The longest a blocking call may wait, in seconds.
    pub max_wait_secs: f64,
    /// The most subscriptions one connection may hold.
    pub max_subscriptions: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_item_bytes: 1 << 20,
            max_name_bytes: 1024,
            max_batch: 10_000,
            max_answer_bytes: 4 << 20,
            max_wait_secs: 3600.0,
            max_subscriptions: 64,
        }
    }
}

impl Limits {
    /// Refuses empty or over-long names.
    pub fn check_name(&self, what: &str, name: &str) -> Result<(), Fault> {
        if name.is_empty() {
            return Err(Fault::named(
                "ValueError",
                format!("{what} name must not be empty"),
            ));
        }
        if name.len() > self.max_name_bytes {
            return Err(Fault::named(
                "ValueError",
                format!(
                    "{what} name of {} bytes exceeds the limit of {}",
                    name.len(),
                    self.max_name_bytes
                ),
            ));
        }
        Ok(())
    }

    /// Encodes a value for storage, refusing one over the size limit.
    pub fn encode(&self, what: &str, value: &Value) -> Result<Vec<u8>, Fault> {
        let bytes = msgpack::encode(value);
        if bytes.len() > self.max_item_bytes {
            return Err(Fault::named(
                "ItemTooLargeError",
                format!(
                    "{what} of {} bytes exceeds the limit of {}",
                    bytes.len(),
                    self.max_item_bytes
                ),
            ));
        }
        Ok(bytes)
    }

    /// Checks a batch size.
    pub fn check_batch(&self, n: usize) -> Result<(), Fault> {
        if n > self.max_batch {
            return Err(Fault::named(
                "ValueError",
                format!("{n} items exceed the batch limit of {}", self.max_batch),
            ));
        }
        Ok(())
    }

    /// Turns a wait in seconds into a duration, refusing negative or excessive ones.
    pub fn wait(&self, secs: f64) -> Result<std::time::Duration, Fault> {
        if !(0.0..=self.max_wait_secs).contains(&secs) {
            return Err(Fault::named(
                "ValueError",
                format!(
                    "timeout must be between 0 and {} seconds",
                    self.max_wait_secs
                ),
            ));
        }
        Ok(std::time::Duration::from_secs_f64(secs))
    }
}

/// Wake-ups by name: blocked pops wait on a stack's name, subscriptions on a
/// client's. An entry lives only while someone waits on it, so names that callers
/// make up cannot grow the map.
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

/// Decodes a stored value.
pub fn decode(bytes: &[u8]) -> Result<Value, Fault> {
    msgpack::decode(bytes, 128).map_err(|e| StoreError::Corrupt(e.to_string()).into())
}

/// Reads a stored big-endian u64.
pub fn decode_u64(bytes: &[u8]) -> Result<u64, Fault> {
    bytes
        .try_into()
        .map(u64::from_be_bytes)
        .map_err(|_| StoreError::Corrupt("bad counter".into()).into())
}

/// A time in milliseconds since the epoch as a UTC date-time value.
pub fn datetime(ms: i64) -> Value {
    msgpack::from_unix_seconds(ms.div_euclid(1000))
        .map(Value::DateTime)
        .unwrap_or(Value::Nil)
}

/// Registers an async method whose body uses a clone of a shared service:
/// `method!(table, svc => s, "stack.push", "doc", |name: String, item: Value| s.push(&name, item).await)`.
macro_rules! method {
    ($t:expr, $svc:ident => $s:ident, $name:literal, $doc:expr, |$($arg:ident: $ty:ty),*| $body:expr) => {{
        let $s = $svc.clone();
        $t.register_async($name, $doc, move |$($arg: $ty),*| {
            let $s = $s.clone();
            async move { $body }
        })
    }};
}
pub(crate) use method;
