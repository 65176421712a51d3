//! The `wasmhost` binary: parse the command line, set up the log, bind the
//! address, run the server until SIGINT or SIGTERM, and turn any error into
//! one line on stderr and a non-zero exit.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tracing::info;
use tracing_appender::non_blocking::{ErrorCounter, NonBlockingBuilder};
use tracing_subscriber::EnvFilter;
use wasmhost::cli::Cli;
use wasmhost::{Config, Server};

/// Log lines held for the writer thread before new ones are dropped. Guest
/// lines are cut at `--guest-log-max-line`, so this bounds the memory too.
const LOG_LINES_BUFFERED: usize = 4096;

/// How often the count of dropped log lines is looked at.
const DROP_REPORT_INTERVAL: Duration = Duration::from_secs(5);

/// How long the runtime's tasks get to stop once the server has drained.
const RUNTIME_SHUTDOWN: Duration = Duration::from_secs(1);

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Log lines go to a writer thread, never straight to stderr from a
    // worker thread: if stderr is a pipe nobody empties, lines are dropped
    // and counted, and the tasks serve on.
    let (writer, flush_on_exit) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(LOG_LINES_BUFFERED)
        .thread_name("log-writer")
        .finish(std::io::stderr());
    let dropped = writer.error_counter();
    tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            EnvFilter::try_from_env("WASMHOST_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    report_dropped_lines(dropped.clone());
    let result = Config::try_from(cli)
        .map_err(anyhow::Error::msg)
        .and_then(run);
    drop(flush_on_exit);
    if dropped.dropped_lines() > 0 {
        eprintln!(
            "wasmhost: {} log lines were dropped because stderr did not keep up",
            dropped.dropped_lines()
        );
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!(
                "wasmhost: error: {}",
                format!("{error:#}").replace('\n', " ")
            );
            ExitCode::FAILURE
        }
    }
}

/// Starts the server on `--threads` workers, prints the address once it
/// is ready, and serves until a shutdown signal.
fn run(config: Config) -> anyhow::Result<()> {
    let worker = AtomicUsize::new(0);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.process.threads)
        .thread_name_fn(move || format!("worker-{}", worker.fetch_add(1, Ordering::Relaxed)))
        .enable_all()
        .build()
        .context("cannot start the worker threads")?;
    let served = runtime.block_on(async {
        let server = Server::start(&config).await?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let addr = listener.local_addr()?;
        let shutdown = shutdown_signal()?;
        println!("listening on http://{addr}");
        std::io::stdout().flush()?;
        // Serving runs on a worker, so the connections it accepts start on
        // workers' own queues.
        tokio::spawn(server.serve(listener, shutdown))
            .await
            .context("the server task failed")?
            .context("serving failed")
    });
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN);
    if served.is_ok() {
        info!("stopped");
    }
    served
}

/// A future that resolves when SIGINT or SIGTERM arrives, logging which.
/// The handlers are installed before it is returned, so a signal sent once
/// `listening on` is printed is never missed.
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    let mut terminate: Signal = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut interrupt: Signal = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    Ok(async move {
        let name = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        };
        info!("{name}: shutting down");
    })
}

/// Logs, now and then, how many lines the log writer had to drop.
fn report_dropped_lines(dropped: ErrorCounter) {
    let spawned = std::thread::Builder::new()
        .name("log-drops".into())
        .spawn(move || {
            let mut reported = 0;
            loop {
                std::thread::sleep(DROP_REPORT_INTERVAL);
                let now = dropped.dropped_lines();
                if now > reported {
                    tracing::warn!(
                        dropped = now - reported,
                        "log lines dropped: stderr did not keep up"
                    );
                    reported = now;
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot watch for dropped log lines: {e}");
    }
}
