//! Per-host politeness shared by every crawler of a crawl: before each request
//! to a host, a crawler reserves the host's next slot in the master (the
//! crawl's delay after the last slot any crawler reserved there) and waits
//! for it, so that N crawlers together never hit a host faster than one
//! would. A host's robots.txt `Crawl-delay` raises its delay, never lowers it.

use crate::frontier::{Frontier, FrontierError};
use crate::scope::authority;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use url::Url;

/// How late for its slot a crawler may still send.
const MAX_LATE: Duration = Duration::from_millis(10);

/// How many slots a crawler that keeps waking late takes before it sends anyway.
const MAX_TRIES: usize = 5;

/// The spacing of requests per host.
pub struct Politeness {
    frontier: Arc<Frontier>,
    delay: Duration,
    floors: Mutex<HashMap<String, Duration>>,
}

impl Politeness {
    /// At least `delay` between two requests to one host (zero: no spacing,
    /// and no call to the master).
    pub fn new(frontier: Arc<Frontier>, delay: Duration) -> Politeness {
        Politeness {
            frontier,
            delay,
            floors: Mutex::new(HashMap::new()),
        }
    }

    /// Raises `host`'s delay to `floor` (its robots.txt's Crawl-delay).
    pub fn set_floor(&self, host: &str, floor: Duration) {
        let mut floors = self.floors.lock().unwrap_or_else(|p| p.into_inner());
        floors.insert(host.to_owned(), floor);
    }

    /// The delay between two requests to `host`.
    pub fn delay_for(&self, host: &str) -> Duration {
        let floors = self.floors.lock().unwrap_or_else(|p| p.into_inner());
        floors.get(host).map_or(self.delay, |f| self.delay.max(*f))
    }

    /// Waits for this crawler's turn on `url`'s host. A crawler that wakes
    /// up late for its slot (a loaded machine) takes a later one rather than
    /// sending a request that would land close to the next crawler's.
    pub async fn wait_turn(&self, url: &Url) -> Result<(), FrontierError> {
        let host = authority(url);
        let delay = self.delay_for(&host);
        if delay.is_zero() {
            return Ok(());
        }
        let late = (delay / 10).min(MAX_LATE);
        for _ in 0..MAX_TRIES {
            // The master chose the slot at some moment of the call, so it is
            // `wait` after a time between `asked` and `answered`. Sleeping until
            // `wait` after the answer is never early; the request is late by at
            // most the round trip, which counts as lateness like a slow wake-up
            // (a call that waited out a master's restart is far too late).
            let asked = Instant::now();
            let wait = self.frontier.turn(&host, delay).await?;
            let earliest = asked + wait;
            tokio::time::sleep_until(Instant::now() + wait).await;
            if Instant::now() <= earliest + late {
                return Ok(());
            }
        }
        Ok(())
    }
}
