//! The local backends: the master's [`State`] in memory, and, for the embedded
//! backend, every change journaled to a directory, as Redis keeps its data in
//! memory and appends every command to its AOF.
//!
//! An operation runs in two steps under one lock. It first *decides*, reading
//! the state only: it checks everything that can fail and returns its answer
//! with the [`Change`]s it makes. The backend then *applies* the changes (the
//! same code recovery replays) and appends them to the journal as one record.
//! So an operation that faults, or panics, while deciding has changed nothing;
//! and an operation is in the journal whole or not at all.
//!
//! Files: `snapshot-G` (the whole state, written whole) and `journal-G` (the
//! changes since), for generations G. Recovery loads the newest snapshot and
//! replays the journals of its generation and after. Compaction writes the
//! next generation's snapshot and drops the older files.
//!
//! When the journal cannot write (a full disk, an I/O error), the operations it
//! carried fail, and so does every write until it can again; the state in
//! memory, which had applied them, is rebuilt from the files (which hold just
//! the acknowledged ones) before the next operation. Reads go on throughout.

pub mod backend;
pub mod clients;
pub mod stacks;
pub mod storages;

pub use clients::Ended;
pub use stacks::{Carry, Claims, Taken};

use crate::clock::{Clock, SystemClock};
use crate::journal::dir::Dir;
use crate::journal::{record, Durability, Journal, JournalError};
use crate::state::{snapshot, Change, State};
use crate::waiters::Waiters;
use rpcs_core::Fault;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, MutexGuard};
use tracing::{error, info, warn};

/// A journal grows to at least this many bytes before it is compacted.
const COMPACT_AT: u64 = 64 << 20;

fn storage_fault(e: impl std::fmt::Display) -> Fault {
    Fault::named("StorageError", e.to_string())
}

/// The state in memory, journaled or not.
pub struct LocalBackend {
    inner: Mutex<Inner>,
    /// Held through a compaction, so that one runs at a time.
    compacting: Mutex<()>,
    /// Where lease deadlines and session times come from.
    clock: Arc<dyn Clock>,
    /// Blocked pops, by stack.
    stack_waiters: Waiters,
    /// Subscriptions, by client.
    client_waiters: Waiters,
}

struct Inner {
    state: State,
    durable: Option<Durable>,
}

/// The files of the embedded backend.
struct Durable {
    dir: Arc<dyn Dir>,
    durability: Durability,
    journal: Journal,
    generation: u64,
    /// The journal's failures already answered by a rebuild.
    seen_failures: u64,
    /// Bytes appended to the journal of this generation.
    journal_bytes: u64,
    /// The size of this generation's snapshot.
    snapshot_bytes: u64,
}

fn snapshot_name(generation: u64) -> String {
    format!("snapshot-{generation:016x}")
}

fn journal_name(generation: u64) -> String {
    format!("journal-{generation:016x}")
}

/// The generation in a file name of `kind`.
fn generation_of(name: &str, kind: &str) -> Option<u64> {
    let hex = name.strip_prefix(kind)?.strip_prefix('-')?;
    (hex.len() == 16).then(|| u64::from_str_radix(hex, 16).ok())?
}

impl LocalBackend {
    /// The memory backend: nothing survives the process.
    pub fn memory() -> LocalBackend {
        LocalBackend::over(State::default(), None)
    }

    fn over(state: State, durable: Option<Durable>) -> LocalBackend {
        LocalBackend {
            inner: Mutex::new(Inner { state, durable }),
            compacting: Mutex::new(()),
            clock: Arc::new(SystemClock),
            stack_waiters: Waiters::default(),
            client_waiters: Waiters::default(),
        }
    }

