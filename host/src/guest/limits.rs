//! What one guest call, and one instance, may use: the per-call scope of the
//! settings. Each has a flag; the README's "Limits and failures" table lists
//! them with what a client sees when one is hit.

use std::time::Duration;

/// Limits every call of every instance runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallLimits {
    /// A call running longer is stopped and answered 504 (`--request-timeout`).
    pub request_timeout: Duration,
    /// Most bytes of linear memory and tables one instance may hold (`--max-memory`).
    pub max_memory: usize,
    /// How much one instance may write to the log.
    pub guest_log: GuestLogLimits,
}

/// How much one instance may write to the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestLogLimits {
    /// Longest line logged, in bytes; the rest of a longer line is dropped.
    pub max_line: usize,
    /// Lines an instance may log per second (both streams together).
    pub lines_per_sec: u32,
    /// Bytes an instance may log per second (both streams together).
    pub bytes_per_sec: usize,
}

impl Default for GuestLogLimits {
    fn default() -> Self {
        GuestLogLimits {
            max_line: 8 * 1024,
            lines_per_sec: 1000,
            bytes_per_sec: 1024 * 1024,
        }
    }
}

impl Default for CallLimits {
    fn default() -> Self {
        CallLimits {
            request_timeout: Duration::from_secs(30),
            max_memory: 128 * 1024 * 1024,
            guest_log: GuestLogLimits::default(),
        }
    }
}
