//! A change to the state as the journal records it: the operation with
//! everything that could make a replay differ already decided (lease ids and
//! deadlines, the times of visits, how many items a pop took), so that
//! replaying the changes in order on the state they started from rebuilds the
//! same state. Conditional operations record only what they did (a winning
//! `setIfAbsent` is a set; a losing one records nothing).

use super::{PopLimit, State};
use rpcs_core::{msgpack, Value};

/// One recorded change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A stack was created.
    CreateStack { name: String },
    /// Items were pushed, the last on top.
    Push { name: String, items: Vec<Vec<u8>> },
    /// The top `count` items were popped.
    Pop { name: String, count: usize },
    /// The top item was taken under lease `id`.
    Take {
        name: String,
        id: String,
        deadline_ms: i64,
        owner: Option<String>,
    },
    /// Lease `id` was acked.
    Ack { name: String, id: String },
    /// Lease `id` was released.
    Release { name: String, id: String },
    /// Lease `id` was given a new deadline.
    Extend {
        name: String,
        id: String,
        deadline_ms: i64,
    },
    /// Leases due by `now_ms` went back.
    Expire { now_ms: i64 },
    /// A stack was emptied.
    Truncate { name: String },
    /// A stack was deleted.
    RemoveStack { name: String },
    /// A storage was created.
    CreateStorage { name: String },
    /// Parameters were set.
    SetParams {
        name: String,
        params: Vec<(String, Vec<u8>)>,
    },
    /// A parameter was removed.
    RemoveParam { name: String, param: String },
    /// A storage was deleted.
    RemoveStorage { name: String },
    /// A client logged in.
    Login {
        name: String,
        host: String,
        now_ms: i64,
        info: Vec<u8>,
    },
    /// A session ended (logout or idleness); its leases went back.
    EndSession { name: String },
    /// A client visited, taking its oldest message if it had one.
    Visit {
        name: String,
        now_ms: i64,
        status: Option<Vec<u8>>,
    },
    /// A client was seen (a subscription's delivery).
    Seen { name: String, now_ms: i64 },
    /// A message was queued.
    Send {
        name: String,
        message: Vec<u8>,
        max_queue: usize,
    },
    /// A message was queued for everyone with room.
    Broadcast { message: Vec<u8>, max_queue: usize },
    /// Message `seq` was delivered to a subscription.
    Delivered { name: String, seq: u64 },
    /// Message `seq` came back from a visit whose caller left.
    GiveBack {
        name: String,
        seq: u64,
        message: Vec<u8>,
    },
    /// Keys were marked seen on a stack (which exists from then on).
    MarkSeen { name: String, keys: Vec<Vec<u8>> },
}

fn accept_all(_: &[u8]) -> Result<(), rpcs_core::Fault> {
    Ok(())
}

impl Change {
    /// Replays the change on `state`. Outcomes are ignored: the live operation
    /// already checked everything, on the same state.
    pub fn replay(&self, state: &mut State) {
        let any = &accept_all;
        let (stacks, storages, clients) =
            (&mut state.stacks, &mut state.storages, &mut state.clients);
        match self {
            Change::CreateStack { name } => {
                stacks.create(name);
            }
            Change::Push { name, items } => {
                stacks.push(name, items);
            }
            Change::Pop { name, count } => {
                let limit = PopLimit {
                    count: *count,
                    budget: usize::MAX,
                };
                let _ = stacks.pop(name, limit, any);
            }
            Change::Take {
                name,
                id,
                deadline_ms,
                owner,
            } => {
                let _ = stacks.take(name, id.clone(), *deadline_ms, owner.clone(), any);
            }
            Change::Ack { name, id } => {
                stacks.ack(name, id);
            }
            Change::Release { name, id } => {
                stacks.release(name, id);
            }
            Change::Extend {
                name,
                id,
                deadline_ms,
            } => {
                stacks.extend(name, id, *deadline_ms);
            }
            Change::Expire { now_ms } => {
                stacks.expire(*now_ms);
            }
            Change::Truncate { name } => {
                let _ = stacks.truncate(name);
            }
            Change::RemoveStack { name } => {
                let _ = stacks.remove(name);
            }
            Change::CreateStorage { name } => {
                storages.create(name);
            }
            Change::SetParams { name, params } => storages.set(name, params.clone()),
            Change::RemoveParam { name, param } => {
                let _ = storages.remove_param(name, param);
            }
            Change::RemoveStorage { name } => {
                let _ = storages.remove(name);
            }
            Change::Login {
                name,
                host,
                now_ms,
                info,
            } => clients.login(name, host.clone(), *now_ms, info.clone()),
            Change::EndSession { name } => {
                let _ = clients.logout(name);
                stacks.release_owned(name);
            }
            Change::Visit {
                name,
                now_ms,
                status,
            } => {
                let _ = clients.visit(name, *now_ms, status.clone(), any);
            }
            Change::Seen { name, now_ms } => {
                clients.seen(name, *now_ms);
            }
            Change::Send {
                name,
                message,
                max_queue,
            } => {
                let _ = clients.send(name, message.clone(), *max_queue);
            }
            Change::Broadcast { message, max_queue } => {
                clients.broadcast(message, *max_queue);
            }
            Change::Delivered { name, seq } => {
                clients.delivered(name, *seq);
            }
            Change::GiveBack { name, seq, message } => {
                clients.give_back(name, *seq, message.clone());
            }
            Change::MarkSeen { name, keys } => stacks.mark_seen(name, keys),
        }
    }