    /// The backend reading the time from `clock` (tests move it on their own).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> LocalBackend {
        self.clock = clock;
        self
    }

    /// The embedded backend over `dir`: recovers what the files hold.
    pub fn open(dir: Arc<dyn Dir>, durability: Durability) -> io::Result<LocalBackend> {
        let started = std::time::Instant::now();
        let (state, generation, snapshot_bytes) = recover(&*dir, None)?;
        // What the journal already holds counts towards its compaction.
        let journal_bytes = dir
            .read(&journal_name(generation))?
            .map_or(0, |b| b.len() as u64);
        let (journal, _) = Journal::open(dir.open(&journal_name(generation))?, durability)?;
        let seen_failures = journal.failures();
        info!(
            generation,
            snapshot_bytes,
            journal_bytes,
            ms = started.elapsed().as_millis() as u64,
            "state recovered"
        );
        let durable = Durable {
            dir,
            durability,
            journal,
            generation,
            seen_failures,
            journal_bytes,
            snapshot_bytes,
        };
        Ok(LocalBackend::over(state, Some(durable)))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.rebuild_if_diverged();
        inner
    }

    /// Sends every commit through the journal's writer thread, so that a test
    /// can cut a call short while its sync is held.
    #[cfg(test)]
    pub(crate) fn commit_on_the_writer_only(&self) {
        if let Some(d) = &self.lock().durable {
            d.journal.commit_on_the_writer_only();
        }
    }

    /// Reads the state.
    pub fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&self.lock().state)
    }

    /// Runs an operation: `decide` reads the state and returns the answer with
    /// the changes to make; they are applied and journaled, and the answer is
    /// returned once they are durable.
    pub async fn write<R>(
        &self,
        decide: impl FnOnce(&State) -> Result<(R, Vec<Change>), Fault>,
    ) -> Result<R, Fault> {
        match self.apply_and_journal(decide)? {
            Applied::Done(answer) => Ok(answer),
            Applied::Journaled(answer, receipt) => self.durable(receipt).await.map(|()| answer),
        }
    }

    /// [`LocalBackend::write`] for an operation that hands something over (a
    /// pop): if the caller goes away while the changes are becoming durable
    /// (its call was cancelled), `undo` gets the answer back and returns the
    /// changes that put it back, which are applied at once, so nothing taken is
    /// lost to a cancelled call.
    pub async fn write_handing_over<R>(
        &self,
        decide: impl FnOnce(&State) -> Result<(R, Vec<Change>), Fault>,
        undo: impl FnOnce(R) -> Vec<Change>,
    ) -> Result<R, Fault> {
        let (answer, receipt) = match self.apply_and_journal(decide)? {
            Applied::Done(answer) => return Ok(answer),
            Applied::Journaled(answer, receipt) => (answer, receipt),
        };
        let mut handover = Handover {
            backend: self,
            answer: Some(answer),
            undo: Some(undo),
        };
        let durable = self.durable(receipt).await;
        let answer = handover.answer.take();
        match (durable, answer) {
            (Ok(()), Some(answer)) => Ok(answer),
            (Ok(()), None) => Err(Fault::internal("a handed-over answer went missing")),
            // Not durable: the state was rebuilt without the changes.
            (Err(fault), _) => Err(fault),
        }
    }

    /// Decides, applies and journals an operation, and sends its record off
    /// (once the lock is released: a strict commit may write and sync here).
    fn apply_and_journal<R>(
        &self,
        decide: impl FnOnce(&State) -> Result<(R, Vec<Change>), Fault>,
    ) -> Result<Applied<R>, Fault> {
        let applied = self.apply_and_append(decide)?;
        if let Applied::Journaled(_, receipt) = &applied {
            receipt.commit();
        }
        Ok(applied)
    }

    /// Decides, applies and appends an operation to the journal, under the
    /// lock.
    fn apply_and_append<R>(
        &self,
        decide: impl FnOnce(&State) -> Result<(R, Vec<Change>), Fault>,
    ) -> Result<Applied<R>, Fault> {
        let mut inner = self.lock();
        if inner
            .durable
            .as_ref()
            .is_some_and(|d| d.journal.is_broken())
        {
            return Err(storage_fault(
                "the store cannot write at the moment (see the server log); reads still work",
            ));
        }
        let decided = catch_unwind(AssertUnwindSafe(|| decide(&inner.state)));
        let (answer, changes) = match decided {
            Ok(result) => result?,
            Err(_) => {
                error!("an operation panicked while deciding; nothing was changed");
                return Err(Fault::internal("the operation failed inside the server"));
            }
        };
        if changes.is_empty() {
            return Ok(Applied::Done(answer));
        }
        let payload = Change::encode_all(&changes);
        if inner.durable.is_some() && payload.len() > record::MAX_RECORD {
            return Err(Fault::named(
                "ItemTooLargeError",
                format!(
                    "the operation's {} bytes exceed what the journal takes in one record",
                    payload.len()
                ),
            ));
        }
        inner.apply(&changes)?;
        match inner.append(&payload) {
            None => Ok(Applied::Done(answer)),
            Some(Ok(receipt)) => Ok(Applied::Journaled(answer, receipt)),
            Some(Err(e)) => {
                // Applied in memory, refused by the journal: undo by rebuilding.
                inner.rebuild();
                Err(storage_fault(e))
            }
        }
    }

    /// Waits for a journal receipt; a failed write rebuilds the state.
    async fn durable(&self, receipt: crate::journal::Receipt) -> Result<(), Fault> {
        match receipt.durable().await {
            Ok(()) => Ok(()),
            Err(e) => {
                // Taking the lock rebuilds the state without the failed changes.
                drop(self.lock());
                Err(storage_fault(e))
            }
        }
    }

    /// Writes a snapshot of the state as the next generation and drops the
    /// older files. Runs on its own when the journal has grown large.
    pub fn compact(&self) -> io::Result<()> {
        let _one_at_a_time = self.compacting.lock().unwrap_or_else(|p| p.into_inner());
        let mut inner = self.lock();
        let Some(d) = &mut inner.durable else {
            return Ok(());
        };
        let next = d.generation + 1;
        let (journal, _) = Journal::open(d.dir.open(&journal_name(next))?, d.durability)?;
        // The old journal writes (and syncs) everything appended to it before
        // the snapshot is taken: the lock keeps new appends out meanwhile, and
        // the snapshot must not hold a change its journal then fails to keep.
        let old = std::mem::replace(&mut d.journal, journal);
        old.close();
        let old_failed = old.failures() != d.seen_failures;
        d.seen_failures = d.journal.failures();
        d.generation = next;
        d.journal_bytes = 0;
        if old_failed {
            inner.rebuild();
        }
        let Inner { state, durable } = &mut *inner;
        let Some(d) = durable else {
            return Ok(());
        };
        let mut bytes = Vec::new();
        snapshot::write(state, &mut bytes)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        d.snapshot_bytes = bytes.len() as u64;
        let dir = d.dir.clone();
        drop(inner);
        dir.write_whole(&snapshot_name(next), &bytes)?;
        for name in dir.list()? {
            let older = generation_of(&name, "snapshot")
                .or_else(|| generation_of(&name, "journal"))
                .is_some_and(|g| g < next);
            if older || name.ends_with(".tmp") {
                dir.remove(&name)?;
            }
        }
        info!(generation = next, bytes = bytes.len(), "state compacted");
        Ok(())
    }

    /// Waits (blocking) until everything acknowledged so far is written and
    /// synced.
    pub fn settle(&self) {
        if let Some(d) = &self.lock().durable {
            d.journal.settle();
        }
    }

    /// Flushes and closes the journal (relaxed durability syncs what it has).
    pub fn close(&self) {
        if let Some(d) = &self.lock().durable {
            d.journal.close();
        }
    }
}

