//! The embedded store: one redb database file, written by one thread that
//! commits many writers' operations together (group commit).

use super::{
    Completion, Durability, Entries, ReadTxn, Store, StoreError, Table, WriteOp, WriteTxn,
};
use redb::{Database, ReadableTable, TableDefinition};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tracing::{error, info};

type Def = TableDefinition<'static, &'static [u8], &'static [u8]>;
type RawTable<'t> = redb::Table<'t, &'static [u8], &'static [u8]>;

const DEFS: [Def; 7] = [
    TableDefinition::new("stacks"),
    TableDefinition::new("stack_items"),
    TableDefinition::new("leases"),
    TableDefinition::new("storages"),
    TableDefinition::new("params"),
    TableDefinition::new("clients"),
    TableDefinition::new("messages"),
];

fn def(table: Table) -> Def {
    DEFS[table as usize]
}

/// The most operations one transaction carries.
const MAX_BATCH: usize = 4096;

/// How often relaxed durability flushes to stable storage.
const RELAXED_FLUSH: Duration = Duration::from_secs(1);

fn db_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Db(e.to_string())
}

enum Msg {
    Op(WriteOp),
    Sync(mpsc::SyncSender<Result<(), String>>),
}

/// A crash-safe store in one file under a data directory.
pub struct EmbeddedStore {
    db: Arc<Database>,
    sender: Mutex<Option<Sender<Msg>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    path: PathBuf,
}

impl EmbeddedStore {
    /// Opens (or creates) the database `master.redb` in `dir`.
    ///
    /// Fails if another process has it open.
    pub fn open(dir: &Path, durability: Durability) -> Result<EmbeddedStore, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Db(format!("cannot create {}: {e}", dir.display())))?;
        let path = dir.join("master.redb");
        let db = Database::create(&path)
            .map_err(|e| StoreError::Db(format!("cannot open {}: {e}", path.display())))?;
        let txn = db.begin_write().map_err(db_err)?;
        for table in Table::ALL {
            txn.open_table(def(table)).map_err(db_err)?;
        }
        txn.commit().map_err(db_err)?;
        let db = Arc::new(db);
        let (sender, receiver) = mpsc::channel();
        let writer_db = db.clone();
        let writer = std::thread::Builder::new()
            .name("rpcs-store-writer".into())
            .spawn(move || Writer::new(writer_db, durability).run(receiver))
            .map_err(|e| StoreError::Db(format!("cannot start the writer: {e}")))?;
        info!(path = %path.display(), %durability, "embedded store open");
        Ok(EmbeddedStore {
            db,
            sender: Mutex::new(Some(sender)),
            writer: Mutex::new(Some(writer)),
            path,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn send(&self, msg: Msg) -> Result<(), Msg> {
        let sender = self.sender.lock().unwrap_or_else(|p| p.into_inner());
        match sender.as_ref() {
            Some(s) => s.send(msg).map_err(|e| e.0),
            None => Err(msg),
        }
    }

    /// Stops the writer after it has committed and flushed everything queued.
    pub fn close(&self) {
        self.sender.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(writer) = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = writer.join();
        }
    }
}

impl Drop for EmbeddedStore {
    fn drop(&mut self) {
        self.close();
    }
}

struct Read(redb::ReadTransaction);

impl ReadTxn for Read {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let t = self.0.open_table(def(table)).map_err(db_err)?;
        let value = t.get(key).map_err(db_err)?;
        Ok(value.map(|v| v.value().to_vec()))
    }

    fn scan(&self, table: Table, prefix: &[u8], limit: usize) -> Result<Entries, StoreError> {
        let t = self.0.open_table(def(table)).map_err(db_err)?;
        collect_prefix(&t, prefix, limit)
    }
}

fn collect_prefix(
    t: &impl ReadableTable<&'static [u8], &'static [u8]>,
    prefix: &[u8],
    limit: usize,
) -> Result<Entries, StoreError> {
    let mut out = Vec::new();
    for entry in t.range::<&[u8]>(prefix..).map_err(db_err)? {
        let (k, v) = entry.map_err(db_err)?;
        if !k.value().starts_with(prefix) || out.len() >= limit {
            break;
        }
        out.push((k.value().to_vec(), v.value().to_vec()));
    }
    Ok(out)
}

/// The open tables of one write transaction.
struct Write<'t> {
    tables: Vec<RawTable<'t>>,
}

impl ReadTxn for Write<'_> {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let value = self.tables[table as usize].get(key).map_err(db_err)?;
        Ok(value.map(|v| v.value().to_vec()))
    }

    fn scan(&self, table: Table, prefix: &[u8], limit: usize) -> Result<Entries, StoreError> {
        collect_prefix(&self.tables[table as usize], prefix, limit)
    }
}

impl WriteTxn for Write<'_> {
    fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.tables[table as usize]
            .insert(key, value)
            .map_err(db_err)?;
        Ok(())
    }

    fn delete(&mut self, table: Table, key: &[u8]) -> Result<bool, StoreError> {
        let old = self.tables[table as usize].remove(key).map_err(db_err)?;
        Ok(old.is_some())
    }
}

/// A transaction that could not be opened: every call fails.
struct Broken;

