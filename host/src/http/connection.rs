//! One client connection's socket, with the two deadlines hyper does not
//! keep: how long a client may leave the connection idle, and how long it may
//! leave a response unread.
//!
//! - **Idle**: every read that brings bytes bumps a counter the connection's
//!   [`ConnectionTimer`](super::timer::ConnectionTimer) shares. The
//!   header-read sleep hyper asks for between requests remembers the count
//!   it started at; if it is unchanged after `--idle-timeout`, the sleep ends
//!   early and hyper closes the connection.
//! - **Write**: a write the kernel cannot take (the client's window and the
//!   socket buffer are full: the client does not read) arms one sleep, kept
//!   per connection and reused; any write that goes through disarms it, and
//!   if it fires first the write fails with `TimedOut`, which ends the
//!   connection. Writes that do not block, which is nearly all of them, touch
//!   no timer.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

/// TCP keepalive on accepted sockets: first probe after this much silence...
const TCP_KEEPALIVE_IDLE: Duration = Duration::from_secs(60);
/// ...then one every this often (the kernel gives up after its probe count).
const TCP_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);

/// Socket options for an accepted connection.
pub fn tune_socket(stream: &TcpStream) {
    // Small responses go out at once rather than waiting on Nagle.
    let _ = stream.set_nodelay(true);
    // A client that vanished without a FIN (a dead NAT entry, a pulled cable)
    // is found by the kernel instead of holding its connection for ever.
    let keepalive = TcpKeepalive::new()
        .with_time(TCP_KEEPALIVE_IDLE)
        .with_interval(TCP_KEEPALIVE_INTERVAL);
    let _ = SockRef::from(stream).set_tcp_keepalive(&keepalive);
}

/// How many reads have brought bytes on one connection; shared with its timer.
#[derive(Debug, Clone, Default)]
pub struct Activity(Arc<AtomicU64>);

impl Activity {
    pub fn new() -> Self {
        Activity::default()
    }

    /// The current count.
    pub fn count(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Counts a read, as the stream does; for tests of the timer.
    #[cfg(test)]
    pub fn bump_for_test(&self) {
        self.bump();
    }

    fn bump(&self) {
        // One connection is polled by one thread at a time: no read-modify-write needed.
        self.0
            .store(self.count().wrapping_add(1), Ordering::Relaxed);
    }
}

/// A client's TCP stream with the read counter and the write deadline.
pub struct ClientStream {
    stream: TcpStream,
    activity: Activity,
    write_timeout: Duration,
    /// The write deadline's sleep, made the first time a write blocks.
    write_deadline: Option<Pin<Box<Sleep>>>,
    /// Whether the deadline is running (a write is blocked).
    write_blocked: bool,
}

impl ClientStream {
    pub fn new(stream: TcpStream, activity: Activity, write_timeout: Duration) -> Self {
        ClientStream {
            stream,
            activity,
            write_timeout,
            write_deadline: None,
            write_blocked: false,
        }
    }

    /// Called when a write returned `Pending`: starts the deadline if it is
    /// not running, and fails once it has passed.
    fn blocked(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let timeout = self.write_timeout;
        if !self.write_blocked {
            self.write_blocked = true;
            let deadline = Instant::now() + timeout;
            match &mut self.write_deadline {
                Some(sleep) => sleep.as_mut().reset(deadline),
                None => self.write_deadline = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
        }
        let passed = self
            .write_deadline
            .as_mut()
            .is_some_and(|sleep| sleep.as_mut().poll(cx).is_ready());
        if passed {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the client read nothing for {timeout:?}"),
            )));
        }
        Poll::Pending
    }

    fn wrote(
        &mut self,
        written: Poll<io::Result<usize>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        match written {
            Poll::Pending => self.blocked(cx),
            done => {
                self.write_blocked = false;
                done
            }
        }
    }
}

impl AsyncRead for ClientStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.stream).poll_read(cx, buf))?;
        if buf.filled().len() > before {
            this.activity.bump();
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.wrote(written, cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.wrote(written, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
