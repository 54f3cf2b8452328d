//! The parameter storages, in memory: name → parameter → encoded value.
//!
//! As for stacks, each operation checks before it changes anything. Values are
//! kept encoded (MessagePack, exact for every value). The conditional
//! operations are answered here read-only ([`Storages::holds`],
//! [`Storages::is_set`], [`Storages::incremented`], on decoded values, as the
//! service promises); what they then do is a plain set.

use rpcs_core::{msgpack, Fault, Value};
use std::collections::BTreeMap;

/// The fault for an unknown storage.
pub fn not_found(name: &str) -> Fault {
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

    /// Whether `param` holds `expected` (nil matches an unset parameter or
    /// storage): the condition of a compare-and-set.
    pub fn holds(&self, name: &str, param: &str, expected: &Value) -> Result<bool, Fault> {
        let current = match self.storages.get(name).and_then(|s| s.get(param)) {
            Some(bytes) => decode(bytes)?,
            None => Value::Nil,
        };
        Ok(&current == expected)
    }

    /// Whether `param` is set (an unknown storage sets nothing).
    pub fn is_set(&self, name: &str, param: &str) -> bool {
        self.storages
            .get(name)
            .is_some_and(|s| s.contains_key(param))
    }

    /// What `param` becomes when `delta` is added (unset counts as 0), without
    /// changing it; a fault if it is not an integer or the sum overflows.
    pub fn incremented(&self, name: &str, param: &str, delta: i64) -> Result<i64, Fault> {
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
        current
            .checked_add(delta)
            .ok_or_else(|| Fault::named("OverflowError", "counter out of 64-bit range"))
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

/// A stored value, decoded.
pub(crate) fn decode(bytes: &[u8]) -> Result<Value, Fault> {
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
    fn the_compare_and_set_condition_compares_values() {
        let mut s = Storages::new();
        assert!(
            s.holds("st", "p", &Value::Nil).unwrap(),
            "nil matches unset"
        );
        s.set("st", vec![("p".into(), enc(1))]);
        assert!(!s.holds("st", "p", &Value::Nil).unwrap());
        assert!(
            !s.holds("st", "p", &Value::Double(1.0)).unwrap(),
            "1.0 is not 1"
        );
        assert!(s.holds("st", "p", &Value::Int(1)).unwrap());
    }

    #[test]
    fn a_set_parameter_is_seen_as_set() {
        let mut s = Storages::new();
        assert!(!s.is_set("claims", "url"));
        s.set("claims", vec![("url".into(), enc("a"))]);
        assert!(s.is_set("claims", "url"));
    }

    #[test]
    fn increments_are_checked_without_changing_anything() {
        let mut s = Storages::new();
        assert_eq!(s.incremented("c", "missing", 5).unwrap(), 5);
        s.set(
            "c",
            vec![("text".into(), enc("x")), ("max".into(), enc(i64::MAX))],
        );
        assert!(s.incremented("c", "text", 1).is_err());
        assert!(s.incremented("c", "max", 1).is_err());
        assert_eq!(s.get("c", "max").unwrap(), Some(&enc(i64::MAX)[..]));
        assert_eq!(s.incremented("c", "missing", -7).unwrap(), -7);
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
