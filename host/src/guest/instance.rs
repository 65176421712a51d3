//! One task's instance of the guest: a wasmtime `Store` and the app in it,
//! and the limits that contain a misbehaving guest.
//!
//! The instance persists across requests, so a call costs a call, not an
//! instantiation per request (BENCHMARKS.md has both). Each call runs under:
//! - a deadline (`--request-timeout`), enforced through epoch interruption:
//!   when the watchdog bumps the epoch, [`on_epoch`] lets a young call go
//!   on, makes a slow one yield its worker thread, and stops an overdue one
//!   (a call that waits in the host is stopped by the pool, see
//!   [`CallClocks::overdue`](super::CallClocks::overdue));
//! - a memory limit (`--max-memory`) on everything the instance allocates,
//!   see [`MemoryLimiter`](super::limiter::MemoryLimiter).
//!
//! After any failure the component model forbids entering the instance again,
//! so the pool replaces it from the shared compiled app: the guest's memory
//! starts over, the shared store and the other tasks are untouched.

use std::time::Duration;

use wasmtime::{Store, StoreContextMut, UpdateDeadline};

use wasmtime_wasi_http::p2::bindings::Proxy;

use super::bindings::Hosted;
use super::limiter::OutOfMemory;
use super::load::{GuestApp, Pre};
use super::state::{TaskContext, TaskState};
use super::watchdog::SLOW_CALL;
use super::{Request, Response, wasi_http};

/// Why a guest call did not produce a response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// It ran past the request timeout and was stopped.
    #[error("ran past the request timeout of {0:?}")]
    Timeout(Duration),
    /// It tried to grow its memory past the limit.
    #[error("tried to grow memory past the limit of {0} bytes")]
    MemoryLimit(usize),
    /// It trapped: a panic, `unreachable`, an out-of-bounds access...
    #[error("trapped: {0}")]
    Trap(String),
}

/// Why a new instance did not start, with what the guest printed to stderr
/// while starting (a panic's message, say).
#[derive(Debug, thiserror::Error)]
pub enum StartFailure {
    /// The guest's `start` returned an error: the app refuses its
    /// configuration (an empty session secret, say).
    #[error("the app refused to start: {reason}{}", printed(.stderr))]
    Refused { reason: String, stderr: Vec<String> },
    /// `start` trapped, ran too long or out of memory.
    #[error("the app's start-up {error}{}", printed(.stderr))]
    Failed {
        error: CallError,
        stderr: Vec<String>,
    },
}

/// What the guest printed to stderr while starting, for the error line;
/// Rust's hint about `RUST_BACKTRACE` says nothing here.
fn printed(stderr: &[String]) -> String {
    let lines: Vec<&str> = stderr
        .iter()
        .map(String::as_str)
        .filter(|line| !line.starts_with("note: run with `RUST_BACKTRACE"))
        .collect();
    if lines.is_empty() {
        String::new()
    } else {
        format!("; it printed: {}", lines.join(" | "))
    }
}

/// Raised from the epoch callback when a call is overdue.
#[derive(Debug, thiserror::Error)]
#[error("request timeout of {0:?} exceeded")]
struct TimedOut(Duration);

/// What a running call does when the watchdog bumps the epoch.
fn on_epoch(store: StoreContextMut<'_, TaskState>) -> wasmtime::Result<UpdateDeadline> {
    let context = store.data().context();
    let age = context.clocks.age(context.id as usize);
    let timeout = context.clocks.timeout();
    if age >= timeout {
        return Err(TimedOut(timeout).into());
    }
    if age >= SLOW_CALL {
        // Let the worker thread serve its other connections (on other
        // instances) meanwhile. `yield_now` (unlike a plain yield) lets tokio
        // poll the sockets before resuming us.
        return Ok(UpdateDeadline::YieldCustom(
            1,
            Box::pin(tokio::task::yield_now()),
        ));
    }
    Ok(UpdateDeadline::Continue(1))
}

