//! The command line (DESIGN.md section 3), parsed with clap into a [`Config`].
//!
//! Everything a user can get wrong here is checked before any thread starts, so
//! bad input ends in one clear line and a non-zero exit.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::limits::{KIB, TaskLimits, parse_duration, parse_size};
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

    /// The session store: `memory` (shared by this process's tasks), or
    /// `redis://[:password@]host:port[/db]` (shared by every host on that Redis).
    // Checked after parsing (`Config::try_from`), not by clap, whose errors
    // would repeat the URL and with it any password.
    #[arg(long, value_name = "URL", default_value = "memory")]
    pub store: String,

    /// How long one Redis store call may take before it fails as unavailable
    /// (also the limit for connecting at start-up).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub store_timeout: Duration,

    /// Longest store key a guest may use, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_key_bytes)]
    pub store_max_key: usize,

    /// Longest store value a guest may write, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_value_bytes)]
    pub store_max_value: usize,

    /// Most entries the store may hold at once (memory store; Redis has its own `maxmemory`).
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_entries)]
    pub store_max_entries: usize,

    /// A request whose guest call runs longer is stopped and answered 504.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: Duration,

    /// Most memory one task's instance may grow to (e.g. 128MiB); beyond it
    /// the request is answered 500 and the instance replaced.
    #[arg(long, value_name = "SIZE", default_value = "128MiB", value_parser = parse_size)]
    pub max_memory: usize,

    /// Replace each instance after it has served N requests.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub recycle_after: Option<u64>,

    /// Most requests waiting for a free instance; beyond it 503 with Retry-After.
    #[arg(long, value_name = "N", default_value_t = TaskLimits::default().max_pending)]
    pub max_pending: usize,

    /// Largest request body (e.g. 1MiB); larger is answered 413.
    #[arg(long, value_name = "SIZE", default_value = "1MiB", value_parser = parse_size)]
    pub max_body: usize,

    /// Largest request line plus headers (at least 8KiB); larger is answered 431.
    #[arg(long, value_name = "SIZE", default_value = "64KiB", value_parser = parse_header_size)]
    pub max_header_size: usize,

    /// A client must send a request's headers within this; also closes idle connections.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub header_timeout: Duration,

    /// Compile the app afresh instead of using wasmtime's cache of compiled code.
    #[arg(long)]
    pub no_cache: bool,

    /// After SIGINT/SIGTERM, how long in-flight requests may take to finish.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub drain_timeout: Duration,
}

/// Which session store backend to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// The in-process store shared by all tasks of this host.
    Memory,
    /// A Redis server shared by every host that names it (the URL as given).
    Redis(String),
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
    pub store_timeout: Duration,
    pub limits: TaskLimits,
    /// Keep compiled code in wasmtime's cache.
    pub cache: bool,
}

impl TryFrom<Cli> for Config {
    type Error = String;

    fn try_from(cli: Cli) -> Result<Self, String> {
        let tasks = cli.tasks.map(NonZeroU32::get).unwrap_or_else(default_tasks);
        Ok(Config {
            app: cli.app,
            tasks,
            listen: cli.listen,
            env: cli.env,
            store: parse_store_url(&cli.store)?,
            store_limits: Limits {
                max_key_bytes: cli.store_max_key,
                max_value_bytes: cli.store_max_value,
                max_entries: cli.store_max_entries,
            },
            store_timeout: cli.store_timeout,
            limits: TaskLimits {
                request_timeout: cli.request_timeout,
                max_memory: cli.max_memory,
                recycle_after: cli.recycle_after,
                max_pending: cli.max_pending,
                max_body: cli.max_body,
                max_header_size: cli.max_header_size,
                header_timeout: cli.header_timeout,
                drain_timeout: cli.drain_timeout,
            },
            cache: !cli.no_cache,
        })
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

/// hyper cannot parse requests with a buffer under 8 KiB.
fn parse_header_size(text: &str) -> Result<usize, String> {
    let size = parse_size(text)?;
    if size < 8 * KIB {
        return Err(format!("`{text}` is under the minimum of 8KiB"));
    }
    Ok(size)
}

/// `--store`: `memory` or a `redis://` URL. No message repeats the URL, which
/// may hold a password.
fn parse_store_url(arg: &str) -> Result<StoreUrl, String> {
    let scheme = arg.split_once("://").map(|(scheme, _)| scheme);
    match (arg, scheme) {
        ("memory", _) => Ok(StoreUrl::Memory),
        (url, Some("redis")) => match redis::Client::open(url) {
            Ok(_) => Ok(StoreUrl::Redis(url.to_owned())),
            Err(error) => Err(format!("invalid Redis URL in --store: {error}").replace('\n', " ")),
        },
        (_, Some(scheme @ ("rediss" | "redis+unix" | "unix"))) => Err(format!(
            "--store: `{scheme}://` is not supported; use `redis://host:port[/db]` (no TLS or Unix sockets)"
        )),
        (_, Some(scheme)) => Err(format!(
            "--store: unknown store `{scheme}://`; expected `memory` or `redis://host:port[/db]`"
        )),
        (_, None) => Err("--store: expected `memory` or `redis://host:port[/db]`".to_owned()),
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
        assert_eq!(Config::try_from(cli).unwrap().tasks, 3);
    }

    #[test]
    fn limits_have_their_defaults_and_take_units() {
        let cli = Cli::try_parse_from(["wasmhost", "app.wasm"]).unwrap();
        assert_eq!(Config::try_from(cli).unwrap().limits, TaskLimits::default());
        let cli = Cli::try_parse_from([
            "wasmhost",
            "--request-timeout",
            "1500ms",
            "--max-memory",
            "64MiB",
            "--recycle-after",
            "100",
            "app.wasm",
        ])
        .unwrap();
        let limits = Config::try_from(cli).unwrap().limits;
        assert_eq!(limits.request_timeout, Duration::from_millis(1500));
        assert_eq!(limits.max_memory, 64 * 1024 * 1024);
        assert_eq!(limits.recycle_after, Some(100));
        assert!(
            Cli::try_parse_from(["wasmhost", "--max-header-size", "1KiB", "app.wasm"]).is_err()
        );
        assert!(Cli::try_parse_from(["wasmhost", "--recycle-after", "0", "app.wasm"]).is_err());
    }

    #[test]
    fn store_urls() {
        assert_eq!(parse_store_url("memory"), Ok(StoreUrl::Memory));
        assert_eq!(
            parse_store_url("redis://127.0.0.1:6379/2"),
            Ok(StoreUrl::Redis("redis://127.0.0.1:6379/2".to_owned()))
        );
        assert!(parse_store_url("redis://127.0.0.1:6379/notadb").is_err());
        assert!(parse_store_url("rediss://127.0.0.1:6379").is_err());
        assert!(parse_store_url("postgres://x").is_err());
        assert!(parse_store_url("memroy").is_err());
        for url in [
            "redis://:s3cret@127.0.0.1:6379/notadb",
            "rediss://:s3cret@127.0.0.1:6379",
            "postgres://u:s3cret@x",
        ] {
            let error = parse_store_url(url).expect_err("refused");
            assert!(!error.contains("s3cret"), "{error}");
        }
    }
}
