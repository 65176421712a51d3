//! Guest stdout and stderr, line by line, into the host's log, bounded.
//!
//! A guest's `println!` lands in wasi:cli/stdout. Rather than mixing raw guest
//! bytes into the host's own output (which tools parse), each complete line
//! becomes one `tracing` event tagged with the task id and the stream, so a
//! multi-task log still says which task printed what.
//!
//! A guest is untrusted, and so is what it prints. Each line is cut at
//! [`GuestLogLimits::max_line`] (the rest of it is counted and the cut
//! marked), and each instance has a budget of lines and bytes per second over
//! both streams; lines past it are dropped and counted, and the count is
//! logged once the budget refills (or the instance ends). Once the budget is
//! spent, the rest of a write's lines are counted in one pass, and a write
//! larger than the [`MAX_WRITE`] that `check-write` grants traps, so no write
//! holds its host call for long. A line's text is escaped on its way into the
//! log (see `log_text`): it cannot forge or split a host line. The host's log
//! writer itself never blocks a task thread (see `main.rs`), so even a guest
//! within budget cannot stall the tasks behind a full stderr pipe.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use prometheus_client::metrics::counter::Counter;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

use super::limits::GuestLogLimits;
use crate::log_text;

/// Most bytes a guest may hand over in one write (WASI asks first).
const MAX_WRITE: usize = 64 * 1024;

/// The budget's accounting period.
const WINDOW: Duration = Duration::from_secs(1);

/// Most lines held while an instance starts; older ones are dropped.
const MAX_HELD: usize = 8;

/// A stdout or stderr of one task's instance, as given to its WASI context.
///
/// The guest opens a new stream handle for every write (Rust's `eprintln!`
/// writes a line in several pieces), so the partial line is kept here, shared
/// by all handles, and logged when its newline arrives.
#[derive(Clone)]
pub struct GuestLog {
    line: Arc<Mutex<Line>>,
    /// Whether `line` holds the start of a line: read without the lock when
    /// every call ends, which then costs one load when there is none.
    unfinished: Arc<AtomicBool>,
}

struct Line {
    stream: &'static str,
    /// While the instance starts: its lines, held rather than logged, so a
    /// start that fails can quote them in its one error line (see
    /// [`GuestLog::release`]). Bounded by [`MAX_HELD`].
    held: Option<Vec<String>>,
    /// Longest line kept (the budget's, copied: read on every write).
    max_line: usize,
    bytes: Vec<u8>,
    /// Bytes of the current line beyond `max_line`, dropped.
    cut: usize,
    budget: Arc<Mutex<Budget>>,
}

/// One instance's log budget, shared by its stdout and stderr.
pub struct Budget {
    task: u32,
    limits: GuestLogLimits,
    window_start: Instant,
    lines: u32,
    bytes: usize,
    /// Lines dropped in this window and not yet reported.
    dropped: u64,
    /// Every line dropped, for the metrics.
    dropped_total: Counter,
}

impl Budget {
    /// A fresh budget for a new instance of task `task`.
    pub fn new(task: u32, limits: GuestLogLimits, dropped_total: Counter) -> Arc<Mutex<Budget>> {
        Arc::new(Mutex::new(Budget {
            task,
            limits,
            window_start: Instant::now(),
            lines: 0,
            bytes: 0,
            dropped: 0,
            dropped_total,
        }))
    }

    /// Whether a line of `len` bytes may be logged now; counts it either way.
    fn admit(&mut self, len: usize) -> bool {
        let now = Instant::now();
        if now.duration_since(self.window_start) >= WINDOW {
            self.report_dropped();
            self.window_start = now;
            self.lines = 0;
            self.bytes = 0;
        }
        if self.lines >= self.limits.lines_per_sec
            || self.bytes.saturating_add(len) > self.limits.bytes_per_sec
        {
            self.dropped += 1;
            self.dropped_total.inc();
            return false;
        }
        self.lines += 1;
        self.bytes += len;
        true
    }

    /// Whether no further line fits in this window.
    fn is_spent(&self) -> bool {
        self.lines >= self.limits.lines_per_sec || self.bytes >= self.limits.bytes_per_sec
    }

    /// Counts `lines` dropped at once (the budget is spent).
    fn drop_lines(&mut self, lines: usize) {
        let lines = u64::try_from(lines).unwrap_or(u64::MAX);
        self.dropped = self.dropped.saturating_add(lines);
        self.dropped_total.inc_by(lines);
    }

    fn report_dropped(&mut self) {
        if self.dropped > 0 {
            tracing::warn!(
                target: "guest",
                task = self.task,
                dropped = self.dropped,
                "guest log over its budget of {} lines or {} bytes per second: lines dropped",
                self.limits.lines_per_sec,
                self.limits.bytes_per_sec
            );
            self.dropped = 0;
        }
    }
}

