//! What each answered request leaves behind: its line in the access log
//! (`--access-log`, on by default, one `tracing` event under the target
//! `wasmhost::access`) and its counts in the server's [`Metrics`].
//!
//! The line holds the method, the path (without the query, which often
//! carries tokens, and cut at [`MAX_LOGGED_PATH`] so a client's 64 KiB target
//! does not become a 64 KiB log line), the status, the task that answered,
//! the time from the request's head to its response, the response body's
//! bytes and whether the request waited for a free instance.

use std::time::{Duration, Instant};

use hyper::Method;
use hyper::body::Body as _;
use tracing::info;

use super::convert::Body;
use crate::metrics::Metrics;

/// Longest path written to the access log, in bytes.
pub const MAX_LOGGED_PATH: usize = 1024;

/// What the access log records of a request, taken before the request is
/// given away: an empty record when the access log is off, so the request
/// path pays nothing for it.
pub struct Started {
    at: Instant,
    /// Method and URI, cheap clones (the URI shares the request's bytes).
    head: Option<(Method, hyper::Uri)>,
}

impl Started {
    /// Starts the record of `request`; `log` says whether the access log is on.
    pub fn new<B>(request: &hyper::Request<B>, log: bool) -> Self {
        Started {
            at: Instant::now(),
            head: log.then(|| (request.method().clone(), request.uri().clone())),
        }
    }

    /// Records the answer: counts it, and logs its line if the log is on.
    pub fn finish(
        self,
        metrics: &Metrics,
        response: &hyper::Response<Body>,
        task: Option<usize>,
        waited: bool,
    ) {
        let took = self.at.elapsed();
        let status = response.status().as_u16();
        metrics.request(task, status, took);
        if let Some((method, uri)) = self.head {
            log_line(&method, uri.path(), status, task, took, response, waited);
        }
    }
}

fn log_line(
    method: &Method,
    path: &str,
    status: u16,
    task: Option<usize>,
    took: Duration,
    response: &hyper::Response<Body>,
    waited: bool,
) {
    let path = cut(path, MAX_LOGGED_PATH);
    let bytes = response.body().size_hint().exact().unwrap_or(0);
    let duration_us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
    info!(
        target: "wasmhost::access",
        method = %method,
        path = %path,
        status,
        task,
        duration_us,
        bytes,
        waited,
    );
}

/// `text` cut to at most `max` bytes, at a character boundary.
fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_paths_are_cut_at_a_character_boundary() {
        assert_eq!(cut("/short", 1024), "/short");
        let long = format!("/{}", "é".repeat(1000));
        let logged = cut(&long, MAX_LOGGED_PATH);
        assert!(logged.len() <= MAX_LOGGED_PATH);
        assert!(long.starts_with(logged));
        assert_eq!(cut("/aé", 3), "/a");
    }
}
