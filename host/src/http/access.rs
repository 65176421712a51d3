//! What each answered request leaves behind: its line in the access log
//! (`--access-log on`, off by default, one `tracing` event under the target
//! [`ACCESS_TARGET`]) and its counts in the server's [`Metrics`].
//!
//! The line holds the method, the path (without the query, which often
//! carries tokens, and cut at [`MAX_LOGGED_PATH`] so a client's 64 KiB target
//! does not become a 64 KiB log line), the status, the task that answered,
//! the time from the request's head to its response, the response body's
//! bytes and whether the request waited for a free instance.
//!
//! The events are written by an [`AccessLayer`] of their own rather than by
//! `tracing-subscriber`'s formatter, which styles and formats every field
//! through `core::fmt` and costs more than the rest of a plain request (see
//! BENCHMARKS.md): the layer writes the fields, all strings, integers and
//! booleans, straight into one reused buffer, in the same layout as the
//! formatter's text or JSON lines, with the timestamp's date and time made
//! once a second.

use std::cell::RefCell;
use std::fmt;
use std::io::Write as _;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hyper::Method;
use hyper::body::Body as _;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber, info};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer};

use super::convert::Body;
use crate::log_text;
use crate::metrics::Metrics;

/// The `tracing` target of access-log events.
pub const ACCESS_TARGET: &str = "wasmhost::access";

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
    // hyper refuses control characters in a path; escaped all the same.
    let path = log_text::for_log(path, MAX_LOGGED_PATH);
    let path: &str = &path;
    let bytes = response.body().size_hint().exact().unwrap_or(0);
    let duration_us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
    info!(
        target: ACCESS_TARGET,
        method = method.as_str(),
        path,
        status,
        task,
        duration_us,
        bytes,
        waited,
    );
}

/// How the access layer writes its lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineFormat {
    /// `<time>  INFO wasmhost::access: method=GET path=/ status=200 ...`
    Text,
    /// `{"timestamp":"<time>","level":"INFO","fields":{...},"target":"wasmhost::access"}`
    Json,
}

/// Writes access-log events (target [`ACCESS_TARGET`]) to `writer`, and
/// ignores every other event; keep the access events from the formatter's
/// layer with a filter.
pub struct AccessLayer<W> {
    writer: W,
    format: LineFormat,
}

impl<W> AccessLayer<W> {
    pub fn new(writer: W, format: LineFormat) -> Self {
        AccessLayer { writer, format }
    }
}

thread_local! {
    /// Each thread's line buffer and its cached date and time, so a line
    /// costs no allocation and the calendar is worked out once a second.
    static LINE: RefCell<LineBuffer> = RefCell::new(LineBuffer::default());
}

#[derive(Default)]
struct LineBuffer {
    bytes: Vec<u8>,
    /// The second `date_time` was made for, and `YYYY-MM-DDTHH:MM:SS`.
    second: u64,
    date_time: String,
}

impl<S: Subscriber, W: for<'w> MakeWriter<'w> + 'static> Layer<S> for AccessLayer<W> {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() != ACCESS_TARGET {
            return;
        }
        LINE.with(|line| {
            let Ok(mut line) = line.try_borrow_mut() else {
                return;
            };
            let line = &mut *line;
            line.bytes.clear();
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            if line.second != now.as_secs() || line.date_time.is_empty() {
                line.second = now.as_secs();
                // `…:SS.000000Z` without its last eight bytes.
                let full = humantime::format_rfc3339_micros(
                    UNIX_EPOCH + Duration::from_secs(now.as_secs()),
                )
                .to_string();
                line.date_time = full[..full.len().saturating_sub(8)].to_owned();
            }
            let micros = now.subsec_micros();
            let json = self.format == LineFormat::Json;
            if json {
                line.bytes.extend_from_slice(b"{\"timestamp\":\"");
            }
            line.bytes.extend_from_slice(line.date_time.as_bytes());
            line.bytes.push(b'.');
            push_padded(&mut line.bytes, micros, 6);
            if json {
                line.bytes
                    .extend_from_slice(b"Z\",\"level\":\"INFO\",\"fields\":{");
            } else {
                line.bytes.extend_from_slice(b"Z  INFO ");
                line.bytes.extend_from_slice(ACCESS_TARGET.as_bytes());
                line.bytes.push(b':');
            }
            event.record(&mut Fields {
                bytes: &mut line.bytes,
                json,
                first: true,
            });
            if json {
                line.bytes.extend_from_slice(b"},\"target\":\"");
                line.bytes.extend_from_slice(ACCESS_TARGET.as_bytes());
                line.bytes.extend_from_slice(b"\"}");
            }
            line.bytes.push(b'\n');
            // The writer is the log's lossy, non-blocking one: a full pipe
            // drops the line rather than stalling the request.
            let _ = self.writer.make_writer().write_all(&line.bytes);
        });
    }
}

/// Writes each field of an event as `name=value` (text) or `"name":value`
/// (JSON).
struct Fields<'a> {
    bytes: &'a mut Vec<u8>,
    json: bool,
    first: bool,
}

