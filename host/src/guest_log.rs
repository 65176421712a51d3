//! Guest stdout and stderr, line by line, into the host's log.
//!
//! A guest's `println!` lands in wasi:cli/stdout. Rather than mixing raw guest
//! bytes into the host's own output (which tools parse), each complete line
//! becomes one `tracing` event tagged with the task id and the stream, so a
//! multi-task log still says which task printed what.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Longest line kept before it is logged anyway, so a guest that never prints a
/// newline cannot make the host buffer without bound.
const MAX_LINE: usize = 16 * 1024;

/// A stdout or stderr of one task's instance, as given to its WASI context.
///
/// The guest opens a new stream handle for every write (Rust's `eprintln!`
/// writes a line in several pieces), so the partial line is kept here, shared
/// by all handles, and logged when its newline arrives.
#[derive(Clone)]
pub struct GuestLog {
    line: Arc<Mutex<Line>>,
}

struct Line {
    task: u32,
    stream: &'static str,
    bytes: Vec<u8>,
}

impl GuestLog {
    pub fn stdout(task: u32) -> Self {
        GuestLog::new(task, "stdout")
    }

    pub fn stderr(task: u32) -> Self {
        GuestLog::new(task, "stderr")
    }

    fn new(task: u32, stream: &'static str) -> Self {
        GuestLog {
            line: Arc::new(Mutex::new(Line {
                task,
                stream,
                bytes: Vec::new(),
            })),
        }
    }

    fn push(&self, bytes: &[u8]) {
        // A poisoned lock only means another write panicked; the buffer is fine.
        let mut line = self.line.lock().unwrap_or_else(PoisonError::into_inner);
        line.push(bytes);
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
    fn push(&mut self, mut bytes: &[u8]) {
        while let Some(newline) = bytes.iter().position(|&b| b == b'\n') {
            self.bytes.extend_from_slice(&bytes[..newline]);
            self.emit();
            bytes = &bytes[newline + 1..];
        }
        self.bytes.extend_from_slice(bytes);
        if self.bytes.len() >= MAX_LINE {
            self.emit();
        }
    }

    fn emit(&mut self) {
        let text = String::from_utf8_lossy(&self.bytes);
        let text = text.trim_end();
        // Blank lines (a panic message starts with one) say nothing in a log.
        if !text.is_empty() {
            tracing::info!(target: "guest", task = self.task, stream = self.stream, "{text}");
        }
        self.bytes.clear();
    }
}

impl Drop for Line {
    /// The instance is gone: log what it left without a newline.
    fn drop(&mut self) {
        if !self.bytes.is_empty() {
            self.emit();
        }
    }
}

impl OutputStream for GuestLog {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    /// Guests flush after every write; lines are logged whole, at their newline.
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(MAX_LINE)
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
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush(cx)
    }
}
