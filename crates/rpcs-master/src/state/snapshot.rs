//! The whole state as a sequence of journal records, for a snapshot file: the
//! embedded backend writes one, then starts its journal afresh (a log
//! rewrite), and recovery reads the snapshot back before replaying the journal.
//!
//! Each record is a MessagePack array whose first element says what it holds.
//! A stack's items go as their raw buffer, in parts of at most [`CHUNK`] bytes
//! cut between items, so a snapshot of small items costs about their own size.

use super::{Client, Items, Lease, State};
use crate::journal::record;
use rpcs_core::{msgpack, Value};

/// The most item bytes one stack record carries.
pub const CHUNK: usize = 16 << 20;

const STACK: i64 = 1;
const LEASE: i64 = 2;
const STORAGE: i64 = 3;
const PARAM: i64 = 4;
const CLIENT: i64 = 5;
const MESSAGE: i64 = 6;
const SEEN: i64 = 7;

/// The most seen keys one record carries.
const SEEN_CHUNK: usize = 4096;

/// A snapshot that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("unreadable snapshot: {0}")]
pub struct SnapshotError(String);

fn bad(what: impl Into<String>) -> SnapshotError {
    SnapshotError(what.into())
}

/// Appends the records of `state` to `out`. Fails only for a value over
/// [`record::MAX_RECORD`], which the services' limits never let in.
pub fn write(state: &State, out: &mut Vec<u8>) -> Result<(), record::RecordError> {
    let mut failed = None;
    let mut put = |fields: Vec<Value>| {
        if let Err(e) = record::write(out, &msgpack::encode(&Value::Array(fields))) {
            failed.get_or_insert(e);
        }
    };
    for (name, items) in state.stacks.iter() {
        // An empty stack still gets a record: it exists.
        let chunks = items.chunks(CHUNK);
        let parts = if chunks.is_empty() {
            vec![&[][..]]
        } else {
            chunks
        };
        for part in parts {
            put(vec![
                STACK.into(),
                name.clone().into(),
                Value::Bytes(part.to_vec()),
            ]);
        }
    }
    for (name, keys) in state.stacks.seen() {
        // Sorted, so that equal states make equal snapshots.
        let mut keys: Vec<&Vec<u8>> = keys.iter().collect();
        keys.sort();
        for part in keys.chunks(SEEN_CHUNK) {
            let keys = part.iter().map(|k| Value::Bytes(k.to_vec())).collect();
            put(vec![SEEN.into(), name.clone().into(), Value::Array(keys)]);
        }
    }
    // In id order, so that equal states make equal snapshots.
    let mut leases: Vec<_> = state.stacks.leases().iter().collect();
    leases.sort_by(|a, b| a.0.cmp(b.0));
    for (id, lease) in leases {
        put(vec![
            LEASE.into(),
            id.clone().into(),
            lease.stack.clone().into(),
            Value::Bytes(lease.item.clone()),
            lease.deadline_ms.into(),
            lease.owner.clone().into(),
        ]);
    }
    for (name, params) in state.storages.iter() {
        put(vec![STORAGE.into(), name.clone().into()]);
        for (param, value) in params {
            put(vec![
                PARAM.into(),
                name.clone().into(),
                param.clone().into(),
                Value::Bytes(value.clone()),
            ]);
        }
    }
    for (name, c) in state.clients.iter() {
        put(vec![
            CLIENT.into(),
            name.clone().into(),
            c.host.clone().into(),
            c.login_ms.into(),
            c.visit_ms.into(),
            Value::Bytes(c.status.clone()),
            Value::Bytes(c.info.clone()),
            Value::Int(c.head_seq as i64),
        ]);
        for message in &c.queue {
            put(vec![
                MESSAGE.into(),
                name.clone().into(),
                Value::Bytes(message.clone()),
            ]);
        }
    }
    failed.map_or(Ok(()), Err)
}

/// The state a snapshot holds. Unlike a journal, a snapshot must be whole: a
/// torn or corrupt one is refused (it was written under another name, synced,
/// and only then renamed into place).
pub fn read(bytes: &[u8]) -> Result<State, SnapshotError> {
    let (records, len) = record::read_all(bytes);
    if len != bytes.len() {
        return Err(bad(format!("damaged after byte {len}")));
    }
    let mut state = State::default();
    let mut stack_parts: Vec<(String, Vec<u8>)> = Vec::new();
    for payload in records {
        let fields = match msgpack::decode(payload, 8) {
            Ok(Value::Array(fields)) => fields,
            _ => return Err(bad("a record is not an array")),
        };
        let mut f = Fields(fields.into_iter());
        match f.int()? {
            STACK => {
                let name = f.string()?;
                let part = f.bytes()?;
                match stack_parts.last_mut() {
                    Some((last, buf)) if *last == name => buf.extend_from_slice(&part),
                    _ => stack_parts.push((name, part)),
                }
            }
            LEASE => {
                let id = f.string()?;
                let lease = Lease {
                    stack: f.string()?,
                    item: f.bytes()?,
                    deadline_ms: f.int()?,
                    owner: f.optional_string()?,
                };
                state.stacks.restore_lease(id, lease);
            }
            STORAGE => {
                state.storages.create(&f.string()?);
            }
            PARAM => {
                let name = f.string()?;
                let param = f.string()?;
                state.storages.set(&name, vec![(param, f.bytes()?)]);
            }
            CLIENT => {
                let name = f.string()?;
                let client = Client {
                    host: f.string()?,
                    login_ms: f.int()?,
                    visit_ms: f.int()?,
                    status: f.bytes()?,
                    info: f.bytes()?,
                    head_seq: f.int()?.max(0) as u64,
                    queue: Default::default(),
                };
                state.clients.restore(&name, client);
            }
            MESSAGE => {
                let name = f.string()?;
                let message = f.bytes()?;
                if !state.clients.restore_message(&name, message) {
                    return Err(bad(format!("a message for {name:?}, who is not logged in")));
                }
            }
            SEEN => {
                let name = f.string()?;
                let keys = f.bytes_list()?;
                state.stacks.mark_seen(&name, &keys);
            }
            kind => return Err(bad(format!("unknown record kind {kind}"))),
        }
    }
    for (name, buf) in stack_parts {
        let items =
            Items::from_raw([&buf[..]]).ok_or_else(|| bad(format!("stack {name:?} is torn")))?;
        state.stacks.restore_stack(name, items);
    }
    Ok(state)
}

