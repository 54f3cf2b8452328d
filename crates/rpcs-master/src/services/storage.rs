//! Named parameter storages: maps from parameter names to any value, with the
//! atomic operations distributed workers need (compare-and-set, set-if-absent,
//! increment).
//!
//! `create`, `setParameter`, `setParameters` and `setIfAbsent`/`compareAndSet`/
//! `increment` create a storage that does not exist yet; the other methods fault
//! `StorageNotFoundError` for an unknown storage, and `getParameter` faults
//! `ParameterNotFoundError` for an unknown parameter.

use super::{decode, method, Limits};
use crate::store::{self, key, prefix, ReadTxn, Store, Table, WriteTxn};
use rpcs_core::{Fault, Map, MethodTable, Value};
use std::sync::Arc;

fn not_found(name: &str) -> Fault {
    Fault::named("StorageNotFoundError", format!("no storage named {name:?}"))
}

fn no_param(name: &str, param: &str) -> Fault {
    Fault::named(
        "ParameterNotFoundError",
        format!("storage {name:?} has no parameter {param:?}"),
    )
}

fn param_key(name: &str, param: &str) -> Vec<u8> {
    key(&[name.as_bytes(), param.as_bytes()])
}

fn exists(txn: &dyn ReadTxn, name: &str) -> Result<bool, Fault> {
    Ok(txn.get(Table::Storages, name.as_bytes())?.is_some())
}

fn require(txn: &dyn ReadTxn, name: &str) -> Result<(), Fault> {
    if exists(txn, name)? {
        Ok(())
    } else {
        Err(not_found(name))
    }
}

fn ensure(txn: &mut dyn WriteTxn, name: &str) -> Result<(), Fault> {
    if !exists(txn, name)? {
        txn.put(Table::Storages, name.as_bytes(), &[])?;
    }
    Ok(())
}

fn get(txn: &dyn ReadTxn, name: &str, param: &str) -> Result<Option<Value>, Fault> {
    match txn.get(Table::Params, &param_key(name, param))? {
        Some(bytes) => decode(&bytes).map(Some),
        None => Ok(None),
    }
}

/// The storage service.
pub struct Storages {
    store: Arc<dyn Store>,
    limits: Limits,
}

impl Storages {
    /// A storage service over `store`.
    pub fn new(store: Arc<dyn Store>, limits: Limits) -> Storages {
        Storages { store, limits }
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
        store::write(&*self.store, move |txn| {
            if exists(txn, &name)? {
                return Ok(false);
            }
            ensure(txn, &name)?;
            Ok(true)
        })
        .await
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
            encoded.push((param_key(&name, param), self.limits.encode("value", value)?));
        }
        store::write(&*self.store, move |txn| {
            ensure(txn, &name)?;
            for (k, v) in &encoded {
                txn.put(Table::Params, k, v)?;
            }
            Ok(true)
        })
        .await
    }

    /// One parameter's value.
    pub fn get(&self, name: &str, param: &str) -> Result<Value, Fault> {
        store::read(&*self.store, |txn| {
            require(txn, name)?;
            get(txn, name, param)?.ok_or_else(|| no_param(name, param))
        })
    }

    /// Every parameter, in name order.
    pub fn get_all(&self, name: &str) -> Result<Map, Fault> {
        store::read(&*self.store, |txn| {
            require(txn, name)?;
            let entries = txn.scan(Table::Params, &prefix(name), usize::MAX)?;
            let skip = prefix(name).len();
            entries
                .into_iter()
                .map(|(k, v)| {
                    let param =
                        String::from_utf8_lossy(k.get(skip..).unwrap_or_default()).into_owned();
                    Ok((param, decode(&v)?))
                })
                .collect()
        })
    }

    /// Whether the parameter is set.
    pub fn has(&self, name: &str, param: &str) -> Result<bool, Fault> {
        store::read(&*self.store, |txn| {
            require(txn, name)?;
            Ok(txn.get(Table::Params, &param_key(name, param))?.is_some())
        })
    }

    /// Removes a parameter; false if it was not set.
    pub async fn remove_param(&self, name: String, param: String) -> Result<bool, Fault> {
        store::write(&*self.store, move |txn| {
            require(txn, &name)?;
            Ok(txn.delete(Table::Params, &param_key(&name, &param))?)
        })
        .await
    }

    /// Whether a storage of that name exists.
    pub fn exists(&self, name: &str) -> Result<bool, Fault> {
        store::read(&*self.store, |txn| exists(txn, name))
    }

    /// Deletes a storage and its parameters.
    pub async fn remove(&self, name: String) -> Result<bool, Fault> {
        store::write(&*self.store, move |txn| {
            require(txn, &name)?;
            txn.delete_prefix(Table::Params, &prefix(&name))?;
            txn.delete(Table::Storages, name.as_bytes())?;
            Ok(true)
        })
        .await
    }

    /// Every storage name, sorted.
    pub fn names(&self) -> Result<Vec<String>, Fault> {
        store::read(&*self.store, |txn| {
            let entries = txn.scan(Table::Storages, &[], usize::MAX)?;
            Ok(entries
                .into_iter()
                .map(|(k, _)| String::from_utf8_lossy(&k).into_owned())
                .collect())
        })
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
        store::write(&*self.store, move |txn| {
            let current = get(txn, &name, &param)?.unwrap_or(Value::Nil);
            if current != expected {
                return Ok(false);
            }
            ensure(txn, &name)?;
            txn.put(Table::Params, &param_key(&name, &param), &encoded)?;
            Ok(true)
        })
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
        store::write(&*self.store, move |txn| {
            let k = param_key(&name, &param);
            if txn.get(Table::Params, &k)?.is_some() {
                return Ok(false);
            }
            ensure(txn, &name)?;
            txn.put(Table::Params, &k, &encoded)?;
            Ok(true)
        })
        .await
    }

    /// Adds `delta` to an integer parameter (unset counts as 0); returns the new value.
    pub async fn increment(&self, name: String, param: String, delta: i64) -> Result<i64, Fault> {
        self.check(&name, Some(&param))?;
        store::write(&*self.store, move |txn| {
            let current = match get(txn, &name, &param)? {
                None => 0,
                Some(Value::Int(i)) => i,
                Some(other) => {
                    return Err(Fault::named(
                        "TypeError",
                        format!(
                            "parameter {param:?} holds {}, not an integer",
                            other.type_name()
                        ),
                    ))
                }
            };
            let next = current
                .checked_add(delta)
                .ok_or_else(|| Fault::named("OverflowError", "counter out of 64-bit range"))?;
            ensure(txn, &name)?;
            txn.put(
                Table::Params,
                &param_key(&name, &param),
                &rpcs_core::msgpack::encode(&Value::Int(next)),
            )?;
            Ok(next)
        })
        .await
    }
}

