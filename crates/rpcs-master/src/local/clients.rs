//! The provider's session operations on the local backends, each decided on
//! the state read only and recorded as the changes it makes.

use super::{Carry, LocalBackend};
use crate::state::{Change, Client};
use rpcs_core::Fault;

fn not_found(name: &str) -> Fault {
    Fault::named(
        "ClientNotFoundError",
        format!("no client named {name:?} is logged in"),
    )
}

/// What ending sessions gave back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ended {
    /// The sessions that ended.
    pub clients: Vec<String>,
    /// The stacks their leased items went back to (to wake their waiters).
    pub stacks: Vec<String>,
}

impl LocalBackend {
    /// Logs a client in (a live session keeps its queue).
    pub async fn login(
        &self,
        name: String,
        host: String,
        now_ms: i64,
        info: Vec<u8>,
    ) -> Result<(), Fault> {
        self.write(move |_| {
            Ok((
                (),
                vec![Change::Login {
                    name,
                    host,
                    now_ms,
                    info,
                }],
            ))
        })
        .await
    }

    /// Ends a client's session: its messages are dropped and its leases go back.
    pub async fn logout(&self, name: String) -> Result<Ended, Fault> {
        self.write(move |state| {
            state.clients.get(&name).ok_or_else(|| not_found(&name))?;
            let ended = ended(state, vec![name.clone()]);
            Ok((ended, vec![Change::EndSession { name }]))
        })
        .await
    }

    /// Ends every session last seen before `cutoff_ms`.
    pub async fn end_idle(&self, cutoff_ms: i64) -> Result<Ended, Fault> {
        self.write(move |state| {
            let idle = state.clients.idle_before(cutoff_ms);
            let changes = idle
                .iter()
                .map(|name| Change::EndSession { name: name.clone() })
                .collect();
            Ok((ended(state, idle), changes))
        })
        .await
    }

    /// A visit: marks the client seen, records `status` when given, and takes
    /// the oldest message (with its sequence number) if `carry` takes it.
    pub async fn visit(
        &self,
        name: String,
        now_ms: i64,
        status: Option<Vec<u8>>,
        carry: Carry<'_>,
    ) -> Result<Option<(u64, Vec<u8>)>, Fault> {
        let back = name.clone();
        let decide = move |state: &crate::state::State| {
            let next = state.clients.next_for_visit(&name, carry)?;
            let next = next.map(|(seq, m)| (seq, m.to_vec()));
            let visit = Change::Visit {
                name,
                now_ms,
                status,
            };
            Ok((next, vec![visit]))
        };
        // A cancelled visit gives its message back.
        let undo = move |next: Option<(u64, Vec<u8>)>| {
            next.map_or_else(Vec::new, |(seq, message)| {
                vec![Change::GiveBack {
                    name: back,
                    seq,
                    message,
                }]
            })
        };
        self.write_handing_over(decide, undo).await
    }

    /// Marks the client seen (a subscription delivering to it); false if it is
    /// not logged in.
    pub async fn seen(&self, name: String, now_ms: i64) -> Result<bool, Fault> {
        self.write(move |state| {
            if state.clients.get(&name).is_none() {
                return Ok((false, vec![]));
            }
            Ok((true, vec![Change::Seen { name, now_ms }]))
        })
        .await
    }

    /// Queues a message for one client, unless its queue holds `max_queue`.
    pub async fn send(
        &self,
        name: String,
        message: Vec<u8>,
        max_queue: usize,
    ) -> Result<(), Fault> {
        self.write(move |state| {
            state.clients.check_send(&name, max_queue)?;
            let send = Change::Send {
                name,
                message,
                max_queue,
            };
            Ok(((), vec![send]))
        })
        .await
    }

    /// Queues a message for every client with room; who got it.
    pub async fn broadcast(
        &self,
        message: Vec<u8>,
        max_queue: usize,
    ) -> Result<Vec<String>, Fault> {
        self.write(move |state| {
            let recipients: Vec<String> = state
                .clients
                .iter()
                .filter(|(_, c)| c.queue.len() < max_queue)
                .map(|(n, _)| n.clone())
                .collect();
            if recipients.is_empty() {
                return Ok((recipients, vec![]));
            }
            Ok((recipients, vec![Change::Broadcast { message, max_queue }]))
        })
        .await
    }

    /// The oldest message of `name` with its sequence number, not taken.
    pub fn peek_message(&self, name: &str) -> Option<(u64, Vec<u8>)> {
        self.read(|state| state.clients.peek(name).map(|(seq, m)| (seq, m.to_vec())))
    }

