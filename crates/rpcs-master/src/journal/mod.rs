//! An append-only journal of records with group commit: the log a local
//! backend appends each operation to after applying it in memory, as Redis's
//! AOF does.
//!
//! Callers append records in the order they applied them (under their own
//! lock) and each gets a [`Receipt`] that resolves once its record is as
//! durable as the journal's [`Durability`] promises: synced to stable storage
//! (strict), or handed to the operating system (relaxed, which syncs at least
//! every second). In strict mode a caller that finds the file idle writes and
//! syncs what is pending itself ([`Receipt::commit`]), as Redis does before it
//! answers, with no thread to wake and wait for; while a write is under way,
//! callers hand their records to one writer thread, which takes everything
//! appended since and writes and syncs it at once, so concurrent callers share
//! a sync. In relaxed mode the caller writes its record itself, as Redis
//! writes its AOF before it answers, and the writer thread only syncs.
//!
//! A write or sync that fails fails every record it carried, and the journal
//! cuts the file back to its last good length so that no torn or refused
//! record stays behind a later good one. The journal is then *broken*: appends
//! are refused at once (nothing is applied on the strength of a journal that
//! cannot write) until a probe every second finds the file writable again. The
//! caller, whose memory holds the effects of the failed records, rebuilds it
//! from the file before it writes again: [`Journal::failures`] tells it when
//! that is due, [`Journal::settle`] waits until nothing is in flight, and
//! [`Journal::good_len`] says how much of the file holds acknowledged records.

pub mod dir;
pub mod file;
pub mod record;

use file::JournalFile;
use rpcs_core::metrics::Histogram;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tracing::{error, info};

/// How often relaxed durability syncs, and a broken journal probes its file.
/// What an acknowledged write survives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// An acknowledged write is on stable storage: it survives a process kill and
    /// a power loss. Concurrent writers share one fsync (group commit).
    #[default]
    Strict,
    /// Writes are acknowledged once written to the file and synced to stable
    /// storage at least every second: a process kill loses nothing, a power
    /// loss at most the last second.
    Relaxed,
}

impl std::fmt::Display for Durability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Durability::Strict => "strict",
            Durability::Relaxed => "relaxed",
        })
    }
}

const EVERY: Duration = Duration::from_secs(1);

/// Why a record did not make it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum JournalError {
    /// Writing or syncing failed; the record is not in the journal.
    #[error("the journal cannot write: {0}")]
    Io(String),
    /// The journal failed earlier and has not recovered yet.
    #[error("the journal is not writable since an earlier failure: {0}")]
    Broken(String),
    /// The journal has shut down.
    #[error("the journal is closed")]
    Closed,
    /// No record can carry this payload.
    #[error(transparent)]
    Record(#[from] record::RecordError),
}

/// A record on its way: [`Receipt::commit`] sends it off, [`Receipt::durable`]
/// waits until it is durable (or failed).
pub struct Receipt {
    rx: oneshot::Receiver<Result<(), JournalError>>,
    /// Strict mode's journal, for the caller to commit with.
    journal: Option<Arc<Shared>>,
}

impl Receipt {
    /// Sends the record off, without waiting: in strict mode, writes and syncs
    /// everything pending right here if the file is idle (blocking this thread
    /// for one write and sync, as Redis blocks its own), else wakes the writer
    /// thread, which takes it with the rest after the write under way. Called
    /// outside the caller's lock, right after the append.
    pub fn commit(&self) {
        let Some(shared) = &self.journal else {
            return;
        };
        let mut disk = match shared.disk.try_lock() {
            Ok(disk) if shared.inline.load(Ordering::Relaxed) => disk,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            _ => {
                shared.wake.notify_one();
                return;
            }
        };
        let (bytes, receipts) = {
            let mut p = lock(&shared.pending);
            if p.receipts.len() > 1 {
                // Others are waiting too: the writer commits them all at once,
                // and this thread stays free to serve.
                drop(p);
                shared.wake.notify_one();
                return;
            }
            (
                std::mem::take(&mut p.bytes),
                std::mem::take(&mut p.receipts),
            )
        };
        if !bytes.is_empty() {
            disk.commit(shared, &bytes, receipts);
        }
    }

