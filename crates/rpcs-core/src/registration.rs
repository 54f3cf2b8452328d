//! The record an rpcs server registers with a registry (`registry.register`):
//! a struct with `names` (or one `name`), `urls`, and optionally `id`,
//! `metadata`, `health` and `ttl` in seconds. Both sides read and write it
//! here, so the registrar and the registry cannot disagree on its shape.
//!
//! With a secret shared between servers and a registry, a registration (and
//! an unregistration) carries `time` (milliseconds since the epoch) and `mac`:
//! HMAC-SHA256 in hex over its fields and that time, so the secret itself
//! never travels (registrations are broadcast on the LAN). The registry
//! refuses a missing or wrong MAC, and one whose time is further than
//! [`MAX_SKEW_MS`] from its own clock, so a captured datagram cannot be
//! replayed later. The MAC covers the fields as text (the metadata as its
//! JSON), so it survives any protocol the record travels on.

use crate::fault::Fault;
use crate::value::{Map, Value};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// A shared secret; shown as `***` in debug output, so it never reaches a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(std::sync::Arc<[u8]>);

impl Secret {
    /// A secret of these bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Secret {
        Secret(bytes.into().into())
    }

    /// Its bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// How far a signed request's time may be from the registry's clock.
pub const MAX_SKEW_MS: i64 = 60_000;

/// A signed request's time and MAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// When it was signed, in milliseconds since the epoch.
    pub time_ms: i64,
    /// HMAC-SHA256 in lower-case hex.
    pub mac: String,
}