/// An operation after its changes were applied: answered, or waiting for its
/// journal record.
enum Applied<R> {
    Done(R),
    Journaled(R, crate::journal::Receipt),
}

/// An answer on its way to a caller that may go away: dropped before it is
/// taken, it is undone.
struct Handover<'a, R, U: FnOnce(R) -> Vec<Change>> {
    backend: &'a LocalBackend,
    answer: Option<R>,
    undo: Option<U>,
}

impl<R, U: FnOnce(R) -> Vec<Change>> Drop for Handover<'_, R, U> {
    fn drop(&mut self) {
        let (Some(answer), Some(undo)) = (self.answer.take(), self.undo.take()) else {
            return;
        };
        let changes = undo(answer);
        let result = self.backend.apply_and_journal(move |_| Ok(((), changes)));
        if let Err(e) = result {
            warn!(error = %e, "could not undo what a cancelled call took");
        }
    }
}

impl Inner {
    /// Applies changes; a panic (a bug) leaves the state suspect, so it is
    /// rebuilt from the files.
    fn apply(&mut self, changes: &[Change]) -> Result<(), Fault> {
        let state = &mut self.state;
        let applied = catch_unwind(AssertUnwindSafe(|| {
            for change in changes {
                change.replay(state);
            }
        }));
        if applied.is_err() {
            error!("applying an operation's changes panicked; rebuilding the state");
            self.rebuild();
            return Err(Fault::internal("the operation failed inside the server"));
        }
        Ok(())
    }

