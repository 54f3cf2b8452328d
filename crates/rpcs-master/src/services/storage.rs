//! Named parameter storages: maps from parameter names to any value, with the
//! atomic operations distributed workers need (compare-and-set, set-if-absent,
//! increment).
//!
//! `create`, `setParameter`, `setParameters` and `setIfAbsent`/`compareAndSet`/
//! `increment` create a storage that does not exist yet; the other methods fault
//! `StorageNotFoundError` for an unknown storage, and `getParameter` faults
//! `ParameterNotFoundError` for an unknown parameter.

use super::{decode, method, Limits};
use crate::backend::Backend;
use rpcs_core::{Fault, Map, MethodTable, Value};
use std::sync::Arc;

fn no_param(name: &str, param: &str) -> Fault {
    Fault::named(
        "ParameterNotFoundError",
        format!("storage {name:?} has no parameter {param:?}"),
    )
}

/// The storage service.
pub struct Storages {
    backend: Arc<dyn Backend>,
    limits: Limits,
}

impl Storages {
    /// A storage service over `backend`.
    pub fn new(backend: Arc<dyn Backend>, limits: Limits) -> Storages {
        Storages { backend, limits }
    }

    fn check(&self, name: &str, param: Option<&str>) -> Result<(), Fault> {
        self.limits.check_name("storage", name)?;
        if let Some(p) = param {
            self.limits.check_name("parameter", p)?;
        }
        Ok(())
    }

    /// Creates a storage; false if it already existed.
    pub async fn create(&self, name: String) -> Result<bool, Fault> {
        self.check(&name, None)?;
        self.backend.create_storage(name).await
    }

    /// Sets one parameter.
    pub async fn set(&self, name: String, param: String, value: Value) -> Result<bool, Fault> {
        let mut one = Map::with_capacity(1);
        one.insert(param, value);
        self.set_many(name, one).await
    }

    /// Sets several parameters at once.
    pub async fn set_many(&self, name: String, params: Map) -> Result<bool, Fault> {
        self.check(&name, None)?;
        self.limits.check_batch(params.len())?;
        let mut encoded = Vec::with_capacity(params.len());
        for (param, value) in &params {
            self.limits.check_name("parameter", param)?;
            encoded.push((param.clone(), self.limits.encode("value", value)?));
        }
        self.backend.set_params(name, encoded).await.map(|()| true)
    }

    /// One parameter's value.
    pub async fn get(&self, name: String, param: String) -> Result<Value, Fault> {
        match self.backend.get_param(name.clone(), param.clone()).await? {
            Some(bytes) => decode(&bytes),
            None => Err(no_param(&name, &param)),
        }
    }

    /// Every parameter, in name order.
    pub async fn get_all(&self, name: String) -> Result<Map, Fault> {
        let params = self.backend.params(name).await?;
        params
            .into_iter()
            .map(|(param, bytes)| Ok((param, decode(&bytes)?)))
            .collect()
    }

    /// Whether the parameter is set.
    pub async fn has(&self, name: String, param: String) -> Result<bool, Fault> {
        Ok(self.backend.get_param(name, param).await?.is_some())
    }

    /// Removes a parameter; false if it was not set.
    pub async fn remove_param(&self, name: String, param: String) -> Result<bool, Fault> {
        self.backend.remove_param(name, param).await
    }

    /// Whether a storage of that name exists.
    pub async fn exists(&self, name: String) -> Result<bool, Fault> {
        self.backend.storage_exists(name).await
    }

    /// How many parameters the storage has.
    pub async fn size(&self, name: String) -> Result<u64, Fault> {
        self.check(&name, None)?;
        let size = self.backend.storage_size(name.clone()).await?;
        size.ok_or_else(|| crate::state::storages::not_found(&name))
    }

    /// Deletes a storage and its parameters.
    pub async fn remove(&self, name: String) -> Result<bool, Fault> {
        self.backend.remove_storage(name).await.map(|()| true)
    }

    /// Every storage name, sorted.
    pub async fn names(&self) -> Result<Vec<String>, Fault> {
        self.backend.storage_names().await
    }

    /// Sets `param` to `new` only if its current value equals `expected` (nil
    /// matches an unset parameter); whether it was set.
    pub async fn compare_and_set(
        &self,
        name: String,
        param: String,
        expected: Value,
        new: Value,
    ) -> Result<bool, Fault> {
        self.check(&name, Some(&param))?;
        let encoded = self.limits.encode("value", &new)?;
        self.backend
            .compare_and_set(name, param, expected, encoded)
            .await
    }

