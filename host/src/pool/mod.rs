//! The tasks: N persistent, isolated instances of the guest, and running a
//! request on one of them.
//!
//! Like a JXcore task, each task owns one instance with its own linear
//! memory, kept across requests. The task threads are the worker threads of
//! one tokio runtime (one per task). A connection gets a home task when it is
//! accepted (round robin, so fresh connections from one client reach
//! different tasks); its requests run on the home task's instance, inline on
//! whatever worker thread polls the connection, or on any other free
//! instance if the home one is busy, so no request waits behind a slow call
//! while an instance is free. A failed call answers 500 (trap, memory) or 504
//! (timeout), and the instance is replaced before the task takes its next
//! request.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use hyper::header::{HeaderValue, RETRY_AFTER};
use hyper::{Request, Response, StatusCode};
use tokio::sync::SemaphorePermit;
use tracing::{error, info, warn};

use crate::board::Board;
use crate::guest::{self, GuestApp};
use crate::http::{self, Body};
use crate::instance::{CallError, TaskInstance};
use crate::state::TaskIdentity;

/// All tasks of a host.
pub struct Tasks {
    slots: Vec<Slot>,
    guest: GuestApp,
    board: Arc<Board>,
    /// The home task of the next connection.
    next_home: AtomicUsize,
}

/// One task: who it is and where its instance is.
struct Slot {
    identity: TaskIdentity,
    instance: Mutex<State>,
    /// Instances this task has had to replace.
    restarts: AtomicU64,
}

/// Where a task's instance is.
enum State {
    /// Free, ready for a call.
    Ready(TaskInstance),
    /// Leased to a call in progress.
    Busy,
    /// Lost with a call that was abandoned (its client went away); the next
    /// lease instantiates a fresh one.
    Empty,
}

/// A task's instance, taken out of its slot for one call. Dropping the lease
/// puts it back (or marks the slot empty if the call was abandoned) and then
/// frees the claim on the board.
struct Lease<'a> {
    tasks: &'a Tasks,
    id: usize,
    instance: Option<TaskInstance>,
    _claim: SemaphorePermit<'a>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let slot = &self.tasks.slots[self.id];
        *slot.instance.lock().unwrap_or_else(PoisonError::into_inner) = match self.instance.take() {
            Some(instance) => State::Ready(instance),
            None => State::Empty,
        };
        self.tasks.board.set_free(self.id);
    }
}

impl Tasks {
    /// Instantiates every task's instance.
    pub async fn start(
        guest: GuestApp,
        identities: Vec<TaskIdentity>,
        board: Arc<Board>,
    ) -> anyhow::Result<Tasks> {
        let mut slots = Vec::with_capacity(identities.len());
        for identity in identities {
            let id = identity.id as usize;
            // Busy while instantiating, so start-up code has a deadline too,
            // also where it waits in the host.
            board.set_busy(id);
            let instance = tokio::time::timeout(
                board.request_timeout(),
                TaskInstance::new(&guest, &identity),
            )
            .await
            .unwrap_or_else(|_| {
                Err(wasmtime::Error::msg(
                    "start-up ran past the request timeout",
                ))
            });
            board.set_free(id);
            let instance = instance.map_err(|e| e.context(format!("task {id} failed to start")))?;
            slots.push(Slot {
                identity,
                instance: Mutex::new(State::Ready(instance)),
                restarts: AtomicU64::new(0),
            });
        }
        Ok(Tasks {
            slots,
            guest,
            board,
            next_home: AtomicUsize::new(0),
        })
    }

    /// The home task for a new connection.
    pub fn home_for_new_connection(&self) -> usize {
        self.next_home.fetch_add(1, Ordering::Relaxed) % self.slots.len()
    }

