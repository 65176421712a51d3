//! What the host counts, for the admin endpoint's `/metrics`: one
//! [`Metrics`] per server (so servers run in one test process never mix
//! their counts), encoded in Prometheus's text format by `prometheus-client`.
//!
//! Beside the layers rather than in one: each layer records what it sees
//! (HTTP the requests, the pool the replacements, the guest's imports the
//! store calls and dropped log lines), through handles made here. The request
//! path never looks a label set up in a map for the common cases: each task
//! keeps its own counters for the usual statuses and its own latency
//! histogram (a histogram takes a lock per observation, so one per task means
//! two calls never contend for it). Values that are a state rather than a
//! count (requests waiting, store size, instances present) are read when the
//! metrics are scraped.

use std::sync::OnceLock;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// A task id as a label, or `none` for a request no task answered.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct TaskLabel(pub Option<u32>);

impl EncodeLabelValue for TaskLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        use std::fmt::Write;
        match self.0 {
            Some(task) => write!(encoder, "{task}"),
            None => encoder.write_str("none"),
        }
    }
}

/// A response status as a label: a registered status as its code, any
/// other as its class (`2xx`...`5xx`, or `other` past 599), so a guest that
/// answers with every code from 200 to 999 adds a handful of series, not
/// hundreds per task.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
struct StatusLabel(u16);

impl StatusLabel {
    fn of(status: u16) -> StatusLabel {
        let registered =
            hyper::StatusCode::from_u16(status).is_ok_and(|code| code.canonical_reason().is_some());
        match status {
            _ if registered => StatusLabel(status),
            100..=599 => StatusLabel(status / 100),
            _ => StatusLabel(0),
        }
    }
}

