//! Admission: one permit per free instance, and the bounded line of requests
//! waiting for one.
//!
//! Only when every instance is busy does a request wait: up to
//! `--queue-timeout`, and only up to `--max-pending` requests may wait; past
//! either it is refused (the HTTP edge answers 503). Time, not the count, is
//! what normally bounds the line: a burst of thousands of connections that
//! the instances work through in milliseconds must be served, not shed,
//! while a line that does not move must not hold clients for ever.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

/// The permits and the line.
pub(super) struct Line {
    /// One permit per free instance.
    free: Arc<Semaphore>,
    /// Requests waiting for a permit.
    waiting: AtomicUsize,
    max_pending: usize,
    queue_timeout: Duration,
}

/// A claim on one free instance, held for as long as the lease (owned, so a
/// lease can outlive the request that made it: see `Pool::call`).
pub(super) type Permit = OwnedSemaphorePermit;

/// Every instance is busy, and `--max-pending` requests already wait or this
/// one waited `--queue-timeout` in vain.
#[derive(Debug)]
pub(super) struct Full;

/// One request counted in the line until it leaves it, however it leaves.
struct InLine<'a>(&'a AtomicUsize);

impl Drop for InLine<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Line {
    pub fn new(instances: usize, max_pending: usize, queue_timeout: Duration) -> Self {
        Line {
            free: Arc::new(Semaphore::new(instances)),
            waiting: AtomicUsize::new(0),
            max_pending,
            queue_timeout,
        }
    }

    /// A permit, and whether it had to wait for it: at once if an instance
    /// is free, else after waiting in line, unless the line is full.
    pub async fn admit(&self) -> Result<(Permit, bool), Full> {
        match Arc::clone(&self.free).try_acquire_owned() {
            Ok(permit) => return Ok((permit, false)),
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
        let permit =
            tokio::time::timeout(self.queue_timeout, Arc::clone(&self.free).acquire_owned()).await;
        drop(in_line);
        match permit {
            Ok(Ok(permit)) => Ok((permit, true)),
            _ => Err(Full),
        }
    }

    /// Requests waiting for an instance now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(flavor = "current_thread")]
    async fn requests_wait_in_a_bounded_line() {
        let line = Arc::new(Line::new(1, 1, Duration::from_secs(30)));
        let first = line.admit().await.unwrap();
        // The line holds one waiter; a second waiter is refused.
        let waiter = {
            let line = Arc::clone(&line);
            tokio::spawn(async move { line.admit().await.is_ok() })
        };
        tokio::task::yield_now().await;
        assert!(line.admit().await.is_err());
        drop(first);
        assert!(
            waiter.await.unwrap(),
            "the waiter got the instance once it was free"
        );
        assert_eq!(line.waiting(), 0);
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_wait_in_line_ends_at_the_queue_timeout() {
        let line = Line::new(1, 100, Duration::from_secs(2));
        let _held = line.admit().await.unwrap();
        let started = tokio::time::Instant::now();
        assert!(line.admit().await.is_err());
        assert_eq!(started.elapsed(), Duration::from_secs(2));
        assert_eq!(line.waiting(), 0);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_request_dropped_while_waiting_leaves_the_line() {
        let line = Arc::new(Line::new(1, 1, Duration::from_secs(30)));
        let held = line.admit().await.unwrap();
        let waiter = {
            let line = Arc::clone(&line);
            tokio::spawn(async move { line.admit().await.is_ok() })
        };
        tokio::task::yield_now().await;
        assert_eq!(line.waiting(), 1);
        waiter.abort();
        let _ = waiter.await;
        assert_eq!(line.waiting(), 0, "the line did not leak");
        drop(held);
        assert!(line.admit().await.is_ok());
    }
}
