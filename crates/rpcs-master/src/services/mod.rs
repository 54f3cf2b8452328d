//! The master's services, one file each. Each registers its methods on a
//! [`MethodTable`](rpcs_core::MethodTable) and talks only to the
//! [`Backend`](crate::backend::Backend).

pub mod provider;
pub mod registry;
pub mod stack;
pub mod storage;

use rpcs_core::{msgpack, Context, Fault, Value};

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

/// Decodes a stored value.
pub fn decode(bytes: &[u8]) -> Result<Value, Fault> {
    msgpack::decode(bytes, 128)
        .map_err(|e| Fault::named("StorageError", format!("a stored value is damaged: {e}")))
}

/// Whether the caller of `ctx` can be given an encoded stored value: its
/// protocol must carry it, or it is better left where it is.
pub fn carriable(ctx: &Context, bytes: &[u8]) -> Result<(), Fault> {
    ctx.check_carriable(&decode(bytes)?)
}

/// A time in milliseconds since the epoch as a UTC date-time value.
pub fn datetime(ms: i64) -> Value {
    msgpack::from_unix_seconds(ms.div_euclid(1000))
        .map(Value::DateTime)
        .unwrap_or(Value::Nil)
}

/// Registers an async method whose body uses a clone of a shared service, with
/// the access level a token needs to call it:
/// `method!(table, svc => s, Write, "stack.push", "doc", |name: String, item: Value| s.push(&name, item).await)`.
macro_rules! method {
    ($t:expr, $svc:ident => $s:ident, $access:ident, $name:literal, $doc:expr, |$($arg:ident: $ty:ty),*| $body:expr) => {{
        let $s = $svc.clone();
        $t.register_async($name, $doc, move |$($arg: $ty),*| {
            let $s = $s.clone();
            async move { $body }
        })
        .access(rpcs_core::Access::$access)
    }};
}
pub(crate) use method;
