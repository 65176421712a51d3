//! The limits that keep one guest, one client or one burst from hurting the
//! rest (DESIGN.md section 8): per-request deadlines, per-task memory,
//! instance recycling, the line of requests waiting for an instance, and HTTP
//! sizes and timeouts.
//!
//! Each has a flag and a safe default; the README's "Limits and failures"
//! table lists them with what a client sees when one is hit.

use std::time::Duration;

/// Limits applied by every task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskLimits {
    /// A guest call running longer is interrupted and answered 504.
    pub request_timeout: Duration,
    /// Most linear memory one instance may grow to, in bytes.
    pub max_memory: usize,
    /// Replace an instance after this many requests (none: never).
    pub recycle_after: Option<u64>,
    /// Most requests waiting for a free instance, over all tasks; beyond it 503.
    pub max_pending: usize,
    /// Longest a request waits for a free instance; beyond it 503.
    pub queue_timeout: Duration,
    /// Most client connections open at once; more wait to be accepted.
    pub max_connections: usize,
    /// Largest request body, in bytes; larger gets 413.
    pub max_body: usize,
    /// Largest response body a guest may return, in bytes; larger gets 500.
    pub max_response: usize,
    /// Largest request head (request line and headers), in bytes; larger gets 431.
    pub max_header_size: usize,
    /// A client must send a whole request head within this, or is dropped.
    pub header_timeout: Duration,
    /// A keep-alive connection with no new request for this long is closed.
    pub idle_timeout: Duration,
    /// A client must send a request's whole body within this; else 408.
    pub body_timeout: Duration,
    /// A response the client takes nothing of for this long ends its connection.
    pub write_timeout: Duration,
    /// After SIGINT/SIGTERM, in-flight requests get this long to finish.
    pub drain_timeout: Duration,
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

impl Default for TaskLimits {
    fn default() -> Self {
        TaskLimits {
            request_timeout: Duration::from_secs(30),
            max_memory: 128 * MIB,
            recycle_after: None,
            max_pending: DEFAULT_MAX_CONNECTIONS,
            queue_timeout: Duration::from_secs(10),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_body: MIB,
            max_response: 16 * MIB,
            max_header_size: 64 * KIB,
            header_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(10),
            guest_log: GuestLogLimits::default(),
        }
    }
}

/// Default of `--max-connections`, and of `--max-pending`: a connection has
/// at most one request in the line, so the line can never be longer than
/// the connections are many, and the queue deadline is what bounds it.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

pub const KIB: usize = 1024;
pub const MIB: usize = 1024 * KIB;
const GIB: usize = 1024 * MIB;

/// Parses a byte size: `1048576`, `512KiB`, `128MiB`, `1GiB` (K, KB, M, MB,
/// G, GB mean the same powers of 1024; case does not matter).
pub fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: usize = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size like 1048576, 512KiB or 128MiB"))?;
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => KIB,
        "m" | "mb" | "mib" => MIB,
        "g" | "gb" | "gib" => GIB,
        other => return Err(format!("unknown size unit `{other}`; use KiB, MiB or GiB")),
    };
    number
        .checked_mul(scale)
        .ok_or_else(|| format!("`{text}` is too large"))
}

/// Parses a duration: `30s`, `500ms`, `2m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("`{text}` is not a duration like 30s or 500ms: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1048576"), Ok(MIB));
        assert_eq!(parse_size("512KiB"), Ok(512 * KIB));
        assert_eq!(parse_size("128mib"), Ok(128 * MIB));
        assert_eq!(parse_size("2G"), Ok(2 * GIB));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("99999999999999999999GiB").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("soon").is_err());
    }
}
