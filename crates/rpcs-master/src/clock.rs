//! Where the services read the time, and how often a wait looks again.
//!
//! Lease deadlines, session visits and clean-ups are stamped from a [`Clock`],
//! so tests can move time on their own (with [`ManualClock`]) instead of
//! sleeping and hoping the wall clock has moved far enough.

use std::fmt::Debug;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of the current time.
pub trait Clock: Send + Sync + Debug {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The system's wall clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock showing the wall clock's time now, from then on still.
    pub fn new() -> Arc<ManualClock> {
        Arc::new(ManualClock(AtomicI64::new(SystemClock.now_ms())))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The time the services work with.
#[derive(Debug, Clone)]
pub struct Timing {
    /// Where the current time comes from.
    pub clock: Arc<dyn Clock>,
    /// How often a blocked pop or a subscription looks again without a local
    /// wake-up, on a backend other processes share (and may change unseen);
    /// on one that sees every change, waits rely on their wake-ups alone.
    pub recheck: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            clock: Arc::new(SystemClock),
            recheck: Duration::from_secs(1),
        }
    }
}

impl Timing {
    /// Milliseconds since the Unix epoch, by the clock.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }
}