    /// Answers one request of a connection whose home task is `home`.
    pub async fn serve(
        &self,
        home: usize,
        request: Request<hyper::body::Incoming>,
    ) -> Response<Body> {
        let limits = &self.slots[home].identity.limits;
        let request = match http::to_guest(request, limits.max_body, limits.body_timeout).await {
            Ok(request) => request,
            Err(answer) => return answer,
        };
        let Ok(claim) = self.board.claim().await else {
            let mut busy = http::plain(StatusCode::SERVICE_UNAVAILABLE, "server busy, retry later");
            busy.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("1"));
            return busy;
        };
        let lease = self.lease(home, claim);
        self.call(lease, &request).await
    }

    /// Takes the home task's instance, or else any free one.
    ///
    /// The claim guarantees that one is free, but not where: while this scan
    /// passes one slot that is busy, a call there may end and another request
    /// take the slot ahead of the scan. So it goes round until it finds one.
    /// It always does: a slot's instance is put back before its claim is
    /// freed, so there are always at least as many free slots as claims
    /// still looking for one.
    fn lease<'a>(&'a self, home: usize, claim: SemaphorePermit<'a>) -> Lease<'a> {
        let mut id = home;
        loop {
            if let Some(instance) = self.take(id) {
                self.board.set_busy(id);
                return Lease {
                    tasks: self,
                    id,
                    instance,
                    _claim: claim,
                };
            }
            id = (id + 1) % self.slots.len();
        }
    }

    /// Marks slot `id` busy and returns what it held, unless it was busy
    /// already: its instance, or none if that was lost with an abandoned call.
    fn take(&self, id: usize) -> Option<Option<TaskInstance>> {
        let mut state = self.slots[id]
            .instance
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match std::mem::replace(&mut *state, State::Busy) {
            State::Ready(instance) => Some(Some(instance)),
            State::Empty => Some(None),
            State::Busy => None,
        }
    }

    /// Runs `request` on the leased instance and turns the outcome into a
    /// response, replacing the instance if the call failed or it is due.
    async fn call(&self, mut lease: Lease<'_>, request: &guest::Request) -> Response<Body> {
        let id = lease.id;
        let limits = &self.slots[id].identity.limits;
        let mut instance = match lease.instance.take() {
            Some(instance) => instance,
            None => match self.instantiate(id, "the last call was abandoned").await {
                Some(instance) => instance,
                None => return unavailable(),
            },
        };
        // A call waiting in the host meets no epoch check; the watchdog
        // wakes `overdue` for it instead. `biased`: the call is polled first,
        // so a call that never waits never polls the other branch.
        let outcome = tokio::select! {
            biased;
            outcome = instance.handle(request) => outcome,
            () = self.board.overdue(id) => Err(CallError::Timeout(self.board.request_timeout())),
        };
        self.board.count_served(id);
        let response = match outcome {
            Ok(response) => http::from_guest(response, limits.max_response).unwrap_or_else(|e| {
                warn!(task = id, "guest returned an invalid response: {e}");
                internal_error()
            }),
            Err(failure) => {
                let response = match failure {
                    CallError::Timeout(_) => {
                        http::plain(StatusCode::GATEWAY_TIMEOUT, "request timed out")
                    }
                    CallError::MemoryLimit(_) | CallError::Trap(_) => internal_error(),
                };
                match self.instantiate(id, &failure.to_string()).await {
                    Some(fresh) => instance = fresh,
                    None => return response,
                }
                response
            }
        };
        if let Some(limit) = limits.recycle_after
            && instance.served() >= limit
            && let Some(fresh) = self
                .instantiate(id, &format!("recycled after {limit} requests"))
                .await
        {
            instance = fresh;
        }
        lease.instance = Some(instance);
        response
    }

    /// A fresh instance for task `id`, replacing one lost for `cause`;
    /// logged and counted.
    async fn instantiate(&self, id: usize, cause: &str) -> Option<TaskInstance> {
        let slot = &self.slots[id];
        let restarts = slot.restarts.fetch_add(1, Ordering::Relaxed) + 1;
        let started = Instant::now();
        // The replacement's start-up gets a deadline of its own, not what is
        // left of the failed call's.
        self.board.set_busy(id);
        let created = tokio::select! {
            biased;
            created = TaskInstance::new(&self.guest, &slot.identity) => created,
            () = self.board.overdue(id) => Err(wasmtime::Error::msg("start-up ran past the request timeout")),
        };
        match created {
            Ok(instance) => {
                let took_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                if cause.starts_with("recycled") {
                    info!(task = id, restarts, took_us, "instance replaced: {cause}");
                } else {
                    warn!(
                        task = id,
                        restarts, took_us, "instance replaced: guest {cause}"
                    );
                }
                Some(instance)
            }
            Err(e) => {
                error!(
                    task = id,
                    restarts, "cannot replace the instance ({cause}): {e:#}"
                );
                None
            }
        }
    }

    /// Logs what each task did, at shutdown.
    pub fn log_stopped(&self) {
        for (id, slot) in self.slots.iter().enumerate() {
            info!(
                task = id,
                served = self.board.served(id),
                restarts = slot.restarts.load(Ordering::Relaxed),
                "task stopped"
            );
        }
    }
}

fn internal_error() -> Response<Body> {
    http::plain(StatusCode::INTERNAL_SERVER_ERROR, "internal server error")
}

fn unavailable() -> Response<Body> {
    http::plain(StatusCode::SERVICE_UNAVAILABLE, "no instance available")
}
