//! The deadline watchdog: the only thing that advances wasmtime's epoch.
//!
//! Guest code is compiled with epoch checks. A periodic epoch ticker would
//! interrupt every call on every tick; DESIGN.md section 11 measured that as
//! a real cost on a busy machine. So this thread only looks: every few
//! milliseconds it checks whether any task has been busy longer than
//! [`SLOW_CALL`], and bumps the epoch only then. Each running call's epoch
//! callback (see [`crate::instance`]) then decides for itself: a young call
//! just continues, a slow one yields to its event loop (so its task can hand
//! waiting requests to idle tasks), and one past the request timeout is
//! stopped. It also keeps the board's coarse clock, so the request path never
//! reads the system clock.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::Engine;

use crate::dispatch::Board;

/// A call busy for this long starts yielding to its event loop.
pub const SLOW_CALL: Duration = Duration::from_millis(2);

/// How often the watchdog looks.
const TICK: Duration = Duration::from_millis(2);

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
            while let Err(RecvTimeoutError::Timeout) = stop.recv_timeout(TICK) {
                board.tick();
                if board.any_busy_for(slow_ms) {
                    engine.increment_epoch();
                }
            }
        })
}
