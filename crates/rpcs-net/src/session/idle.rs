//! The idle timeout of a stream connection, with one timer for its whole life.
//!
//! Wrapping every read in its own timeout costs a timer-wheel insertion and
//! removal per message, which showed in the per-call cost of a busy connection.
//! Here a read only notes the time; the one timer, when it fires, looks whether
//! the connection has really been quiet for the whole timeout, and if not is set
//! again for the moment it would be.

use std::pin::Pin;
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// When a connection last showed life, and the timer that watches it.
pub(crate) struct IdleTimer {
    idle: Duration,
    last: Instant,
    timer: Pin<Box<Sleep>>,
}

impl IdleTimer {
    /// A timer for connections quiet for `idle`, starting now.
    pub(crate) fn new(idle: Duration) -> IdleTimer {
        let last = Instant::now();
        IdleTimer {
            idle,
            last,
            timer: Box::pin(tokio::time::sleep_until(last + idle)),
        }
    }

    /// Notes that the connection showed life now.
    pub(crate) fn touch(&mut self) {
        self.last = Instant::now();
    }

    /// Resolves once nothing has touched the timer for the whole timeout. Safe
    /// to drop half way (in a `select!`): the state lives in the timer.
    pub(crate) async fn quiet(&mut self) {
        loop {
            self.timer.as_mut().await;
            let due = self.last + self.idle;
            if Instant::now() >= due {
                return;
            }
            self.timer.as_mut().reset(due);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_touch_postpones_the_timeout() {
        let mut timer = IdleTimer::new(Duration::from_secs(10));
        tokio::time::advance(Duration::from_secs(6)).await;
        timer.touch();
        let started = Instant::now();
        timer.quiet().await;
        assert_eq!(Instant::now() - started, Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn an_untouched_timer_fires_after_the_timeout() {
        let start = Instant::now();
        let mut timer = IdleTimer::new(Duration::from_secs(10));
        timer.quiet().await;
        assert_eq!(Instant::now() - start, Duration::from_secs(10));
    }
}