impl ReadTxn for Broken {
    fn get(&self, _: Table, _: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Err(StoreError::Db("transaction unavailable".into()))
    }
    fn scan(&self, _: Table, _: &[u8], _: usize) -> Result<Entries, StoreError> {
        Err(StoreError::Db("transaction unavailable".into()))
    }
}

impl WriteTxn for Broken {
    fn put(&mut self, _: Table, _: &[u8], _: &[u8]) -> Result<(), StoreError> {
        Err(StoreError::Db("transaction unavailable".into()))
    }
    fn delete(&mut self, _: Table, _: &[u8]) -> Result<bool, StoreError> {
        Err(StoreError::Db("transaction unavailable".into()))
    }
}

struct Writer {
    db: Arc<Database>,
    durability: Durability,
    /// Relaxed mode: commits since the last flush to stable storage.
    dirty: bool,
    last_flush: Instant,
}

impl Writer {
    fn new(db: Arc<Database>, durability: Durability) -> Writer {
        Writer {
            db,
            durability,
            dirty: false,
            last_flush: Instant::now(),
        }
    }

    fn run(mut self, receiver: Receiver<Msg>) {
        loop {
            let first = if self.dirty {
                let wait = RELAXED_FLUSH.saturating_sub(self.last_flush.elapsed());
                match receiver.recv_timeout(wait) {
                    Ok(msg) => msg,
                    Err(RecvTimeoutError::Timeout) => {
                        self.flush();
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match receiver.recv() {
                    Ok(msg) => msg,
                    Err(_) => break,
                }
            };
            let mut ops = Vec::new();
            let mut syncs = Vec::new();
            let mut next = Some(first);
            while let Some(msg) = next {
                match msg {
                    Msg::Op(op) => ops.push(op),
                    Msg::Sync(reply) => syncs.push(reply),
                }
                next = if ops.len() < MAX_BATCH {
                    receiver.try_recv().ok()
                } else {
                    None
                };
            }
            if !ops.is_empty() {
                self.commit_batch(ops);
            }
            if !syncs.is_empty() {
                let result = self.flush_now().map_err(|e| e.to_string());
                for reply in syncs {
                    let _ = reply.send(result.clone());
                }
            }
            if self.dirty && self.last_flush.elapsed() >= RELAXED_FLUSH {
                self.flush();
            }
        }
        if self.dirty {
            self.flush();
        }
    }

    fn commit_batch(&mut self, ops: Vec<WriteOp>) {
        let txn = match self.db.begin_write() {
            Ok(txn) => txn,
            Err(e) => return fail_all(ops, &db_err(e)),
        };
        let mut txn = txn;
        txn.set_durability(match self.durability {
            Durability::Strict => redb::Durability::Immediate,
            Durability::Relaxed => redb::Durability::None,
        });
        let completions = match open_all(&txn) {
            Ok(tables) => {
                let mut write = Write { tables };
                let done: Vec<Completion> = ops.into_iter().map(|op| op(&mut write)).collect();
                drop(write);
                done
            }
            Err(e) => return fail_all(ops, &e),
        };
        let result = txn.commit().map_err(db_err);
        if let Err(e) = &result {
            error!(error = %e, "commit failed");
        }
        if result.is_ok() && self.durability == Durability::Relaxed {
            self.dirty = true;
        }
        for done in completions {
            done(result.as_ref().map(|_| ()));
        }
    }

    /// Makes every earlier commit durable with one empty fsynced commit.
    fn flush_now(&mut self) -> Result<(), StoreError> {
        if self.durability == Durability::Strict || !self.dirty {
            return Ok(());
        }
        let mut txn = self.db.begin_write().map_err(db_err)?;
        txn.set_durability(redb::Durability::Immediate);
        txn.commit().map_err(db_err)?;
        self.dirty = false;
        self.last_flush = Instant::now();
        Ok(())
    }

    fn flush(&mut self) {
        if let Err(e) = self.flush_now() {
            error!(error = %e, "flush to stable storage failed");
        }
    }
}

fn open_all(txn: &redb::WriteTransaction) -> Result<Vec<RawTable<'_>>, StoreError> {
    Table::ALL
        .iter()
        .map(|t| txn.open_table(def(*t)).map_err(db_err))
        .collect()
}

fn fail_all(ops: Vec<WriteOp>, e: &StoreError) {
    error!(error = %e, "cannot open a write transaction");
    for op in ops {
        let done = op(&mut Broken);
        done(Err(e));
    }
}

impl Store for EmbeddedStore {
    fn read(&self, f: &mut dyn FnMut(&dyn ReadTxn)) -> Result<(), StoreError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        f(&Read(txn));
        Ok(())
    }

    fn submit(&self, op: WriteOp) {
        if let Err(Msg::Op(op)) = self.send(Msg::Op(op)) {
            let done = op(&mut Broken);
            done(Err(&StoreError::Closed));
        }
    }

    fn sync(&self) -> Result<(), StoreError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.send(Msg::Sync(tx)).map_err(|_| StoreError::Closed)?;
        rx.recv()
            .map_err(|_| StoreError::Closed)?
            .map_err(StoreError::Db)
    }
}
