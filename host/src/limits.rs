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
    /// Largest request body, in bytes; larger gets 413.
    pub max_body: usize,
    /// Largest request head (request line and headers), in bytes; larger gets 431.
    pub max_header_size: usize,
    /// A client must send a whole request head within this, or is dropped;
    /// it also closes idle keep-alive connections.
    pub header_timeout: Duration,
    /// After SIGINT/SIGTERM, in-flight requests get this long to finish.
    pub drain_timeout: Duration,
}

impl Default for TaskLimits {
    fn default() -> Self {
        TaskLimits {
            request_timeout: Duration::from_secs(30),
            max_memory: 128 * MIB,
            recycle_after: None,
            max_pending: 1024,
            max_body: MIB,
            max_header_size: 64 * KIB,
            header_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(10),
        }
    }
}

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