impl Drop for Budget {
    /// The instance is gone: say what it lost.
    fn drop(&mut self) {
        self.report_dropped();
    }
}

impl GuestLog {
    pub fn stdout(budget: &Arc<Mutex<Budget>>) -> Self {
        GuestLog::new(budget, "stdout")
    }

    pub fn stderr(budget: &Arc<Mutex<Budget>>) -> Self {
        GuestLog::new(budget, "stderr")
    }

    fn new(budget: &Arc<Mutex<Budget>>, stream: &'static str) -> Self {
        GuestLog {
            line: Arc::new(Mutex::new(Line {
                stream,
                held: Some(Vec::new()),
                max_line: budget
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .limits
                    .max_line,
                bytes: Vec::new(),
                cut: 0,
                budget: Arc::clone(budget),
            })),
            unfinished: Arc::new(AtomicBool::new(false)),
        }
    }

    fn push(&self, bytes: &[u8]) {
        // A poisoned lock only means another write panicked; the buffer is fine.
        let mut line = self.line.lock().unwrap_or_else(PoisonError::into_inner);
        line.push(bytes);
        self.unfinished
            .store(line.is_unfinished(), Ordering::Relaxed);
    }

    /// Logs a line the guest left without its newline (an `eprint!`):
    /// called when a request ends, so its output is not held until the next
    /// one.
    pub fn finish_line(&self) {
        if !self.unfinished.load(Ordering::Relaxed) {
            return;
        }
        let mut line = self.line.lock().unwrap_or_else(PoisonError::into_inner);
        line.emit_unfinished();
        self.unfinished.store(false, Ordering::Relaxed);
    }

    /// Ends the start-up hold: from now on lines are logged as they come.
    /// Returns the lines held (an unterminated last one included), already
    /// escaped; the caller logs them (`log`) or quotes them in an error.
    pub fn release(&self, log: bool) -> Vec<String> {
        let mut line = self.line.lock().unwrap_or_else(PoisonError::into_inner);
        line.emit_unfinished();
        self.unfinished.store(false, Ordering::Relaxed);
        let held = line.held.take().unwrap_or_default();
        if log {
            for text in &held {
                line.log(text);
            }
        }
        held
    }
}

impl IsTerminal for GuestLog {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestLog {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl Line {
    /// Whether a line has begun and not ended.
    fn is_unfinished(&self) -> bool {
        !self.bytes.is_empty() || self.cut > 0
    }

    /// Logs the line that has begun, if one has, as if it had ended.
    fn emit_unfinished(&mut self) {
        if self.is_unfinished() {
            self.emit();
        }
    }

    fn push(&mut self, mut bytes: &[u8]) {
        while let Some(newline) = memchr::memchr(b'\n', bytes) {
            self.keep(&bytes[..newline]);
            let spent = self.emit();
            bytes = &bytes[newline + 1..];
            if spent {
                // The budget is spent: the rest of this write's whole lines
                // are dropped too, counted in one pass.
                if let Some(last) = memchr::memrchr(b'\n', bytes) {
                    let lines = memchr::memchr_iter(b'\n', &bytes[..=last]).count();
                    self.budget().drop_lines(lines);
                    bytes = &bytes[last + 1..];
                }
                break;
            }
        }
        self.keep(bytes);
    }

    /// Adds to the current line what fits under the longest line; counts the rest.
    fn keep(&mut self, bytes: &[u8]) {
        let room = self.max_line.saturating_sub(self.bytes.len());
        let kept = bytes.len().min(room);
        self.bytes.extend_from_slice(&bytes[..kept]);
        self.cut = self.cut.saturating_add(bytes.len() - kept);
    }

    fn budget(&self) -> std::sync::MutexGuard<'_, Budget> {
        self.budget.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Logs the current line if the budget allows; says whether the budget
    /// is spent for the rest of its window.
    fn emit(&mut self) -> bool {
        let text = String::from_utf8_lossy(&self.bytes);
        let text = text.trim_end();
        let mut spent = false;
        // Blank lines (a panic message starts with one) say nothing in a log.
        if !text.is_empty() || self.cut > 0 {
            // Escaped before it is counted: the budget counts what is logged.
            let text = log_text::for_log(text, self.max_line);
            let text = if self.cut > 0 {
                format!("{text} [line cut: {} more bytes dropped]", self.cut)
            } else {
                text.into_owned()
            };
            if let Some(held) = &mut self.held {
                if held.len() == MAX_HELD {
                    held.remove(0);
                }
                held.push(text);
            } else {
                spent = self.log(&text);
            }
        }
        self.bytes.clear();
        self.cut = 0;
        spent
    }

