//! The provider's sessions, in memory: who is logged in, when each was last
//! seen, and each one's queue of messages.
//!
//! Sessions are also indexed by their last visit, so ending the idle ones
//! costs what ends, not what is logged in. Each operation checks before it
//! changes anything.

use super::stacks::Accept;
use rpcs_core::Fault;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

fn not_found(name: &str) -> Fault {
    Fault::named(
        "ClientNotFoundError",
        format!("no client named {name:?} is logged in"),
    )
}

/// One logged-in client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// The address it logged in from.
    pub host: String,
    /// When it logged in, in milliseconds since the epoch.
    pub login_ms: i64,
    /// When it was last seen.
    pub visit_ms: i64,
    /// Its last status, encoded (nil until it sends one).
    pub status: Vec<u8>,
    /// What it said about itself at login, encoded.
    pub info: Vec<u8>,
    /// Messages waiting for it, oldest first.
    pub queue: VecDeque<Vec<u8>>,
    /// The sequence number of the oldest queued message: deliveries name the
    /// message they took by it, so a late confirmation cannot take another.
    pub head_seq: u64,
}

/// The encoding of nil, a fresh client's status.
const NIL: u8 = 0xc0;

/// Every session, by name.
#[derive(Debug, Default, Clone)]
pub struct Clients {
    clients: BTreeMap<String, Client>,
    by_visit: BTreeSet<(i64, String)>,
}

impl Clients {
    /// No sessions.
    pub fn new() -> Clients {
        Clients::default()
    }

    /// Logs a client in; a live session keeps its queue and login time.
    pub fn login(&mut self, name: &str, host: String, now_ms: i64, info: Vec<u8>) {
        let client = match self.clients.remove(name) {
            Some(mut c) => {
                self.by_visit.remove(&(c.visit_ms, name.to_owned()));
                c.host = host;
                c.info = info;
                c.visit_ms = now_ms;
                c
            }
            None => Client {
                host,
                login_ms: now_ms,
                visit_ms: now_ms,
                status: vec![NIL],
                info,
                queue: VecDeque::new(),
                head_seq: 0,
            },
        };
        self.insert(name, client);
    }

    /// Ends a session, dropping its queue; `Err` if it is not logged in. (Its
    /// leases are the stacks' to give back.)
    pub fn logout(&mut self, name: &str) -> Result<Client, Fault> {
        let client = self.clients.remove(name).ok_or_else(|| not_found(name))?;
        self.by_visit.remove(&(client.visit_ms, name.to_owned()));
        Ok(client)
    }

    /// A visit: marks the client seen at `now_ms`, records `status` when given,
    /// and takes the oldest message if `accept` takes it (else it stays and the
    /// visit fails). Returns the message with its sequence number.
    pub fn visit(
        &mut self,
        name: &str,
        now_ms: i64,
        status: Option<Vec<u8>>,
        accept: Accept<'_>,
    ) -> Result<Option<(u64, Vec<u8>)>, Fault> {
        self.next_for_visit(name, accept)?;
        self.seen(name, now_ms);
        let Some(client) = self.clients.get_mut(name) else {
            return Ok(None);
        };
        if let Some(status) = status {
            client.status = status;
        }
        let taken = client.queue.pop_front().map(|m| (client.head_seq, m));
        if taken.is_some() {
            client.head_seq += 1;
        }
        Ok(taken)
    }

    /// What a visit by `name` would take, without taking it: the oldest message
    /// with its sequence number, if `accept` takes it; a fault if the client is
    /// not logged in or its message cannot go to it.
    pub fn next_for_visit(
        &self,
        name: &str,
        accept: Accept<'_>,
    ) -> Result<Option<(u64, &[u8])>, Fault> {
        self.clients.get(name).ok_or_else(|| not_found(name))?;
        let next = self.peek(name);
        if let Some((_, message)) = next {
            accept(message)?;
        }
        Ok(next)
    }

    /// Marks the client seen at `now_ms` (a live subscription keeps it alive);
    /// false if it is not logged in.
    pub fn seen(&mut self, name: &str, now_ms: i64) -> bool {
        let Some(client) = self.clients.get_mut(name) else {
            return false;
        };
        self.by_visit.remove(&(client.visit_ms, name.to_owned()));
        client.visit_ms = now_ms;
        self.by_visit.insert((now_ms, name.to_owned()));
        true
    }

    /// The oldest message with its sequence number, without taking it.
    pub fn peek(&self, name: &str) -> Option<(u64, &[u8])> {
        let client = self.clients.get(name)?;
        client
            .queue
            .front()
            .map(|m| (client.head_seq, m.as_slice()))
    }

    /// Takes the oldest message if it is still message `seq` (it was delivered);
    /// false otherwise.
    pub fn delivered(&mut self, name: &str, seq: u64) -> bool {
        match self.clients.get_mut(name) {
            Some(c) if c.head_seq == seq && !c.queue.is_empty() => {
                c.queue.pop_front();
                c.head_seq += 1;
                true
            }
            _ => false,
        }
    }

    /// Gives back message `seq`, taken by a visit whose caller went away: at
    /// the head again if nothing was taken since, else at the end. False if the
    /// session has ended (the message goes with it).
    pub fn give_back(&mut self, name: &str, seq: u64, message: Vec<u8>) -> bool {
        let Some(c) = self.clients.get_mut(name) else {
            return false;
        };
        if c.head_seq == seq + 1 {
            c.queue.push_front(message);
            c.head_seq = seq;
        } else {
            c.queue.push_back(message);
        }
        true
    }

