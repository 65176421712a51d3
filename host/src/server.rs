//! The life of a wasmhost process: start, serve, shut down.
//!
//! Start-up does everything that can fail before printing `listening on`:
//! compile the guest once, bind the port, start the task threads (the worker
//! threads of one tokio runtime, one per task), open the store (connecting to
//! Redis, if it is one) and instantiate every task's
//! instance. Serving accepts connections and lets the tasks answer them.
//! SIGINT/SIGTERM stops accepting, lets in-flight requests finish (up to the
//! drain timeout), stops the watchdog, and returns.
//!
//! Why one runtime rather than a current-thread loop per task: both were
//! measured (BENCHMARKS.md). With a loop per task, each thread slept and woke
//! on its own connections' traffic, and on two cores shared with the load
//! generator that cost a quarter of the throughput even with no guest at
//! all; tokio's work-stealing workers kept the cores busy like the native
//! server does.

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use anyhow::Context;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use socket2::{SockRef, TcpKeepalive};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::{debug, info, warn};

use crate::board::Board;
use crate::cli::{Config, StoreUrl};
use crate::connection::{Activity, ClientStream};
use crate::guest::GuestApp;
use crate::header_timer::ConnectionTimer;
use crate::state::TaskIdentity;
use crate::store::{MemoryStore, RedisStore, Store};
use crate::task::Tasks;
use crate::watchdog;

/// Pause after a failed accept (e.g. out of file descriptors) before retrying.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Least time between two log lines about failed accepts.
const ACCEPT_ERROR_LOG_INTERVAL: Duration = Duration::from_secs(1);

/// TCP keepalive on accepted sockets: first probe after this much silence...
const TCP_KEEPALIVE_IDLE: Duration = Duration::from_secs(60);
/// ...then one every this often (the kernel gives up after its probe count).
const TCP_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);

/// Runs the server until a shutdown signal, then drains it.
pub fn run(config: Config) -> anyhow::Result<()> {
    let guest = GuestApp::load(&config.app, config.cache)?;
    let task_count = usize::try_from(config.tasks).context("too many tasks")?;
    let listener = std::net::TcpListener::bind(config.listen)
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;

    let board = Arc::new(Board::new(
        task_count,
        config.limits.max_pending,
        config.limits.queue_timeout,
        config.limits.request_timeout,
    ));
    let (stop_watchdog, watchdog_stop) = mpsc::channel();
    let watchdog = watchdog::spawn(guest.engine().clone(), Arc::clone(&board), watchdog_stop)
        .context("cannot start the watchdog thread")?;

    let thread_number = AtomicUsize::new(0);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(task_count)
        .thread_name_fn(move || format!("task-{}", thread_number.fetch_add(1, Ordering::Relaxed)))
        .enable_all()
        .build()
        .context("cannot start the task threads")?;
    let store = runtime.block_on(open_store(&config))?;
    let store_prefix: Arc<str> = Arc::from(config.store_prefix.as_str());
    let identities = (0..config.tasks)
        .map(|id| TaskIdentity {
            id,
            count: config.tasks,
            env: config.env.clone(),
            store: store.clone(),
            store_prefix: Arc::clone(&store_prefix),
            limits: config.limits,
            board: Arc::clone(&board),
        })
        .collect();
    // Serving runs on a worker, so connections it accepts start on workers.
    let served = runtime.block_on(async {
        let serving = serve(config, guest, identities, board, listener, addr);
        match tokio::spawn(serving).await {
            Ok(result) => result,
            Err(e) => Err(anyhow::anyhow!("the server task failed: {e}")),
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
    drop(stop_watchdog);
    let _ = watchdog.join();
    if served.is_ok() {
        info!("stopped");
    }
    served
}

async fn serve(
    config: Config,
    guest: GuestApp,
    identities: Vec<TaskIdentity>,
    board: Arc<Board>,
    listener: std::net::TcpListener,
    addr: SocketAddr,
) -> anyhow::Result<()> {
    let tasks = Arc::new(Tasks::start(guest, identities, board).await?);
    let listener = TcpListener::from_std(listener)?;
    println!("listening on http://{addr}");
    std::io::stdout().flush()?;
    info!(tasks = config.tasks, %addr, "serving {}", config.app.display());

    let limits = config.limits;
    let mut http = http1::Builder::new();
    http.header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_header_size);
    let connections = GracefulShutdown::new();
    // One permit per connection that may be open: past the limit, clients
    // wait in the kernel's accept queue and the server stays reachable.
    let open_slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut accept_errors = AcceptErrors::default();
    let signal = shutdown_signal();
    tokio::pin!(signal);
    loop {
        let accepted = tokio::select! {
            accepted = accept(&listener, &open_slots) => accepted,
            signal = &mut signal => {
                info!("{}: shutting down", signal?);
                break;
            }
        };
        let (stream, open_slot) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, say: back off rather than spin.
                accept_errors.note(&e);
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        tune_socket(&stream);
        let home = tasks.home_for_new_connection();
        let tasks = Arc::clone(&tasks);
        let service = service_fn(move |request| {
            let tasks = Arc::clone(&tasks);
            async move { Ok::<_, Infallible>(tasks.serve(home, request).await) }
        });
        // Each connection has a timer of its own (see `header_timer`),
        // sharing the socket's read counter for the idle timeout.
        let activity = Activity::new();
        let stream = ClientStream::new(stream, activity.clone(), limits.write_timeout);
        let connection = connections.watch(
            http.clone()
                .timer(ConnectionTimer::with_idle_timeout(
                    limits.idle_timeout,
                    limits.header_timeout,
                    activity,
                ))
                .serve_connection(TokioIo::new(stream), service),
        );
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                debug!("connection ended: {e}");
            }
            drop(open_slot);
        });
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
    tasks.log_stopped();
    Ok(())
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

/// Socket options for an accepted connection.
fn tune_socket(stream: &TcpStream) {
    // Small responses go out at once rather than waiting on Nagle.
    let _ = stream.set_nodelay(true);
    // A client that vanished without a FIN (a dead NAT entry, a pulled cable)
    // is found by the kernel instead of holding its connection for ever.
    let keepalive = TcpKeepalive::new()
        .with_time(TCP_KEEPALIVE_IDLE)
        .with_interval(TCP_KEEPALIVE_INTERVAL);
    let _ = SockRef::from(stream).set_tcp_keepalive(&keepalive);
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

/// Resolves when SIGINT or SIGTERM arrives, naming it.
async fn shutdown_signal() -> anyhow::Result<&'static str> {
    let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    Ok(tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
    })
}

/// Opens the store the config names. A memory store purges its expired
/// entries on a thread of its own; Redis expires entries itself.
async fn open_store(config: &Config) -> anyhow::Result<Store> {
    Ok(match &config.store {
        StoreUrl::Memory => MemoryStore::new(config.store_limits).into(),
        StoreUrl::Redis(url) => {
            let store = RedisStore::connect(url, config.store_limits, config.store_timeout).await?;
            info!("session store: Redis at {}", store.address());
            store.into()
        }
    })
}
