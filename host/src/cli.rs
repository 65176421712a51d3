//! The command line (DESIGN.md section 3), parsed with clap into a [`Config`].
//!
//! Everything a user can get wrong here is checked before any thread starts, so
//! bad input ends in one clear line and a non-zero exit.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;

use clap::Parser;

use crate::store::Limits;

/// `wasmhost [OPTIONS] <APP.wasm>`
#[derive(Debug, Parser)]
#[command(
    name = "wasmhost",
    version,
    about = "Run a WebAssembly web app on N isolated task threads that share one session store"
)]
pub struct Cli {
    /// The guest app: a WebAssembly component exporting `wasmhost:app/handler`.
    #[arg(value_name = "APP.wasm")]
    pub app: PathBuf,

    /// Task threads, each with its own isolated instance [default: number of CPUs].
    #[arg(long, value_name = "N")]
    pub tasks: Option<NonZeroU32>,

    /// Address to serve; port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// An environment variable the guest sees (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env_var)]
    pub env: Vec<(String, String)>,

    /// The session store: `memory` (shared by this process's tasks).
    #[arg(long, value_name = "URL", default_value = "memory", value_parser = parse_store_url)]
    pub store: StoreUrl,

    /// Longest store key a guest may use, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_key_bytes)]
    pub store_max_key: usize,

    /// Longest store value a guest may write, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_value_bytes)]
    pub store_max_value: usize,

    /// Most entries the store may hold at once.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_entries)]
    pub store_max_entries: usize,
}

/// Which session store backend to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// The in-process store shared by all tasks of this host.
    Memory,
}

/// Everything the server needs to start, checked and with defaults applied.
#[derive(Debug, Clone)]
pub struct Config {
    pub app: PathBuf,
    pub tasks: u32,
    pub listen: SocketAddr,
    pub env: Vec<(String, String)>,
    pub store: StoreUrl,
    pub store_limits: Limits,
}

impl From<Cli> for Config {
    fn from(cli: Cli) -> Self {
        let tasks = cli.tasks.map(NonZeroU32::get).unwrap_or_else(default_tasks);
        Config {
            app: cli.app,
            tasks,
            listen: cli.listen,
            env: cli.env,
            store: cli.store,
            store_limits: Limits {
                max_key_bytes: cli.store_max_key,
                max_value_bytes: cli.store_max_value,
                max_entries: cli.store_max_entries,
            },
        }
    }
}

/// One task per CPU, as `jx mt-keep` defaulted to.
fn default_tasks() -> u32 {
    std::thread::available_parallelism()
        .map(|n| u32::try_from(n.get()).unwrap_or(u32::MAX))
        .unwrap_or(1)
}

fn parse_env_var(arg: &str) -> Result<(String, String), String> {
    match arg.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got `{arg}`")),
    }
}

fn parse_store_url(arg: &str) -> Result<StoreUrl, String> {
    match arg {
        "memory" => Ok(StoreUrl::Memory),
        url if url.starts_with("redis://") => {
            Err("the redis store is not available in this build yet; use `memory`".to_owned())
        }
        other => Err(format!("unknown store `{other}`; expected `memory`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_vars_split_at_the_first_equals_sign() {
        assert_eq!(
            parse_env_var("SESSION_SECRET=a=b").unwrap(),
            ("SESSION_SECRET".to_owned(), "a=b".to_owned())
        );
        assert!(parse_env_var("NOVALUE").is_err());
        assert!(parse_env_var("=x").is_err());
    }

    #[test]
    fn zero_tasks_is_rejected() {
        assert!(Cli::try_parse_from(["wasmhost", "--tasks", "0", "app.wasm"]).is_err());
        let cli = Cli::try_parse_from(["wasmhost", "--tasks", "3", "app.wasm"]).unwrap();
        assert_eq!(Config::from(cli).tasks, 3);
    }

    #[test]
    fn store_urls() {
        assert_eq!(parse_store_url("memory"), Ok(StoreUrl::Memory));
        assert!(parse_store_url("postgres://x").is_err());
    }
}
