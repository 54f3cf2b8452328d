//! The storage operations of the local backends, each decided on the state
//! read only and recorded as the changes it makes: a conditional operation
//! that wins records a plain set, one that loses records nothing.

use super::LocalBackend;
use crate::state::Change;
use rpcs_core::{msgpack, Fault, Value};

impl LocalBackend {
    /// Creates a storage; false if it existed.
    pub async fn create_storage(&self, name: String) -> Result<bool, Fault> {
        self.write(move |state| {
            if state.storages.exists(&name) {
                return Ok((false, vec![]));
            }
            Ok((true, vec![Change::CreateStorage { name }]))
        })
        .await
    }

    /// Sets parameters (encoded values), creating the storage.
    pub async fn set_params(
        &self,
        name: String,
        params: Vec<(String, Vec<u8>)>,
    ) -> Result<(), Fault> {
        self.write(move |_| Ok(((), vec![Change::SetParams { name, params }])))
            .await
    }

    /// One parameter's encoded value (`None` if unset); `StorageNotFoundError`
    /// for an unknown storage.
    pub fn get_param(&self, name: &str, param: &str) -> Result<Option<Vec<u8>>, Fault> {
        self.read(|state| Ok(state.storages.get(name, param)?.map(<[u8]>::to_vec)))
    }

    /// Every parameter of a storage, in name order.
    pub fn params(&self, name: &str) -> Result<Vec<(String, Vec<u8>)>, Fault> {
        self.read(|state| {
            Ok(state
                .storages
                .params(name)?
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect())
        })
    }

    /// How many parameters a storage has; `None` for an unknown storage.
    pub fn storage_size(&self, name: &str) -> Option<u64> {
        self.read(|state| state.storages.params(name).ok().map(|p| p.len() as u64))
    }

    /// Removes a parameter; false if it was not set.
    pub async fn remove_param(&self, name: String, param: String) -> Result<bool, Fault> {
        self.write(move |state| {
            if state.storages.get(&name, &param)?.is_none() {
                return Ok((false, vec![]));
            }
            Ok((true, vec![Change::RemoveParam { name, param }]))
        })
        .await
    }

    /// Whether a storage of that name exists.
    pub fn storage_exists(&self, name: &str) -> bool {
        self.read(|state| state.storages.exists(name))
    }

    /// Deletes a storage with its parameters.
    pub async fn remove_storage(&self, name: String) -> Result<(), Fault> {
        self.write(move |state| {
            state.storages.params(&name)?;
            Ok(((), vec![Change::RemoveStorage { name }]))
        })
        .await
    }

    /// Every storage name, sorted.
    pub fn storage_names(&self) -> Vec<String> {
        self.read(|state| state.storages.names())
    }

    /// Sets `param` to `new` if its value equals `expected` (nil matches
    /// unset); whether it was set.
    pub async fn compare_and_set(
        &self,
        name: String,
        param: String,
        expected: Value,
        new: Vec<u8>,
    ) -> Result<bool, Fault> {
        self.write(move |state| {
            if !state.storages.holds(&name, &param, &expected)? {
                return Ok((false, vec![]));
            }
            Ok((true, vec![set(name, param, new)]))
        })
        .await
    }

    /// Sets `param` if it is unset; whether it was set.
    pub async fn set_if_absent(
        &self,
        name: String,
        param: String,
        value: Vec<u8>,
    ) -> Result<bool, Fault> {
        self.write(move |state| {
            if state.storages.is_set(&name, &param) {
                return Ok((false, vec![]));
            }
            Ok((true, vec![set(name, param, value)]))
        })
        .await
    }

    /// Adds `delta` to an integer parameter (unset counts as 0); the new value.
    pub async fn increment(&self, name: String, param: String, delta: i64) -> Result<i64, Fault> {
        self.write(move |state| {
            let next = state.storages.incremented(&name, &param, delta)?;
            let value = msgpack::encode(&Value::Int(next));
            Ok((next, vec![set(name, param, value)]))
        })
        .await
    }
}

impl LocalBackend {
    /// Reserves the moment `interval_ms` after the last one reserved on
    /// `param`, or `now_ms` if that is later, and records it; how many
    /// milliseconds from `now_ms` it is.
    pub async fn reserve(
        &self,
        name: String,
        param: String,
        interval_ms: i64,
        now_ms: i64,
    ) -> Result<i64, Fault> {
        self.write(move |state| {
            // The interval is the caller's, counted from the last slot
            // (whoever reserved it and with whatever interval): a caller
            // with a longer interval waits longer.
            let last = state.storages.incremented(&name, &param, 0)?;
            let slot = last
                .checked_add(interval_ms)
                .ok_or_else(|| Fault::named("OverflowError", "time out of 64-bit range"))?
                .max(now_ms);
            let value = msgpack::encode(&Value::Int(slot));
            Ok((slot - now_ms, vec![set(name, param, value)]))
        })
        .await
    }
}

/// The change that sets one parameter.
fn set(name: String, param: String, value: Vec<u8>) -> Change {
    Change::SetParams {
        name,
        params: vec![(param, value)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::dir::SimDir;
    use crate::journal::Durability;
    use std::sync::Arc;

    #[tokio::test]
    async fn claims_and_counters_survive_a_restart_exactly() {
        let dir = SimDir::new();
        let b = LocalBackend::open(Arc::new(dir.clone()), Durability::Strict).unwrap();
        let one = msgpack::encode(&Value::Int(1));
        assert!(b
            .set_if_absent("claims".into(), "url".into(), one.clone())
            .await
            .unwrap());
        assert!(!b
            .set_if_absent("claims".into(), "url".into(), one.clone())
            .await
            .unwrap());
        for _ in 0..5 {
            b.increment("c".into(), "n".into(), 2).await.unwrap();
        }
        assert!(b
            .increment("claims".into(), "url".into(), i64::MAX)
            .await
            .is_err());
        assert!(!b
            .compare_and_set("c".into(), "n".into(), Value::Int(9), one.clone())
            .await
            .unwrap());
        b.close();
        drop(b);
        let b = LocalBackend::open(Arc::new(dir), Durability::Strict).unwrap();
        assert_eq!(
            b.get_param("c", "n").unwrap(),
            Some(msgpack::encode(&Value::Int(10)))
        );
        assert_eq!(b.get_param("claims", "url").unwrap(), Some(one));
        assert_eq!(b.storage_names(), ["c", "claims"]);
        assert!(b.get_param("none", "x").is_err());
    }
}
