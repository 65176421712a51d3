//! The pool: N persistent, isolated instances of the guest (JXcore's tasks),
//! the one owner of which instance is free, which is busy and since when.
//!
//! A connection gets a home task when it is accepted (round robin, so fresh
//! connections from one client reach different tasks); its requests run on
//! the home task's instance, inline on whatever worker thread polls the
//! connection, or on any other free instance if the home one is busy, so no
//! request waits behind a slow call while an instance is free. Instances are
//! not threads: `--tasks` instances are served by `--threads` workers.
//!
//! A call is admitted by the [`line`] (a permit per free instance), then
//! holds a [`Lease`]: taking the instance out of its slot and starting the
//! task's clock happen when the lease is made, putting the instance back,
//! stopping the clock and returning the permit when it is dropped, in that
//! order, so a permit is never free while its instance is not. The outcome
//! of a call is an [`Outcome`]; what a client sees of it is the HTTP
//! layer's business. A failed call's instance is replaced after its outcome
//! is handed back (so the 500 or 504 goes out at once) and before the task
//! takes its next request, for a [`Replacement`] cause that is logged.
//!
//! A call, once it holds its lease, runs to its end even if the request is
//! dropped (the client went away): dropping a guest call half-way would leave
//! its instance unusable, and any client could then make the pool throw
//! instances away in a loop. Its answer is dropped instead; only a deadline
//! or a trap costs an instance.
//!
//! A reload ([`Pool::reload`]) swaps the compiled app the pool instantiates
//! from: a call that ends on an instance of an older version hands in a new
//! one, and idle instances are replaced by a sweep that leases them like
//! requests, so no request waits for, or fails because of, a reload.

mod line;

use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use self::line::{Line, Permit};
use crate::guest::{
    AppContext, CallClocks, CallError, GuestApp, Instance, Request, Response, TaskContext, Watchdog,
};
use crate::log_text;
use crate::metrics::Metrics;

/// How the pool is sized and how long requests may wait for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    /// Instances (`--tasks`).
    pub tasks: u32,
    /// Most requests waiting for a free instance; beyond it `Busy` (`--max-pending`).
    pub max_pending: usize,
    /// Longest a request waits for a free instance; beyond it `Busy` (`--queue-timeout`).
    pub queue_timeout: Duration,
    /// Replace an instance after this many requests (`--recycle-after`).
    pub recycle_after: Option<u64>,
}

/// What became of one request given to the pool, and how it got there.
#[derive(Debug)]
pub struct Called {
    pub outcome: Outcome,
    /// The task whose instance took the call, if one did.
    pub task: Option<usize>,
    /// Whether the request waited in line for a free instance.
    pub waited: bool,
}

/// What became of one request given to the pool.
#[derive(Debug)]
pub enum Outcome {
    /// The guest answered.
    Served { task: usize, response: Response },
    /// No instance became free within the queue timeout, or the line was full.
    Busy,
    /// The call ran past the request timeout and was stopped.
    TimedOut,
    /// The guest trapped (a panic, `unreachable`...).
    Trapped,
    /// The guest tried to grow its memory past `--max-memory`.
    OutOfMemory,
    /// The task had no instance and could not make one.
    NoInstance,
}

/// Why a task's instance was replaced.
#[derive(Debug)]
pub enum Replacement {
    /// The call failed; the instance cannot be entered again.
    Failed(CallError),
    /// The task's last instance was lost: its replacement could not be made.
    Lost,
    /// It served `--recycle-after` requests.
    Recycled(u64),
    /// The app was reloaded: the instance runs an older version than this.
    Reloaded(u64),
}

impl Outcome {
    /// What became of the request, in a word, for the log.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Served { .. } => "served",
            Outcome::Busy => "busy",
            Outcome::TimedOut => "timeout",
            Outcome::Trapped => "trap",
            Outcome::OutOfMemory => "memory",
            Outcome::NoInstance => "no-instance",
        }
    }
}

impl Replacement {
    /// Whether the replacement is routine, not a sign of a misbehaving guest.
    pub fn is_routine(&self) -> bool {
        matches!(self, Replacement::Recycled(_) | Replacement::Reloaded(_))
    }