impl Fields<'_> {
    fn name(&mut self, field: &Field) {
        if self.json {
            if !self.first {
                self.bytes.push(b',');
            }
            self.bytes.push(b'"');
            self.bytes.extend_from_slice(field.name().as_bytes());
            self.bytes.extend_from_slice(b"\":");
        } else {
            self.bytes.push(b' ');
            self.bytes.extend_from_slice(field.name().as_bytes());
            self.bytes.push(b'=');
        }
        self.first = false;
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.name(field);
        if self.json {
            push_json_string(self.bytes, value);
        } else {
            self.bytes.extend_from_slice(value.as_bytes());
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.name(field);
        push_u64(self.bytes, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.name(field);
        if value < 0 {
            self.bytes.push(b'-');
        }
        push_u64(self.bytes, value.unsigned_abs());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.name(field);
        self.bytes
            .extend_from_slice(if value { b"true" } else { b"false" });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // Not on the request path: every field the host logs is one of the above.
        let text = format!("{value:?}");
        self.record_str(field, &text);
    }
}

fn push_u64(bytes: &mut Vec<u8>, value: u64) {
    bytes.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// `value` in `width` digits, zeros in front.
fn push_padded(bytes: &mut Vec<u8>, value: u32, width: usize) {
    let start = bytes.len();
    push_u64(bytes, u64::from(value));
    let len = bytes.len() - start;
    if len < width {
        bytes.splice(start..start, std::iter::repeat_n(b'0', width - len));
    }
}

/// `text` as a JSON string, quotes included.
fn push_json_string(bytes: &mut Vec<u8>, text: &str) {
    bytes.push(b'"');
    for &byte in text.as_bytes() {
        match byte {
            b'"' => bytes.extend_from_slice(b"\\\""),
            b'\\' => bytes.extend_from_slice(b"\\\\"),
            0..0x20 | 0x7f => {
                let _ = write!(bytes, "\\u{byte:04x}");
            }
            _ => bytes.push(byte),
        }
    }
    bytes.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::{Arc, Mutex};
    use tracing_subscriber::layer::SubscriberExt;

    /// Collects what the layer writes.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Sink {
        type Writer = Sink;
        fn make_writer(&'a self) -> Sink {
            self.clone()
        }
    }

    fn logged(format: LineFormat) -> String {
        let sink = Sink::default();
        let subscriber =
            tracing_subscriber::registry().with(AccessLayer::new(sink.clone(), format));
        tracing::subscriber::with_default(subscriber, || {
            info!(
                target: ACCESS_TARGET,
                method = "GET",
                path = "/a\"b",
                status = 200u16,
                task = Some(3usize),
                duration_us = 41u64,
                bytes = 0u64,
                waited = false,
            );
            info!(target: ACCESS_TARGET, task = None::<usize>, status = 503u16);
        });
        String::from_utf8(sink.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn text_lines_look_like_the_formatters() {
        let text = logged(LineFormat::Text);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        let (time, rest) = lines[0].split_once("Z  INFO ").unwrap();
        assert!(time.len() == 26 && time.as_bytes()[10] == b'T', "{time}");
        assert!(
            humantime::parse_rfc3339(&format!("{time}Z")).is_ok(),
            "{time}"
        );
        assert_eq!(
            rest,
            r#"wasmhost::access: method=GET path=/a"b status=200 task=3 duration_us=41 bytes=0 waited=false"#
        );
        assert!(
            lines[1].ends_with("wasmhost::access: status=503"),
            "{}",
            lines[1]
        );
    }

    #[test]
    fn json_lines_parse_and_escape() {
        let text = logged(LineFormat::Json);
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first["level"], "INFO");
        assert_eq!(first["target"], ACCESS_TARGET);
        assert_eq!(first["fields"]["path"], "/a\"b");
        assert_eq!(first["fields"]["status"], 200);
        assert_eq!(first["fields"]["task"], 3);
        assert_eq!(first["fields"]["waited"], false);
        assert!(humantime::parse_rfc3339(first["timestamp"].as_str().unwrap()).is_ok());
        let mut control = Vec::new();
        push_json_string(&mut control, "\u{1}\\");
        assert_eq!(control, br#""\u0001\\""#);
    }

    #[test]
    fn numbers_are_written_in_full() {
        let mut bytes = Vec::new();
        push_u64(&mut bytes, 0);
        bytes.push(b' ');
        push_u64(&mut bytes, u64::MAX);
        bytes.push(b' ');
        push_padded(&mut bytes, 42, 6);
        assert_eq!(bytes, b"0 18446744073709551615 000042");
    }

    #[test]
    fn long_paths_are_cut_at_a_character_boundary() {
        use crate::log_text::for_log;
        assert_eq!(for_log("/short", 1024), "/short");
        let long = format!("/{}", "é".repeat(1000));
        let logged = for_log(&long, MAX_LOGGED_PATH);
        let kept = logged.strip_suffix('…').expect("the cut is marked");
        assert!(kept.len() <= MAX_LOGGED_PATH);
        assert!(long.starts_with(kept));
        assert_eq!(for_log("/aé", 3), "/a…");
    }
}
