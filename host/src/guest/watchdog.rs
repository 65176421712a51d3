//! The deadline watchdog: the only thing that advances wasmtime's epoch.
//!
//! Guest code is compiled with epoch checks. A periodic epoch ticker would
//! interrupt every call on every tick, so this thread only looks: while no
//! call is older than [`SLOW_CALL`] it checks every [`IDLE_TICK`] and does
//! nothing else; while one is, it bumps the epoch every [`SLOW_TICK`] (why
//! these ticks: `docs/architecture.md`, "Deadlines"). Each running call's
//! epoch callback then decides for itself: a young call continues, a slow
//! one yields its worker thread, an overdue one stops. A call that waits in
//! the host has no epoch check to reach, so on the same ticks the watchdog
//! also wakes every call past the timeout through
//! [`CallClocks::wake_overdue`]; the pool then drops the call.
//!
//! It stops when its [`Watchdog`] handle is dropped (cancelling its token)
//! or when the token it was given is cancelled.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use wasmtime::Engine;

use super::clock::CallClocks;

/// A call busy for this long starts yielding its worker thread.
pub const SLOW_CALL: Duration = Duration::from_millis(2);

/// How often the watchdog looks while no call is slow.
pub const IDLE_TICK: Duration = Duration::from_millis(10);

/// How often it looks (and bumps the epoch) while a call is slow.
pub const SLOW_TICK: Duration = Duration::from_millis(2);

/// The running watchdog; dropping it stops the thread and waits for it.
pub struct Watchdog {
    stop: CancellationToken,
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    /// Starts the watchdog thread for `engine`'s calls, timed by `clocks`.
    pub fn start(
        engine: Engine,
        clocks: Arc<CallClocks>,
        stop: CancellationToken,
    ) -> std::io::Result<Watchdog> {
        let token = stop.clone();
        let thread = std::thread::Builder::new()
            .name("watchdog".into())
            .spawn(move || {
                let mut tick = IDLE_TICK;
                while !token.is_cancelled() {
                    std::thread::sleep(tick);
                    tick = if clocks.any_older_than(SLOW_CALL) {
                        engine.increment_epoch();
                        clocks.wake_overdue();
                        SLOW_TICK
                    } else {
                        IDLE_TICK
                    };
                }
            })?;
        Ok(Watchdog {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