    /// Appends the changes as one record; `None` for the memory backend.
    fn append(&mut self, payload: &[u8]) -> Option<Result<crate::journal::Receipt, JournalError>> {
        let d = self.durable.as_mut()?;
        d.journal_bytes += (payload.len() + record::HEADER) as u64;
        Some(d.journal.append(payload))
    }

    /// Rebuilds the state from the files if the journal failed since the last
    /// rebuild (its failed records are not in them).
    fn rebuild_if_diverged(&mut self) {
        let diverged = self
            .durable
            .as_ref()
            .is_some_and(|d| d.journal.failures() != d.seen_failures);
        if diverged {
            self.rebuild();
        }
    }

    /// Replaces the state with what the files hold.
    fn rebuild(&mut self) {
        let Some(d) = &mut self.durable else {
            warn!("the memory backend cannot rebuild its state; keeping it as it is");
            return;
        };
        // Nothing in flight, then only what the journal acknowledged.
        d.journal.settle();
        d.seen_failures = d.journal.failures();
        let limit = (d.generation, d.journal.good_len());
        match recover(&*d.dir, Some(limit)) {
            Ok((state, _, _)) => {
                info!("state rebuilt from the files after a failed write");
                self.state = state;
            }
            Err(e) => error!(error = %e, "cannot rebuild the state from the files"),
        }
    }
}

/// The state the files hold: the newest snapshot with the journals of its
/// generation and later replayed; the generation to append to; the snapshot's
/// size. `limit` names a journal being written and how much of it to read.
fn recover(dir: &dyn Dir, limit: Option<(u64, u64)>) -> io::Result<(State, u64, u64)> {
    let names = dir.list()?;
    let snapshot_gen = names
        .iter()
        .filter_map(|n| generation_of(n, "snapshot"))
        .max();
    let (mut state, snapshot_bytes) = match snapshot_gen {
        Some(g) => {
            let bytes = dir.read(&snapshot_name(g))?.unwrap_or_default();
            let state = snapshot::read(&bytes)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            (state, bytes.len() as u64)
        }
        None => (State::default(), 0),
    };
    let base = snapshot_gen.unwrap_or(0);
    let mut journals: Vec<u64> = names
        .iter()
        .filter_map(|n| generation_of(n, "journal"))
        .filter(|g| *g >= base)
        .collect();
    journals.sort_unstable();
    for g in &journals {
        let mut bytes = dir.read(&journal_name(*g))?.unwrap_or_default();
        if let Some((_, len)) = limit.filter(|(lg, _)| lg == g) {
            bytes.truncate(usize::try_from(len).unwrap_or(usize::MAX));
        }
        let (records, _) = record::read_all(&bytes);
        for payload in records {
            let changes = Change::decode_all(payload).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    "a journal record is not a change",
                )
            })?;
            for change in &changes {
                change.replay(&mut state);
            }
        }
    }
    let generation = journals.last().copied().unwrap_or(base);
    Ok((state, generation, snapshot_bytes))
}

impl LocalBackend {
    /// Whether this generation's journal holds no change yet (nothing to
    /// compact).
    pub fn journal_is_empty(&self) -> bool {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.durable.as_ref().is_none_or(|d| d.journal_bytes == 0)
    }

