//! The header-read deadline (`--header-timeout`) at one timer per
//! connection instead of one per request.
//!
//! hyper enforces `header_read_timeout` through its `Timer`: each time it
//! starts reading a request head it asks for a fresh sleep, and it drops that
//! sleep as soon as the head is in. With tokio's timer every request thus
//! allocated a sleep, registered it in the timer wheel and removed it again
//! (two trips through the wheel's lock), a cost BENCHMARKS.md measured. A
//! deadline that almost never fires does not need that.
//!
//! Here a request's sleep only remembers its deadline. Each connection keeps
//! one tokio sleep, the backstop, that stays in the wheel from request to
//! request; a request's sleep hands it its waker when polled. Deadlines only
//! move later, so the backstop, when it fires, usually fires early, for a
//! request long answered: it is then moved to the current deadline, once per
//! timeout period rather than twice per request. A sleep never resolves
//! before its own deadline and never later than the backstop's wake-up
//! allows, so hyper sees the same timeout it would with tokio's timer.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::rt::{Sleep, Timer};

use super::connection::Activity;

/// The backstop of one connection: created on the first poll that needs it.
type Backstop = Arc<Mutex<Option<Pin<Box<tokio::time::Sleep>>>>>;

/// A hyper [`Timer`] for one connection (hyper asks it for nothing but the
/// header-read deadline). Give every connection its own.
#[derive(Default)]
pub struct ConnectionTimer {
    backstop: Backstop,
    /// How much earlier than a head's deadline the idle check comes, and
    /// the connection's read counter, if it has an idle timeout shorter
    /// than the header timeout.
    idle: Option<(Duration, Activity)>,
}

impl ConnectionTimer {
    /// A timer without an idle timeout.
    #[cfg(test)]
    pub fn new() -> Self {
        ConnectionTimer::default()
    }

    /// A timer for a connection whose heads may take `header_timeout`, and
    /// whose header-read sleeps also end after `idle` if `activity` shows no
    /// bytes read since the sleep began: the keep-alive idle timeout. An
    /// idle timeout no shorter than the header timeout adds nothing.
    pub fn with_idle_timeout(idle: Duration, header_timeout: Duration, activity: Activity) -> Self {
        ConnectionTimer {
            backstop: Backstop::default(),
            idle: (idle < header_timeout).then(|| (header_timeout - idle, activity)),
        }
    }

    /// hyper asks for a head's sleep at `now + header_timeout`, so the idle
    /// check is that deadline less the difference: no clock read per request.
    fn idle_check(&self, deadline: Instant) -> Option<IdleCheck> {
        self.idle.as_ref().map(|(earlier, activity)| IdleCheck {
            at: deadline.checked_sub(*earlier).unwrap_or(deadline),
            count: activity.count(),
            activity: activity.clone(),
        })
    }
}

impl Timer for ConnectionTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        self.sleep_until(self.now() + duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        Box::pin(DeadlineSleep {
            deadline,
            idle: self.idle_check(deadline),
            backstop: Arc::clone(&self.backstop),
        })
    }

    /// tokio's clock, which the backstop runs on (and tests can pause).
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn Sleep>>, new_deadline: Instant) {
        match sleep.as_mut().downcast_mut_pin::<DeadlineSleep>() {
            Some(sleep) => {
                let sleep = sleep.get_mut();
                sleep.deadline = new_deadline;
                sleep.idle = self.idle_check(new_deadline);
            }
            None => *sleep = self.sleep_until(new_deadline),
        }
    }
}

/// The idle part of a sleep: it ends at `at` unless bytes arrived meanwhile.
struct IdleCheck {
    at: Instant,
    /// The connection's read count when the sleep began.
    count: u64,
    activity: Activity,
}

/// Resolves at `deadline` (or at its idle check, if nothing was read), woken
/// by the connection's backstop.
struct DeadlineSleep {
    deadline: Instant,
    idle: Option<IdleCheck>,
    backstop: Backstop,
}

