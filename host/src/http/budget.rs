//! A process-wide budget of buffered body bytes (`--max-buffered`): what
//! request bodies being read may hold at once, and (a budget of its own)
//! large response bodies still being written to slow clients.
//!
//! Each body is bounded on its own (`--max-body`, `--max-response`), but a
//! few hundred clients that send slowly, or read slowly, would each hold one
//! and together fill memory well under `--max-connections`. A body takes its
//! bytes from the budget before it holds them and gives them back when they
//! are freed; a body that finds the budget spent is answered 503 at once,
//! so the server answers on while it is spent.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The budget: bytes held now, and the most that may be.
#[derive(Debug)]
pub struct BodyBudget {
    held: AtomicUsize,
    limit: usize,
}

/// Bytes taken from the budget, given back when this is dropped.
#[derive(Debug)]
pub struct Held {
    budget: Arc<BodyBudget>,
    bytes: usize,
}

impl BodyBudget {
    pub fn new(limit: usize) -> Arc<BodyBudget> {
        Arc::new(BodyBudget {
            held: AtomicUsize::new(0),
            limit,
        })
    }

    /// A hold on nothing yet, to grow as bytes come ([`Held::grow_to`]).
    pub fn hold(self: &Arc<Self>) -> Held {
        Held {
            budget: Arc::clone(self),
            bytes: 0,
        }
    }

    /// Takes `bytes`, or none if that would overspend the budget.
    pub fn take(self: &Arc<Self>, bytes: usize) -> Option<Held> {
        let mut held = self.hold();
        held.grow_to(bytes).then_some(held)
    }

    /// Bytes held now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }
}

impl Held {
    /// Holds `bytes` in all (no change if it holds that many already);
    /// false, holding what it held, if the budget cannot give the rest.
    pub fn grow_to(&mut self, bytes: usize) -> bool {
        let Some(more) = bytes.checked_sub(self.bytes).filter(|&more| more > 0) else {
            return true;
        };
        let budget = &self.budget;
        // Never over the limit, not even for a moment: a body that would fit
        // is not refused because another one's attempt overshot.
        let taken = budget
            .held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                held.checked_add(more)
                    .filter(|&total| total <= budget.limit)
            });
        if taken.is_err() {
            return false;
        }
        self.bytes = bytes;
        true
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.budget.held.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_never_overspent_and_comes_back() {
        let budget = BodyBudget::new(100);
        let mut first = budget.take(60).expect("within the budget");
        assert!(budget.take(50).is_none(), "60 + 50 > 100");
        assert_eq!(budget.held(), 60);
        assert!(first.grow_to(90));
        assert!(!first.grow_to(101));
        assert_eq!(budget.held(), 90);
        let second = budget.take(10).expect("exactly the rest");
        drop(first);
        assert_eq!(budget.held(), 10);
        drop(second);
        assert_eq!(budget.held(), 0);
    }
}
