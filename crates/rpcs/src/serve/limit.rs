//! How many programs run at once: per method and over all of them. A call
//! over either limit is refused at once with a `Busy` fault rather than left
//! waiting, so a caller learns at once that it should come back later (and a
//! flood of calls cannot pile up behind slow programs).

use rpcs_core::Fault;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The programs one method may run at once, within a shared global limit.
#[derive(Clone)]
pub struct Slots {
    method: Arc<Semaphore>,
    method_max: usize,
    global: Arc<Semaphore>,
    global_max: usize,
}

/// The right to run one program; given back when dropped.
pub struct Slot {
    _method: OwnedSemaphorePermit,
    _global: OwnedSemaphorePermit,
}

/// The limit over all methods.
#[derive(Clone)]
pub struct Global {
    semaphore: Arc<Semaphore>,
    max: usize,
}

impl Global {
    /// At most `max` programs at once over all methods.
    pub fn new(max: usize) -> Global {
        Global {
            semaphore: Arc::new(Semaphore::new(max)),
            max,
        }
    }

    /// The slots of a method that may run `max` programs at once.
    pub fn method(&self, max: usize) -> Slots {
        let max = max.min(self.max);
        Slots {
            method: Arc::new(Semaphore::new(max)),
            method_max: max,
            global: self.semaphore.clone(),
            global_max: self.max,
        }
    }
}

impl Slots {
    /// A slot for a run of `method`, or the `Busy` fault when none is free.
    pub fn take(&self, method: &str) -> Result<Slot, Fault> {
        let busy = |what: String| {
            Fault::new(
                Fault::LIMIT_EXCEEDED,
                format!("Busy: {what}; try again later"),
            )
        };
        let method_permit = self.method.clone().try_acquire_owned().map_err(|_| {
            busy(format!(
                "{method} already runs max_concurrent = {} programs",
                self.method_max
            ))
        })?;
        let global_permit = self.global.clone().try_acquire_owned().map_err(|_| {
            busy(format!(
                "the server already runs max_concurrent = {} programs",
                self.global_max
            ))
        })?;
        Ok(Slot {
            _method: method_permit,
            _global: global_permit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_limited_per_method_and_overall() {
        let global = Global::new(3);
        let (a, b) = (global.method(2), global.method(usize::MAX));
        let a1 = a.take("a").unwrap();
        let _a2 = a.take("a").unwrap();
        let busy = a.take("a").err().unwrap();
        assert_eq!(busy.code, Fault::LIMIT_EXCEEDED);
        assert_eq!(busy.name(), Some("Busy"));
        assert!(
            busy.message.contains("a already runs max_concurrent = 2"),
            "{busy}"
        );
        let _b1 = b.take("b").unwrap();
        let overall = b.take("b").err().unwrap();
        assert!(overall
            .message
            .contains("the server already runs max_concurrent = 3"));
        drop(a1);
        assert!(b.take("b").is_ok());
    }
}
