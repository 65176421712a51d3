//! The life of a wasmhost process: start, serve, shut down.
//!
//! Start-up does everything that can fail before printing `listening on`:
//! compile the guest once, bind one socket per task, start the task threads
//! and wait until every one has its instance. Then the main thread only keeps
//! the store tidy and waits for SIGINT/SIGTERM (or a task dying); on either it
//! tells every task to stop accepting and finish what is in flight, and joins
//! them, like mini-redis's broadcast shutdown.

use std::io::Write;
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::cli::{Config, StoreUrl};
use crate::dispatch::Board;
use crate::guest::GuestApp;
use crate::listener;
use crate::state::TaskIdentity;
use crate::store::MemoryStore;
use crate::task::Task;
use crate::watchdog;

/// How often expired store entries are purged.
const PURGE_INTERVAL: Duration = Duration::from_secs(1);

/// Runs the server until a shutdown signal, then drains it.
pub fn run(config: Config) -> anyhow::Result<()> {
    let guest = GuestApp::load(&config.app, config.cache)?;
    let store = match config.store {
        StoreUrl::Memory => MemoryStore::new(config.store_limits),
    };
    let task_count = usize::try_from(config.tasks).context("too many tasks")?;
    let listeners = listener::bind(config.listen, task_count)
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listeners[0].local_addr()?;

    let (board, inboxes) = Board::new(task_count, config.limits.max_pending);
    let board = Arc::new(board);
    let (stop_watchdog, watchdog_stop) = mpsc::channel();
    let watchdog = watchdog::spawn(guest.engine().clone(), Arc::clone(&board), watchdog_stop)
        .context("cannot start the watchdog thread")?;

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (ready_tx, ready_rx) = mpsc::channel();
    let (exited_tx, mut exited_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut threads = Vec::with_capacity(task_count);
    for ((id, listener), inbox) in (0..config.tasks).zip(listeners).zip(inboxes) {
        let task = Task {
            identity: TaskIdentity {
                id,
                count: config.tasks,
                env: config.env.clone(),
                store: store.clone(),
                limits: config.limits,
                board: Arc::clone(&board),
            },
            guest: guest.clone(),
            listener,
            inbox,
            shutdown: shutdown_rx.clone(),
        };
        let thread = task
            .spawn(ready_tx.clone(), exited_tx.clone())
            .context("cannot start a task thread")?;
        threads.push(thread);
    }
    drop(ready_tx);

    let started = (0..task_count).try_for_each(|_| {
        ready_rx
            .recv()
            .context("a task thread died while starting")?
    });
    if let Err(e) = started {
        let _ = shutdown_tx.send(true);
        join(threads);
        drop(stop_watchdog);
        let _ = watchdog.join();
        return Err(e);
    }

    println!("listening on http://{addr}");
    std::io::stdout().flush()?;
    info!(tasks = config.tasks, %addr, "serving {}", config.app.display());

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        tokio::spawn(purge_expired(store, shutdown_rx.clone()));
        tokio::select! {
            signal = shutdown_signal() => info!("{}: shutting down", signal?),
            Some(id) = exited_rx.recv() => warn!("task {id} stopped unexpectedly; shutting down"),
        }
        anyhow::Ok(())
    })?;
    let _ = shutdown_tx.send(true);
    join(threads);
    drop(stop_watchdog);
    let _ = watchdog.join();
    info!("stopped");
    Ok(())
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

/// The store's background sweep: frees expired entries until shutdown.
async fn purge_expired(store: MemoryStore, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(PURGE_INTERVAL);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let purged = store.purge_expired();
                if purged > 0 {
                    tracing::debug!(purged, "expired store entries purged");
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}

fn join(threads: Vec<JoinHandle<()>>) {
    for thread in threads {
        if thread.join().is_err() {
            warn!("a task thread panicked");
        }
    }
}