fn mac_of(secret: &[u8], text: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length: this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key");
    mac.update(text);
    mac
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

fn refused(why: &str) -> Fault {
    Fault::named(
        "AuthenticationError",
        format!("registration refused: {why}"),
    )
}

/// Checks `signature` over `text` with `secret`, in constant time, and its
/// time against `now_ms`.
fn check(
    secret: &[u8],
    text: &[u8],
    signature: Option<&Signature>,
    now_ms: i64,
) -> Result<(), Fault> {
    let Some(sig) = signature else {
        return Err(refused(
            "this registry needs a signed request (time and mac)",
        ));
    };
    if (now_ms - sig.time_ms).abs() > MAX_SKEW_MS {
        return Err(refused(
            "its time is more than a minute from the registry's clock",
        ));
    }
    let given = unhex(&sig.mac).ok_or_else(|| refused("mac is not hex"))?;
    mac_of(secret, text)
        .verify_slice(&given)
        .map_err(|_| refused("wrong mac"))
}

/// The text an unregistration's MAC covers.
fn unregister_text(id: &str, time_ms: i64) -> Vec<u8> {
    format!("unregister\n{id}\n{time_ms}").into_bytes()
}

/// The signature of unregistering `id` at `time_ms`.
pub fn sign_unregister(secret: &[u8], id: &str, time_ms: i64) -> Signature {
    let mac = mac_of(secret, &unregister_text(id, time_ms)).finalize();
    Signature {
        time_ms,
        mac: hex(&mac.into_bytes()),
    }
}

/// Checks the signature of unregistering `id`.
pub fn check_unregister(
    secret: &[u8],
    id: &str,
    signature: Option<&Signature>,
    now_ms: i64,
) -> Result<(), Fault> {
    let time = signature.map_or(0, |s| s.time_ms);
    check(secret, &unregister_text(id, time), signature, now_ms)
}

/// Reads `time` and `mac` from a request's struct (both or neither).
pub fn take_signature(m: &mut Map) -> Result<Option<Signature>, Fault> {
    let bad = |what: &str| Fault::named("ValueError", format!("registration: {what}"));
    match (m.shift_remove("time"), m.shift_remove("mac")) {
        (None, None) => Ok(None),
        (Some(Value::Int(time_ms)), Some(Value::String(mac))) => {
            Ok(Some(Signature { time_ms, mac }))
        }
        _ => Err(bad(
            "a signature is time (integer milliseconds) and mac (hex)",
        )),
    }
}

/// Writes `time` and `mac` into a request's struct.
pub fn put_signature(m: &mut Map, signature: &Signature) {
    m.insert("time".into(), Value::Int(signature.time_ms));
    m.insert("mac".into(), Value::String(signature.mac.clone()));
}

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
    /// Its signature, for a registry with a shared secret.
    pub signature: Option<Signature>,
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
        let signature = take_signature(&mut m)?;
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
            signature,
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
        if let Some(sig) = &self.signature {
            put_signature(&mut m, sig);
        }
        Value::Struct(m)
    }

    /// The text the MAC covers: every field, the time to live in whole
    /// milliseconds, the metadata as JSON, and the time.
    fn signed_text(&self, time_ms: i64) -> Vec<u8> {
        let ttl_ms = (self.ttl_secs * 1000.0).round() as i64;
        let metadata = crate::json::to_json(&Value::Struct(self.metadata.clone()));
        format!(
            "register\n{}\n{}\n{}\n{}\n{ttl_ms}\n{time_ms}\n{metadata}",
            self.id,
            self.names.join("\u{1f}"),
            self.urls.join("\u{1f}"),
            self.health,
        )
        .into_bytes()
    }

    /// Signs the registration with `secret` at `time_ms`.
    pub fn sign(&mut self, secret: &[u8], time_ms: i64) {
        let mac = mac_of(secret, &self.signed_text(time_ms)).finalize();
        self.signature = Some(Signature {
            time_ms,
            mac: hex(&mac.into_bytes()),
        });
    }

    /// Checks the registration's signature against `secret` and `now_ms`.
    pub fn check_signature(&self, secret: &[u8], now_ms: i64) -> Result<(), Fault> {
        let time = self.signature.as_ref().map_or(0, |s| s.time_ms);
        check(
            secret,
            &self.signed_text(time),
            self.signature.as_ref(),
            now_ms,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Registration {
        let mut r = Registration::new(vec!["svc".into()], vec!["msgpack://10.0.0.1:1".into()]);
        r.id = "abc".into();
        r.metadata.insert("v".into(), Value::Bytes(vec![1, 2]));
        r
    }

    #[test]
    fn a_signed_registration_checks_after_any_protocol() {
        let mut r = sample();
        r.sign(b"s3cret", 1_000_000);
        assert_eq!(r.check_signature(b"s3cret", 1_000_500), Ok(()));
        // Through JSON, bytes become a string and the ttl stays a double.
        let via_json = crate::json::from_json(crate::json::to_json(&r.to_value()));
        let back = Registration::from_value(via_json).unwrap();
        assert_eq!(back.check_signature(b"s3cret", 1_000_500), Ok(()));
        let back = Registration::from_value(r.to_value()).unwrap();
        assert_eq!(back.check_signature(b"s3cret", 1_000_500), Ok(()));
    }

    #[test]
    fn a_wrong_secret_a_change_a_stale_time_or_no_mac_is_refused() {
        let mut r = sample();
        r.sign(b"s3cret", 1_000_000);
        assert!(r.check_signature(b"other", 1_000_000).is_err());
        assert!(r
            .check_signature(b"s3cret", 1_000_000 + MAX_SKEW_MS + 1)
            .is_err());
        let mut changed = r.clone();
        changed.urls = vec!["msgpack://10.6.6.6:1".into()];
        assert!(changed.check_signature(b"s3cret", 1_000_000).is_err());
        assert!(sample().check_signature(b"s3cret", 1_000_000).is_err());
        let mut garbled = r.clone();
        garbled.signature.as_mut().unwrap().mac = "zz".into();
        assert!(garbled.check_signature(b"s3cret", 1_000_000).is_err());
    }

    #[test]
    fn a_secret_is_never_shown() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "Secret(***)");
    }

    #[test]
    fn unregistrations_are_signed_per_id() {
        let sig = sign_unregister(b"k", "abc", 5);
        assert_eq!(check_unregister(b"k", "abc", Some(&sig), 5), Ok(()));
        assert!(check_unregister(b"k", "abd", Some(&sig), 5).is_err());
        assert!(check_unregister(b"k", "abc", None, 5).is_err());
    }
}
