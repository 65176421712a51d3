//! What each instance's wasmtime `Store` holds: its WASI context
//! (environment, clocks, random, stdout/stderr into the log), its
//! `wasi:http` context (for standard guests; outbound requests only to the
//! allowed origins), its resource table, its memory limiter, and the
//! [`TaskContext`] of the task it serves.

use std::sync::Arc;

use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::clock::CallClocks;
use super::limiter::MemoryLimiter;
use super::limits::CallLimits;
use super::log::{Budget, GuestLog};
use super::outbound::{Outbound, OutboundPolicy};
use crate::metrics::{Metrics, StoreOps};
use crate::store::{PrefixedStore, SharedStore, StoreError};

/// Most WASI resources (streams, pollables, `wasi:http` fields and bodies...)
/// an instance may hold at once; a guest that leaks handles gets an error
/// from WASI, then a trap, instead of growing the host's table without
/// bound. Some handles hold host memory the guest filled (a `fields` up to
/// [`MAX_FIELDS_BYTES`], a response body's stream up to two chunks of
/// [`MAX_BODY_CHUNK`](super::outbound::MAX_BODY_CHUNK)), so this also bounds
/// what an instance can make the host hold beside its own memory: about
/// 64 MiB.
pub const MAX_RESOURCES: usize = 1_000;

/// Most bytes one `wasi:http` `fields` the guest builds may take in the
/// host (wasmtime counts its in-memory size); a response's headers are
/// capped at 64 KiB on the wire anyway (`http/convert.rs`).
pub const MAX_FIELDS_BYTES: usize = 64 * 1024;

/// Most bytes one `get-random-bytes` call may ask for; more traps. Seeds and
/// session ids take tens of bytes; the host allocates what is asked before
/// the guest's memory limit can see it.
pub const MAX_RANDOM_BYTES: u64 = 1024 * 1024;

/// What every task of the app shares.
pub struct AppContext {
    /// Environment variables the guest sees (`--env`, `--env-file`).
    pub env: Vec<(String, String)>,
    /// The shared store as the app sees it: under `--store-prefix`.
    pub store: PrefixedStore,
    pub limits: CallLimits,
    /// Longest response body read from a `wasi:http` guest's stream: the
    /// HTTP layer's `--max-response`, which it checks for every guest.
    pub max_response: usize,
    /// Where guests may send HTTP requests (`--allow-outbound`).
    pub outbound: Arc<OutboundPolicy>,
    pub metrics: GuestMetrics,
}

/// What the guest's imports count.
pub struct GuestMetrics {
    /// Store calls, by operation and result.
    pub store: StoreOps,
    /// Log lines dropped over an instance's budget.
    pub log_dropped: prometheus_client::metrics::counter::Counter,
}

impl GuestMetrics {
    /// The guest's handles into `metrics`, for calls to `store`.
    pub fn new(metrics: &Metrics, store: &SharedStore) -> Self {
        GuestMetrics {
            store: metrics.store_ops(store.backend(), &StoreError::RESULTS),
            log_dropped: metrics.guest_log_dropped.clone(),
        }
    }
}

/// Who a task is and what it shares: the same for every instance the task
/// runs, cheap to clone.
#[derive(Clone)]
pub struct TaskContext {
    pub id: u32,
    pub count: u32,
    pub app: Arc<AppContext>,
    /// Where each task's call started, for its deadline.
    pub clocks: Arc<CallClocks>,
}

/// The data of one instance's wasmtime `Store`.
pub struct TaskState {
    wasi: WasiCtx,
    /// The guest's stdout and stderr, to log a last unterminated line when
    /// a call ends.
    output: [GuestLog; 2],
    pub(super) table: ResourceTable,
    http: WasiHttpCtx,
    outbound: Outbound,
    pub(super) context: TaskContext,
    limiter: MemoryLimiter,
}

impl TaskState {
    /// A fresh state for a new instance of the task `context`.
    pub fn new(context: TaskContext) -> Self {
        let log_budget = Budget::new(
            context.id,
            context.app.limits.guest_log,
            context.app.metrics.log_dropped.clone(),
        );
        let output = [GuestLog::stdout(&log_budget), GuestLog::stderr(&log_budget)];
        let wasi = WasiCtxBuilder::new()
            .envs(&context.app.env)
            .stdout(output[0].clone())
            .stderr(output[1].clone())
            .max_random_size(MAX_RANDOM_BYTES)
            .build();
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_RESOURCES);
        TaskState {
            wasi,
            output,
            table,
            http: {
                let mut http = WasiHttpCtx::new();
                http.set_field_size_limit(MAX_FIELDS_BYTES);
                http
            },
            outbound: Outbound {
                policy: Arc::clone(&context.app.outbound),
            },
            limiter: MemoryLimiter::new(context.app.limits.max_memory),
            context,
        }
    }

    /// A call ended: what the guest printed without a final newline is
    /// logged now, with the request it belongs to.
    pub fn end_of_call(&self) {
        for stream in &self.output {
            stream.finish_line();
        }
    }

    /// The instance has started (`started`) or failed to: what it printed
    /// meanwhile was held; it is logged now if it started, and its stderr
    /// lines are returned to quote in the error if not.
    pub fn end_of_start(&self, started: bool) -> Vec<String> {
        let [stdout, stderr] = &self.output;
        stdout.release(started);
        stderr.release(started)
    }

    pub fn limiter(&mut self) -> &mut MemoryLimiter {
        &mut self.limiter
    }

    pub fn context(&self) -> &TaskContext {
        &self.context
    }
}

impl WasiView for TaskState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for TaskState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outbound,
        }
    }
}