    /// Waits until the record is durable, or failed.
    pub async fn durable(self) -> Result<(), JournalError> {
        self.rx.await.unwrap_or(Err(JournalError::Closed))
    }

    fn done(result: Result<(), JournalError>) -> Receipt {
        let (tx, rx) = oneshot::channel();
        let _ = tx.send(result);
        Receipt { rx, journal: None }
    }
}

/// How long each strict commit (a batch's write and its sync) took, in this
/// process, over every journal.
pub static COMMIT_TIMES: Histogram = Histogram::new();
/// How long each relaxed mode's periodic sync took.
pub static SYNC_TIMES: Histogram = Histogram::new();

/// An append-only journal; see the module documentation.
pub struct Journal {
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

struct Shared {
    pending: Mutex<Pending>,
    /// The file, locked for each write, sync or cut (taken before `pending`
    /// when both are).
    disk: Mutex<Disk>,
    wake: Condvar,
    durability: Durability,
    /// Failed writes so far; counted once the file is cut back.
    failures: AtomicU64,
    /// The file's length up to the last acknowledged record.
    good_len: AtomicU64,
    /// The file's length up to the last synced record.
    synced: AtomicU64,
    /// Whether a caller that finds the file idle commits itself (tests that
    /// hold syncs turn it off, to cut a call short while it waits).
    inline: AtomicBool,
}

/// The file and how much of it holds acknowledged records.
struct Disk {
    file: Box<dyn JournalFile>,
    good: u64,
}

#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    receipts: Vec<oneshot::Sender<Result<(), JournalError>>>,
    /// Why the journal is broken, while it is.
    broken: Option<String>,
    /// A probe of a broken journal's file is due now.
    probe: bool,
    /// Callers of [`Journal::settle`] waiting for what was appended before them.
    barriers: Vec<std::sync::mpsc::Sender<()>>,
    closing: bool,
    /// Relaxed mode: records were written since the last sync.
    dirty: bool,
}