    /// Sets `param` only if it is unset; whether it was set (use it to claim work
    /// or de-duplicate).
    pub async fn set_if_absent(
        &self,
        name: String,
        param: String,
        value: Value,
    ) -> Result<bool, Fault> {
        self.check(&name, Some(&param))?;
        let encoded = self.limits.encode("value", &value)?;
        self.backend.set_if_absent(name, param, encoded).await
    }

    /// Reserves the next moment on `param`, `interval` seconds after the last
    /// one reserved (or now); the seconds to wait until it.
    pub async fn reserve_slot(
        &self,
        name: String,
        param: String,
        interval: f64,
    ) -> Result<f64, Fault> {
        self.check(&name, Some(&param))?;
        if !(0.0..=86_400.0).contains(&interval) {
            return Err(Fault::named(
                "ValueError",
                "interval must be between 0 and 86400 seconds",
            ));
        }
        let interval_ms = (interval * 1000.0).round() as i64;
        let wait_ms = self.backend.reserve(name, param, interval_ms).await?;
        Ok(wait_ms as f64 / 1000.0)
    }

    /// Adds `delta` to an integer parameter (unset counts as 0); returns the new value.
    pub async fn increment(&self, name: String, param: String, delta: i64) -> Result<i64, Fault> {
        self.check(&name, Some(&param))?;
        self.backend.increment(name, param, delta).await
    }
}

/// Registers the `storage.*` methods.
pub fn register(t: &mut MethodTable, svc: &Arc<Storages>) {
    method!(t, svc => s, Write, "storage.create", "Create the named storage; true if created, false if it existed.",
        |name: String| s.create(name).await)
    .params(&["name"]);
    method!(t, svc => s, Write, "storage.setParameter", "Set a parameter (the storage is created if missing); returns true.",
        |name: String, param: String, value: Value| s.set(name, param, value).await)
    .params(&["name", "param", "value"]);
    method!(t, svc => s, Write, "storage.setParameters", "Set several parameters from a struct at once; returns true.",
        |name: String, params: Map| s.set_many(name, params).await)
    .params(&["name", "params"]);
    method!(t, svc => s, Read, "storage.getParameter", "A parameter's value; faults ParameterNotFoundError if unset.",
        |name: String, param: String| s.get(name, param).await)
    .params(&["name", "param"]);
    method!(t, svc => s, Read, "storage.getAllParameters", "All parameters of the storage as a struct.",
        |name: String| s.get_all(name).await)
    .params(&["name"]);
    method!(t, svc => s, Read, "storage.hasParameter", "Whether the parameter is set.",
        |name: String, param: String| s.has(name, param).await)
    .params(&["name", "param"]);
    method!(t, svc => s, Write, "storage.removeParameter", "Remove a parameter; false if it was not set.",
        |name: String, param: String| s.remove_param(name, param).await)
    .params(&["name", "param"]);
    method!(t, svc => s, Read, "storage.getSize", "The number of parameters of the named storage.",
        |name: String| s.size(name).await)
    .params(&["name"]);
    method!(t, svc => s, Read, "storage.hasStorage", "Whether a storage of that name exists.",
        |name: String| s.exists(name).await)
    .params(&["name"]);
    method!(t, svc => s, Write, "storage.remove", "Delete the storage and all its parameters.",
        |name: String| s.remove(name).await)
    .params(&["name"]);
    method!(t, svc => s, Read, "storage.getAllNames", "The names of all storages, sorted.",
        | | s.names().await);
    method!(t, svc => s, Write, "storage.compareAndSet",
        "Set a parameter to new only if it currently equals expected (nil matches unset); true if set.",
        |name: String, param: String, expected: Value, new: Value| s.compare_and_set(name, param, expected, new).await)
    .params(&["name", "param", "expected", "new"]);
    method!(t, svc => s, Write, "storage.setIfAbsent", "Set a parameter only if it is unset; true if set (claims and de-duplication).",
        |name: String, param: String, value: Value| s.set_if_absent(name, param, value).await)
    .params(&["name", "param", "value"]);
    method!(t, svc => s, Write, "storage.reserveSlot",
        "Reserve the moment interval seconds after the last one reserved on the parameter (or now, if \
         later), kept in it as milliseconds since the epoch by the master's clock (Redis's, when \
         shared); returns the seconds to wait until it. Callers that each wait that long before acting \
         act at least interval apart, whichever master they reach: a crawl's politeness per host.",
        |name: String, param: String, interval: f64| s.reserve_slot(name, param, interval).await)
    .params(&["name", "param", "interval"]);
    method!(t, svc => s, Write, "storage.increment", "Add delta (default 1) to an integer parameter, unset counting as 0; returns the new value.",
        |name: String, param: String, delta: Option<i64>| s.increment(name, param, delta.unwrap_or(1)).await)
    .params(&["name", "param", "delta"]);
}
