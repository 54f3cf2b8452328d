//! Items going onto and off each stack through this master, for the rates a
//! monitor shows (items in and out per second) and the counters `/metrics`
//! serves. Counted here rather than in the backend: every backend gets them,
//! and counting costs a shared-lock lookup and an atomic add, nothing stored.
//!
//! In: items pushed (`push`, `pushMany`, `pushNew`) and released back by a
//! call. Out: items popped or taken. Items that go back because a lease ran
//! out or its client's session ended are not counted in (the size shows
//! them). With several masters on one Redis each counts its own calls.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// Stacks counted at most: past it, new names are not counted, so a client
/// inventing stack names cannot grow this without bound.
const MAX_COUNTED: usize = 100_000;

/// A stack's counts.
#[derive(Debug, Default)]
struct Counts {
    added: AtomicU64,
    removed: AtomicU64,
}

/// Items in and out per stack, since this master started.
#[derive(Debug, Default)]
pub struct Traffic {
    stacks: RwLock<HashMap<String, Arc<Counts>>>,
}

impl Traffic {
    /// No traffic yet.
    pub fn new() -> Traffic {
        Traffic::default()
    }

    /// `n` items went onto `stack`.
    pub fn added(&self, stack: &str, n: u64) {
        if let Some(c) = self.counts(stack) {
            c.added.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// `n` items came off `stack`.
    pub fn removed(&self, stack: &str, n: u64) {
        if let Some(c) = self.counts(stack) {
            c.removed.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Items (in, out) of `stack` so far.
    pub fn of(&self, stack: &str) -> (u64, u64) {
        let stacks = self.stacks.read().unwrap_or_else(|p| p.into_inner());
        stacks.get(stack).map_or((0, 0), |c| {
            (
                c.added.load(Ordering::Relaxed),
                c.removed.load(Ordering::Relaxed),
            )
        })
    }

    /// Drops a removed stack's counts.
    pub fn forget(&self, stack: &str) {
        let mut stacks = self.stacks.write().unwrap_or_else(|p| p.into_inner());
        stacks.remove(stack);
    }

    fn counts(&self, stack: &str) -> Option<Arc<Counts>> {
        {
            let stacks = self.stacks.read().unwrap_or_else(|p| p.into_inner());
            if let Some(c) = stacks.get(stack) {
                return Some(c.clone());
            }
            if stacks.len() >= MAX_COUNTED {
                return None;
            }
        }
        let mut stacks = self.stacks.write().unwrap_or_else(|p| p.into_inner());
        Some(stacks.entry(stack.to_owned()).or_default().clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_in_and_out_per_stack() {
        let t = Traffic::new();
        t.added("a", 3);
        t.removed("a", 1);
        t.added("b", 2);
        assert_eq!(t.of("a"), (3, 1));
        assert_eq!(t.of("b"), (2, 0));
        assert_eq!(t.of("c"), (0, 0));
    }

    #[test]
    fn a_forgotten_stack_starts_again() {
        let t = Traffic::new();
        t.added("a", 3);
        t.forget("a");
        assert_eq!(t.of("a"), (0, 0));
    }

    #[test]
    fn names_past_the_cap_are_not_counted() {
        let t = Traffic::new();
        for i in 0..MAX_COUNTED {
            t.added(&format!("s{i}"), 1);
        }
        t.added("one-too-many", 1);
        assert_eq!(t.of("one-too-many"), (0, 0));
        // Those already counted go on.
        t.added("s0", 1);
        assert_eq!(t.of("s0"), (2, 0));
    }
}