impl Shared {
    /// Strict mode's pending records and their receipts, taken (with the file
    /// locked, so that they are written in order).
    fn take_pending(&self) -> (Vec<u8>, Receipts) {
        let mut p = lock(&self.pending);
        (
            std::mem::take(&mut p.bytes),
            std::mem::take(&mut p.receipts),
        )
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Journal {
    /// Opens a journal on `file`: reads the whole records it holds (returned,
    /// in order) and cuts off a torn tail, then starts the writer.
    pub fn open(
        file: Box<dyn JournalFile>,
        durability: Durability,
    ) -> io::Result<(Journal, Vec<Vec<u8>>)> {
        Journal::open_retrying(file, durability, EVERY)
    }

    /// [`Journal::open`], with a broken journal looking at its file again every
    /// `retry` (tests use a long one and [`Journal::probe_now`]).
    pub fn open_retrying(
        mut file: Box<dyn JournalFile>,
        durability: Durability,
        retry: Duration,
    ) -> io::Result<(Journal, Vec<Vec<u8>>)> {
        let bytes = file.read_all()?;
        let (records, good) = record::read_all(&bytes);
        let records: Vec<Vec<u8>> = records.into_iter().map(<[u8]>::to_vec).collect();
        if good < bytes.len() {
            info!(
                dropped = bytes.len() - good,
                "journal ends in a torn record; cutting it off"
            );
            file.truncate(good as u64)?;
        }
        let shared = Arc::new(Shared {
            pending: Mutex::default(),
            disk: Mutex::new(Disk {
                file,
                good: good as u64,
            }),
            wake: Condvar::new(),
            durability,
            failures: AtomicU64::new(0),
            good_len: AtomicU64::new(good as u64),
            synced: AtomicU64::new(good as u64),
            inline: AtomicBool::new(true),
        });
        let writer = Writer {
            shared: shared.clone(),
            retry,
            last_sync: Instant::now(),
        };
        let thread = std::thread::Builder::new()
            .name("rpcs-journal".into())
            .spawn(move || writer.run())?;
        let journal = Journal {
            shared,
            writer: Mutex::new(Some(thread)),
        };
        Ok((journal, records))
    }

    /// Appends a record; its receipt, once [committed](Receipt::commit),
    /// resolves when it is durable. Refused at once while the journal is broken
    /// or closed.
    pub fn append(&self, payload: &[u8]) -> Result<Receipt, JournalError> {
        if self.shared.durability == Durability::Relaxed {
            return self.write_now(payload);
        }
        let (tx, rx) = oneshot::channel();
        let mut p = lock(&self.shared.pending);
        if let Some(why) = &p.broken {
            return Err(JournalError::Broken(why.clone()));
        }
        if p.closing {
            return Err(JournalError::Closed);
        }
        record::write(&mut p.bytes, payload)?;
        p.receipts.push(tx);
        Ok(Receipt {
            rx,
            journal: Some(self.shared.clone()),
        })
    }

    /// Relaxed mode's append: the caller writes the record at once (no thread
    /// to wake and wait for); the writer syncs it within the second.
    fn write_now(&self, payload: &[u8]) -> Result<Receipt, JournalError> {
        let mut framed = Vec::with_capacity(payload.len() + record::HEADER);
        record::write(&mut framed, payload)?;
        let mut disk = lock(&self.shared.disk);
        {
            let mut p = lock(&self.shared.pending);
            if let Some(why) = &p.broken {
                return Err(JournalError::Broken(why.clone()));
            }
            if p.closing {
                return Err(JournalError::Closed);
            }
            if !std::mem::replace(&mut p.dirty, true) {
                // The writer may sleep with nothing to sync: it is now due.
                self.shared.wake.notify_one();
            }
        }
        if let Err(e) = disk.file.append(&framed) {
            let why = e.to_string();
            error!(error = %why, "journal write failed; its operation is refused");
            disk.break_off(&self.shared, &why);
            return Err(JournalError::Io(why));
        }
        disk.good += framed.len() as u64;
        self.shared.good_len.store(disk.good, Ordering::SeqCst);
        Ok(Receipt::done(Ok(())))
    }

    /// Makes every strict commit go through the writer thread, so that a
    /// caller always waits for its record with nothing blocked.
    pub fn commit_on_the_writer_only(&self) {
        self.shared.inline.store(false, Ordering::Relaxed);
    }

    /// Whether appends are refused since a failure.
    pub fn is_broken(&self) -> bool {
        lock(&self.shared.pending).broken.is_some()
    }

    /// Makes a broken journal look at its file now rather than at its next retry.
    pub fn probe_now(&self) {
        lock(&self.shared.pending).probe = true;
        self.shared.wake.notify_one();
    }

    /// Waits (blocking the thread, for at most one write and sync) until
    /// everything appended before the call has been written and synced, or has
    /// failed.
    pub fn settle(&self) {
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let mut p = lock(&self.shared.pending);
            if p.broken.is_some() || p.closing {
                // Nothing is in flight: a failure failed all of it.
                return;
            }
            p.barriers.push(tx);
        }
        self.shared.wake.notify_one();
        let _ = rx.recv();
    }

    /// The file's length up to the last acknowledged record: what a rebuild
    /// may read (past it lie records in flight or failed).
    pub fn good_len(&self) -> u64 {
        self.shared.good_len.load(Ordering::SeqCst)
    }

    /// How many writes have failed since the journal opened: a caller that
    /// sees this change must rebuild its state from [`Journal::records`].
    pub fn failures(&self) -> u64 {
        self.shared.failures.load(Ordering::SeqCst)
    }

    /// Stops the writer once everything appended is written and synced.
    pub fn close(&self) {
        lock(&self.shared.pending).closing = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.close();
    }
}

/// The thread that writes (strict mode), syncs and probes.
struct Writer {
    shared: Arc<Shared>,
    /// How long a broken journal waits before it looks at its file again.
    retry: Duration,
    last_sync: Instant,
}

type Receipts = Vec<oneshot::Sender<Result<(), JournalError>>>;
type Barriers = Vec<std::sync::mpsc::Sender<()>>;

impl Writer {
    fn run(mut self) {
        loop {
            let (barriers, closing) = self.next_batch();
            // Pending records are taken with the file locked, so they follow
            // whatever a caller is committing itself, and a barrier waits for
            // that commit too.
            let mut disk = lock(&self.shared.disk);
            let (bytes, receipts) = self.shared.take_pending();
            if !bytes.is_empty() {
                disk.commit(&self.shared, &bytes, receipts);
                self.last_sync = Instant::now();
            }
            drop(disk);
            // A barrier waits for the disk too, in relaxed mode as well.
            if !barriers.is_empty() && self.unsynced() {
                self.sync_relaxed();
            }
            for barrier in barriers {
                let _ = barrier.send(());
            }
            let wanted = self.unsynced() || lock(&self.shared.pending).dirty;
            if wanted && (closing || self.last_sync.elapsed() >= EVERY) {
                self.sync_relaxed();
            }
            if closing {
                break;
            }
        }
    }