impl EncodeLabelValue for StatusLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        use std::fmt::Write;
        match self.0 {
            0 => encoder.write_str("other"),
            class @ 1..=9 => write!(encoder, "{class}xx"),
            code => write!(encoder, "{code}"),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    task: TaskLabel,
    status: StatusLabel,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TaskLabels {
    task: TaskLabel,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CauseLabels {
    cause: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreLabels {
    backend: &'static str,
    operation: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

/// Statuses each task counts without a map lookup; others go through one.
const COMMON_STATUSES: [u16; 12] = [200, 201, 204, 301, 302, 304, 400, 404, 500, 502, 503, 504];

/// Upper bounds of the latency buckets, in seconds: 100 µs doubling to ~6.5 s.
fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.0001, 2.0, 17)
}

/// Every metric of one server.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    tasks: Box<[TaskMetrics]>,
    /// Requests no task answered (refused before the pool, or busy).
    unassigned: TaskMetrics,
    replaced: Family<CauseLabels, Counter>,
    reloads: Family<ResultLabels, Counter>,
    store_ops: Family<StoreLabels, Counter>,
    /// Guest log lines dropped over an instance's budget.
    pub guest_log_dropped: Counter,
    /// Client connections open now.
    pub connections: Gauge,
    /// Requests waiting for a free instance (set when scraped).
    pub waiting: Gauge,
    /// Tasks that hold an instance (set when scraped).
    pub instances: Gauge,
    /// The version of the app the tasks serve: 1 at start, one more per reload.
    pub app_version: Gauge,
    /// Memory store only: entries and bytes held (set when scraped).
    pub store_entries: Gauge,
    pub store_bytes: Gauge,
}

/// One task's handles for the request path.
pub struct TaskMetrics {
    task: TaskLabel,
    common: [OnceLock<Counter>; COMMON_STATUSES.len()],
    latency: Histogram,
}

impl Metrics {
    /// The metrics of a server with `tasks` tasks.
    pub fn new(tasks: u32) -> Metrics {
        let mut registry = Registry::with_prefix("wasmhost");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests answered, by task (none: no task answered) and status",
            requests.clone(),
        );
        let latency = Family::<TaskLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(latency_buckets())) as fn() -> Histogram,
        );
        registry.register_with_unit(
            "request_duration",
            "Time from a request's head to its response, by task",
            prometheus_client::registry::Unit::Seconds,
            latency.clone(),
        );
        let waiting = Gauge::default();
        registry.register(
            "requests_waiting",
            "Requests waiting for a free instance",
            waiting.clone(),
        );
        let replaced = Family::<CauseLabels, Counter>::default();
        registry.register(
            "instances_replaced",
            "Instances replaced, by cause",
            replaced.clone(),
        );
        let instances = Gauge::default();
        registry.register(
            "instances",
            "Tasks that hold an instance of the app",
            instances.clone(),
        );
        let guest_log_dropped = Counter::default();
        registry.register(
            "guest_log_lines_dropped",
            "Guest log lines dropped over an instance's budget",
            guest_log_dropped.clone(),
        );
        let connections = Gauge::default();
        registry.register(
            "connections_open",
            "Client connections open",
            connections.clone(),
        );
        let store_ops = Family::<StoreLabels, Counter>::default();
        registry.register(
            "store_operations",
            "Store calls by guests, by backend, operation and result",
            store_ops.clone(),
        );
        let store_entries = Gauge::default();
        registry.register(
            "store_entries",
            "Entries in the memory store",
            store_entries.clone(),
        );
        let store_bytes = Gauge::default();
        registry.register_with_unit(
            "store",
            "Bytes the memory store's entries take",
            prometheus_client::registry::Unit::Bytes,
            store_bytes.clone(),
        );
        let app_version = Gauge::default();
        registry.register(
            "app_version",
            "Version of the app the tasks serve: 1 at start, one more per reload",
            app_version.clone(),
        );
        app_version.set(1);
        let reloads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "app_reloads",
            "Reloads of the app, by result",
            reloads.clone(),
        );
        let task_metrics = |task: TaskLabel| TaskMetrics {
            task,
            common: Default::default(),
            latency: latency.get_or_create(&TaskLabels { task }).clone(),
        };
        let tasks = (0..tasks)
            .map(|id| task_metrics(TaskLabel(Some(id))))
            .collect();
        let unassigned = task_metrics(TaskLabel(None));
        Metrics {
            registry,
            requests,
            tasks,
            unassigned,
            replaced,
            reloads,
            store_ops,
            guest_log_dropped,
            connections,
            waiting,
            instances,
            app_version,
            store_entries,
            store_bytes,
        }
    }

    /// Counts one answered request: its task (if one answered), status and
    /// time taken.
    pub fn request(&self, task: Option<usize>, status: u16, took: Duration) {
        let task = task
            .and_then(|id| self.tasks.get(id))
            .unwrap_or(&self.unassigned);
        match COMMON_STATUSES.iter().position(|&s| s == status) {
            Some(index) => task.common[index]
                .get_or_init(|| {
                    self.requests
                        .get_or_create(&RequestLabels {
                            task: task.task,
                            status: StatusLabel(status),
                        })
                        .clone()
                })
                .inc(),
            None => self
                .requests
                .get_or_create(&RequestLabels {
                    task: task.task,
                    status: StatusLabel::of(status),
                })
                .inc(),
        };
        task.latency.observe(took.as_secs_f64());
    }

    /// Counts one replaced instance.
    pub fn replaced(&self, cause: &'static str) {
        self.replaced.get_or_create(&CauseLabels { cause }).inc();
    }

    /// Counts one reload, `ok` or `failed`.
    pub fn reload(&self, result: &'static str) {
        self.reloads.get_or_create(&ResultLabels { result }).inc();
    }

    /// The counters of every kind of store call on `backend`, by result:
    /// `results` names them (the store's own list, see
    /// `StoreError::RESULTS`), and a call is counted by its index there.
    pub fn store_ops(&self, backend: &'static str, results: &'static [&'static str]) -> StoreOps {
        let op = |operation| StoreOpCounter {
            family: self.store_ops.clone(),
            backend,
            operation,
            results: results
                .iter()
                .map(|&label| (label, OnceLock::new()))
                .collect(),
        };
        StoreOps {
            read: op("read"),
            set: op("set"),
            remove: op("remove"),
            touch: op("touch"),
            set_if_absent: op("set_if_absent"),
            compare_and_swap: op("compare_and_swap"),
            increment: op("increment"),
        }
    }

    /// Everything, in Prometheus's text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// The counters of each kind of store call on one backend.
pub struct StoreOps {
    pub read: StoreOpCounter,
    pub set: StoreOpCounter,
    pub remove: StoreOpCounter,
    pub touch: StoreOpCounter,
    pub set_if_absent: StoreOpCounter,
    pub compare_and_swap: StoreOpCounter,
    pub increment: StoreOpCounter,
}

/// The counters of one kind of store call on one backend, by result; each
/// made on first use, so the output lists only results that happened.
pub struct StoreOpCounter {
    family: Family<StoreLabels, Counter>,
    backend: &'static str,
    operation: &'static str,
    /// Each result's label, and its counter once made.
    results: Box<[(&'static str, OnceLock<Counter>)]>,
}

impl StoreOpCounter {
    /// Counts one call that ended in the result at `index` of the labels
    /// the counters were made with (an index past them is not counted).
    pub fn count(&self, index: usize) {
        let Some((label, counter)) = self.results.get(index) else {
            return;
        };
        counter
            .get_or_init(|| {
                self.family
                    .get_or_create(&StoreLabels {
                        backend: self.backend,
                        operation: self.operation,
                        result: label,
                    })
                    .clone()
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_task_and_status_with_latency_buckets() {
        let metrics = Metrics::new(2);
        metrics.request(Some(1), 200, Duration::from_millis(3));
        metrics.request(Some(1), 200, Duration::from_millis(3));
        metrics.request(Some(0), 418, Duration::from_micros(50));
        metrics.request(None, 503, Duration::from_micros(50));
        // A task id past the pool's counts as no task rather than panicking.
        metrics.request(Some(7), 200, Duration::ZERO);
        // Unregistered statuses share their class's series.
        for status in [299, 298, 599, 600, 999] {
            metrics.request(Some(0), status, Duration::ZERO);
        }
        let text = metrics.encode();
        assert!(
            text.contains(r#"wasmhost_requests_total{task="1",status="200"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"wasmhost_requests_total{task="0",status="418"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"wasmhost_requests_total{task="none",status="503"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"wasmhost_requests_total{task="none",status="200"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"wasmhost_requests_total{task="0",status="2xx"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"wasmhost_requests_total{task="0",status="5xx"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"wasmhost_requests_total{task="0",status="other"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"wasmhost_request_duration_seconds_count{task="1"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"wasmhost_request_duration_seconds_count{task="none"} 2"#),
            "{text}"
        );
    }

    #[test]
    fn store_calls_are_counted_by_backend_operation_and_result() {
        let metrics = Metrics::new(1);
        let read = metrics.store_ops("memory", &["ok", "unavailable"]).read;
        read.count(0);
        read.count(0);
        read.count(1);
        let text = metrics.encode();
        assert!(
            text.contains(r#"wasmhost_store_operations_total{backend="memory",operation="read",result="ok"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"wasmhost_store_operations_total{backend="memory",operation="read",result="unavailable"} 1"#),
            "{text}"
        );
        assert!(
            !text.contains("not_utf8"),
            "results that never happened are not listed"
        );
    }
}
