//! One task: an OS thread with its own event loop, instance and connections.
//!
//! This is JXcore's task rebuilt (DESIGN.md section 11): the thread accepts
//! connections from its own listening socket, serves them with hyper on a
//! current-thread tokio runtime, and calls the guest inline on the same
//! thread, so a request normally never crosses threads.
//!
//! The instance is leased to one call at a time. If a request finds it busy
//! (a slow call that yielded), the request is handed to an idle task through
//! the [`Board`] instead of waiting; this thread in turn runs requests other
//! tasks handed off whenever its own instance is free. A failed call answers
//! 500 (trap, memory) or 504 (timeout), and the instance is replaced before
//! the task takes its next request.

use std::cell::{Cell, RefCell};
use std::convert::Infallible;
use std::rc::Rc;
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::Duration;

use hyper::header::{HeaderValue, RETRY_AFTER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::LocalSet;
use tracing::{Instrument, debug, error, info, info_span, warn};

use crate::dispatch::{Board, Job};
use crate::guest::{self, GuestApp};
use crate::http::{self, Body};
use crate::instance::{CallError, TaskInstance};
use crate::state::TaskIdentity;

/// Pause after a failed accept (e.g. out of file descriptors) before retrying.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// What a task thread needs to start.
pub struct Task {
    pub identity: TaskIdentity,
    pub guest: GuestApp,
    pub listener: std::net::TcpListener,
    /// Connections other tasks accepted and handed to this one.
    pub inbox: tokio::sync::mpsc::UnboundedReceiver<std::net::TcpStream>,
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
            mut inbox,
            mut shutdown,
        } = self;
        let board = Arc::clone(&identity.board);
        let started = async {
            let listener = TcpListener::from_std(listener)?;
            // Busy while instantiating, so start-up code has a deadline too.
            board.set_busy(identity.id as usize);
            let instance = TaskInstance::new(&guest, &identity).await;
            board.set_free(identity.id as usize);
            anyhow::Ok((listener, instance?))
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

        let limits = identity.limits;
        let worker = Rc::new(Worker {
            slot: RefCell::new(Slot::Ready(instance)),
            guest,
            identity,
            restarts: Cell::new(0),
            served: Cell::new(0),
        });
        tokio::task::spawn_local(Rc::clone(&worker).run_handed_off());

        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .max_buf_size(limits.max_header_size);
        let connections = GracefulShutdown::new();
        let index = worker.index();
        let serve = |stream: TcpStream| {
            // Small responses go out at once rather than waiting on Nagle.
            let _ = stream.set_nodelay(true);
            let worker = Rc::clone(&worker);
            let service = service_fn(move |request| {
                let worker = Rc::clone(&worker);
                async move { Ok::<_, Infallible>(worker.serve(request).await) }
            });
            let connection =
                connections.watch(http.serve_connection(TokioIo::new(stream), service));
            let counted = Counted {
                board: Arc::clone(&board),
                task: index,
            };
            tokio::task::spawn_local(async move {
                if let Err(e) = connection.await {
                    debug!("connection ended: {e}");
                }
                drop(counted);
            });
        };
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _peer)) => match board.place_connection(index) {
                        None => serve(stream),
                        Some(other) => match stream.into_std() {
                            Ok(stream) => {
                                if let Err(stream) = board.send_connection(other, stream) {
                                    // That task is gone (shutting down): keep it.
                                    board.connection_closed(other);
                                    board.connection_opened(index);
                                    match TcpStream::from_std(stream) {
                                        Ok(stream) => serve(stream),
                                        Err(e) => warn!("lost a connection: {e}"),
                                    }
                                }
                            }
                            Err(e) => {
                                board.connection_closed(other);
                                warn!("cannot hand over a connection: {e}");
                            }
                        },
                    },
                    Err(e) => {
                        warn!("accept failed: {e}");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                },
                Some(stream) = inbox.recv() => match TcpStream::from_std(stream) {
                    Ok(stream) => serve(stream),
                    Err(e) => {
                        board.connection_closed(index);
                        warn!("cannot take a connection from another task: {e}");
                    }
                },
                _ = shutdown.changed() => break,
            }
        }

        // Stop accepting, then let in-flight requests finish.
        drop(listener);
        if tokio::time::timeout(limits.drain_timeout, connections.shutdown())
            .await
            .is_err()
        {
            warn!(
                "requests still in flight after the drain timeout of {:?}; closing them",
                limits.drain_timeout
            );
        }
        info!(
            task = worker.identity.id,
            served = worker.served.get(),
            restarts = worker.restarts.get(),
            "task stopped"
        );
    }
}

/// One open connection of a task, counted on the board until it closes.
struct Counted {
    board: Arc<Board>,
    task: usize,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.board.connection_closed(self.task);
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

/// Where a task's instance is.
enum Slot {
    /// Free, ready for a call.
    Ready(TaskInstance),
    /// Leased to a call in progress.
    Busy,
    /// Lost with a call that was abandoned (its client went away); the next
    /// lease instantiates a fresh one.
    Empty,
}

/// The per-thread state every connection of a task shares.
struct Worker {
    slot: RefCell<Slot>,
    guest: GuestApp,
    identity: TaskIdentity,
    restarts: Cell<u64>,
    /// Requests this task's instances answered (its own and handed-off ones).
    served: Cell<u64>,
}

/// The task's instance, taken out of its slot for one call. Dropping the
/// lease puts it back, or marks the slot empty if the call was abandoned.
struct Lease<'a> {
    worker: &'a Worker,
    instance: Option<TaskInstance>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let worker = self.worker;
        *worker.slot.borrow_mut() = match self.instance.take() {
            Some(instance) => Slot::Ready(instance),
            None => Slot::Empty,
        };
        worker.board().set_free(worker.index());
        if worker.board().has_jobs() {
            // Requests were handed off while we were busy: take one now.
            worker.board().task(worker.index()).wake.notify_one();
        }
    }
}