/// A record's fields, read in order.
struct Fields(std::vec::IntoIter<Value>);

impl Fields {
    fn next(&mut self) -> Result<Value, SnapshotError> {
        self.0
            .next()
            .ok_or_else(|| bad("a record is short of fields"))
    }
    fn int(&mut self) -> Result<i64, SnapshotError> {
        self.next()?
            .as_i64()
            .ok_or_else(|| bad("an integer field is not one"))
    }
    fn string(&mut self) -> Result<String, SnapshotError> {
        match self.next()? {
            Value::String(s) => Ok(s),
            _ => Err(bad("a text field is not text")),
        }
    }
    fn optional_string(&mut self) -> Result<Option<String>, SnapshotError> {
        match self.next()? {
            Value::Nil => Ok(None),
            Value::String(s) => Ok(Some(s)),
            _ => Err(bad("a text field is not text")),
        }
    }
    fn bytes(&mut self) -> Result<Vec<u8>, SnapshotError> {
        match self.next()? {
            Value::Bytes(b) => Ok(b),
            _ => Err(bad("a bytes field is not bytes")),
        }
    }
    fn bytes_list(&mut self) -> Result<Vec<Vec<u8>>, SnapshotError> {
        let Value::Array(list) = self.next()? else {
            return Err(bad("a list field is not a list"));
        };
        list.into_iter()
            .map(|v| match v {
                Value::Bytes(b) => Ok(b),
                _ => Err(bad("a bytes field is not bytes")),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::PopLimit;

    fn sample() -> State {
        let mut s = State::default();
        s.stacks
            .push("urls", &[b"a".to_vec(), b"bb".to_vec(), b"ccc".to_vec()]);
        s.stacks.create("empty");
        s.stacks
            .take(
                "urls",
                "lease1".into(),
                1234,
                Some("worker".into()),
                &|_| Ok(()),
            )
            .unwrap();
        s.storages.create("nothing-yet");
        s.storages.set(
            "config",
            vec![("depth".into(), vec![3]), ("mode".into(), vec![0xa1, b'x'])],
        );
        s.clients
            .login("worker", "10.0.0.2".into(), 100, vec![0xc0]);
        s.clients.send("worker", b"hello".to_vec(), 10).unwrap();
        s.clients.send("worker", b"again".to_vec(), 10).unwrap();
        s.clients.visit("worker", 150, None, &|_| Ok(())).unwrap();
        s
    }

    #[test]
    fn a_snapshot_reads_back_the_same_state() {
        let state = sample();
        let mut bytes = Vec::new();
        write(&state, &mut bytes).unwrap();
        let mut back = read(&bytes).unwrap();
        assert_eq!(back.stacks.names(), ["empty", "urls"]);
        let all = PopLimit {
            count: 10,
            budget: usize::MAX,
        };
        assert_eq!(
            back.stacks.pop("urls", all, &|_| Ok(())).unwrap(),
            Some(vec![b"bb".to_vec(), b"a".to_vec()])
        );
        assert_eq!(
            back.stacks.leases().by_id("lease1").map(|l| l.deadline_ms),
            Some(1234)
        );
        assert_eq!(back.stacks.release_owned("worker"), vec!["urls"]);
        assert_eq!(back.storages.names(), ["config", "nothing-yet"]);
        assert_eq!(
            back.storages.get("config", "mode").unwrap(),
            Some(&[0xa1, b'x'][..])
        );
        assert_eq!(back.clients.get("worker"), state.clients.get("worker"));
        assert_eq!(back.clients.peek("worker"), Some((1, &b"again"[..])));
        assert_eq!(back.clients.idle_before(151), vec!["worker"]);
    }

    #[test]
    fn small_items_cost_about_their_own_size() {
        let mut state = State::default();
        let items: Vec<Vec<u8>> = (0..100_000).map(|_| vec![b'x'; 15]).collect();
        state.stacks.push("big", &items);
        let mut bytes = Vec::new();
        write(&state, &mut bytes).unwrap();
        assert!(
            bytes.len() < 100_000 * 17,
            "{} bytes for 1.5 MB of items",
            bytes.len()
        );
    }

    #[test]
    fn a_damaged_snapshot_is_refused() {
        let mut bytes = Vec::new();
        write(&sample(), &mut bytes).unwrap();
        assert!(read(&bytes[..bytes.len() - 1]).is_err());
        let mut flipped = bytes.clone();
        flipped[20] ^= 1;
        assert!(read(&flipped).is_err());
    }
}