    /// Waits for appended records (or the moment to sync, probe or stop); the
    /// barriers to release and whether the journal is closing.
    fn next_batch(&mut self) -> (Barriers, bool) {
        let mut p = lock(&self.shared.pending);
        loop {
            if p.broken.is_some() && !p.closing {
                if !std::mem::take(&mut p.probe) {
                    p = wait(&self.shared.wake, p, Some(self.retry));
                    if !p.probe && !p.closing {
                        p.probe = true;
                    }
                    continue;
                }
                drop(p);
                let writable = lock(&self.shared.disk).probe();
                p = lock(&self.shared.pending);
                if writable {
                    info!("journal writable again");
                    p.broken = None;
                }
                continue;
            }
            if !p.bytes.is_empty() || !p.barriers.is_empty() || p.closing {
                return (std::mem::take(&mut p.barriers), p.closing);
            }
            let unsynced = p.dirty || self.unsynced();
            if unsynced && self.last_sync.elapsed() >= EVERY {
                return (Vec::new(), false);
            }
            let left = unsynced.then(|| EVERY.saturating_sub(self.last_sync.elapsed()));
            p = wait(&self.shared.wake, p, left);
        }
    }

    /// Whether records were written since the last sync (in relaxed mode, a
    /// write may be under way too: see [`Pending::dirty`]).
    fn unsynced(&self) -> bool {
        self.shared.good_len.load(Ordering::SeqCst) > self.shared.synced.load(Ordering::SeqCst)
    }

    /// Relaxed mode's periodic sync. A failure is logged and retried at the next
    /// tick; what it covered was acknowledged already (relaxed durability's
    /// bargain) and stays.
    fn sync_relaxed(&mut self) {
        self.last_sync = Instant::now();
        lock(&self.shared.pending).dirty = false;
        let mut disk = lock(&self.shared.disk);
        let started = Instant::now();
        let synced = disk.file.sync();
        SYNC_TIMES.observe(started.elapsed());
        match synced {
            Ok(()) => self.shared.synced.store(disk.good, Ordering::SeqCst),
            Err(e) => {
                lock(&self.shared.pending).dirty = true;
                error!(error = %e, "journal sync failed; retrying in a second");
            }
        }
    }
}

impl Disk {
    /// Writes a batch and syncs it (strict mode), then tells its callers.
    fn commit(&mut self, shared: &Shared, bytes: &[u8], receipts: Receipts) {
        let started = Instant::now();
        let result = self.file.append(bytes).and_then(|()| self.file.sync());
        COMMIT_TIMES.observe(started.elapsed());
        let outcome = match result {
            Ok(()) => {
                self.good += bytes.len() as u64;
                shared.good_len.store(self.good, Ordering::SeqCst);
                shared.synced.store(self.good, Ordering::SeqCst);
                Ok(())
            }
            Err(e) => {
                let why = e.to_string();
                error!(error = %why, "journal write failed; its operations are refused");
                self.break_off(shared, &why);
                Err(JournalError::Io(why))
            }
        };
        for receipt in receipts {
            let _ = receipt.send(outcome.clone());
        }
    }

