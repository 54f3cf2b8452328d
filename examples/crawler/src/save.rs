//! Where pages go: one file per URL under the output directory, named after
//! its host and a stable hash of the canonical URL (so a page fetched again,
//! after a crawler died before its ack, lands on the same name), beside a
//! metadata record (`.json`). Each file is written under a temporary name,
//! synced and renamed into place, and the directory synced, so that a page is
//! acknowledged to the master only once it is safely on disk and no file ever
//! shows under its final name half written. The directory's sync is shared by
//! the pages of that directory saved at the same time (see [`GroupSync`]).

use crate::group_sync::GroupSync;
use serde::Serialize;
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use url::Url;

/// What is known of a fetched page, saved beside it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PageRecord {
    /// The canonical URL it was fetched under.
    pub url: String,
    /// Where it redirects to (its Location, canonical), for a 3xx.
    pub redirect_to: Option<String>,
    /// The HTTP status; 0 when no answer came.
    pub status: u16,
    /// Why no answer came, or why it was not fetched.
    pub error: Option<String>,
    /// How many requests it took (retries of transient failures included).
    pub attempts: u32,
    /// The crawler that fetched it.
    pub crawler: String,
    /// The Content-Type header, if any.
    pub content_type: Option<String>,
    /// When it was fetched, in milliseconds since the epoch.
    pub fetched_ms: i64,
    /// How many links from a seed.
    pub depth: u32,
    /// The page it was found on.
    pub referrer: Option<String>,
    /// Body bytes saved (after the size cap).
    pub bytes: usize,
    /// Whether the body was cut at the size cap.
    pub truncated: bool,
}

/// The output directory of a crawl.
#[derive(Clone)]
pub struct Output {
    dir: PathBuf,
    /// The shared sync of each directory pages are being saved in.
    dirs: Arc<Mutex<HashMap<PathBuf, Arc<GroupSync>>>>,
}

/// Directories whose shared sync is kept at most: past it, those no save is
/// using are dropped (a crawl of many hosts has a directory for each).
const MAX_DIRS_KEPT: usize = 1024;

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Output").field("dir", &self.dir).finish()
    }
}

/// FNV-1a, 64 bits: a stable name for a URL (the standard library's hasher
/// may change between releases).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Output {
    /// Pages go under `dir` (created when missing).
    pub fn new(dir: impl Into<PathBuf>) -> Output {
        Output {
            dir: dir.into(),
            dirs: Arc::default(),
        }
    }

    /// The file a URL's body is saved in (its record has `.json` added).
    pub fn path_of(&self, url: &Url) -> PathBuf {
        let host = file_safe(&crate::scope::authority(url));
        self.dir
            .join(host)
            .join(format!("{:016x}.page", fnv1a(url.as_str().as_bytes())))
    }

    /// Saves a page and its record, each durably in place before this returns.
    pub fn save(&self, url: &Url, body: &[u8], record: &PageRecord) -> io::Result<PathBuf> {
        let path = self.path_of(url);
        let dir = path.parent().expect("a page's path has a directory");
        fs::create_dir_all(dir)?;
        let json = serde_json::to_vec_pretty(record).map_err(io::Error::other)?;
        // The two files sync at once: a sync mostly waits for the disk, and
        // the page waits for both.
        let record = record_path(&path);
        let (page, meta) = std::thread::scope(|s| {
            let meta = s.spawn(|| write_durably(&record, &json));
            (write_durably(&path, body), meta.join())
        });
        page?;
        meta.map_err(|_| io::Error::other("saving the record panicked"))??;
        self.dir_sync(dir).sync()?;
        Ok(path)
    }

    /// The shared sync of `dir`: an fsync of the directory, opened afresh
    /// each time so no descriptor is held per host.
    fn dir_sync(&self, dir: &Path) -> Arc<GroupSync> {
        let mut dirs = self.dirs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(group) = dirs.get(dir) {
            return group.clone();
        }
        if dirs.len() >= MAX_DIRS_KEPT {
            dirs.retain(|_, group| Arc::strong_count(group) > 1);
        }
        let path = dir.to_owned();
        let group = Arc::new(GroupSync::new(move || File::open(&path)?.sync_all()));
        dirs.insert(dir.to_owned(), group.clone());
        group
    }
}

/// Where a file is written before it is renamed into place.
fn temp_path(path: &Path) -> PathBuf {
    path.with_extension(format!("tmp{}", std::process::id()))
}

/// `name` with every character but letters, digits, `.`, `_` and `-`
/// replaced by `_`: safe as a file name anywhere.
pub fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A page file's metadata record.
pub fn record_path(page: &Path) -> PathBuf {
    page.with_extension("page.json")
}

/// Writes `bytes` to a temporary name beside `path`, syncs it, and renames
/// it into place (the rename is durable once the directory is synced).
fn write_durably(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = temp_path(path);
    let mut file = File::create(&tmp)?;
    let written = file.write_all(bytes).and_then(|()| file.sync_data());
    drop(file);
    if let Err(e) = written.and_then(|()| fs::rename(&tmp, path)) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(url: &str) -> PageRecord {
        PageRecord {
            url: url.into(),
            redirect_to: None,
            status: 200,
            error: None,
            attempts: 1,
            crawler: "c".into(),
            content_type: Some("text/html".into()),
            fetched_ms: 1,
            depth: 0,
            referrer: None,
            bytes: 5,
            truncated: false,
        }
    }

    #[test]
    fn a_page_lands_on_a_stable_name_with_its_record_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let out = Output::new(dir.path());
        let url = Url::parse("http://a.test:8080/x?y=1").unwrap();
        let path = out.save(&url, b"hello", &record(url.as_str())).unwrap();
        assert_eq!(path, out.path_of(&url));
        assert!(path.starts_with(dir.path().join("a.test_8080")));
        assert_eq!(fs::read(&path).unwrap(), b"hello");
        let json: serde_json::Value =
            serde_json::from_slice(&fs::read(record_path(&path)).unwrap()).unwrap();
        assert_eq!(json["url"], url.as_str());
        assert_eq!(json["status"], 200);
        // Saved again (fetched twice after a crash): the same two files.
        out.save(&url, b"again", &record(url.as_str())).unwrap();
        let files = fs::read_dir(path.parent().unwrap()).unwrap().count();
        assert_eq!(files, 2, "no temporary file is left behind");
        assert_eq!(fs::read(&path).unwrap(), b"again");
        let other = Url::parse("http://a.test:8080/z").unwrap();
        assert_ne!(out.path_of(&other), path);
    }

    #[test]
    fn pages_saved_at_once_into_one_directory_are_all_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let out = Output::new(dir.path());
        let saves: Vec<_> = (0..16)
            .map(|i| {
                let out = out.clone();
                std::thread::spawn(move || {
                    let url = Url::parse(&format!("http://a.test/{i}")).unwrap();
                    let body = format!("page {i}");
                    out.save(&url, body.as_bytes(), &record(url.as_str()))
                        .unwrap()
                })
            })
            .collect();
        let mut host_dir = None;
        for (i, save) in saves.into_iter().enumerate() {
            let path = save.join().unwrap();
            assert_eq!(fs::read(&path).unwrap(), format!("page {i}").as_bytes());
            host_dir = path.parent().map(Path::to_owned);
        }
        let files = fs::read_dir(host_dir.unwrap()).unwrap().count();
        assert_eq!(files, 32, "each page and its record, no temporary file");
    }
}
