//! The `wasmhost` binary: parse the command line, run the server, and turn any
//! error into one line on stderr and a non-zero exit.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tracing_appender::non_blocking::{ErrorCounter, NonBlockingBuilder};
use tracing_subscriber::EnvFilter;
use wasmhost::cli::Cli;

/// Log lines held for the writer thread before new ones are dropped. Guest
/// lines are cut at `--guest-log-max-line`, so this bounds the memory too.
const LOG_LINES_BUFFERED: usize = 4096;

/// How often the count of dropped log lines is looked at.
const DROP_REPORT_INTERVAL: Duration = Duration::from_secs(5);

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Log lines go to a writer thread, never straight to stderr from a task
    // thread: if stderr is a pipe nobody empties, lines are dropped and
    // counted, and the tasks serve on.
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
    let config = wasmhost::cli::Config::try_from(cli).map_err(anyhow::Error::msg);
    let result = config.and_then(wasmhost::server::run);
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
