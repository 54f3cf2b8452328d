//! The file under a journal: a real one on disk, or a simulated one whose
//! unsynced writes a test can drop or tear, as a power loss would.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// What a journal needs of its file.
pub trait JournalFile: Send + 'static {
    /// The whole file.
    fn read_all(&mut self) -> io::Result<Vec<u8>>;
    /// Appends bytes at the end.
    fn append(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Makes everything appended so far durable.
    fn sync(&mut self) -> io::Result<()>;
    /// Cuts the file to `len` bytes (dropping a write that failed half way), durably.
    fn truncate(&mut self, len: u64) -> io::Result<()>;
}

/// A journal file on disk.
pub struct DiskFile {
    file: File,
    path: PathBuf,
}

impl DiskFile {
    /// Opens (or creates, durably: the directory is synced too) the file at `path`.
    pub fn open(path: &Path) -> io::Result<DiskFile> {
        let existed = path.exists();
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)?;
        if !existed {
            file.sync_all()?;
            if let Some(dir) = path.parent() {
                File::open(dir)?.sync_all()?;
            }
        }
        Ok(DiskFile {
            file,
            path: path.to_owned(),
        })
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl JournalFile for DiskFile {
    fn read_all(&mut self) -> io::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.file.seek(SeekFrom::Start(0))?;
        self.file.read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)
    }

    fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.file.set_len(len)?;
        self.file.sync_all()
    }
}

/// A simulated disk holding one file, shared by the handles made from it: what
/// was synced survives a [`SimDisk::power_loss`]; of what was not, a random
/// prefix survives, possibly torn.
#[derive(Clone, Default)]
pub struct SimDisk(Arc<Mutex<SimState>>, Arc<std::sync::Condvar>);

#[derive(Default)]
struct SimState {
    synced: Vec<u8>,
    unsynced: Vec<u8>,
    /// Errors the next operations return, in order (a full disk, a failing one).
    faults: Vec<(SimOp, io::ErrorKind)>,
    /// Syncs are skipped (a negative control: the checker must then see losses).
    no_sync: bool,
    /// Syncs wait until this is cleared (a test holding a write in flight).
    hold_syncs: bool,
}

/// An operation a fault can be injected into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimOp {
    /// An append.
    Append,
    /// A sync.
    Sync,
}

impl SimDisk {
    /// An empty disk.
    pub fn new() -> SimDisk {
        SimDisk::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, SimState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A handle on the file.
    pub fn file(&self) -> SimFile {
        SimFile(self.clone())
    }

    /// Makes the next `op` fail with `kind` (queued after earlier ones).
    pub fn fail_next(&self, op: SimOp, kind: io::ErrorKind) {
        self.state().faults.push((op, kind));
    }

    /// Makes syncs wait (`true`) until released (`false`): a write is then
    /// in flight for as long as a test needs.
    pub fn hold_syncs(&self, hold: bool) {
        self.state().hold_syncs = hold;
        self.1.notify_all();
    }

    /// How many bytes were written but not synced.
    pub fn unsynced_len(&self) -> usize {
        self.state().unsynced.len()
    }

    /// How many injected faults have not struck yet.
    pub fn faults_left(&self) -> usize {
        self.state().faults.len()
    }

    /// Turns syncs into no-ops that claim success.
    pub fn ignore_syncs(&self) {
        self.state().no_sync = true;
    }

    /// Everything written, synced or not (what a process crash leaves: the
    /// operating system still has it).
    pub fn process_crash(&self) -> Vec<u8> {
        let s = self.state();
        [s.synced.as_slice(), &s.unsynced].concat()
    }

    /// What survives a power loss: the synced bytes, then a prefix of the
    /// unsynced ones chosen by `rng`, whose last few bytes may be garbage (a
    /// torn sector). The disk is left holding exactly that.
    pub fn power_loss(&self, rng: &mut fastrand::Rng) -> Vec<u8> {
        let mut s = self.state();
        let kept = rng.usize(..=s.unsynced.len());
        let mut survivor = s.synced.clone();
        survivor.extend_from_slice(&s.unsynced[..kept]);
        if kept > 0 && rng.bool() {
            let torn = rng.usize(1..=kept.min(16));
            let len = survivor.len();
            for b in &mut survivor[len - torn..] {
                *b = rng.u8(..);
            }
        }
        s.synced = survivor.clone();
        s.unsynced.clear();
        survivor
    }

    fn fault(&self, op: SimOp) -> io::Result<()> {
        let mut s = self.state();
        if let Some(i) = s.faults.iter().position(|(o, _)| *o == op) {
            let (_, kind) = s.faults.remove(i);
            return Err(io::Error::new(kind, format!("injected {op:?} failure")));
        }
        Ok(())
    }
}

/// A handle on a [`SimDisk`]'s file.
pub struct SimFile(SimDisk);

impl JournalFile for SimFile {
    fn read_all(&mut self) -> io::Result<Vec<u8>> {
        Ok(self.0.process_crash())
    }

    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0.fault(SimOp::Append)?;
        self.0.state().unsynced.extend_from_slice(bytes);
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        self.0.fault(SimOp::Sync)?;
        let mut s = self.0.state();
        while s.hold_syncs {
            s = self.0 .1.wait(s).unwrap_or_else(|p| p.into_inner());
        }
        if !s.no_sync {
            let unsynced = std::mem::take(&mut s.unsynced);
            s.synced.extend_from_slice(&unsynced);
        }
        Ok(())
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        let mut s = self.0.state();
        let len = len as usize;
        if len <= s.synced.len() {
            s.synced.truncate(len);
            s.unsynced.clear();
        } else {
            let keep = len - s.synced.len();
            s.unsynced.truncate(keep);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_power_loss_keeps_what_was_synced() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut lengths = std::collections::BTreeSet::new();
        for _ in 0..100 {
            let disk = SimDisk::new();
            let mut f = disk.file();
            f.append(b"durable").unwrap();
            f.sync().unwrap();
            f.append(b"maybe").unwrap();
            let survivor = disk.power_loss(&mut rng);
            assert!(survivor.starts_with(b"durable"));
            assert!(survivor.len() <= 12);
            lengths.insert(survivor.len());
        }
        assert!(
            lengths.len() > 3,
            "the unsynced part survives to varying lengths"
        );
    }

    #[test]
    fn injected_faults_hit_the_named_operation_once() {
        let disk = SimDisk::new();
        let mut f = disk.file();
        disk.fail_next(SimOp::Sync, io::ErrorKind::Other);
        f.append(b"x").unwrap();
        assert!(f.sync().is_err());
        assert!(f.sync().is_ok());
        disk.fail_next(SimOp::Append, io::ErrorKind::StorageFull);
        assert_eq!(
            f.append(b"y").unwrap_err().kind(),
            io::ErrorKind::StorageFull
        );
        assert_eq!(f.read_all().unwrap(), b"x");
    }

    #[test]
    fn a_disk_file_reads_back_what_was_appended_and_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal");
        let mut f = DiskFile::open(&path).unwrap();
        f.append(b"hello ").unwrap();
        f.append(b"world").unwrap();
        f.sync().unwrap();
        f.truncate(5).unwrap();
        f.append(b"!").unwrap();
        assert_eq!(
            DiskFile::open(&path).unwrap().read_all().unwrap(),
            b"hello!"
        );
    }
}
