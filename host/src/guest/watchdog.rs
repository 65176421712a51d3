//! The deadline watchdog: the only thing that advances wasmtime's epoch.
//!
//! Guest code is compiled with epoch checks. A periodic epoch ticker would
//! interrupt every call on every tick; DESIGN.md section 11 measured that as
//! a real cost on a busy machine. So this thread only looks: it checks
//! whether any task has been busy longer than [`SLOW_CALL`], and bumps the
//! epoch only then.
//!
//! Waking up is not free either: on a saturated two-core machine a 2 ms tick
//! cost about 3 % of throughput (BENCHMARKS.md). So the watchdog looks every
//! [`IDLE_TICK`] while no call is slow, and every [`SLOW_TICK`] while one is,
//! so that a slow call yields within about `SLOW_CALL + IDLE_TICK` and then
//! every `SLOW_TICK`. Each running call's epoch callback (see
//! [`crate::instance`]) then decides for itself: a young call just continues,
//! a slow one yields its worker thread (which then serves other connections
//! on other instances), and one past the request timeout is stopped.
//!
//! A call that waits in the host (a `sleep`, a store call) has no epoch
//! check to reach, so on the same ticks the watchdog also wakes every call
//! past the request timeout through [`Board::wake_overdue`]; the task then
//! drops the call and answers 504.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::Engine;

use crate::board::Board;

/// A call busy for this long starts yielding its worker thread.
pub const SLOW_CALL: Duration = Duration::from_millis(2);

/// How often the watchdog looks while no call is slow.
pub const IDLE_TICK: Duration = Duration::from_millis(10);

/// How often it looks (and bumps the epoch) while a call is slow.
pub const SLOW_TICK: Duration = Duration::from_millis(2);

/// Starts the watchdog; it stops when `stop` receives or is dropped.
pub fn spawn(
    engine: Engine,
    board: Arc<Board>,
    stop: Receiver<()>,
) -> std::io::Result<JoinHandle<()>> {
    let slow_ms = u64::try_from(SLOW_CALL.as_millis()).unwrap_or(u64::MAX);
    std::thread::Builder::new()
        .name("watchdog".into())
        .spawn(move || {
            let mut tick = IDLE_TICK;
            while let Err(RecvTimeoutError::Timeout) = stop.recv_timeout(tick) {
                tick = if board.any_busy_for(slow_ms) {
                    engine.increment_epoch();
                    board.wake_overdue();
                    SLOW_TICK
                } else {
                    IDLE_TICK
                };
            }
        })
}