    /// The change as a journal record's payload.
    pub fn encode(&self) -> Vec<u8> {
        let s = |v: &String| Value::String(v.clone());
        let b = |v: &Vec<u8>| Value::Bytes(v.clone());
        let i = |v: i64| Value::Int(v);
        let u = |v: usize| Value::Int(v as i64);
        let opt = |v: &Option<Vec<u8>>| v.as_ref().map_or(Value::Nil, b);
        let fields = match self {
            Change::CreateStack { name } => vec![i(1), s(name)],
            Change::Push { name, items } => {
                vec![i(2), s(name), Value::Array(items.iter().map(b).collect())]
            }
            Change::Pop { name, count } => vec![i(3), s(name), u(*count)],
            Change::Take {
                name,
                id,
                deadline_ms,
                owner,
            } => vec![i(4), s(name), s(id), i(*deadline_ms), owner.clone().into()],
            Change::Ack { name, id } => vec![i(5), s(name), s(id)],
            Change::Release { name, id } => vec![i(6), s(name), s(id)],
            Change::Extend {
                name,
                id,
                deadline_ms,
            } => vec![i(23), s(name), s(id), i(*deadline_ms)],
            Change::Expire { now_ms } => vec![i(7), i(*now_ms)],
            Change::Truncate { name } => vec![i(8), s(name)],
            Change::RemoveStack { name } => vec![i(9), s(name)],
            Change::CreateStorage { name } => vec![i(10), s(name)],
            Change::SetParams { name, params } => {
                let flat = params.iter().flat_map(|(p, v)| [s(p), b(v)]).collect();
                vec![i(11), s(name), Value::Array(flat)]
            }
            Change::RemoveParam { name, param } => vec![i(12), s(name), s(param)],
            Change::RemoveStorage { name } => vec![i(13), s(name)],
            Change::Login {
                name,
                host,
                now_ms,
                info,
            } => vec![i(14), s(name), s(host), i(*now_ms), b(info)],
            Change::EndSession { name } => vec![i(15), s(name)],
            Change::Visit {
                name,
                now_ms,
                status,
            } => vec![i(16), s(name), i(*now_ms), opt(status)],
            Change::Seen { name, now_ms } => vec![i(17), s(name), i(*now_ms)],
            Change::Send {
                name,
                message,
                max_queue,
            } => vec![i(18), s(name), b(message), u(*max_queue)],
            Change::Broadcast { message, max_queue } => vec![i(19), b(message), u(*max_queue)],
            Change::Delivered { name, seq } => vec![i(20), s(name), i(*seq as i64)],
            Change::GiveBack { name, seq, message } => {
                vec![i(21), s(name), i(*seq as i64), b(message)]
            }
            Change::MarkSeen { name, keys } => {
                vec![i(22), s(name), Value::Array(keys.iter().map(b).collect())]
            }
        };
        msgpack::encode(&Value::Array(fields))
    }