    /// After a failed write: cut the file back to its last acknowledged length,
    /// refuse appends until a probe succeeds, and fail whatever was appended
    /// meanwhile.
    fn break_off(&mut self, shared: &Shared, why: &str) {
        if let Err(e) = self.file.truncate(self.good) {
            // The failed records may stay in the file past the good length;
            // rebuilds read only up to it, and the probe cuts them off.
            error!(error = %e, "cannot cut the journal back after a failed write");
        }
        let mut p = lock(&shared.pending);
        p.broken = Some(why.to_owned());
        // Counted only now, with the file cut back and appends refused, so a
        // rebuild that sees the count reads a file without the failed records.
        shared.failures.fetch_add(1, Ordering::SeqCst);
        p.bytes.clear();
        for receipt in p.receipts.drain(..) {
            let _ = receipt.send(Err(JournalError::Io(why.to_owned())));
        }
        for barrier in p.barriers.drain(..) {
            let _ = barrier.send(());
        }
        drop(p);
        // The writer probes the file from now on (the failure may have been
        // met by a caller committing itself, while the writer slept).
        shared.wake.notify_one();
    }

    /// Whether the file takes writes again: a block of padding must write and
    /// sync (a full disk refuses it; cutting the file back alone would not
    /// show that), and is then cut off again. The padding reads as a torn
    /// record (its length is over the limit), should a crash leave it behind.
    fn probe(&mut self) -> bool {
        let padding = [0xffu8; 4096];
        let good = self.good;
        let result = self
            .file
            .append(&padding)
            .and_then(|()| self.file.sync())
            .and_then(|()| self.file.truncate(good));
        if result.is_err() {
            let _ = self.file.truncate(good);
        }
        result.is_ok()
    }
}

/// Waits on the journal's condition, at most `timeout` when given.
fn wait<'a>(
    wake: &Condvar,
    guard: MutexGuard<'a, Pending>,
    timeout: Option<Duration>,
) -> MutexGuard<'a, Pending> {
    match timeout {
        Some(t) => {
            wake.wait_timeout(guard, t)
                .unwrap_or_else(|e| e.into_inner())
                .0
        }
        None => wake.wait(guard).unwrap_or_else(|e| e.into_inner()),
    }
}

#[cfg(test)]
mod tests {
    use super::file::{SimDisk, SimOp};
    use super::*;

    async fn append(journal: &Journal, payload: &[u8]) -> Result<(), JournalError> {
        let receipt = journal.append(payload)?;
        receipt.commit();
        receipt.durable().await
    }

    fn open(disk: &SimDisk, durability: Durability) -> (Journal, Vec<Vec<u8>>) {
        Journal::open(Box::new(disk.file()), durability).unwrap()
    }