    /// Takes message `seq` of `name` if it is still the oldest (a subscription
    /// delivered it); false otherwise.
    pub async fn delivered(&self, name: String, seq: u64) -> Result<bool, Fault> {
        self.write(move |state| {
            if state.clients.peek(&name).map(|(s, _)| s) != Some(seq) {
                return Ok((false, vec![]));
            }
            Ok((true, vec![Change::Delivered { name, seq }]))
        })
        .await
    }

    /// Gives back message `seq`, taken by a visit whose caller went away.
    pub async fn give_back(&self, name: String, seq: u64, message: Vec<u8>) -> Result<bool, Fault> {
        self.write(move |state| {
            if state.clients.get(&name).is_none() {
                return Ok((false, vec![]));
            }
            Ok((true, vec![Change::GiveBack { name, seq, message }]))
        })
        .await
    }

    /// One client's session.
    pub fn client(&self, name: &str) -> Option<Client> {
        self.read(|state| state.clients.get(name).cloned())
    }

    /// Every client's session, in name order.
    pub fn clients(&self) -> Vec<(String, Client)> {
        self.read(|state| {
            state
                .clients
                .iter()
                .map(|(n, c)| (n.clone(), c.clone()))
                .collect()
        })
    }
}

/// What ending `clients`' sessions gives back, as seen before.
fn ended(state: &crate::state::State, clients: Vec<String>) -> Ended {
    let leases = state.stacks.leases();
    let mut stacks: Vec<String> = clients
        .iter()
        .flat_map(|c| leases.owned_by(c))
        .filter_map(|id| leases.by_id(&id).map(|l| l.stack.clone()))
        .collect();
    stacks.sort();
    stacks.dedup();
    Ended { clients, stacks }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::dir::SimDir;
    use crate::journal::Durability;
    use crate::state::PopLimit;
    use std::sync::Arc;

    fn any(_: &[u8]) -> Result<(), Fault> {
        Ok(())
    }

    #[tokio::test]
    async fn a_session_its_queue_and_its_leases_survive_a_restart() {
        let dir = SimDir::new();
        let b = LocalBackend::open(Arc::new(dir.clone()), Durability::Strict).unwrap();
        b.login("w".into(), "h".into(), 10, vec![0xc0])
            .await
            .unwrap();
        b.send("w".into(), b"m1".to_vec(), 10).await.unwrap();
        b.send("w".into(), b"m2".to_vec(), 10).await.unwrap();
        assert_eq!(
            b.visit("w".into(), 20, None, &any).await.unwrap(),
            Some((0, b"m1".to_vec()))
        );
        b.push("s".into(), vec![b"job".to_vec()]).await.unwrap();
        b.take("s".into(), 60_000, Some("w".into()), 20, &any)
            .await
            .unwrap();
        b.close();
        drop(b);
        let b = LocalBackend::open(Arc::new(dir), Durability::Strict).unwrap();
        assert_eq!(b.peek_message("w"), Some((1, b"m2".to_vec())));
        assert_eq!(b.client("w").map(|c| c.visit_ms), Some(20));
        let ended = b.end_idle(21).await.unwrap();
        assert_eq!(
            ended,
            Ended {
                clients: vec!["w".into()],
                stacks: vec!["s".into()]
            }
        );
        let all = PopLimit {
            count: 9,
            budget: usize::MAX,
        };
        assert_eq!(
            b.pop("s".into(), all, &any).await.unwrap(),
            Some(vec![b"job".to_vec()])
        );
        assert!(b.client("w").is_none());
        assert!(b.logout("w".into()).await.is_err());
    }

    #[tokio::test]
    async fn a_message_the_visitor_cannot_carry_stays_queued() {
        let b = LocalBackend::memory();
        b.login("w".into(), "h".into(), 0, vec![0xc0])
            .await
            .unwrap();
        b.send("w".into(), b"m".to_vec(), 1).await.unwrap();
        assert!(
            b.send("w".into(), b"m".to_vec(), 1).await.is_err(),
            "the queue is full"
        );
        let refuse = |_: &[u8]| Err(Fault::named("UnrepresentableError", "no"));
        assert!(b.visit("w".into(), 5, None, &refuse).await.is_err());
        assert_eq!(b.client("w").map(|c| c.visit_ms), Some(0));
        assert_eq!(b.peek_message("w"), Some((0, b"m".to_vec())));
        assert!(b.delivered("w".into(), 0).await.unwrap());
        assert!(!b.delivered("w".into(), 0).await.unwrap());
    }
}
