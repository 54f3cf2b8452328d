//! An append-only journal of records with group commit: the log a local
//! backend appends each operation to after applying it in memory, as Redis's
//! AOF does.
//!
//! Callers append records in the order they applied them (under their own
//! lock) and each gets a [`Receipt`] that resolves once its record is as
//! durable as the journal's [`Durability`] promises: synced to stable storage
//! (strict), or handed to the operating system (relaxed, which syncs at least
//! every second). In strict mode one writer thread takes everything appended
//! since its last write and writes and syncs it at once, so concurrent callers
//! share a sync. In relaxed mode the caller writes its record itself, as Redis
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
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
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

/// Resolves once a record is durable (or failed).
pub type Receipt = oneshot::Receiver<Result<(), JournalError>>;

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
        });
        let writer = Writer {
            shared: shared.clone(),
            retry,
            synced: good as u64,
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

    /// Appends a record; its receipt resolves once it is durable. Refused at
    /// once while the journal is broken or closed.
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
        drop(p);
        self.shared.wake.notify_one();
        Ok(rx)
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
        let (tx, rx) = oneshot::channel();
        let _ = tx.send(Ok(()));
        Ok(rx)
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
    /// The file's length up to the last synced record.
    synced: u64,
    last_sync: Instant,
}

type Receipts = Vec<oneshot::Sender<Result<(), JournalError>>>;
type Barriers = Vec<std::sync::mpsc::Sender<()>>;

impl Writer {
    fn run(mut self) {
        loop {
            let (bytes, receipts, barriers, closing) = self.next_batch();
            if !bytes.is_empty() {
                self.commit(&bytes, receipts);
            }
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

    /// Waits for appended records (or the moment to sync, probe or stop) and
    /// takes them all.
    fn next_batch(&mut self) -> (Vec<u8>, Receipts, Barriers, bool) {
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
                let bytes = std::mem::take(&mut p.bytes);
                let receipts = std::mem::take(&mut p.receipts);
                let barriers = std::mem::take(&mut p.barriers);
                return (bytes, receipts, barriers, p.closing);
            }
            let unsynced = p.dirty || self.unsynced();
            if unsynced && self.last_sync.elapsed() >= EVERY {
                return (Vec::new(), Vec::new(), Vec::new(), false);
            }
            let left = unsynced.then(|| EVERY.saturating_sub(self.last_sync.elapsed()));
            p = wait(&self.shared.wake, p, left);
        }
    }

    /// Whether records were written since the last sync (in relaxed mode, a
    /// write may be under way too: see [`Pending::dirty`]).
    fn unsynced(&self) -> bool {
        self.shared.good_len.load(Ordering::SeqCst) > self.synced
    }

    /// Writes a batch and syncs it (strict mode), then tells its callers.
    fn commit(&mut self, bytes: &[u8], receipts: Receipts) {
        let mut disk = lock(&self.shared.disk);
        let result = disk.file.append(bytes).and_then(|()| disk.file.sync());
        let outcome = match result {
            Ok(()) => {
                self.last_sync = Instant::now();
                disk.good += bytes.len() as u64;
                self.shared.good_len.store(disk.good, Ordering::SeqCst);
                self.synced = disk.good;
                Ok(())
            }
            Err(e) => {
                let why = e.to_string();
                error!(error = %why, "journal write failed; its operations are refused");
                disk.break_off(&self.shared, &why);
                Err(JournalError::Io(why))
            }
        };
        drop(disk);
        for receipt in receipts {
            let _ = receipt.send(outcome.clone());
        }
    }

    /// Relaxed mode's periodic sync. A failure is logged and retried at the next
    /// tick; what it covered was acknowledged already (relaxed durability's
    /// bargain) and stays.
    fn sync_relaxed(&mut self) {
        self.last_sync = Instant::now();
        lock(&self.shared.pending).dirty = false;
        let mut disk = lock(&self.shared.disk);
        match disk.file.sync() {
            Ok(()) => self.synced = disk.good,
            Err(e) => {
                lock(&self.shared.pending).dirty = true;
                error!(error = %e, "journal sync failed; retrying in a second");
            }
        }
    }
}

impl Disk {
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
        journal
            .append(payload)?
            .await
            .unwrap_or(Err(JournalError::Closed))
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