    #[tokio::test]
    async fn strict_records_survive_a_power_loss_once_acknowledged() {
        let mut rng = fastrand::Rng::with_seed(1);
        for round in 0..50 {
            let disk = SimDisk::new();
            let (journal, _) = open(&disk, Durability::Strict);
            let n = rng.usize(1..20);
            for i in 0..n {
                append(&journal, format!("record {i}").as_bytes())
                    .await
                    .unwrap();
            }
            // Appended but not waited for: may or may not survive.
            let _maybe = journal.append(b"in flight").unwrap();
            disk.power_loss(&mut rng);
            drop(journal);
            let (_, records) = open(&disk, Durability::Strict);
            assert!(
                records.len() >= n,
                "round {round}: {} of {n} survived",
                records.len()
            );
            for (i, r) in records.iter().take(n).enumerate() {
                assert_eq!(r, format!("record {i}").as_bytes());
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_strict_records_survive_in_order_whoever_commits_them() {
        // Callers that find the file idle commit themselves, the others hand
        // over to the writer: every acknowledged record survives, each caller's
        // in its order.
        let mut rng = fastrand::Rng::with_seed(3);
        for round in 0..10 {
            let disk = SimDisk::new();
            let (journal, _) = open(&disk, Durability::Strict);
            let journal = Arc::new(journal);
            let tasks: Vec<_> = (0..8)
                .map(|t| {
                    let journal = journal.clone();
                    tokio::spawn(async move {
                        for i in 0..40 {
                            append(&journal, format!("{t} {i}").as_bytes())
                                .await
                                .unwrap();
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
            disk.power_loss(&mut rng);
            drop(journal);
            let (_, records) = open(&disk, Durability::Strict);
            assert_eq!(records.len(), 8 * 40, "round {round}");
            let mut next = [0; 8];
            for r in &records {
                let text = String::from_utf8(r.clone()).unwrap();
                let (t, i) = text.split_once(' ').unwrap();
                let t: usize = t.parse().unwrap();
                assert_eq!(i.parse::<usize>().unwrap(), next[t], "round {round}: order");
                next[t] += 1;
            }
        }
    }

    #[tokio::test]
    async fn without_syncs_a_power_loss_loses_acknowledged_records() {
        // The negative control: the same check must fail when syncs do nothing.
        let mut rng = fastrand::Rng::with_seed(2);
        let mut lost = 0;
        for _ in 0..50 {
            let disk = SimDisk::new();
            disk.ignore_syncs();
            let (journal, _) = open(&disk, Durability::Strict);
            for i in 0..10 {
                append(&journal, format!("r{i}").as_bytes()).await.unwrap();
            }
            disk.power_loss(&mut rng);
            drop(journal);
            let (_, records) = open(&disk, Durability::Strict);
            if records.len() < 10 {
                lost += 1;
            }
        }
        assert!(lost > 10, "only {lost} of 50 rounds lost anything");
    }

    #[tokio::test]
    async fn a_failed_write_refuses_its_records_and_leaves_no_trace() {
        let disk = SimDisk::new();
        let hour = Duration::from_secs(3600);
        let (journal, _) =
            Journal::open_retrying(Box::new(disk.file()), Durability::Strict, hour).unwrap();
        append(&journal, b"before").await.unwrap();
        disk.fail_next(SimOp::Append, io::ErrorKind::StorageFull);
        assert!(matches!(
            append(&journal, b"refused").await,
            Err(JournalError::Io(_))
        ));
        assert_eq!(journal.failures(), 1);
        // Refused at once, without being written, until a probe succeeds.
        assert!(matches!(journal.append(b"x"), Err(JournalError::Broken(_))));
        // The disk is still full: the probe fails and the journal stays broken.
        disk.fail_next(SimOp::Append, io::ErrorKind::StorageFull);
        journal.probe_now();
        while disk.faults_left() > 0 {
            std::thread::yield_now();
        }
        assert!(journal.is_broken());
        journal.probe_now();
        while journal.is_broken() {
            std::thread::yield_now();
        }
        append(&journal, b"after").await.unwrap();
        drop(journal);
        let (_, records) = open(&disk, Durability::Strict);
        assert_eq!(records, vec![b"before".to_vec(), b"after".to_vec()]);
    }

    #[tokio::test]
    async fn a_failed_sync_in_strict_mode_refuses_what_it_covered() {
        let disk = SimDisk::new();
        let (journal, _) = open(&disk, Durability::Strict);
        append(&journal, b"kept").await.unwrap();
        disk.fail_next(SimOp::Sync, io::ErrorKind::Other);
        assert!(append(&journal, b"unsure").await.is_err());
        drop(journal);
        let (_, records) = open(&disk, Durability::Strict);
        assert_eq!(records, vec![b"kept".to_vec()]);
    }

    #[tokio::test]
    async fn relaxed_records_are_acknowledged_before_the_sync() {
        let disk = SimDisk::new();
        let (journal, _) = open(&disk, Durability::Relaxed);
        append(&journal, b"fast").await.unwrap();
        // Written to the file (a process crash keeps it) but not yet synced: a
        // power loss now could lose it.
        assert!(disk.process_crash().ends_with(b"fast"));
        assert!(disk.unsynced_len() > 0, "acknowledged before the sync");
        journal.close();
        let (_, records) = open(&disk, Durability::Relaxed);
        assert_eq!(records, vec![b"fast".to_vec()]);
    }

    #[tokio::test]
    async fn a_torn_tail_is_cut_off_on_open() {
        let disk = SimDisk::new();
        let (journal, _) = open(&disk, Durability::Strict);
        append(&journal, b"whole").await.unwrap();
        drop(journal);
        disk.file().append(&[9, 0, 0, 0, 1, 2]).unwrap();
        let (journal, records) = open(&disk, Durability::Strict);
        assert_eq!(records, vec![b"whole".to_vec()]);
        append(&journal, b"next").await.unwrap();
        drop(journal);
        let (_, records) = open(&disk, Durability::Strict);
        assert_eq!(records, vec![b"whole".to_vec(), b"next".to_vec()]);
    }
}