/// One persistent instance of the guest app.
pub struct Instance {
    store: Store<TaskState>,
    handler: Handler,
    /// Requests this instance has served.
    served: u64,
    /// The version of the app it runs ([`GuestApp::version`]).
    version: u64,
}

/// The instance's exports, by the world it is of.
enum Handler {
    App(Hosted),
    WasiHttp(Proxy),
}

impl Instance {
    /// Instantiates the guest for the task `context` and calls its `start`
    /// (the SDK builds the app there). Start-up runs under the epoch
    /// deadline like a call; the caller starts the task's clock first.
    pub async fn new(guest: &GuestApp, context: &TaskContext) -> wasmtime::Result<Self> {
        let mut store = Store::new(guest.engine(), TaskState::new(context.clone()));
        store.limiter(|state| state.limiter());
        store.epoch_deadline_callback(on_epoch);
        store.set_epoch_deadline(1);
        let timeout = context.clocks.timeout();
        let instantiated = match guest.pre() {
            Pre::App(pre) => pre.instantiate_async(&mut store).await.map(Handler::App),
            Pre::WasiHttp(pre) => pre
                .instantiate_async(&mut store)
                .await
                .map(Handler::WasiHttp),
        };
        let handler = match instantiated {
            Ok(handler) => handler,
            Err(error) => {
                let stderr = store.data().end_of_start(false);
                let error = classify(error, timeout);
                return Err(StartFailure::Failed { error, stderr }.into());
            }
        };
        // A `wasi:http` component has no start function: instantiating it
        // ran its start-up.
        let started = match &handler {
            Handler::App(app) => app.wasmhost_app_handler().call_start(&mut store).await,
            Handler::WasiHttp(_) => Ok(Ok(())),
        };
        let stderr = store.data().end_of_start(matches!(started, Ok(Ok(()))));
        match started {
            Ok(Ok(())) => {}
            Ok(Err(reason)) => return Err(StartFailure::Refused { reason, stderr }.into()),
            Err(error) => {
                let error = classify(error, timeout);
                return Err(StartFailure::Failed { error, stderr }.into());
            }
        }
        Ok(Instance {
            store,
            handler,
            served: 0,
            version: guest.version(),
        })
    }

    /// Runs one request through the guest. After an error the instance must
    /// not be used again.
    pub async fn handle(&mut self, request: &Request) -> Result<Response, CallError> {
        self.served += 1;
        let timeout = self.store.data().context().clocks.timeout();
        self.store.set_epoch_deadline(1);
        let response = match &self.handler {
            Handler::App(app) => app
                .wasmhost_app_handler()
                .call_handle(&mut self.store, request)
                .await
                .map_err(|error| classify(error, timeout)),
            Handler::WasiHttp(proxy) => wasi_http::handle(&mut self.store, proxy, request)
                .await
                .map_err(|error| match error {
                    wasi_http::Failure::Call(error) => classify(error, timeout),
                    wasi_http::Failure::Answer(why) => CallError::Trap(why.to_string()),
                }),
        }?;
        self.store.data().end_of_call();
        Ok(response)
    }

    /// Requests this instance has served.
    pub fn served(&self) -> u64 {
        self.served
    }

    /// The version of the app it runs.
    pub fn version(&self) -> u64 {
        self.version
    }
}

fn classify(error: wasmtime::Error, timeout: Duration) -> CallError {
    if error.downcast_ref::<TimedOut>().is_some() {
        CallError::Timeout(timeout)
    } else if let Some(OutOfMemory(limit)) = error.downcast_ref::<OutOfMemory>() {
        CallError::MemoryLimit(*limit)
    } else if let Some(trap) = error.downcast_ref::<wasmtime::Trap>() {
        CallError::Trap(trap.to_string())
    } else {
        // Not a wasm trap code: a host error, named by its root cause.
        CallError::Trap(error.root_cause().to_string())
    }
}
