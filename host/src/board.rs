//! The board every task shares: who is busy, since when, and how many
//! requests wait for a free instance.
//!
//! A request normally runs on the instance of its connection's task. If that
//! instance is busy (a slow call that yielded, or a call of another
//! connection on another thread), it runs on any free instance instead, on
//! the thread it is already on: no hop, no waiting behind a slow handler.
//! Only when every instance is busy does it wait, and only up to
//! `--max-pending` requests may wait; past that, 503.
//!
//! The watchdog reads the busy times to find slow calls, and each call's
//! epoch callback reads its own to enforce the request timeout.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, SemaphorePermit, TryAcquireError};

/// What every task publishes about itself.
struct TaskEntry {
    /// 0 while the task's instance is free; otherwise 1 + the milliseconds
    /// (since the board's origin) at which it became busy.
    busy_since: AtomicU64,
    /// Requests its instances answered.
    served: AtomicU64,
}

pub struct Board {
    origin: Instant,
    tasks: Vec<TaskEntry>,
    /// One permit per free instance.
    free: Semaphore,
    /// Requests waiting for a permit.
    waiting: AtomicUsize,
    max_pending: usize,
}

/// One request counted in the line until it leaves it, however it leaves.
struct InLine<'a>(&'a AtomicUsize);

impl Drop for InLine<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Every instance is busy and `--max-pending` requests already wait.
#[derive(Debug)]
pub struct Full;

impl Board {
    pub fn new(tasks: usize, max_pending: usize) -> Self {
        Board {
            origin: Instant::now(),
            tasks: (0..tasks)
                .map(|_| TaskEntry {
                    busy_since: AtomicU64::new(0),
                    served: AtomicU64::new(0),
                })
                .collect(),
            free: Semaphore::new(tasks),
            waiting: AtomicUsize::new(0),
            max_pending,
        }
    }

    /// Milliseconds since the board was made (the vDSO clock: no system call).
    fn now_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// A claim on one free instance: at once if one is free, else after
    /// waiting in line, unless the line is full.
    pub async fn claim(&self) -> Result<SemaphorePermit<'_>, Full> {
        match self.free.try_acquire() {
            Ok(permit) => return Ok(permit),
            Err(TryAcquireError::Closed) => return Err(Full),
            Err(TryAcquireError::NoPermits) => {}
        }
        let in_line = InLine(&self.waiting);
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_pending {
            return Err(Full);
        }
        // If the request is dropped while waiting (its client left), the
        // guard still takes it out of the line.
        let permit = self.free.acquire().await;
        drop(in_line);
        permit.map_err(|_| Full)
    }

    /// Marks task `id` busy from now.
    pub fn set_busy(&self, id: usize) {
        self.tasks[id]
            .busy_since
            .store(self.now_ms() + 1, Ordering::Relaxed);
    }

    /// Marks task `id` free.
    pub fn set_free(&self, id: usize) {
        self.tasks[id].busy_since.store(0, Ordering::Relaxed);
    }

    /// How long task `id` has been busy; zero if it is free.
    pub fn busy_for(&self, id: usize) -> Duration {
        match self.tasks[id].busy_since.load(Ordering::Relaxed) {
            0 => Duration::ZERO,
            since => Duration::from_millis(self.now_ms().saturating_sub(since - 1)),
        }
    }

    /// Whether any task has been busy for at least `ms` milliseconds.
    pub fn any_busy_for(&self, ms: u64) -> bool {
        let now = self.now_ms();
        self.tasks.iter().any(|task| {
            let since = task.busy_since.load(Ordering::Relaxed);
            since != 0 && now.saturating_sub(since - 1) >= ms
        })
    }

    /// Counts one request answered by task `id`.
    pub fn count_served(&self, id: usize) {
        self.tasks[id].served.fetch_add(1, Ordering::Relaxed);
    }

    /// Requests answered by task `id`.
    pub fn served(&self, id: usize) -> u64 {
        self.tasks[id].served.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn claims_wait_in_a_bounded_line() {
        let board = std::sync::Arc::new(Board::new(1, 1));
        let first = board.claim().await.unwrap();
        // The line holds one waiter; a second waiter is refused.
        let waiter = {
            let board = std::sync::Arc::clone(&board);
            tokio::spawn(async move { board.claim().await.map(drop).is_ok() })
        };
        tokio::task::yield_now().await;
        assert!(board.claim().await.is_err());
        drop(first);
        assert!(
            waiter.await.unwrap(),
            "the waiter got the instance once it was free"
        );
        assert_eq!(board.waiting.load(Ordering::Relaxed), 0);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_request_dropped_while_waiting_leaves_the_line() {
        let board = std::sync::Arc::new(Board::new(1, 1));
        let held = board.claim().await.unwrap();
        let waiter = {
            let board = std::sync::Arc::clone(&board);
            tokio::spawn(async move { board.claim().await.map(drop).is_ok() })
        };
        tokio::task::yield_now().await;
        assert_eq!(board.waiting.load(Ordering::Relaxed), 1);
        waiter.abort();
        let _ = waiter.await;
        assert_eq!(
            board.waiting.load(Ordering::Relaxed),
            0,
            "the line did not leak"
        );
        drop(held);
        assert!(board.claim().await.is_ok());
    }

    #[test]
    fn busy_time_is_tracked() {
        let board = Board::new(2, 1);
        assert!(!board.any_busy_for(0));
        board.set_busy(1);
        assert!(board.any_busy_for(0));
        std::thread::sleep(Duration::from_millis(15));
        assert!(board.any_busy_for(10));
        assert!(board.busy_for(1) >= Duration::from_millis(10));
        assert_eq!(board.busy_for(0), Duration::ZERO);
        board.set_free(1);
        assert!(!board.any_busy_for(0));
    }
}