    /// A change from its encoding; `None` if it is not one.
    pub fn decode(payload: &[u8]) -> Option<Change> {
        Change::from_value(msgpack::decode(payload, 8).ok()?)
    }

    /// The changes of one operation as one journal record, so that recovery
    /// replays all of them or none.
    pub fn encode_all(changes: &[Change]) -> Vec<u8> {
        let mut out = Vec::new();
        msgpack::write_array_len(&mut out, changes.len());
        for change in changes {
            out.extend_from_slice(&change.encode());
        }
        out
    }

    /// The changes of a record made by [`Change::encode_all`].
    pub fn decode_all(payload: &[u8]) -> Option<Vec<Change>> {
        let Ok(Value::Array(list)) = msgpack::decode(payload, 9) else {
            return None;
        };
        list.into_iter().map(Change::from_value).collect()
    }

    fn from_value(value: Value) -> Option<Change> {
        let Value::Array(fields) = value else {
            return None;
        };
        let mut f = fields.into_iter();
        let tag = f.next()?.as_i64()?;
        let mut next = move || f.next();
        let s = |v: Option<Value>| match v? {
            Value::String(s) => Some(s),
            _ => None,
        };
        let b = |v: Option<Value>| match v? {
            Value::Bytes(b) => Some(b),
            _ => None,
        };
        let i = |v: Option<Value>| v?.as_i64();
        let u = |v: Option<Value>| usize::try_from(v?.as_i64()?).ok();
        let opt_b = |v: Option<Value>| match v? {
            Value::Nil => Some(None),
            Value::Bytes(b) => Some(Some(b)),
            _ => None,
        };
        let opt_s = |v: Option<Value>| match v? {
            Value::Nil => Some(None),
            Value::String(s) => Some(Some(s)),
            _ => None,
        };
        Some(match tag {
            1 => Change::CreateStack { name: s(next())? },
            2 | 22 => {
                let name = s(next())?;
                let Value::Array(list) = next()? else {
                    return None;
                };
                let items = list
                    .into_iter()
                    .map(|v| b(Some(v)))
                    .collect::<Option<_>>()?;
                if tag == 2 {
                    Change::Push { name, items }
                } else {
                    Change::MarkSeen { name, keys: items }
                }
            }
            3 => Change::Pop {
                name: s(next())?,
                count: u(next())?,
            },
            4 => Change::Take {
                name: s(next())?,
                id: s(next())?,
                deadline_ms: i(next())?,
                owner: opt_s(next())?,
            },
            5 => Change::Ack {
                name: s(next())?,
                id: s(next())?,
            },
            6 => Change::Release {
                name: s(next())?,
                id: s(next())?,
            },
            23 => Change::Extend {
                name: s(next())?,
                id: s(next())?,
                deadline_ms: i(next())?,
            },
            7 => Change::Expire { now_ms: i(next())? },
            8 => Change::Truncate { name: s(next())? },
            9 => Change::RemoveStack { name: s(next())? },
            10 => Change::CreateStorage { name: s(next())? },
            11 => {
                let name = s(next())?;
                let Value::Array(flat) = next()? else {
                    return None;
                };
                let mut params = Vec::with_capacity(flat.len() / 2);
                let mut it = flat.into_iter();
                while let Some(p) = it.next() {
                    params.push((s(Some(p))?, b(it.next())?));
                }
                Change::SetParams { name, params }
            }
            12 => Change::RemoveParam {
                name: s(next())?,
                param: s(next())?,
            },
            13 => Change::RemoveStorage { name: s(next())? },
            14 => Change::Login {
                name: s(next())?,
                host: s(next())?,
                now_ms: i(next())?,
                info: b(next())?,
            },
            15 => Change::EndSession { name: s(next())? },
            16 => Change::Visit {
                name: s(next())?,
                now_ms: i(next())?,
                status: opt_b(next())?,
            },
            17 => Change::Seen {
                name: s(next())?,
                now_ms: i(next())?,
            },
            18 => Change::Send {
                name: s(next())?,
                message: b(next())?,
                max_queue: u(next())?,
            },
            19 => Change::Broadcast {
                message: b(next())?,
                max_queue: u(next())?,
            },
            20 => Change::Delivered {
                name: s(next())?,
                seq: u64::try_from(i(next())?).ok()?,
            },
            21 => Change::GiveBack {
                name: s(next())?,
                seq: u64::try_from(i(next())?).ok()?,
                message: b(next())?,
            },
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::snapshot;

    /// A random change that a live operation could have made.
    fn random_change(rng: &mut fastrand::Rng) -> Change {
        let stack = format!("s{}", rng.u8(..3));
        let client = format!("c{}", rng.u8(..3));
        let id = format!("l{}", rng.u8(..6));
        let bytes = |rng: &mut fastrand::Rng| vec![rng.u8(..); rng.usize(..4)];
        match rng.u8(..23) {
            0 => Change::CreateStack { name: stack },
            21 => Change::MarkSeen {
                name: stack,
                keys: (0..rng.usize(..3)).map(|_| bytes(rng)).collect(),
            },
            1 | 2 => Change::Push {
                name: stack,
                items: (0..rng.usize(..4)).map(|_| bytes(rng)).collect(),
            },
            3 => Change::Pop {
                name: stack,
                count: rng.usize(..3),
            },
            4 => Change::Take {
                name: stack,
                id,
                deadline_ms: rng.i64(0..100),
                owner: rng.bool().then_some(client),
            },
            5 => Change::Ack { name: stack, id },
            6 => Change::Release { name: stack, id },
            22 => Change::Extend {
                name: stack,
                id,
                deadline_ms: rng.i64(0..100),
            },
            7 => Change::Expire {
                now_ms: rng.i64(0..100),
            },
            8 => Change::Truncate { name: stack },
            9 => Change::RemoveStack { name: stack },
            10 => Change::SetParams {
                name: stack,
                params: vec![(client, bytes(rng))],
            },
            11 => Change::RemoveParam {
                name: stack,
                param: client,
            },
            12 => Change::RemoveStorage { name: stack },
            13 => Change::Login {
                name: client,
                host: "h".into(),
                now_ms: rng.i64(0..100),
                info: bytes(rng),
            },
            14 => Change::EndSession { name: client },
            15 => Change::Visit {
                name: client,
                now_ms: rng.i64(0..100),
                status: rng.bool().then(|| bytes(rng)),
            },
            16 => Change::Send {
                name: client,
                message: bytes(rng),
                max_queue: 3,
            },
            17 => Change::Broadcast {
                message: bytes(rng),
                max_queue: 3,
            },
            18 => Change::Delivered {
                name: client,
                seq: rng.u64(..3),
            },
            19 => Change::GiveBack {
                name: client,
                seq: rng.u64(..3),
                message: bytes(rng),
            },
            _ => Change::Seen {
                name: client,
                now_ms: rng.i64(0..100),
            },
        }
    }

    fn snapshot_of(state: &State) -> Vec<u8> {
        let mut out = Vec::new();
        snapshot::write(state, &mut out).unwrap();
        out
    }

    #[test]
    fn every_change_reads_back_as_itself() {
        let mut rng = fastrand::Rng::with_seed(11);
        for _ in 0..2000 {
            let change = random_change(&mut rng);
            assert_eq!(Change::decode(&change.encode()), Some(change));
        }
        assert_eq!(Change::decode(b"\x92\x63\x01"), None);
        let batch: Vec<Change> = (0..5).map(|_| random_change(&mut rng)).collect();
        assert_eq!(Change::decode_all(&Change::encode_all(&batch)), Some(batch));
        assert_eq!(Change::decode_all(&Change::encode_all(&[])), Some(vec![]));
    }

    #[test]
    fn replaying_the_journal_on_a_snapshot_rebuilds_the_same_state() {
        let mut rng = fastrand::Rng::with_seed(12);
        for _ in 0..50 {
            let mut live = State::default();
            let mut journal = Vec::new();
            let mut snap = snapshot_of(&live);
            for step in 0..200 {
                let change = random_change(&mut rng);
                change.replay(&mut live);
                journal.push(change.encode());
                if step == 100 {
                    // A log rewrite half way: snapshot, journal afresh.
                    snap = snapshot_of(&live);
                    journal.clear();
                }
            }
            let mut rebuilt = snapshot::read(&snap).unwrap();
            for record in &journal {
                Change::decode(record).unwrap().replay(&mut rebuilt);
            }
            assert_eq!(snapshot_of(&rebuilt), snapshot_of(&live));
        }
    }
}
