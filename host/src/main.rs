//! The `wasmhost` binary: parse the command line, set up the log, bind the
//! addresses, run the server until SIGINT or SIGTERM (reloading the app on
//! SIGHUP), and turn any error into one line on stderr and a non-zero exit.
//! `wasmhost compile` and `wasmhost new` run once and exit.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;

/// See host/Cargo.toml: the allocator every request path allocation goes through.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tracing::info;
use tracing_appender::non_blocking::{ErrorCounter, NonBlockingBuilder};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::{Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use wasmhost::access::{ACCESS_TARGET, AccessLayer, LineFormat};
use wasmhost::cli::{self, ArgsError, Cli, Command, LogFormat};
use wasmhost::server::Reloader;
use wasmhost::{Config, Server};

/// Log lines held for the writer thread before new ones are dropped. Guest
/// lines are cut at `--guest-log-max-line`, so this bounds the memory too.
const LOG_LINES_BUFFERED: usize = 4096;

/// Bytes of log lines the writer thread gathers into one write to stderr.
const LOG_WRITE_BUFFER: usize = 64 * 1024;

/// How often the count of dropped log lines is looked at.
const DROP_REPORT_INTERVAL: Duration = Duration::from_secs(5);

/// How long the runtime's tasks get to stop once the server has drained.
const RUNTIME_SHUTDOWN: Duration = Duration::from_secs(1);

fn main() -> ExitCode {
    let args = match cli::parse_args(std::env::args_os().collect()) {
        Ok(args) => args,
        Err(ArgsError::Print(help)) => {
            let _ = help.print();
            return ExitCode::SUCCESS;
        }
        Err(ArgsError::Refused(line)) => {
            eprintln!("wasmhost: error: {line}");
            return ExitCode::FAILURE;
        }
    };
    let result = match args.command {
        Some(Command::Compile { app, output }) => compile(&app, output.as_deref()),
        Some(Command::New { path, sdk }) => new_project(&path, sdk.as_deref()),
        None => serve(args.serve),
    };
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

/// `wasmhost compile APP.wasm [-o APP.cwasm]`.
fn compile(app: &Path, output: Option<&Path>) -> anyhow::Result<()> {
    let output = output.map_or_else(|| app.with_extension("cwasm"), Path::to_owned);
    wasmhost::compile(app, &output)?;
    println!(
        "compiled {} to {}: machine code for this wasmhost and CPU; serve it with --allow-precompiled, and only on machines you trust it on",
        app.display(),
        output.display()
    );
    Ok(())
}

/// `wasmhost new PATH [--sdk PATH]`.
fn new_project(path: &Path, sdk: Option<&Path>) -> anyhow::Result<()> {
    let sdk = sdk.map_or_else(wasmhost::scaffold::default_sdk, Path::to_owned);
    let dir = wasmhost::scaffold::new_project(path, &sdk)?;
    println!(
        "created {}: build it with `cargo build --release --target wasm32-wasip2` there, test it with `cargo test`, then see its README.md",
        dir.display()
    );
    Ok(())
}

/// Serves the app `cli` names until SIGINT or SIGTERM.
fn serve(cli: Cli) -> anyhow::Result<()> {
    // Log lines go to a writer thread, never straight to stderr from a
    // worker thread: if stderr is a pipe nobody empties, lines are dropped
    // and counted, and the tasks serve on.
    let (writer, flush_on_exit) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(LOG_LINES_BUFFERED)
        .thread_name("log-writer")
        // The writer thread drains every line queued, then flushes: under
        // load many lines go out in one write, when idle each at once.
        .finish(std::io::BufWriter::with_capacity(
            LOG_WRITE_BUFFER,
            std::io::stderr(),
        ));
    let dropped = writer.error_counter();
    // `WASMHOST_LOG` filters both layers: the formatter's, for every event
    // but the access log's, and the access log's own (see `http::access`).
    let filter = EnvFilter::try_from_env("WASMHOST_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let (events, access_format) = match cli.log_format {
        LogFormat::Text => (
            tracing_subscriber::fmt::layer()
                .with_writer(writer.clone())
                .with_ansi(std::io::stderr().is_terminal())
                .boxed(),
            LineFormat::Text,
        ),
        LogFormat::Json => (
            tracing_subscriber::fmt::layer()
                .json()
                .with_writer(writer.clone())
                .boxed(),
            LineFormat::Json,
        ),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(events.with_filter(filter_fn(|meta| meta.target() != ACCESS_TARGET)))
        .with(AccessLayer::new(writer, access_format))
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
    result
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
        // The addresses first: a port in use is refused before any instance
        // starts (and prints).
        let listener = wasmhost::server::listen(config.listen)
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let addr = listener.local_addr()?;
        let admin = match config.admin_listen {
            Some(admin_addr) => Some(
                tokio::net::TcpListener::bind(admin_addr)
                    .await
                    .with_context(|| format!("cannot listen on {admin_addr} (--admin-listen)"))?,
            ),
            None => None,
        };
        let server = Server::start(&config).await?;
        let stop = CancellationToken::new();
        watch_signals(stop.clone(), server.reloader())?;
        println!("listening on http://{addr}");
        if let Some(admin) = admin {
            println!("admin on http://{}", admin.local_addr()?);
            let serving = server.admin().serve(admin, stop.clone().cancelled_owned());
            tokio::spawn(async move {
                if let Err(e) = serving.await {
                    tracing::error!("the admin endpoint failed: {e}");
                }
            });
        }
        std::io::stdout().flush()?;
        // Serving runs on a worker, so the connections it accepts start on
        // workers' own queues.
        tokio::spawn(server.serve(listener, stop.cancelled_owned()))
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

/// Cancels `stop` when SIGINT or SIGTERM arrives, and reloads the app on
/// every SIGHUP. The handlers are installed before this returns, so a
/// signal sent once `listening on` is printed is never missed.
fn watch_signals(stop: CancellationToken, reloader: Reloader) -> anyhow::Result<()> {
    let mut terminate: Signal = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut interrupt: Signal = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    let mut hangup: Signal = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        };
        info!("{name}: shutting down");
        stop.cancel();
    });
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            info!("SIGHUP: reloading the app");
            // A failure is logged by the reloader; the old app serves on.
            let _ = reloader.reload().await;
        }
    });
    Ok(())
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
