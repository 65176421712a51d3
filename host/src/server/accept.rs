//! The accept loop the app's listener and the admin endpoint's share: at
//! most a given number of connections open at once (past it clients wait in
//! the kernel's accept queue, so the server stays reachable), and a failed
//! accept (out of file descriptors, say) backs off and is logged at most
//! once a second rather than spinning or flooding the log.
//!
//! [`listen`] opens the listener with the longest accept queue the kernel
//! allows (`net.core.somaxconn`): with the usual 1,024, a burst of more new
//! connections than that overflows the queue even while the server has room
//! for them, and every dropped handshake costs its client a retransmit a
//! second later.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::warn;

/// Pause after a failed accept (e.g. out of file descriptors) before retrying.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Least time between two log lines about failed accepts.
const ACCEPT_ERROR_LOG_INTERVAL: Duration = Duration::from_secs(1);

/// The accept queue `listen` asks for; Linux shortens it to
/// `net.core.somaxconn` (4,096 by default since Linux 5.4).
const BACKLOG: u32 = 65_535;

/// A listener on `addr` with the longest accept queue the kernel allows.
pub fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    // As std's and tokio's own `bind` do on Unix: a restarted server can
    // bind its port while the old one's connections linger in TIME_WAIT.
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Accepts connections on `listener` until `shutdown` resolves, with at most
/// `limit` open at once: each is handed to `serve` with its slot, which the
/// connection must hold until it ends.
pub(super) async fn accept_until(
    listener: &TcpListener,
    limit: usize,
    shutdown: impl Future<Output = ()>,
    mut serve: impl FnMut(TcpStream, OwnedSemaphorePermit),
) {
    let open_slots = Arc::new(Semaphore::new(limit));
    let mut errors = AcceptErrors::default();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = accept(listener, &open_slots) => accepted,
            () = &mut shutdown => return,
        };
        match accepted {
            Ok((stream, slot)) => serve(stream, slot),
            Err(e) => {
                errors.note(&e);
                tokio::select! {
                    () = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                    () = &mut shutdown => return,
                }
            }
        }
    }
}

/// Waits for room for one more connection, then accepts one.
async fn accept(
    listener: &TcpListener,
    open_slots: &Arc<Semaphore>,
) -> std::io::Result<(TcpStream, OwnedSemaphorePermit)> {
    let slot = Arc::clone(open_slots)
        .acquire_owned()
        .await
        .map_err(|_| std::io::Error::other("the connection limit was closed"))?;
    let (stream, _peer) = listener.accept().await?;
    Ok((stream, slot))
}

/// Failed accepts, logged at most once per [`ACCEPT_ERROR_LOG_INTERVAL`] with
/// how many there were, so a host out of file descriptors does not flood its log.
#[derive(Default)]
struct AcceptErrors {
    last_logged: Option<Instant>,
    unlogged: u64,
}

impl AcceptErrors {
    fn note(&mut self, error: &std::io::Error) {
        self.unlogged += 1;
        let now = Instant::now();
        if self
            .last_logged
            .is_none_or(|at| now.duration_since(at) >= ACCEPT_ERROR_LOG_INTERVAL)
        {
            warn!(failures = self.unlogged, "accept failed: {error}");
            self.last_logged = Some(now);
            self.unlogged = 0;
        }
    }
}