impl Worker {
    fn index(&self) -> usize {
        self.identity.id as usize
    }

    fn board(&self) -> &Board {
        &self.identity.board
    }

    /// The instance, if no call has it.
    fn lease(&self) -> Option<Lease<'_>> {
        let instance = match std::mem::replace(&mut *self.slot.borrow_mut(), Slot::Busy) {
            Slot::Ready(instance) => Some(instance),
            Slot::Empty => None,
            Slot::Busy => return None,
        };
        self.board().set_busy(self.index());
        Some(Lease {
            worker: self,
            instance,
        })
    }

    /// Answers one request from this task's connections.
    async fn serve(&self, request: Request<hyper::body::Incoming>) -> Response<Body> {
        let limits = &self.identity.limits;
        let request = match http::to_guest(request, limits.max_body).await {
            Ok(request) => request,
            Err(answer) => return answer,
        };
        match self.lease() {
            Some(lease) => self.call(lease, &request).await,
            None => self.hand_off(request).await,
        }
    }

    /// Our instance is busy: let an idle task answer.
    async fn hand_off(&self, request: guest::Request) -> Response<Body> {
        let (reply, answer) = oneshot::channel();
        if self.board().submit(Job { request, reply }).is_err() {
            let mut busy = http::plain(StatusCode::SERVICE_UNAVAILABLE, "server busy, retry later");
            busy.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("1"));
            return busy;
        }
        // An error means the job was dropped, which only happens at shutdown.
        answer.await.unwrap_or_else(|_| {
            http::plain(StatusCode::SERVICE_UNAVAILABLE, "server shutting down")
        })
    }

    /// Runs requests other tasks handed off, whenever our instance is free.
    async fn run_handed_off(self: Rc<Self>) {
        let entry = self.board().task(self.index());
        loop {
            entry.wake.notified().await;
            while let Some(lease) = self.lease() {
                let Some(job) = self.board().take() else {
                    break;
                };
                let response = self.call(lease, &job.request).await;
                // The client may have gone; nothing to do then.
                let _ = job.reply.send(response);
            }
        }
    }

    /// Runs `request` on the leased instance and turns the outcome into a
    /// response, replacing the instance if the call failed or it is due.
    async fn call(&self, mut lease: Lease<'_>, request: &guest::Request) -> Response<Body> {
        let mut instance = match lease.instance.take() {
            Some(instance) => instance,
            None => match self.instantiate("the last call was abandoned").await {
                Some(instance) => instance,
                None => return unavailable(),
            },
        };
        let outcome = instance.handle(request).await;
        self.served.set(self.served.get() + 1);
        let response = match outcome {
            Ok(response) => http::from_guest(response).unwrap_or_else(|e| {
                warn!(
                    task = self.identity.id,
                    "guest returned an invalid response: {e}"
                );
                internal_error()
            }),
            Err(failure) => {
                let response = match failure {
                    CallError::Timeout(_) => {
                        http::plain(StatusCode::GATEWAY_TIMEOUT, "request timed out")
                    }
                    CallError::MemoryLimit(_) | CallError::Trap(_) => internal_error(),
                };
                match self.instantiate(&failure.to_string()).await {
                    Some(fresh) => instance = fresh,
                    None => return response,
                }
                response
            }
        };
        if let Some(limit) = self.identity.limits.recycle_after
            && instance.served() >= limit
            && let Some(fresh) = self
                .instantiate(&format!("recycled after {limit} requests"))
                .await
        {
            instance = fresh;
        }
        lease.instance = Some(instance);
        response
    }

    /// A fresh instance replacing one lost for `cause`; logged and counted.
    async fn instantiate(&self, cause: &str) -> Option<TaskInstance> {
        let restarts = self.restarts.get() + 1;
        self.restarts.set(restarts);
        let task = self.identity.id;
        let started = std::time::Instant::now();
        match TaskInstance::new(&self.guest, &self.identity).await {
            Ok(instance) => {
                let took_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                if cause.starts_with("recycled") {
                    info!(task, restarts, took_us, "instance replaced: {cause}");
                } else {
                    warn!(task, restarts, took_us, "instance replaced: guest {cause}");
                }
                Some(instance)
            }
            Err(e) => {
                error!(
                    task,
                    restarts, "cannot replace the instance ({cause}): {e:#}"
                );
                None
            }
        }
    }
}

fn internal_error() -> Response<Body> {
    http::plain(StatusCode::INTERNAL_SERVER_ERROR, "internal server error")
}

fn unavailable() -> Response<Body> {
    http::plain(StatusCode::SERVICE_UNAVAILABLE, "no instance available")
}
