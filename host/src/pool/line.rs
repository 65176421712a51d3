//! The board every task shares: who is busy, since when, and how many
//! requests wait for a free instance.
//!
//! A request normally runs on the instance of its connection's task. If that
//! instance is busy (a slow call that yielded, or a call of another
//! connection on another thread), it runs on any free instance instead, on
//! the thread it is already on: no hop, no waiting behind a slow handler.
//! Only when every instance is busy does it wait: up to `--queue-timeout`,
//! and only up to `--max-pending` requests may wait; past either, 503. Time,
//! not the count, is what normally bounds the line: a burst of thousands of
//! connections that the instances work through in milliseconds must be
//! served, not shed, while a line that does not move must not hold clients
//! for ever.
//!
//! The watchdog reads the busy times to find slow calls, and each call's
//! epoch callback reads its own to enforce the request timeout. A call that
//! waits in the host (a guest's `sleep`, a store call) runs no guest code and
//! so meets no epoch check: for those the watchdog wakes the call's
//! [`Board::overdue`] future, which the task races against the call.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore, SemaphorePermit, TryAcquireError};

/// What every task publishes about itself.
struct TaskEntry {
    /// 0 while the task's instance is free; otherwise 1 + the milliseconds
    /// (since the board's origin) at which it became busy.
    busy_since: AtomicU64,
    /// Requests its instances answered.
    served: AtomicU64,
    /// Woken by the watchdog while the task is busy past the request timeout.
    overdue: Notify,
}

pub struct Board {
    origin: Instant,
    tasks: Vec<TaskEntry>,
    /// One permit per free instance.
    free: Semaphore,
    /// Requests waiting for a permit.
    waiting: AtomicUsize,
    max_pending: usize,
    /// Longest a request waits in line.
    queue_timeout: Duration,
    /// A call busy for longer is stopped (`--request-timeout`).
    request_timeout: Duration,
}

/// One request counted in the line until it leaves it, however it leaves.
struct InLine<'a>(&'a AtomicUsize);

impl Drop for InLine<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Every instance is busy, and `--max-pending` requests already wait or this
/// one waited `--queue-timeout` in vain.
#[derive(Debug)]
pub struct Full;

impl Board {
    pub fn new(
        tasks: usize,
        max_pending: usize,
        queue_timeout: Duration,
        request_timeout: Duration,
    ) -> Self {
        Board {
            origin: Instant::now(),
            tasks: (0..tasks)
                .map(|_| TaskEntry {
                    busy_since: AtomicU64::new(0),
                    served: AtomicU64::new(0),
                    overdue: Notify::new(),
                })
                .collect(),
            free: Semaphore::new(tasks),
            waiting: AtomicUsize::new(0),
            max_pending,
            queue_timeout,
            request_timeout,
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
        // guard still takes it out of the line. Only a request that waits
        // pays for a timer.
        let permit = tokio::time::timeout(self.queue_timeout, self.free.acquire()).await;
        drop(in_line);
        match permit {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(Full),
        }
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

    /// The request timeout every call runs under.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// Resolves once task `id`'s current call has been busy past the request
    /// timeout, as the watchdog finds (within a tick of it). Costs nothing
    /// until first polled, and a call that never waits never polls it.
    pub async fn overdue(&self, id: usize) {
        loop {
            self.tasks[id].overdue.notified().await;
            // The watchdog looked at the task's clock a moment ago; a call
            // that began since then is not the one it meant.
            if self.busy_for(id) >= self.request_timeout {
                return;
            }
        }
    }

    /// Wakes the [`Board::overdue`] future of every call past the request
    /// timeout; the watchdog calls this on each tick while a call is slow.
    pub fn wake_overdue(&self) {
        for (id, task) in self.tasks.iter().enumerate() {
            if self.busy_for(id) >= self.request_timeout {
                task.overdue.notify_waiters();
            }
        }
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
        let board = std::sync::Arc::new(Board::new(
            1,
            1,
            Duration::from_secs(30),
            Duration::from_secs(30),
        ));
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

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_wait_in_line_ends_at_the_queue_timeout() {
        let board = Board::new(1, 100, Duration::from_secs(2), Duration::from_secs(30));
        let _held = board.claim().await.unwrap();
        let started = tokio::time::Instant::now();
        assert!(board.claim().await.is_err());
        assert_eq!(started.elapsed(), Duration::from_secs(2));
        assert_eq!(board.waiting.load(Ordering::Relaxed), 0);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_request_dropped_while_waiting_leaves_the_line() {
        let board = std::sync::Arc::new(Board::new(
            1,
            1,
            Duration::from_secs(30),
            Duration::from_secs(30),
        ));
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

    #[tokio::test(flavor = "current_thread")]
    async fn overdue_resolves_only_for_a_call_past_the_timeout() {
        let board = std::sync::Arc::new(Board::new(
            2,
            1,
            Duration::from_secs(30),
            Duration::from_millis(20),
        ));
        board.set_busy(0);
        board.set_busy(1);
        let overdue = {
            let board = std::sync::Arc::clone(&board);
            tokio::spawn(async move { board.overdue(0).await })
        };
        tokio::task::yield_now().await;
        // Too early: a wake-up before the timeout is ignored.
        board.wake_overdue();
        board.tasks[0].overdue.notify_waiters();
        tokio::task::yield_now().await;
        assert!(!overdue.is_finished());
        std::thread::sleep(Duration::from_millis(25));
        board.set_busy(1); // task 1 starts a new call: not overdue
        board.wake_overdue();
        tokio::time::timeout(Duration::from_secs(5), overdue)
            .await
            .expect("the overdue call is woken")
            .unwrap();
        let young = {
            let board = std::sync::Arc::clone(&board);
            tokio::spawn(async move { board.overdue(1).await })
        };
        tokio::task::yield_now().await;
        board.wake_overdue();
        tokio::task::yield_now().await;
        assert!(!young.is_finished(), "a young call is left alone");
        young.abort();
    }

    #[test]
    fn busy_time_is_tracked() {
        let board = Board::new(2, 1, Duration::from_secs(30), Duration::from_secs(30));
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
