//! The directory a local backend keeps its files in: journals it appends to
//! and snapshots it writes whole. A real one, or a simulated one in memory
//! whose every file can lose or tear its unsynced writes at once, as a power
//! loss would.

use super::file::{DiskFile, JournalFile, SimDisk};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// What a local backend needs of its directory.
pub trait Dir: Send + Sync + 'static {
    /// Opens the journal file `name` for appending, creating it durably if missing.
    fn open(&self, name: &str) -> io::Result<Box<dyn JournalFile>>;
    /// The whole file `name`, if it exists.
    fn read(&self, name: &str) -> io::Result<Option<Vec<u8>>>;
    /// Makes `name` hold `bytes`, all or nothing and durably: written under
    /// another name, synced, renamed into place, the directory synced.
    fn write_whole(&self, name: &str, bytes: &[u8]) -> io::Result<()>;
    /// Removes `name` (no error if it is gone already).
    fn remove(&self, name: &str) -> io::Result<()>;
    /// Every file name, sorted (but the lock's).
    fn list(&self) -> io::Result<Vec<String>>;
}

/// The file whose lock marks a directory as in use.
pub const LOCK: &str = "LOCK";

/// A real directory, locked for as long as it is open: two backends writing
/// one journal would corrupt it.
pub struct DiskDir {
    path: PathBuf,
    _lock: File,
}

impl DiskDir {
    /// The directory at `path`, created if missing; fails if another process
    /// (or another backend in this one) has it open.
    pub fn open(path: impl Into<PathBuf>) -> io::Result<DiskDir> {
        let path = path.into();
        fs::create_dir_all(&path)?;
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path.join(LOCK))?;
        lock.try_lock().map_err(|e| match e {
            fs::TryLockError::WouldBlock => io::Error::new(
                io::ErrorKind::WouldBlock,
                format!("{} is in use by another master", path.display()),
            ),
            fs::TryLockError::Error(e) => e,
        })?;
        Ok(DiskDir { path, _lock: lock })
    }

    fn sync_dir(&self) -> io::Result<()> {
        File::open(&self.path)?.sync_all()
    }
}

impl Dir for DiskDir {
    fn open(&self, name: &str) -> io::Result<Box<dyn JournalFile>> {
        Ok(Box::new(DiskFile::open(&self.path.join(name))?))
    }

    fn read(&self, name: &str) -> io::Result<Option<Vec<u8>>> {
        match fs::read(self.path.join(name)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn write_whole(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        let temp = self.path.join(format!("{name}.tmp"));
        let result = (|| {
            let mut file = File::create(&temp)?;
            io::Write::write_all(&mut file, bytes)?;
            file.sync_all()?;
            fs::rename(&temp, self.path.join(name))?;
            self.sync_dir()
        })();
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        result
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        match fs::remove_file(self.path.join(name)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => self.sync_dir(),
        }
    }

    fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.path)? {
            if let Some(name) = entry?.file_name().to_str().filter(|n| *n != LOCK) {
                names.push(name.to_owned());
            }
        }
        names.sort();
        Ok(names)
    }
}

/// A simulated directory of [`SimDisk`] files. Whole writes, renames and
/// removals are durable at once (a real directory is synced after each).
#[derive(Clone, Default)]
pub struct SimDir(Arc<Mutex<BTreeMap<String, SimDisk>>>);

impl SimDir {
    /// An empty directory.
    pub fn new() -> SimDir {
        SimDir::default()
    }

    fn files(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, SimDisk>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The simulated file `name`, created empty if missing (to inject faults).
    pub fn disk(&self, name: &str) -> SimDisk {
        self.files().entry(name.to_owned()).or_default().clone()
    }

    /// Every file loses or tears its unsynced writes, as in a power loss.
    pub fn power_loss(&self, rng: &mut fastrand::Rng) {
        for disk in self.files().values() {
            disk.power_loss(rng);
        }
    }
}

impl Dir for SimDir {
    fn open(&self, name: &str) -> io::Result<Box<dyn JournalFile>> {
        Ok(Box::new(self.disk(name).file()))
    }

    fn read(&self, name: &str) -> io::Result<Option<Vec<u8>>> {
        Ok(self.files().get(name).map(SimDisk::process_crash))
    }

    fn write_whole(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        let disk = SimDisk::new();
        let mut file = disk.file();
        file.append(bytes)?;
        file.sync()?;
        self.files().insert(name.to_owned(), disk);
        Ok(())
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        self.files().remove(name);
        Ok(())
    }

    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.files().keys().cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exercise(dir: &dyn Dir) {
        assert_eq!(dir.read("snap").unwrap(), None);
        dir.write_whole("snap", b"one").unwrap();
        dir.write_whole("snap", b"two").unwrap();
        assert_eq!(dir.read("snap").unwrap().as_deref(), Some(&b"two"[..]));
        let mut j = dir.open("journal").unwrap();
        j.append(b"abc").unwrap();
        j.sync().unwrap();
        assert_eq!(dir.read("journal").unwrap().as_deref(), Some(&b"abc"[..]));
        assert_eq!(dir.list().unwrap(), ["journal", "snap"]);
        dir.remove("snap").unwrap();
        dir.remove("snap").unwrap();
        assert_eq!(dir.list().unwrap(), ["journal"]);
    }

    #[test]
    fn a_real_directory_keeps_whole_files_and_journals() {
        let temp = tempfile::tempdir().unwrap();
        exercise(&DiskDir::open(temp.path().join("data")).unwrap());
    }

    #[test]
    fn a_simulated_directory_behaves_the_same() {
        exercise(&SimDir::new());
    }
}
