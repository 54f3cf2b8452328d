//! The parameter storages, in memory: name → parameter → encoded value.
//!
//! As for stacks, each operation checks before it changes anything. Values are
//! kept encoded (MessagePack, exact for every value); the conditional
//! operations compare and add decoded values, as the service promises.

use rpcs_core::{msgpack, Fault, Value};
use std::collections::BTreeMap;

fn not_found(name: &str) -> Fault {
    Fault::named("StorageNotFoundError", format!("no storage named {name:?}"))
}

/// One storage's parameters, in name order.
pub type Params = BTreeMap<String, Vec<u8>>;

/// Every storage, by name.
#[derive(Debug, Default, Clone)]
pub struct Storages {
    storages: BTreeMap<String, Params>,
}

impl Storages {
    /// No storages.
    pub fn new() -> Storages {
        Storages::default()
    }

    /// Creates an empty storage; false if one of that name exists.
    pub fn create(&mut self, name: &str) -> bool {
        if self.storages.contains_key(name) {
            return false;
        }
        self.storages.insert(name.to_owned(), Params::new());
        true
    }

    /// Sets parameters (encoded values), creating the storage if missing.
    pub fn set(&mut self, name: &str, params: Vec<(String, Vec<u8>)>) {
        let storage = self.storage_mut(name);
        for (param, value) in params {
            storage.insert(param, value);
        }
    }

    /// One parameter's encoded value; `Err` if the storage does not exist.
    pub fn get(&self, name: &str, param: &str) -> Result<Option<&[u8]>, Fault> {
        Ok(self.params(name)?.get(param).map(Vec::as_slice))
    }

    /// Every parameter of a storage, in name order.
    pub fn params(&self, name: &str) -> Result<&Params, Fault> {
        self.storages.get(name).ok_or_else(|| not_found(name))
    }

    /// Removes a parameter; false if it was not set.
    pub fn remove_param(&mut self, name: &str, param: &str) -> Result<bool, Fault> {
        let storage = self.storages.get_mut(name).ok_or_else(|| not_found(name))?;
        Ok(storage.remove(param).is_some())
    }

    /// Whether a storage of that name exists.
    pub fn exists(&self, name: &str) -> bool {
        self.storages.contains_key(name)
    }

    /// Deletes a storage with its parameters.
    pub fn remove(&mut self, name: &str) -> Result<(), Fault> {
        self.storages
            .remove(name)
            .map(|_| ())
            .ok_or_else(|| not_found(name))
    }

    /// Every storage name, sorted.
    pub fn names(&self) -> Vec<String> {
        self.storages.keys().cloned().collect()
    }

    /// Sets `param` to `new` if its value equals `expected` (nil matches an
    /// unset parameter); whether it was set.
    pub fn compare_and_set(
        &mut self,
        name: &str,
        param: &str,
        expected: &Value,
        new: Vec<u8>,
    ) -> Result<bool, Fault> {
        let current = match self.storages.get(name).and_then(|s| s.get(param)) {
            Some(bytes) => decode(bytes)?,
            None => Value::Nil,
        };
        if &current != expected {
            return Ok(false);
        }
        self.storage_mut(name).insert(param.to_owned(), new);
        Ok(true)
    }

    /// Sets `param` if it is unset; whether it was set.
    pub fn set_if_absent(&mut self, name: &str, param: &str, value: Vec<u8>) -> bool {
        let storage = self.storage_mut(name);
        if storage.contains_key(param) {
            return false;
        }
        storage.insert(param.to_owned(), value);
        true
    }

    /// Adds `delta` to an integer parameter (unset counts as 0); the new value.
    pub fn increment(&mut self, name: &str, param: &str, delta: i64) -> Result<i64, Fault> {
        let current = match self.storages.get(name).and_then(|s| s.get(param)) {
            None => 0,
            Some(bytes) => match decode(bytes)? {
                Value::Int(i) => i,
                other => {
                    return Err(Fault::named(
                        "TypeError",
                        format!(
                            "parameter {param:?} holds {}, not an integer",
                            other.type_name()
                        ),
                    ))
                }
            },
        };
        let next = current
            .checked_add(delta)
            .ok_or_else(|| Fault::named("OverflowError", "counter out of 64-bit range"))?;
        self.storage_mut(name)
            .insert(param.to_owned(), msgpack::encode(&Value::Int(next)));
        Ok(next)
    }

    /// Every storage with its parameters, in name order (for snapshots).
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Params)> {
        self.storages.iter()
    }

    fn storage_mut(&mut self, name: &str) -> &mut Params {
        if !self.storages.contains_key(name) {
            self.storages.insert(name.to_owned(), Params::new());
        }
        self.storages
            .get_mut(name)
            .expect("the storage was just made sure of")
    }
}

fn decode(bytes: &[u8]) -> Result<Value, Fault> {
    msgpack::decode(bytes, msgpack::DEFAULT_MAX_DEPTH)
        .map_err(|e| Fault::named("StorageError", format!("corrupt stored value: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(v: impl Into<Value>) -> Vec<u8> {
        msgpack::encode(&v.into())
    }

    #[test]
    fn compare_and_set_sets_only_on_a_match() {
        let mut s = Storages::new();
        assert!(
            s.compare_and_set("st", "p", &Value::Nil, enc(1)).unwrap(),
            "nil matches unset"
        );
        assert!(!s.compare_and_set("st", "p", &Value::Nil, enc(2)).unwrap());
        assert!(
            !s.compare_and_set("st", "p", &Value::Double(1.0), enc(2))
                .unwrap(),
            "1.0 is not 1"
        );
        assert!(s
            .compare_and_set("st", "p", &Value::Int(1), enc(2))
            .unwrap());
        assert_eq!(s.get("st", "p").unwrap(), Some(&enc(2)[..]));
    }

    #[test]
    fn set_if_absent_has_one_winner() {
        let mut s = Storages::new();
        assert!(s.set_if_absent("claims", "url", enc("a")));
        assert!(!s.set_if_absent("claims", "url", enc("b")));
        assert_eq!(s.get("claims", "url").unwrap(), Some(&enc("a")[..]));
    }

    #[test]
    fn a_failed_increment_changes_nothing() {
        let mut s = Storages::new();
        assert!(s.increment("c", "missing", 5).is_ok());
        s.set(
            "c",
            vec![("text".into(), enc("x")), ("max".into(), enc(i64::MAX))],
        );
        assert!(s.increment("c", "text", 1).is_err());
        assert!(s.increment("c", "max", 1).is_err());
        assert_eq!(s.get("c", "max").unwrap(), Some(&enc(i64::MAX)[..]));
        assert_eq!(s.increment("c", "missing", -7).unwrap(), -2);
    }

    #[test]
    fn unknown_storages_fault_and_removal_takes_the_parameters() {
        let mut s = Storages::new();
        assert!(s.get("none", "p").is_err());
        assert!(s.remove_param("none", "p").is_err());
        assert!(s.create("st"));
        assert!(!s.create("st"));
        s.set("st", vec![("b".into(), enc(2)), ("a".into(), enc(1))]);
        let names: Vec<&String> = s.params("st").unwrap().keys().collect();
        assert_eq!(names, ["a", "b"]);
        s.remove("st").unwrap();
        assert!(!s.exists("st"));
        assert!(s.remove("st").is_err());
    }
}