    /// The cause as a metric label.
    pub fn label(&self) -> &'static str {
        match self {
            Replacement::Failed(CallError::Timeout(_)) => "timeout",
            Replacement::Failed(CallError::MemoryLimit(_)) => "memory",
            Replacement::Failed(CallError::Trap(_)) => "trap",
            Replacement::Lost => "lost",
            Replacement::Recycled(_) => "recycled",
            Replacement::Reloaded(_) => "reloaded",
        }
    }
}

impl fmt::Display for Replacement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Replacement::Failed(error) => write!(f, "guest {error}"),
            Replacement::Lost => f.write_str("the last replacement could not be made"),
            Replacement::Recycled(limit) => write!(f, "recycled after {limit} requests"),
            Replacement::Reloaded(version) => write!(f, "the app was reloaded (version {version})"),
        }
    }
}

/// Why the pool could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("task {task} failed to start: {reason}")]
    Instance { task: usize, reason: String },
    #[error("cannot start the watchdog thread: {0}")]
    Watchdog(std::io::Error),
}

/// What one task has done, for the shutdown log.
#[derive(Debug, Default)]
pub struct TaskStats {
    /// Requests its instances answered, well or not.
    pub served: AtomicU64,
    /// Instances it replaced.
    pub replaced: AtomicU64,
}

/// The pool of task instances.
pub struct Pool {
    /// The app instances are made from; a reload swaps it.
    guest: RwLock<Arc<GuestApp>>,
    /// `guest`'s version, read after every call without the lock.
    version: AtomicU64,
    /// One cache line (or more) each: tasks run on different workers, and
    /// a slot's lock and counters change on every call.
    slots: Box<[CachePadded<Slot>]>,
    line: Line,
    recycle_after: Option<u64>,
    /// The home task of the next connection.
    next_home: AtomicUsize,
    metrics: Arc<Metrics>,
    /// Bumps the epoch for slow calls; stops with the pool.
    _watchdog: Watchdog,
}

/// One task: who it is, where its instance is, what it did.
struct Slot {
    context: TaskContext,
    parked: Mutex<Parked>,
    stats: TaskStats,
}

/// Where a task's instance is.
enum Parked {
    /// In the slot, free for a call.
    Ready(Instance),
    /// Held by a lease.
    Leased,
    /// Not replaced after a failed call (its replacement failed): the next
    /// lease makes a new one.
    Lost,
}

/// What a lease found in the slot it took.
enum Taken {
    Ready(Instance),
    Lost,
}

/// A task's instance, taken out of its slot for one call; see the module
/// documentation for the order of what making and dropping it do. It owns a
/// handle to the pool, so a call can outlive its request.
struct Lease {
    pool: Arc<Pool>,
    /// The task leased, an index into the pool's slots.
    task: usize,
    /// None once the call took it, until it is given back.
    instance: Option<Instance>,
    _permit: Permit,
}

impl Lease {
    fn slot(&self) -> &Slot {
        &self.pool.slots[self.task]
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let parked = match self.instance.take() {
            Some(instance) => Parked::Ready(instance),
            None => Parked::Lost,
        };
        let slot = self.slot();
        *slot.lock() = parked;
        slot.clocks().stop(self.task);
        // `_permit` is dropped after this: the instance is free first.
    }
}

/// A leased call that runs to its end even if it is dropped first: the
/// rest of it then runs as a task of its own and its outcome is dropped.
/// Boxed, so what is left of it can be moved to that task.
struct ToTheEnd<F: Future<Output = Outcome> + Send + 'static> {
    call: Option<Pin<Box<F>>>,
}

impl<F: Future<Output = Outcome> + Send + 'static> Future for ToTheEnd<F> {
    type Output = Outcome;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        let Some(call) = self.call.as_mut() else {
            return Poll::Pending;
        };
        let outcome = std::task::ready!(call.as_mut().poll(cx));
        self.call = None;
        Poll::Ready(outcome)
    }
}

