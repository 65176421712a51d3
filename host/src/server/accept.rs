//! The accept loop the app's listener and the admin endpoint's share: at
//! most a given number of connections open at once (past it clients wait in
//! the kernel's accept queue, so the server stays reachable), and a failed
//! accept (out of file descriptors, say) backs off and is logged at most
//! once a second rather than spinning or flooding the log.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::warn;

/// Pause after a failed accept (e.g. out of file descriptors) before retrying.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Least time between two log lines about failed accepts.
const ACCEPT_ERROR_LOG_INTERVAL: Duration = Duration::from_secs(1);

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
