//! Guest stdout and stderr, line by line, into the host's log.
//!
//! A guest's `println!` lands in wasi:cli/stdout. Rather than mixing raw guest
//! bytes into the host's own output (which tools parse), each complete line
//! becomes one `tracing` event tagged with the task id and the stream, so a
//! multi-task log still says which task printed what.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Longest line kept before it is logged anyway, so a guest that never prints a
/// newline cannot make the host buffer without bound.
const MAX_LINE: usize = 16 * 1024;

/// A stdout or stderr of one task, as given to its WASI context.
#[derive(Debug, Clone, Copy)]
pub struct GuestLog {
    task: u32,
    stream: &'static str,
}

impl GuestLog {
    pub fn stdout(task: u32) -> Self {
        GuestLog {
            task,
            stream: "stdout",
        }
    }

    pub fn stderr(task: u32) -> Self {
        GuestLog {
            task,
            stream: "stderr",
        }
    }

    fn writer(self) -> LineWriter {
        LineWriter {
            log: self,
            line: Vec::new(),
        }
    }
}

impl IsTerminal for GuestLog {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestLog {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.writer())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.writer())
    }
}

/// Buffers a partial line until its newline (or a flush) arrives.
struct LineWriter {
    log: GuestLog,
    line: Vec<u8>,
}

impl LineWriter {
    fn push(&mut self, mut bytes: &[u8]) {
        while let Some(newline) = bytes.iter().position(|&b| b == b'\n') {
            self.line.extend_from_slice(&bytes[..newline]);
            self.emit();
            bytes = &bytes[newline + 1..];
        }
        self.line.extend_from_slice(bytes);
        if self.line.len() >= MAX_LINE {
            self.emit();
        }
    }

    fn emit(&mut self) {
        let line = String::from_utf8_lossy(&self.line);
        let line = line.strip_suffix('\r').unwrap_or(&line);
        tracing::info!(target: "guest", task = self.log.task, stream = self.log.stream, "{line}");
        self.line.clear();
    }

    fn flush_partial(&mut self) {
        if !self.line.is_empty() {
            self.emit();
        }
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        self.flush_partial();
    }
}

impl OutputStream for LineWriter {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        self.flush_partial();
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(MAX_LINE)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LineWriter {
    async fn ready(&mut self) {}
}

impl AsyncWrite for LineWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.flush_partial();
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush(cx)
    }
}
