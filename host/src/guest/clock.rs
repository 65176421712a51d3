//! When each task's current call began: the one record of a call's age.
//!
//! The pool starts a task's clock when it leases the task's instance (and
//! when it instantiates a new one) and stops it when the instance is back.
//! Two readers need the age without going through the pool: the instance's
//! epoch callback, which stops an overdue call that runs guest code, and the
//! [`Watchdog`](super::Watchdog), which bumps the epoch while a call is slow
//! and wakes [`CallClocks::overdue`] for a call that waits in the host (a
//! `sleep`, a store call), where no epoch check runs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;
use tokio::sync::Notify;

/// One clock per task, with the deadline every call runs under.
pub struct CallClocks {
    origin: Instant,
    /// A call older than this is stopped (`--request-timeout`).
    timeout: Duration,
    /// One cache line each: every call stores its task's twice, on the
    /// worker that runs it.
    tasks: Box<[CachePadded<Clock>]>,
}

struct Clock {
    /// 0 while no call runs; otherwise 1 + the milliseconds since `origin`
    /// at which the current call began.
    since: AtomicU64,
    /// Woken by the watchdog while the call is past the timeout.
    overdue: Notify,
}

impl CallClocks {
    pub fn new(tasks: usize, timeout: Duration) -> Self {
        CallClocks {
            origin: Instant::now(),
            timeout,
            tasks: (0..tasks)
                .map(|_| {
                    CachePadded::new(Clock {
                        since: AtomicU64::new(0),
                        overdue: Notify::new(),
                    })
                })
                .collect(),
        }
    }

    /// The deadline of every call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Milliseconds since the origin (the vDSO clock: no system call).
    fn now_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Task `id`'s call begins now.
    pub fn start(&self, id: usize) {
        self.tasks[id]
            .since
            .store(self.now_ms() + 1, Ordering::Relaxed);
    }

    /// Task `id` runs no call.
    pub fn stop(&self, id: usize) {
        self.tasks[id].since.store(0, Ordering::Relaxed);
    }

    /// How long task `id`'s call has run; zero if none runs.
    pub fn age(&self, id: usize) -> Duration {
        match self.tasks[id].since.load(Ordering::Relaxed) {
            0 => Duration::ZERO,
            since => Duration::from_millis(self.now_ms().saturating_sub(since - 1)),
        }
    }

    /// Whether any call has run for at least `age`.
    pub fn any_older_than(&self, age: Duration) -> bool {
        let ms = u64::try_from(age.as_millis()).unwrap_or(u64::MAX);
        let now = self.now_ms();
        self.tasks.iter().any(|clock| {
            let since = clock.since.load(Ordering::Relaxed);
            since != 0 && now.saturating_sub(since - 1) >= ms
        })
    }

    /// Resolves once task `id`'s current call has run past the timeout, as
    /// the watchdog finds (within a tick of it). Costs nothing until first
    /// polled, and a call that never waits never polls it.
    pub async fn overdue(&self, id: usize) {
        loop {
            self.tasks[id].overdue.notified().await;
            // The watchdog looked a moment ago; a call that began since then
            // is not the one it meant.
            if self.age(id) >= self.timeout {
                return;
            }
        }
    }

    /// Wakes [`CallClocks::overdue`] of every call past the timeout.
    pub fn wake_overdue(&self) {
        for (id, clock) in self.tasks.iter().enumerate() {
            if self.age(id) >= self.timeout {
                clock.overdue.notify_waiters();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(flavor = "current_thread")]
    async fn overdue_resolves_only_for_a_call_past_the_timeout() {
        let clocks = Arc::new(CallClocks::new(2, Duration::from_millis(20)));
        clocks.start(0);
        clocks.start(1);
        let overdue = {
            let clocks = Arc::clone(&clocks);
            tokio::spawn(async move { clocks.overdue(0).await })
        };
        tokio::task::yield_now().await;
        // Too early: a wake-up before the timeout is ignored.
        clocks.wake_overdue();
        clocks.tasks[0].overdue.notify_waiters();
        tokio::task::yield_now().await;
        assert!(!overdue.is_finished());
        std::thread::sleep(Duration::from_millis(25));
        clocks.start(1); // task 1 starts a new call: not overdue
        clocks.wake_overdue();
        tokio::time::timeout(Duration::from_secs(5), overdue)
            .await
            .expect("the overdue call is woken")
            .unwrap();
        let young = {
            let clocks = Arc::clone(&clocks);
            tokio::spawn(async move { clocks.overdue(1).await })
        };
        tokio::task::yield_now().await;
        clocks.wake_overdue();
        tokio::task::yield_now().await;
        assert!(!young.is_finished(), "a young call is left alone");
        young.abort();
    }

    #[test]
    fn a_call_age_is_tracked() {
        let clocks = CallClocks::new(2, Duration::from_secs(30));
        assert!(!clocks.any_older_than(Duration::ZERO));
        clocks.start(1);
        assert!(clocks.any_older_than(Duration::ZERO));
        std::thread::sleep(Duration::from_millis(15));
        assert!(clocks.any_older_than(Duration::from_millis(10)));
        assert!(clocks.age(1) >= Duration::from_millis(10));
        assert_eq!(clocks.age(0), Duration::ZERO);
        clocks.stop(1);
        assert!(!clocks.any_older_than(Duration::ZERO));
    }
}
