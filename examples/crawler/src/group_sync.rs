//! Group commit for a directory: a caller that needs its renames there to be
//! durable waits for one sync that started after its call, and every caller
//! waiting at the same time shares that one sync. Each page saved used to
//! sync its host's directory on its own: with sixteen pages in flight, most
//! of those syncs repeated one another, and their journal commits were where
//! a crawler's time went.

use std::io;
use std::sync::{Condvar, Mutex, MutexGuard};

type SyncFn = Box<dyn Fn() -> io::Result<()> + Send + Sync>;

/// Shares syncs among the callers waiting at once.
pub struct GroupSync {
    sync: SyncFn,
    state: Mutex<Tickets>,
    turn: Condvar,
}

/// Callers are numbered as they arrive; a sync covers every number issued
/// before it started.
#[derive(Debug, Default)]
struct Tickets {
    issued: u64,
    /// Every ticket up to this one is durable.
    synced: u64,
    /// A sync that failed, and the last ticket it was to cover: each of those
    /// callers is told, since a later sync that succeeds says nothing of
    /// writes the failed one may have lost.
    failed: Option<(u64, io::ErrorKind)>,
    running: bool,
    waiting: usize,
}

impl GroupSync {
    /// Syncs with `sync`, which must make durable everything written before
    /// it was called.
    pub fn new(sync: impl Fn() -> io::Result<()> + Send + Sync + 'static) -> GroupSync {
        GroupSync {
            sync: Box::new(sync),
            state: Mutex::default(),
            turn: Condvar::new(),
        }
    }

    /// Returns once everything the caller wrote before calling is durable: a
    /// sync that started after this call has succeeded.
    pub fn sync(&self) -> io::Result<()> {
        let mut t = self.lock();
        t.issued += 1;
        let ticket = t.issued;
        loop {
            if t.synced >= ticket {
                return Ok(());
            }
            if let Some((upto, kind)) = t.failed {
                if ticket <= upto {
                    return Err(io::Error::new(kind, "syncing the output failed"));
                }
            }
            if t.running {
                t.waiting += 1;
                t = self.turn.wait(t).unwrap_or_else(|p| p.into_inner());
                t.waiting -= 1;
                continue;
            }
            t.running = true;
            let covers = t.issued;
            drop(t);
            let result = (self.sync)();
            t = self.lock();
            t.running = false;
            match &result {
                Ok(()) => t.synced = t.synced.max(covers),
                Err(e) => t.failed = Some((covers, e.kind())),
            }
            self.turn.notify_all();
            result?;
        }
    }

    /// How many callers are waiting for a sync under way (for tests).
    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.lock().waiting
    }

    fn lock(&self) -> MutexGuard<'_, Tickets> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{mpsc, Arc};

    /// A sync that counts its calls; the first waits to be let go, the
    /// others answer what `later` says for their number (1, 2, ...).
    fn gated(
        later: fn(usize) -> io::Result<()>,
    ) -> (Arc<GroupSync>, Arc<AtomicUsize>, mpsc::Sender<()>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let (go, gate) = mpsc::channel::<()>();
        let gate = Mutex::new(gate);
        let counted = calls.clone();
        let group = GroupSync::new(move || match counted.fetch_add(1, Ordering::SeqCst) {
            0 => {
                let _ = gate.lock().unwrap().recv();
                Ok(())
            }
            n => later(n),
        });
        (Arc::new(group), calls, go)
    }

    /// Starts one caller, holds its sync, starts `n` more that must wait for
    /// it, lets it go: what the first and the others got.
    fn first_then_waiting(
        group: &Arc<GroupSync>,
        calls: &AtomicUsize,
        go: mpsc::Sender<()>,
        n: usize,
    ) -> (io::Result<()>, Vec<io::Result<()>>) {
        let spawn = || {
            let g = group.clone();
            std::thread::spawn(move || g.sync())
        };
        let first = spawn();
        until(|| calls.load(Ordering::SeqCst) == 1);
        let rest: Vec<_> = (0..n).map(|_| spawn()).collect();
        until(|| group.waiting() == n);
        go.send(()).unwrap();
        let first = first.join().unwrap();
        (first, rest.into_iter().map(|r| r.join().unwrap()).collect())
    }

    fn until(mut cond: impl FnMut() -> bool) {
        while !cond() {
            std::thread::yield_now();
        }
    }

    #[test]
    fn callers_waiting_during_a_sync_share_the_next_one() {
        let (group, calls, go) = gated(|_| Ok(()));
        // Seven more arrive while the first sync runs: it started before
        // they wrote, so it cannot cover them; one more sync covers them all.
        let (first, rest) = first_then_waiting(&group, &calls, go, 7);
        first.unwrap();
        assert!(rest.iter().all(Result::is_ok));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_lone_caller_syncs_itself_each_time() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let group = GroupSync::new(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            Ok(())
        });
        for _ in 0..3 {
            group.sync().unwrap();
        }
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn a_failed_sync_fails_every_caller_it_was_to_cover() {
        // The second sync, the one the waiting callers share, fails.
        let (group, calls, go) = gated(|n| match n {
            1 => Err(io::Error::other("disk gone")),
            _ => Ok(()),
        });
        let (first, rest) = first_then_waiting(&group, &calls, go, 3);
        first.unwrap();
        let failed = rest.iter().filter(|r| r.is_err()).count();
        assert_eq!(failed, 3, "a later sync must not vouch for them");
        // A caller after the failure gets a sync of its own.
        group.sync().unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn a_real_directorys_sync_succeeds_and_a_missing_ones_fails() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_owned();
        let group = GroupSync::new(move || std::fs::File::open(&path)?.sync_all());
        group.sync().unwrap();
        drop(dir);
        assert!(group.sync().is_err());
    }
}