impl<F: Future<Output = Outcome> + Send + 'static> Drop for ToTheEnd<F> {
    fn drop(&mut self) {
        if let Some(call) = self.call.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                let outcome = call.await;
                debug!(
                    outcome = outcome.label(),
                    "a request whose client went away ran to its end; its answer was dropped"
                );
            });
        }
    }
}

impl Slot {
    fn id(&self) -> usize {
        self.context.id as usize
    }

    /// The clocks every task shares; this slot's is [`Slot::id`]'s.
    fn clocks(&self) -> &CallClocks {
        &self.context.clocks
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Parked> {
        self.parked.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The version of the instance parked here, if one is.
    fn parked_version(&self) -> Option<u64> {
        match &*self.lock() {
            Parked::Ready(instance) => Some(instance.version()),
            Parked::Leased | Parked::Lost => None,
        }
    }

    /// What the slot holds, marking it leased; none if it is leased already.
    fn take(&self) -> Option<Taken> {
        match std::mem::replace(&mut *self.lock(), Parked::Leased) {
            Parked::Ready(instance) => Some(Taken::Ready(instance)),
            Parked::Lost => Some(Taken::Lost),
            Parked::Leased => None,
        }
    }
}

impl Pool {
    /// Starts the watchdog and instantiates every task's instance, each
    /// under the request timeout. The watchdog stops when the pool is
    /// dropped or `stop` is cancelled.
    pub async fn start(
        guest: GuestApp,
        app: AppContext,
        settings: PoolSettings,
        metrics: Arc<Metrics>,
        stop: CancellationToken,
    ) -> Result<Pool, StartError> {
        let tasks = settings.tasks.max(1);
        let count = tasks as usize;
        let clocks = Arc::new(CallClocks::new(count, app.limits.request_timeout));
        let watchdog = Watchdog::start(guest.engine().clone(), Arc::clone(&clocks), stop)
            .map_err(StartError::Watchdog)?;
        let app = Arc::new(app);
        let mut slots = Vec::with_capacity(count);
        for id in 0..tasks {
            let context = TaskContext {
                id,
                count: tasks,
                app: Arc::clone(&app),
                clocks: Arc::clone(&clocks),
            };
            let instance = instantiate(&guest, &context).await;
            clocks.stop(id as usize);
            let instance = instance.map_err(|e| StartError::Instance {
                task: id as usize,
                reason: log_text::one_line(&e),
            })?;
            slots.push(CachePadded::new(Slot {
                context,
                parked: Mutex::new(Parked::Ready(instance)),
                stats: TaskStats::default(),
            }));
        }
        Ok(Pool {
            version: AtomicU64::new(guest.version()),
            guest: RwLock::new(Arc::new(guest)),
            slots: slots.into_boxed_slice(),
            line: Line::new(count, settings.max_pending, settings.queue_timeout),
            recycle_after: settings.recycle_after,
            next_home: AtomicUsize::new(0),
            metrics,
            _watchdog: watchdog,
        })
    }

    /// The home task for a new connection.
    pub fn home_for_new_connection(&self) -> usize {
        self.next_home.fetch_add(1, Ordering::Relaxed) % self.slots.len()
    }

    /// Runs `request` on the instance of task `home`, or else on any free
    /// one. Dropped while it waits in line, the request is given up; dropped
    /// once it holds an instance, its call runs to its end (see the module
    /// documentation), and `hold` with it.
    pub async fn call<H: Send + 'static>(
        self: &Arc<Self>,
        home: usize,
        request: Request,
        hold: H,
    ) -> Called {
        let (permit, waited) = match self.line.admit().await {
            Ok(admitted) => admitted,
            Err(_) => {
                return Called {
                    outcome: Outcome::Busy,
                    task: None,
                    waited: true,
                };
            }
        };
        let mut lease = self.lease(home, permit);
        let task = lease.task;
        // A task whose last replacement failed tries again now (rare: not in
        // the boxed call, whose size every request pays to move).
        let instance = match lease.instance.take() {
            Some(instance) => instance,
            None => match self.replace(lease.slot(), Replacement::Lost).await {
                Some(instance) => instance,
                None => {
                    return Called {
                        outcome: Outcome::NoInstance,
                        task: Some(task),
                        waited,
                    };
                }
            },
        };
        // Allocated first, then written: the call is built in its box rather
        // than built on the stack and copied there.
        let call = Box::write(
            Box::new_uninit(),
            Pool::call_leased(lease, instance, request, hold),
        );
        let outcome = ToTheEnd {
            call: Some(Box::into_pin(call)),
        }
        .await;
        Called {
            outcome,
            task: Some(task),
            waited,
        }
    }

    /// The call itself, boxed by [`Pool::call`]; `hold` (what the request
    /// keeps counted, its body's bytes) is dropped when the call ends, even
    /// one whose client left.
    async fn call_leased<H: Send + 'static>(
        mut lease: Lease,
        mut instance: Instance,
        request: Request,
        hold: H,
    ) -> Outcome {
        let task = lease.task;
        let pool = Arc::clone(&lease.pool);
        let slot = &pool.slots[task];
        let clocks = slot.clocks();
        // A call waiting in the host meets no epoch check; the watchdog
        // wakes `overdue` for it instead. `biased`: the call is polled first,
        // so a call that never waits never polls the other branch.
        let result = tokio::select! {
            biased;
            result = instance.handle(&request) => result,
            () = clocks.overdue(task) => Err(CallError::Timeout(clocks.timeout())),
        };
        slot.stats.served.fetch_add(1, Ordering::Relaxed);
        let (outcome, cause) = match result {
            Ok(response) => {
                // A reload or a recycle replaces the instance after its
                // answer; if the new one cannot start, the old one serves on.
                let version = pool.version();
                let cause = if instance.version() != version {
                    Some(Replacement::Reloaded(version))
                } else {
                    pool.recycle_after
                        .filter(|&limit| instance.served() >= limit)
                        .map(Replacement::Recycled)
                };
                lease.instance = Some(instance);
                (Outcome::Served { task, response }, cause)
            }
            Err(error) => {
                let outcome = match error {
                    CallError::Timeout(_) => Outcome::TimedOut,
                    CallError::MemoryLimit(_) => Outcome::OutOfMemory,
                    CallError::Trap(_) => Outcome::Trapped,
                };
                drop(instance);
                (outcome, Some(Replacement::Failed(error)))
            }
        };
        drop((request, hold));
        if let Some(cause) = cause {
            // The answer goes out now; the lease (and with it the task) is
            // held until the replacement is in.
            tokio::spawn(async move {
                let fresh = lease.pool.replace(lease.slot(), cause).await;
                if fresh.is_some() {
                    lease.instance = fresh;
                }
                // Parks the instance (or marks the slot lost), then frees the task.
                drop(lease);
            });
        }
        outcome
    }