    /// Logs one line of the guest's if the budget allows; says whether the
    /// budget is spent for the rest of its window.
    fn log(&self, text: &str) -> bool {
        let mut budget = self.budget();
        let admitted = budget.admit(text.len());
        let spent = budget.is_spent();
        if admitted {
            let task = budget.task;
            drop(budget);
            tracing::info!(target: "guest", task, stream = self.stream, "{text}");
        }
        spent
    }
}

impl Drop for Line {
    /// The instance is gone (a trap, say): log what it left without a newline.
    fn drop(&mut self) {
        self.emit_unfinished();
    }
}

impl OutputStream for GuestLog {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        // WASI makes a write past the `check-write` permit a trap.
        if bytes.len() > MAX_WRITE {
            return Err(StreamError::trap(
                "write to stdout or stderr larger than check-write permits",
            ));
        }
        self.push(&bytes);
        Ok(())
    }

    /// Guests flush after every write; lines are logged whole, at their newline.
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(MAX_WRITE)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestLog {
    async fn ready(&mut self) {}
}

impl AsyncWrite for GuestLog {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        // A partial write: the caller writes the rest in further calls.
        let taken = &buf[..buf.len().min(MAX_WRITE)];
        self.push(taken);
        Poll::Ready(Ok(taken.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream past its start-up hold.
    fn live(log: GuestLog) -> GuestLog {
        log.release(false);
        log
    }

    #[test]
    fn lines_printed_while_starting_are_held_then_released_in_order() {
        let budget = Budget::new(0, limits(100, 1 << 20), Counter::default());
        let log = GuestLog::stderr(&budget);
        log.push(b"first\nsecond\r\n");
        for i in 0..MAX_HELD {
            log.push(format!("more {i}\n").as_bytes());
        }
        log.push(b"unterminated");
        assert_eq!(budget.lock().unwrap().lines, 0, "nothing logged yet");
        let held = log.release(false);
        assert_eq!(held.len(), MAX_HELD, "the oldest dropped: {held:?}");
        assert_eq!(held.last().map(String::as_str), Some("unterminated"));
        assert_eq!(held[0], "more 1");
        log.push(b"after\n");
        assert_eq!(budget.lock().unwrap().lines, 1, "logged once released");
    }

    fn limits(lines_per_sec: u32, bytes_per_sec: usize) -> GuestLogLimits {
        GuestLogLimits {
            max_line: 16,
            lines_per_sec,
            bytes_per_sec,
        }
    }

    #[test]
    fn a_long_line_is_cut_and_counted() {
        let budget = Budget::new(0, limits(100, 1 << 20), Counter::default());
        let log = live(GuestLog::stdout(&budget));
        log.push(&[b'x'; 40]);
        log.push(b"yy\nnext");
        let line = log.line.lock().unwrap();
        // The cut line was logged at its newline; the next one has begun.
        assert_eq!(line.bytes, b"next");
        assert_eq!(line.cut, 0);
        assert_eq!(budget.lock().unwrap().lines, 1);
    }

    #[test]
    fn lines_past_the_budget_are_dropped_and_counted_across_both_streams() {
        let budget = Budget::new(0, limits(3, 1 << 20), Counter::default());
        let (stdout, stderr) = (
            live(GuestLog::stdout(&budget)),
            live(GuestLog::stderr(&budget)),
        );
        stdout.push(b"a\nb\n");
        stderr.push(b"c\nd\ne\n");
        let state = budget.lock().unwrap();
        assert_eq!(state.lines, 3);
        assert_eq!(state.dropped, 2);
    }

    #[test]
    fn bytes_past_the_budget_are_dropped() {
        let budget = Budget::new(0, limits(100, 10), Counter::default());
        let log = live(GuestLog::stdout(&budget));
        log.push(b"12345678\n1234\n12\n");
        let state = budget.lock().unwrap();
        assert_eq!((state.lines, state.bytes, state.dropped), (2, 10, 1));
    }

    #[test]
    fn a_spent_budget_counts_the_rest_of_a_write_at_once() {
        let budget = Budget::new(0, limits(2, 1 << 20), Counter::default());
        let mut log = live(GuestLog::stdout(&budget));
        let lines = "a\n".repeat(MAX_WRITE / 2);
        assert!(log.write(Bytes::from(lines.clone())).is_ok());
        let state = budget.lock().unwrap();
        assert_eq!(state.lines, 2);
        assert_eq!(state.dropped, (MAX_WRITE / 2 - 2) as u64);
        drop(state);
        let too_large = Bytes::from("a\n".repeat(MAX_WRITE / 2 + 1));
        assert!(matches!(log.write(too_large), Err(StreamError::Trap(_))));
    }

    #[test]
    fn the_budget_refills_after_its_window() {
        let budget = Budget::new(0, limits(1, 1 << 20), Counter::default());
        let log = live(GuestLog::stdout(&budget));
        log.push(b"a\nb\n");
        assert_eq!(budget.lock().unwrap().dropped, 1);
        budget.lock().unwrap().window_start -= WINDOW;
        log.push(b"c\n");
        let state = budget.lock().unwrap();
        assert_eq!((state.lines, state.dropped), (1, 0), "reported and reset");
    }
}