    /// Queues a message for `name`, unless its queue holds `max_queue` already.
    pub fn send(&mut self, name: &str, message: Vec<u8>, max_queue: usize) -> Result<(), Fault> {
        self.check_send(name, max_queue)?;
        if let Some(client) = self.clients.get_mut(name) {
            client.queue.push_back(message);
        }
        Ok(())
    }

    /// Whether a message can be queued for `name`: it is logged in and its
    /// queue holds fewer than `max_queue`.
    pub fn check_send(&self, name: &str, max_queue: usize) -> Result<(), Fault> {
        let client = self.clients.get(name).ok_or_else(|| not_found(name))?;
        if client.queue.len() >= max_queue {
            return Err(Fault::named(
                "QueueFullError",
                format!("client {name:?} has {max_queue} unread messages"),
            ));
        }
        Ok(())
    }

    /// Queues a message for every client whose queue has room; returns who got it.
    pub fn broadcast(&mut self, message: &[u8], max_queue: usize) -> Vec<String> {
        let mut sent = Vec::new();
        for (name, client) in &mut self.clients {
            if client.queue.len() < max_queue {
                client.queue.push_back(message.to_vec());
                sent.push(name.clone());
            }
        }
        sent
    }

    /// The clients last seen before `cutoff_ms`, longest idle first.
    pub fn idle_before(&self, cutoff_ms: i64) -> Vec<String> {
        self.by_visit
            .iter()
            .take_while(|(visit, _)| *visit < cutoff_ms)
            .map(|(_, name)| name.clone())
            .collect()
    }

    /// One client.
    pub fn get(&self, name: &str) -> Option<&Client> {
        self.clients.get(name)
    }

    /// Every client, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Client)> {
        self.clients.iter()
    }

    /// How many are logged in.
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// Whether nobody is.
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// Puts back a session read from a snapshot (its queue follows).
    pub fn restore(&mut self, name: &str, client: Client) {
        if let Some(old) = self.clients.remove(name) {
            self.by_visit.remove(&(old.visit_ms, name.to_owned()));
        }
        self.insert(name, client);
    }

    /// Puts back a queued message read from a snapshot; false if the session
    /// is unknown.
    pub fn restore_message(&mut self, name: &str, message: Vec<u8>) -> bool {
        match self.clients.get_mut(name) {
            Some(c) => {
                c.queue.push_back(message);
                true
            }
            None => false,
        }
    }

    fn insert(&mut self, name: &str, client: Client) {
        self.by_visit.insert((client.visit_ms, name.to_owned()));
        self.clients.insert(name.to_owned(), client);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn any(_: &[u8]) -> Result<(), Fault> {
        Ok(())
    }

    #[test]
    fn a_message_the_caller_cannot_carry_stays_queued() {
        let mut c = Clients::new();
        c.login("w", "h".into(), 0, vec![NIL]);
        c.send("w", b"m".to_vec(), 10).unwrap();
        let refuse = |_: &[u8]| Err(Fault::named("UnrepresentableError", "no"));
        assert!(c.visit("w", 5, Some(b"s".to_vec()), &refuse).is_err());
        assert_eq!(
            c.get("w").unwrap().visit_ms,
            0,
            "a failed visit changes nothing"
        );
        assert_eq!(c.get("w").unwrap().status, vec![NIL]);
        assert_eq!(
            c.visit("w", 5, None, &any).unwrap(),
            Some((0, b"m".to_vec()))
        );
        assert_eq!(c.visit("w", 6, None, &any).unwrap(), None);
    }

    #[test]
    fn a_given_back_message_returns_to_its_place() {
        let mut c = Clients::new();
        c.login("w", "h".into(), 0, vec![NIL]);
        for m in ["1", "2"] {
            c.send("w", m.as_bytes().to_vec(), 10).unwrap();
        }
        let (seq, m) = c.visit("w", 1, None, &any).unwrap().unwrap();
        assert!(c.give_back("w", seq, m));
        assert_eq!(c.peek("w"), Some((0, &b"1"[..])));
        let (seq, m) = c.visit("w", 1, None, &any).unwrap().unwrap();
        c.visit("w", 1, None, &any).unwrap();
        assert!(
            c.give_back("w", seq, m),
            "after another visit it goes to the end"
        );
        assert_eq!(c.peek("w"), Some((2, &b"1"[..])));
    }

    #[test]
    fn a_late_confirmation_takes_nothing_else() {
        let mut c = Clients::new();
        c.login("w", "h".into(), 0, vec![NIL]);
        c.send("w", b"a".to_vec(), 10).unwrap();
        c.send("w", b"b".to_vec(), 10).unwrap();
        assert!(c.delivered("w", 0));
        assert!(!c.delivered("w", 0));
        assert_eq!(c.peek("w"), Some((1, &b"b"[..])));
    }

    #[test]
    fn idle_sessions_are_found_by_their_last_visit() {
        let mut c = Clients::new();
        c.login("old", "h".into(), 10, vec![NIL]);
        c.login("new", "h".into(), 20, vec![NIL]);
        c.login("old2", "h".into(), 15, vec![NIL]);
        c.seen("old2", 30);
        assert_eq!(c.idle_before(21), vec!["old", "new"]);
        c.logout("old").unwrap();
        assert_eq!(c.idle_before(21), vec!["new"]);
        assert!(c.logout("old").is_err());
    }

    #[test]
    fn full_queues_refuse_and_broadcast_skips_them() {
        let mut c = Clients::new();
        c.login("a", "h".into(), 0, vec![NIL]);
        c.login("b", "h".into(), 0, vec![NIL]);
        c.send("a", b"1".to_vec(), 1).unwrap();
        assert!(c.send("a", b"2".to_vec(), 1).is_err());
        assert_eq!(c.broadcast(b"all", 1), vec!["b"]);
        assert!(c.send("nobody", b"x".to_vec(), 1).is_err());
    }
}