    /// Leases the home task's instance, or else any free one.
    ///
    /// The permit guarantees that one is free, but not where: while this scan
    /// passes one slot that is leased, a call there may end and another
    /// request take the slot ahead of the scan. So it goes round until it
    /// finds one. It always does: a lease gives its instance back before its
    /// permit, so there are always at least as many free slots as permits
    /// still looking for one.
    fn lease(self: &Arc<Self>, home: usize, permit: Permit) -> Lease {
        let mut id = home;
        loop {
            let slot = &self.slots[id];
            if let Some(taken) = slot.take() {
                slot.clocks().start(id);
                return Lease {
                    pool: Arc::clone(self),
                    task: id,
                    instance: match taken {
                        Taken::Ready(instance) => Some(instance),
                        Taken::Lost => None,
                    },
                    _permit: permit,
                };
            }
            id = (id + 1) % self.slots.len();
        }
    }

    /// The app instances are made from now.
    fn guest(&self) -> Arc<GuestApp> {
        Arc::clone(&self.guest.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// A new instance for `slot` of the current app, replacing one gone for
    /// `cause`; none if it cannot be made.
    async fn replace(&self, slot: &Slot, cause: Replacement) -> Option<Instance> {
        self.replace_from(&self.guest(), slot, cause).await.ok()
    }

    /// A new instance for `slot` of `guest`, replacing one gone for `cause`;
    /// logged at a level that says whether the cause is routine, and counted.
    async fn replace_from(
        &self,
        guest: &GuestApp,
        slot: &Slot,
        cause: Replacement,
    ) -> wasmtime::Result<Instance> {
        let id = slot.id();
        let replaced = slot.stats.replaced.fetch_add(1, Ordering::Relaxed) + 1;
        self.metrics.replaced(cause.label());
        let started = Instant::now();
        // A trap's message and a start-up error name the guest's functions:
        // the guest's text, escaped before it reaches the log.
        let why = log_text::one_line(&cause);
        match instantiate(guest, &slot.context).await {
            Ok(instance) => {
                let took_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                if cause.is_routine() {
                    info!(task = id, replaced, took_us, "instance replaced: {why}");
                } else {
                    warn!(task = id, replaced, took_us, "instance replaced: {why}");
                }
                Ok(instance)
            }
            Err(e) => {
                let error = log_text::one_line(&e);
                error!(
                    task = id,
                    replaced, "cannot replace the instance ({why}): {error}"
                );
                Err(e)
            }
        }
    }

    /// Makes `guest` the app every task serves, without failing a request
    /// (see the module documentation). Its first instance is started on a
    /// leased task before anything changes: if that fails, the error says
    /// why and the old app serves on.
    pub async fn reload(self: &Arc<Self>, guest: GuestApp) -> Result<(), String> {
        let guest = Arc::new(guest);
        let version = guest.version();
        let mut lease = self.lease(0, self.admit_patiently().await);
        let first = self
            .replace_from(&guest, lease.slot(), Replacement::Reloaded(version))
            .await
            .map_err(|e| log_text::one_line(&e))?;
        *self.guest.write().unwrap_or_else(PoisonError::into_inner) = guest;
        self.version.store(version, Ordering::Release);
        lease.instance = Some(first);
        drop(lease);
        // Idle instances of older versions; those leased now are replaced
        // when their call ends. A few rounds, since a lease may land on
        // another free slot than the one it was aimed at.
        for _ in 0..3 {
            let stale: Vec<usize> = (0..self.slots.len())
                .filter(|&id| self.slots[id].parked_version().is_some_and(|v| v < version))
                .collect();
            if stale.is_empty() {
                break;
            }
            for id in stale {
                let mut lease = self.lease(id, self.admit_patiently().await);
                let current = self.version();
                if lease
                    .instance
                    .as_ref()
                    .is_some_and(|i| i.version() < current)
                    && let Some(fresh) = self
                        .replace(lease.slot(), Replacement::Reloaded(current))
                        .await
                {
                    lease.instance = Some(fresh);
                }
            }
        }
        Ok(())
    }

    /// A permit for the pool's own work, waiting in line as long as it takes.
    async fn admit_patiently(&self) -> Permit {
        loop {
            if let Ok((permit, _)) = self.line.admit().await {
                return permit;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The version of the app the pool instantiates now.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// How many tasks there are.
    pub fn tasks(&self) -> usize {
        self.slots.len()
    }

    /// How many tasks hold an instance (parked or in a call).
    pub fn instances(&self) -> usize {
        self.slots
            .iter()
            .filter(|slot| !matches!(*slot.lock(), Parked::Lost))
            .count()
    }

    /// Requests waiting for a free instance now.
    pub fn waiting(&self) -> usize {
        self.line.waiting()
    }

    /// What each task has done, by task id.
    pub fn stats(&self) -> impl Iterator<Item = (usize, &TaskStats)> {
        self.slots.iter().map(|slot| (slot.id(), &slot.stats))
    }
}

/// A new instance for the task `context`, under a deadline of its own: the
/// task's clock restarts, and a start-up that waits in the host past the
/// request timeout is dropped like a call.
async fn instantiate(guest: &GuestApp, context: &TaskContext) -> wasmtime::Result<Instance> {
    let id = context.id as usize;
    let clocks = &context.clocks;
    clocks.start(id);
    tokio::select! {
        biased;
        created = Instance::new(guest, context) => created,
        () = clocks.overdue(id) => Err(wasmtime::Error::msg("start-up ran past the request timeout")),
    }
}
