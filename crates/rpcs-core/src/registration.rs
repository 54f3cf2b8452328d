//! The record an rpcs server registers with a registry (`registry.register`):
//! a struct with `names` (or one `name`), `urls`, and optionally `id`,
//! `metadata`, `health` and `ttl` in seconds. Both sides read and write it
//! here, so the registrar and the registry cannot disagree on its shape.

use crate::fault::Fault;
use crate::value::{Map, Value};

/// What `registry.register` takes, as a struct: `names` (or one `name`),
/// `urls`, and optionally `id`, `metadata`, `health` and `ttl` in seconds.
#[derive(Debug, Clone, Default)]
pub struct Registration {
    /// Chosen by the instance, stable across its renewals; a fresh one is made
    /// when empty.
    pub id: String,
    /// The names it serves.
    pub names: Vec<String>,
    /// The URLs it listens on.
    pub urls: Vec<String>,
    /// Anything it says about itself.
    pub metadata: Map,
    /// `serving` unless it says otherwise.
    pub health: String,
    /// How long the registration lives without renewal, in seconds.
    pub ttl_secs: f64,
}

/// The default time to live of our registrations; registrants renew at a
/// third of it.
pub const DEFAULT_TTL_SECS: f64 = 30.0;

impl Registration {
    /// A registration of `names` on `urls`, with the default time to live and
    /// an id yet to choose.
    pub fn new(names: Vec<String>, urls: Vec<String>) -> Registration {
        Registration {
            names,
            urls,
            ttl_secs: DEFAULT_TTL_SECS,
            ..Registration::default()
        }
    }

    /// Reads the struct `registry.register` was given.
    pub fn from_value(value: Value) -> Result<Registration, Fault> {
        let bad = |what: &str| Fault::named("ValueError", format!("registration: {what}"));
        let Value::Struct(mut m) = value else {
            return Err(bad("expected a struct with names and urls"));
        };
        let strings = |v: Value, what: &str| -> Result<Vec<String>, Fault> {
            match v {
                Value::String(s) => Ok(vec![s]),
                Value::Array(a) => a
                    .into_iter()
                    .map(|v| match v {
                        Value::String(s) => Ok(s),
                        _ => Err(bad(&format!("{what} must be strings"))),
                    })
                    .collect(),
                _ => Err(bad(&format!("{what} must be a list of strings"))),
            }
        };
        let mut names = Vec::new();
        for key in ["names", "name"] {
            if let Some(v) = m.shift_remove(key) {
                names.extend(strings(v, key)?);
            }
        }
        let urls = match m.shift_remove("urls") {
            Some(v) => strings(v, "urls")?,
            None => Vec::new(),
        };
        let text = |v: Option<Value>, what: &str| match v {
            None | Some(Value::Nil) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(bad(&format!("{what} must be a string"))),
        };
        let id = text(m.shift_remove("id"), "id")?;
        let health = text(m.shift_remove("health"), "health")?;
        let metadata = match m.shift_remove("metadata") {
            None | Some(Value::Nil) => Map::new(),
            Some(Value::Struct(md)) => md,
            Some(_) => return Err(bad("metadata must be a struct")),
        };
        let ttl_secs = match m.shift_remove("ttl") {
            None | Some(Value::Nil) => DEFAULT_TTL_SECS,
            Some(Value::Int(n)) => n as f64,
            Some(Value::Double(x)) => x,
            Some(_) => return Err(bad("ttl must be a number of seconds")),
        };
        if let Some(key) = m.keys().next() {
            return Err(bad(&format!("unknown member {key:?}")));
        }
        Ok(Registration {
            id,
            names,
            urls,
            metadata,
            health,
            ttl_secs,
        })
    }

    /// The struct `registry.register` takes.
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), Value::String(self.id.clone()));
        m.insert(
            "names".into(),
            Value::Array(self.names.iter().cloned().map(Value::String).collect()),
        );
        m.insert(
            "urls".into(),
            Value::Array(self.urls.iter().cloned().map(Value::String).collect()),
        );
        m.insert("metadata".into(), Value::Struct(self.metadata.clone()));
        if !self.health.is_empty() {
            m.insert("health".into(), Value::String(self.health.clone()));
        }
        m.insert("ttl".into(), Value::Double(self.ttl_secs));
        Value::Struct(m)
    }
}