impl DeadlineSleep {
    /// When this sleep should next look: the idle check while it can still
    /// end the sleep, else the deadline.
    fn wake_at(&mut self) -> Instant {
        if let Some(idle) = &self.idle
            && idle.activity.count() != idle.count
        {
            // Bytes came: the client is sending a request, not idling.
            self.idle = None;
        }
        self.idle.as_ref().map_or(self.deadline, |idle| idle.at)
    }
}

impl Future for DeadlineSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let deadline = tokio::time::Instant::from_std(this.wake_at());
        if tokio::time::Instant::now() >= deadline {
            return Poll::Ready(());
        }
        let mut slot = this.backstop.lock().unwrap_or_else(PoisonError::into_inner);
        let backstop = slot.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        // A backstop set for later than this deadline would wake us late.
        if backstop.deadline() > deadline {
            backstop.as_mut().reset(deadline);
        }
        if backstop.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        // It fired for an earlier deadline: move it to this one.
        backstop.as_mut().reset(deadline);
        backstop.as_mut().poll(cx)
    }
}

impl Sleep for DeadlineSleep {}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_sleep_ends_at_its_deadline() {
        let timer = ConnectionTimer::new();
        let started = tokio::time::Instant::now();
        timer.sleep(Duration::from_secs(30)).await;
        assert_eq!(started.elapsed(), Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn later_sleeps_reuse_the_backstop_and_still_end_on_time() {
        let timer = ConnectionTimer::new();
        // A first request's sleep registers the backstop, then is dropped
        // (its head arrived), as hyper does.
        let mut first = timer.sleep(Duration::from_secs(30));
        assert!(futures_poll_once(&mut first).is_pending());
        drop(first);
        tokio::time::advance(Duration::from_secs(10)).await;

        // The next request's deadline is 40 s from the start; the backstop
        // still says 30 s and must be moved on when it fires.
        let started = tokio::time::Instant::now();
        timer.sleep(Duration::from_secs(30)).await;
        assert_eq!(started.elapsed(), Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn an_earlier_deadline_pulls_the_backstop_forward() {
        let timer = ConnectionTimer::new();
        let mut long = timer.sleep(Duration::from_secs(60));
        assert!(futures_poll_once(&mut long).is_pending());
        drop(long);
        let started = tokio::time::Instant::now();
        timer.sleep(Duration::from_secs(5)).await;
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn reset_moves_the_deadline() {
        let timer = ConnectionTimer::new();
        let mut sleep = timer.sleep(Duration::from_secs(5));
        let started = tokio::time::Instant::now();
        timer.reset(&mut sleep, timer.now() + Duration::from_secs(8));
        sleep.await;
        assert_eq!(started.elapsed(), Duration::from_secs(8));
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_ends_at_the_idle_timeout() {
        let activity = Activity::new();
        let timer = ConnectionTimer::with_idle_timeout(
            Duration::from_secs(5),
            Duration::from_secs(30),
            activity.clone(),
        );
        let started = tokio::time::Instant::now();
        timer.sleep(Duration::from_secs(30)).await;
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_sends_gets_the_whole_header_timeout() {
        let activity = Activity::new();
        let timer = ConnectionTimer::with_idle_timeout(
            Duration::from_secs(5),
            Duration::from_secs(30),
            activity.clone(),
        );
        let mut sleep = timer.sleep(Duration::from_secs(30));
        let started = tokio::time::Instant::now();
        assert!(futures_poll_once(&mut sleep).is_pending());
        tokio::time::advance(Duration::from_secs(2)).await;
        activity.bump_for_test();
        sleep.await;
        assert_eq!(started.elapsed(), Duration::from_secs(30));
    }

    /// Polls a sleep once with a no-op waker.
    fn futures_poll_once(sleep: &mut Pin<Box<dyn Sleep>>) -> Poll<()> {
        sleep
            .as_mut()
            .poll(&mut Context::from_waker(std::task::Waker::noop()))
    }
}
