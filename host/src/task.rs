//! One task: an OS thread with its own event loop, instance and connections.
//!
//! This is JXcore's task rebuilt (DESIGN.md section 11): the thread accepts
//! connections from its own listening socket, serves them with hyper on a
//! current-thread tokio runtime, and calls the guest inline on the same
//! thread. No request crosses threads, which section 11 measured as the
//! biggest cost a design can add. Requests on one task take turns on its
//! instance; a trap answers 500 and swaps in a fresh instance.

use std::convert::Infallible;
use std::rc::Rc;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, watch};
use tokio::task::LocalSet;
use tracing::{Instrument, debug, error, info_span, warn};

use crate::guest::GuestApp;
use crate::http::{self, Body};
use crate::instance::TaskInstance;
use crate::state::TaskIdentity;

/// How long in-flight requests may take to finish after a shutdown signal.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Pause after a failed accept (e.g. out of file descriptors) before retrying.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// What a task thread needs to start.
pub struct Task {
    pub identity: TaskIdentity,
    pub guest: GuestApp,
    pub listener: std::net::TcpListener,
    pub shutdown: watch::Receiver<bool>,
}

impl Task {
    /// Starts the task's thread. It reports on `ready` once its instance
    /// exists and it is accepting, or why it could not start, and sends its
    /// id on `exited` when the thread ends, however it ends.
    pub fn spawn(
        self,
        ready: mpsc::Sender<anyhow::Result<()>>,
        exited: tokio::sync::mpsc::UnboundedSender<u32>,
    ) -> std::io::Result<thread::JoinHandle<()>> {
        let id = self.identity.id;
        thread::Builder::new()
            .name(format!("task-{id}"))
            .spawn(move || {
                let _notice = ExitNotice { id, exited };
                let span = info_span!("task", id);
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = ready.send(Err(e.into()));
                        return;
                    }
                };
                LocalSet::new().block_on(&runtime, self.run(ready).instrument(span));
            })
    }

    async fn run(self, ready: mpsc::Sender<anyhow::Result<()>>) {
        let Task {
            identity,
            guest,
            listener,
            mut shutdown,
        } = self;
        let started = async {
            let listener = TcpListener::from_std(listener)?;
            let instance = TaskInstance::new(&guest, &identity).await?;
            anyhow::Ok((listener, instance))
        };
        let (listener, instance) = match started.await {
            Ok(started) => {
                let _ = ready.send(Ok(()));
                started
            }
            Err(e) => {
                let _ = ready.send(Err(
                    e.context(format!("task {} failed to start", identity.id))
                ));
                return;
            }
        };

        let worker = Rc::new(Worker {
            instance: Mutex::new(instance),
            guest,
            identity,
        });
        let connections = GracefulShutdown::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _peer)) => {
                        // Small responses go out at once rather than waiting on Nagle.
                        let _ = stream.set_nodelay(true);
                        let worker = Rc::clone(&worker);
                        let service = service_fn(move |request| {
                            let worker = Rc::clone(&worker);
                            async move { Ok::<_, Infallible>(worker.serve(request).await) }
                        });
                        let connection = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service);
                        let connection = connections.watch(connection);
                        tokio::task::spawn_local(async move {
                            if let Err(e) = connection.await {
                                debug!("connection ended: {e}");
                            }
                        });
                    }
                    Err(e) => {
                        warn!("accept failed: {e}");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                },
                _ = shutdown.changed() => break,
            }
        }

        // Stop accepting, then let in-flight requests finish.
        drop(listener);
        if tokio::time::timeout(DRAIN_TIMEOUT, connections.shutdown())
            .await
            .is_err()
        {
            warn!("connections still open after {DRAIN_TIMEOUT:?}; closing them");
        }
    }
}

/// Tells the server a task thread ended, also when it ends by panicking.
struct ExitNotice {
    id: u32,
    exited: tokio::sync::mpsc::UnboundedSender<u32>,
}

impl Drop for ExitNotice {
    fn drop(&mut self) {
        // After shutdown nobody listens any more, which is fine.
        let _ = self.exited.send(self.id);
    }
}

/// The per-thread state every connection of a task shares.
struct Worker {
    instance: Mutex<TaskInstance>,
    guest: GuestApp,
    identity: TaskIdentity,
}

impl Worker {
    /// Answers one request with the task's instance.
    async fn serve(&self, request: Request<hyper::body::Incoming>) -> Response<Body> {
        let request = match http::to_guest(request, http::MAX_BODY_BYTES).await {
            Ok(request) => request,
            Err(answer) => return answer,
        };
        let mut instance = self.instance.lock().await;
        match instance.handle(&request).await {
            Ok(response) => http::from_guest(response).unwrap_or_else(|e| {
                warn!("guest returned an invalid response: {e}");
                http::plain(StatusCode::INTERNAL_SERVER_ERROR, "internal server error")
            }),
            Err(trap) => {
                warn!("guest trapped, replacing its instance: {trap:#}");
                match TaskInstance::new(&self.guest, &self.identity).await {
                    Ok(fresh) => *instance = fresh,
                    Err(e) => error!("cannot replace the instance: {e:#}"),
                }
                http::plain(StatusCode::INTERNAL_SERVER_ERROR, "internal server error")
            }
        }
    }
}