    /// Whether the journal has grown enough to be worth compacting.
    pub fn wants_compaction(&self) -> bool {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner
            .durable
            .as_ref()
            .is_some_and(|d| d.journal_bytes > COMPACT_AT.max(2 * d.snapshot_bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::dir::SimDir;
    use crate::journal::file::{JournalFile, SimOp};
    use crate::state::PopLimit;

    fn any(_: &[u8]) -> Result<(), Fault> {
        Ok(())
    }

    async fn push(b: &LocalBackend, item: &[u8]) -> Result<u64, Fault> {
        let change = Change::Push {
            name: "s".into(),
            items: vec![item.to_vec()],
        };
        b.write(move |state| Ok((state.stacks.size("s").unwrap_or(0) + 1, vec![change])))
            .await
    }

    async fn pop(b: &LocalBackend) -> Result<Option<Vec<u8>>, Fault> {
        b.write(|state| {
            let top = state
                .stacks
                .iter()
                .find(|(n, _)| *n == "s")
                .and_then(|(_, items)| items.peek(1).next().map(<[u8]>::to_vec));
            let changes = match &top {
                Some(_) => vec![Change::Pop {
                    name: "s".into(),
                    count: 1,
                }],
                None => vec![],
            };
            Ok((top, changes))
        })
        .await
    }

    fn items(b: &LocalBackend) -> Vec<Vec<u8>> {
        b.read(|state| {
            let mut copy = state.stacks.clone();
            let all = PopLimit {
                count: usize::MAX,
                budget: usize::MAX,
            };
            copy.pop("s", all, &any).unwrap().unwrap_or_default()
        })
    }

    /// Random pushes and pops, every one acknowledged, with compactions
    /// between; what must be on the stack afterwards, top first.
    async fn workload(b: &LocalBackend, rng: &mut fastrand::Rng) -> Vec<Vec<u8>> {
        let mut model: Vec<Vec<u8>> = items(b);
        model.reverse();
        for step in 0..rng.usize(1..60) {
            if rng.u8(..3) == 0 {
                let got = pop(b).await.unwrap();
                assert_eq!(got, model.pop());
            } else {
                let item = format!("item {step}").into_bytes();
                push(b, &item).await.unwrap();
                model.push(item);
            }
            if rng.u8(..20) == 0 {
                b.compact().unwrap();
            }
        }
        model.reverse();
        model
    }

    #[tokio::test]
    async fn acknowledged_strict_writes_survive_power_losses_and_compactions() {
        let mut rng = fastrand::Rng::with_seed(21);
        for round in 0..40 {
            let dir = SimDir::new();
            let mut expected = Vec::new();
            for _ in 0..3 {
                let b = LocalBackend::open(Arc::new(dir.clone()), Durability::Strict).unwrap();
                assert_eq!(items(&b), expected, "round {round}: recovered state");
                expected = workload(&b, &mut rng).await;
                assert_eq!(items(&b), expected, "round {round}: live state");
                dir.power_loss(&mut rng);
                drop(b);
            }
        }
    }

    #[tokio::test]
    async fn without_syncs_power_losses_lose_acknowledged_writes() {
        // The negative control for the test above.
        let mut rng = fastrand::Rng::with_seed(22);
        let mut lost = 0;
        for _ in 0..40 {
            let dir = SimDir::new();
            dir.disk(&journal_name(0)).ignore_syncs();
            let b = LocalBackend::open(Arc::new(dir.clone()), Durability::Strict).unwrap();
            for i in 0..10 {
                push(&b, format!("{i}").as_bytes()).await.unwrap();
            }
            let before = items(&b);
            dir.power_loss(&mut rng);
            drop(b);
            let b = LocalBackend::open(Arc::new(dir.clone()), Durability::Strict).unwrap();
            if items(&b) != before {
                lost += 1;
            }
        }
        assert!(lost > 10, "only {lost} of 40 rounds lost anything");
    }

    #[tokio::test]
    async fn relaxed_writes_older_than_the_last_sync_survive_a_power_loss() {
        let mut rng = fastrand::Rng::with_seed(23);
        let mut newer_lost = 0;
        for _ in 0..5 {
            let dir = SimDir::new();
            let b = LocalBackend::open(Arc::new(dir.clone()), Durability::Relaxed).unwrap();
            push(&b, b"old").await.unwrap();
            let journal = dir.disk(&journal_name(0));
            // The once-a-second sync; waiting for it, not for a duration.
            while journal.unsynced_len() > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            for i in 0..20 {
                push(&b, format!("new {i}").as_bytes()).await.unwrap();
            }
            dir.power_loss(&mut rng);
            drop(b);
            let b = LocalBackend::open(Arc::new(dir), Durability::Relaxed).unwrap();
            let got = items(&b);
            assert_eq!(
                got.last(),
                Some(&b"old".to_vec()),
                "a synced write was lost"
            );
            if got.len() < 21 {
                newer_lost += 1;
            }
        }
        assert!(
            newer_lost > 0,
            "unsynced relaxed writes never went: the test shows nothing"
        );
    }

    #[tokio::test]
    async fn a_full_disk_refuses_writes_keeps_reads_and_recovers() {
        for durability in [Durability::Strict, Durability::Relaxed] {
            let dir = SimDir::new();
            let b = LocalBackend::open(Arc::new(dir.clone()), durability).unwrap();
            push(&b, b"kept").await.unwrap();
            dir.disk(&journal_name(0))
                .fail_next(SimOp::Append, io::ErrorKind::StorageFull);
            let refused = push(&b, b"refused").await.unwrap_err();
            assert_eq!(refused.name(), Some("StorageError"), "{durability}");
            assert_eq!(
                items(&b),
                vec![b"kept".to_vec()],
                "{durability}: the refused push is not visible"
            );
            // Writes work again once the journal finds its file writable.
            let mut tries = 0;
            while push(&b, b"later").await.is_err() {
                tries += 1;
                assert!(tries < 10_000, "{durability}: the store never recovered");
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            assert_eq!(items(&b), vec![b"later".to_vec(), b"kept".to_vec()]);
            drop(b);
            let b = LocalBackend::open(Arc::new(dir), durability).unwrap();
            assert_eq!(items(&b), vec![b"later".to_vec(), b"kept".to_vec()]);
        }
    }

    #[tokio::test]
    async fn a_write_refused_during_a_compaction_stays_out_of_the_snapshot() {
        let dir = SimDir::new();
        let b = Arc::new(LocalBackend::open(Arc::new(dir.clone()), Durability::Strict).unwrap());
        push(&b, b"kept").await.unwrap();
        dir.disk(&journal_name(0))
            .fail_next(SimOp::Sync, io::ErrorKind::Other);
        let in_flight = {
            let b = b.clone();
            tokio::spawn(async move { push(&b, b"refused").await })
        };
        // Let the push append its record; its sync is the one that fails.
        tokio::task::yield_now().await;
        b.compact().unwrap();
        assert!(in_flight.await.unwrap().is_err(), "the push was refused");
        assert_eq!(items(&b), vec![b"kept".to_vec()]);
        b.close();
        drop(b);
        let b = LocalBackend::open(Arc::new(dir), Durability::Strict).unwrap();
        assert_eq!(
            items(&b),
            vec![b"kept".to_vec()],
            "a refused write came back"
        );
    }

    #[tokio::test]
    async fn a_journal_ending_in_zeros_or_a_probe_block_still_opens() {
        for tail in [[0u8; 4096], [0xff; 4096]] {
            let dir = SimDir::new();
            let b = LocalBackend::open(Arc::new(dir.clone()), Durability::Strict).unwrap();
            push(&b, b"whole").await.unwrap();
            b.close();
            drop(b);
            dir.disk(&journal_name(0)).file().append(&tail).unwrap();
            let b = LocalBackend::open(Arc::new(dir), Durability::Strict).unwrap();
            assert_eq!(items(&b), vec![b"whole".to_vec()]);
        }
    }

    #[tokio::test]
    async fn a_panic_while_deciding_changes_nothing_and_writes_go_on() {
        let b = LocalBackend::open(Arc::new(SimDir::new()), Durability::Strict).unwrap();
        push(&b, b"one").await.unwrap();
        let result: Result<(), Fault> = b.write(|_| panic!("a bug in an operation")).await;
        assert!(result.is_err());
        push(&b, b"two").await.unwrap();
        assert_eq!(items(&b), vec![b"two".to_vec(), b"one".to_vec()]);
    }
}