/// Registers the `storage.*` methods.
pub fn register(t: &mut MethodTable, svc: &Arc<Storages>) {
    method!(t, svc => s, "storage.create", "Create the named storage; true if created, false if it existed.",
        |name: String| s.create(name).await)
    .params(&["name"]);
    method!(t, svc => s, "storage.setParameter", "Set a parameter (the storage is created if missing); returns true.",
        |name: String, param: String, value: Value| s.set(name, param, value).await)
    .params(&["name", "param", "value"]);
    method!(t, svc => s, "storage.setParameters", "Set several parameters from a struct at once; returns true.",
        |name: String, params: Map| s.set_many(name, params).await)
    .params(&["name", "params"]);
    method!(t, svc => s, "storage.getParameter", "A parameter's value; faults ParameterNotFoundError if unset.",
        |name: String, param: String| s.get(&name, &param))
    .params(&["name", "param"]);
    method!(t, svc => s, "storage.getAllParameters", "All parameters of the storage as a struct.",
        |name: String| s.get_all(&name))
    .params(&["name"]);
    method!(t, svc => s, "storage.hasParameter", "Whether the parameter is set.",
        |name: String, param: String| s.has(&name, &param))
    .params(&["name", "param"]);
    method!(t, svc => s, "storage.removeParameter", "Remove a parameter; false if it was not set.",
        |name: String, param: String| s.remove_param(name, param).await)
    .params(&["name", "param"]);
    method!(t, svc => s, "storage.hasStorage", "Whether a storage of that name exists.",
        |name: String| s.exists(&name))
    .params(&["name"]);
    method!(t, svc => s, "storage.remove", "Delete the storage and all its parameters.",
        |name: String| s.remove(name).await)
    .params(&["name"]);
    method!(t, svc => s, "storage.getAllNames", "The names of all storages, sorted.",
        | | s.names());
    method!(t, svc => s, "storage.compareAndSet",
        "Set a parameter to new only if it currently equals expected (nil matches unset); true if set.",
        |name: String, param: String, expected: Value, new: Value| s.compare_and_set(name, param, expected, new).await)
    .params(&["name", "param", "expected", "new"]);
    method!(t, svc => s, "storage.setIfAbsent", "Set a parameter only if it is unset; true if set (claims and de-duplication).",
        |name: String, param: String, value: Value| s.set_if_absent(name, param, value).await)
    .params(&["name", "param", "value"]);
    method!(t, svc => s, "storage.increment", "Add delta (default 1) to an integer parameter, unset counting as 0; returns the new value.",
        |name: String, param: String, delta: Option<i64>| s.increment(name, param, delta.unwrap_or(1)).await)
    .params(&["name", "param", "delta"]);
}
