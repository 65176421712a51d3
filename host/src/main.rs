//! The `wasmhost` binary: parse the command line, run the server, and turn any
//! error into one line on stderr and a non-zero exit.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;
use wasmhost::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            EnvFilter::try_from_env("WASMHOST_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let config = wasmhost::cli::Config::try_from(cli).map_err(anyhow::Error::msg);
    match config.and_then(wasmhost::server::run) {
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
