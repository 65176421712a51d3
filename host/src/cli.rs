//! The command line, parsed with clap: serving an app ([`Cli`], filled into
//! a [`Config`]: every flag, its `WASMHOST_*` variable and its default, as
//! the README's table lists them), the `compile` and `new` subcommands
//! ([`Command`]), and the parsing of sizes and durations.
//!
//! Everything a user can get wrong here is checked before any thread starts, so
//! bad input ends in one clear line and a non-zero exit.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{Parser, Subcommand, ValueEnum};

use crate::config::{Config, DEFAULT_DRAIN_TIMEOUT, DEFAULT_QUEUE_TIMEOUT, ProcessSettings, cpus};
use crate::env_file;
use crate::guest::{CallLimits, GuestLogLimits, Origin, OutboundSettings, Precompiled};
use crate::http::{DEFAULT_MAX_CONNECTIONS, HttpLimits};
use crate::log_text;
use crate::pool::PoolSettings;
use crate::store::{Eviction, Limits, StoreSettings, StoreUrl};

/// Tasks per worker thread by default with a Redis store: a call that waits
/// on Redis holds its instance but not its thread, so more instances than
/// threads keep the threads busy (`docs/architecture.md`, "Instances and threads").
pub const REDIS_TASKS_PER_THREAD: usize = 16;

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;
const GIB: usize = 1024 * MIB;

/// `wasmhost [OPTIONS] <APP.wasm>`, `wasmhost compile ...`, `wasmhost new ...`
#[derive(Parser)]
#[command(
    name = "wasmhost",
    version,
    about = "Run a WebAssembly web app as N isolated tasks that share one session store",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Serving an app: the command without a subcommand.
    #[command(flatten)]
    pub serve: Cli,
}

/// Why the command line was not parsed into [`Args`].
#[derive(Debug)]
pub enum ArgsError {
    /// `--help` or `--version`: clap prints it and wasmhost exits with success.
    Print(clap::Error),
    /// A mistake, said in one line.
    Refused(String),
}

/// Parses `wasmhost`'s command line (`raw` starts with the program's name).
/// A mistake comes back as one line, never clap's several; a first argument
/// that is no file but close to a subcommand's name is taken for a typo of it.
pub fn parse_args(raw: Vec<OsString>) -> Result<Args, ArgsError> {
    if let Some(line) = raw.get(1).and_then(mistyped_subcommand) {
        return Err(ArgsError::Refused(line));
    }
    Args::try_parse_from(raw).map_err(|error| match error.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => ArgsError::Print(error),
        _ => ArgsError::Refused(clap_in_one_line(&error)),
    })
}

/// The subcommands, for "did you mean".
const SUBCOMMANDS: [&str; 2] = ["new", "compile"];

/// "did you mean `wasmhost new`?" for a first argument such as `nwe` that is
/// not a file and not a subcommand but one or two letters from one.
fn mistyped_subcommand(first: &OsString) -> Option<String> {
    let first = first.to_str()?;
    if first.starts_with('-')
        || first.contains(['.', '/'])
        || SUBCOMMANDS.contains(&first)
        || Path::new(first).exists()
    {
        return None;
    }
    let near = SUBCOMMANDS
        .into_iter()
        .find(|name| strsim::damerau_levenshtein(first, name) <= 2)?;
    Some(format!(
        "`{}` is neither an app file nor a subcommand; did you mean `wasmhost {near}`?",
        log_text::for_log(first, 64)
    ))
}

/// clap's message without its usage and help footer, on one line.
fn clap_in_one_line(error: &clap::Error) -> String {
    let text = error.to_string();
    let mut line = String::new();
    for piece in text.lines().map(str::trim) {
        if piece.starts_with("Usage:") || piece.starts_with("For more information") {
            break;
        }
        if piece.is_empty() {
            continue;
        }
        let piece = piece.strip_prefix("error: ").unwrap_or(piece);
        if !line.is_empty() {
            line.push_str(if line.ends_with(':') { " " } else { "; " });
        }
        line.push_str(piece);
    }
    format!("{line} (see `wasmhost --help`)")
}

/// What `wasmhost` can do besides serving an app.
#[derive(Subcommand)]
pub enum Command {
    /// Compile an app ahead of time for this wasmhost, so serving it skips
    /// compilation (serve the .cwasm like a .wasm).
    Compile {
        /// The app: a WebAssembly component.
        #[arg(value_name = "APP.wasm")]
        app: PathBuf,
        /// Where to write the compiled app [default: APP with the extension .cwasm].
        #[arg(short, long, value_name = "APP.cwasm")]
        output: Option<PathBuf>,
    },
    /// Write a new guest app project, ready to build and serve.
    New {
        /// The project's directory, made with its parents as `cargo new` does;
        /// its last part is the project's name: letters, digits, `-`, `_`.
        #[arg(value_name = "PATH")]
        path: PathBuf,
        /// The wasmhost-sdk crate to depend on [default: the SDK this
        /// wasmhost was built with].
        #[arg(long, value_name = "PATH")]
        sdk: Option<PathBuf>,
    },
}

/// Whether each answered request gets a line in the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    On,
    Off,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per event.
    Json,
}

/// `wasmhost [OPTIONS] <APP.wasm>`: serve an app.
#[derive(Parser)]
#[command(
    name = "wasmhost",
    version,
    about = "Run a WebAssembly web app as N isolated tasks that share one session store"
)]
pub struct Cli {
    /// The guest app: a WebAssembly component exporting `wasmhost:app/handler`,
    /// or one precompiled by `wasmhost compile`.
    // Optional to clap's derive (a subcommand needs none), required on the
    // command line.
    #[arg(env = "WASMHOST_APP", value_name = "APP.wasm", required = true)]
    pub app: Option<PathBuf>,

    /// Tasks: isolated, persistent instances of the app [default: one per
    /// thread; with a Redis store, 16 per thread].
    #[arg(env = "WASMHOST_TASKS", long, value_name = "N")]
    pub tasks: Option<NonZeroU32>,

    /// Worker threads that serve connections and run the tasks' calls
    /// [default: number of CPUs].
    #[arg(env = "WASMHOST_THREADS", long, value_name = "N")]
    pub threads: Option<NonZeroU32>,

    /// Address to serve; port 0 picks a free port.
    #[arg(
        env = "WASMHOST_LISTEN",
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:8080"
    )]
    pub listen: SocketAddr,

    /// An environment variable the guest sees (repeatable; overrides --env-file).
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env_var)]
    pub env: Vec<(String, String)>,

    /// A file of KEY=VALUE lines (dotenv quoting, read literally: no `$`
    /// expansion) the guest sees as its environment: secrets stay off the
    /// command line and out of `ps`.
    #[arg(env = "WASMHOST_ENV_FILE", long, value_name = "FILE")]
    pub env_file: Option<PathBuf>,

    /// The session store: `memory` (shared by this process's tasks), or
    /// `redis://[:password@]host:port[/db]` (shared by every host on that Redis).
    // Checked after parsing (`Config::try_from`), not by clap, whose errors
    // would repeat the URL and with it any password.
    #[arg(
        env = "WASMHOST_STORE",
        long,
        value_name = "URL",
        default_value = "memory"
    )]
    pub store: String,

    /// Put in front of every store key the app uses, by the host: apps that
    /// share one Redis with different prefixes cannot reach each other's keys.
    #[arg(env = "WASMHOST_STORE_PREFIX", long, value_name = "PREFIX", default_value = "", value_parser = parse_store_prefix)]
    pub store_prefix: String,

    /// How long one Redis store call may take before it fails as unavailable
    /// (also the limit for connecting at start-up).
    #[arg(env = "WASMHOST_STORE_TIMEOUT", long, value_name = "DURATION", default_value = duration_text(StoreSettings::default().timeout), value_parser = parse_duration)]
    pub store_timeout: Duration,

    /// Longest store key a guest may use, in bytes.
    #[arg(env = "WASMHOST_STORE_MAX_KEY", long, value_name = "SIZE", default_value = size_text(Limits::default().max_key_bytes), value_parser = parse_size)]
    pub store_max_key: usize,

    /// Longest store value a guest may write, in bytes.
    #[arg(env = "WASMHOST_STORE_MAX_VALUE", long, value_name = "SIZE", default_value = size_text(Limits::default().max_value_bytes), value_parser = parse_size)]
    pub store_max_value: usize,

    /// Most entries the store may hold at once (memory store; Redis has its own `maxmemory`).
    #[arg(env = "WASMHOST_STORE_MAX_ENTRIES", long, value_name = "N", default_value_t = Limits::default().max_entries)]
    pub store_max_entries: usize,

    /// Most bytes the memory store's entries may take (keys, values, and a
    /// fixed overhead per entry).
    #[arg(env = "WASMHOST_STORE_MAX_BYTES", long, value_name = "SIZE", default_value = size_text(Limits::default().max_bytes), value_parser = parse_size)]
    pub store_max_bytes: usize,

    /// What a full memory store does: `lru` evicts entries nobody used since
    /// they were written, oldest first, then the least recently used
    /// (`unused-first` is an old name for it); `none` refuses new entries.
    #[arg(env = "WASMHOST_STORE_EVICTION", long, value_name = "POLICY", default_value = "lru", value_parser = parse_eviction)]
    pub store_eviction: Eviction,

    /// A request whose guest call runs longer is stopped and answered 504.
    #[arg(env = "WASMHOST_REQUEST_TIMEOUT", long, value_name = "DURATION", default_value = duration_text(CallLimits::default().request_timeout), value_parser = parse_duration)]
    pub request_timeout: Duration,

    /// Most memory one task's instance may grow to (e.g. 128MiB); beyond it
    /// the request is answered 500 and the instance replaced.
    #[arg(env = "WASMHOST_MAX_MEMORY", long, value_name = "SIZE", default_value = size_text(CallLimits::default().max_memory), value_parser = parse_size)]
    pub max_memory: usize,

    /// An origin guests may send HTTP requests to (e.g.
    /// https://api.example.com or http://10.0.0.5:8080); repeat, or separate
    /// with commas. Requests anywhere else fail with http-request-denied.
    #[arg(env = "WASMHOST_ALLOW_OUTBOUND", long, value_name = "ORIGIN", value_delimiter = ',', value_parser = Origin::parse)]
    pub allow_outbound: Vec<Origin>,

    /// Most outbound requests in flight at once, all tasks together; past it
    /// a guest's request fails with connection-limit-reached.
    #[arg(env = "WASMHOST_MAX_OUTBOUND", long, value_name = "N", default_value_t = OutboundSettings::default().max_in_flight,
          value_parser = parse_at_least_one)]
    pub max_outbound: usize,

    /// Replace each instance after it has served N requests.
    #[arg(env = "WASMHOST_RECYCLE_AFTER", long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub recycle_after: Option<u64>,

    /// Most requests waiting for a free instance; beyond it 503 with Retry-After
    /// [default: --max-connections].
    #[arg(env = "WASMHOST_MAX_PENDING", long, value_name = "N")]
    pub max_pending: Option<usize>,

    /// Longest a request waits for a free instance; beyond it 503 with Retry-After.
    #[arg(env = "WASMHOST_QUEUE_TIMEOUT", long, value_name = "DURATION", default_value = duration_text(DEFAULT_QUEUE_TIMEOUT), value_parser = parse_duration)]
    pub queue_timeout: Duration,

    /// Most client connections open at once; further clients wait to be accepted.
    #[arg(env = "WASMHOST_MAX_CONNECTIONS", long, value_name = "N", default_value_t = DEFAULT_MAX_CONNECTIONS,
          value_parser = parse_at_least_one)]
    pub max_connections: usize,

    /// Largest request body (e.g. 1MiB); larger is answered 413.
    #[arg(env = "WASMHOST_MAX_BODY", long, value_name = "SIZE", default_value = size_text(HttpLimits::default().max_body), value_parser = parse_size)]
    pub max_body: usize,

    /// Largest response body a guest may return (e.g. 16MiB); larger is answered 500.
    #[arg(env = "WASMHOST_MAX_RESPONSE", long, value_name = "SIZE", default_value = size_text(HttpLimits::default().max_response), value_parser = parse_size)]
    pub max_response: usize,

    /// Most bytes all request bodies being read may hold at once, and as many
    /// for response bodies of 16KiB or more being written; past it 503 (at
    /// least --max-body and --max-response).
    #[arg(env = "WASMHOST_MAX_BUFFERED", long, value_name = "SIZE", default_value = size_text(HttpLimits::default().max_buffered), value_parser = parse_size)]
    pub max_buffered: usize,

    /// Largest request line plus headers (at least 8KiB); larger is answered 431.
    #[arg(env = "WASMHOST_MAX_HEADER_SIZE", long, value_name = "SIZE", default_value = size_text(HttpLimits::default().max_header_size), value_parser = parse_header_size)]
    pub max_header_size: usize,

    /// A client must send a request's headers within this.
    #[arg(env = "WASMHOST_HEADER_TIMEOUT", long, value_name = "DURATION", default_value = duration_text(HttpLimits::default().header_timeout), value_parser = parse_duration)]
    pub header_timeout: Duration,

    /// A keep-alive connection with no new request for this long is closed.
    #[arg(env = "WASMHOST_IDLE_TIMEOUT", long, value_name = "DURATION", default_value = duration_text(HttpLimits::default().idle_timeout), value_parser = parse_duration)]
    pub idle_timeout: Duration,

    /// A client must send a request's whole body within this; else 408.
    #[arg(env = "WASMHOST_BODY_TIMEOUT", long, value_name = "DURATION", default_value = duration_text(HttpLimits::default().body_timeout), value_parser = parse_duration)]
    pub body_timeout: Duration,

    /// A client that takes none of a response for this long is disconnected.
    #[arg(env = "WASMHOST_WRITE_TIMEOUT", long, value_name = "DURATION", default_value = duration_text(HttpLimits::default().write_timeout), value_parser = parse_duration)]
    pub write_timeout: Duration,

    /// Longest guest log line kept; the rest of a longer line is dropped (and the cut marked).
    #[arg(env = "WASMHOST_GUEST_LOG_MAX_LINE", long, value_name = "SIZE", default_value = size_text(GuestLogLimits::default().max_line), value_parser = parse_size)]
    pub guest_log_max_line: usize,

    /// Lines one instance may log per second; more are dropped and counted.
    #[arg(env = "WASMHOST_GUEST_LOG_LINES", long, value_name = "N", default_value_t = GuestLogLimits::default().lines_per_sec)]
    pub guest_log_lines: u32,

    /// Bytes one instance may log per second; more are dropped and counted.
    #[arg(env = "WASMHOST_GUEST_LOG_BYTES", long, value_name = "SIZE", default_value = size_text(GuestLogLimits::default().bytes_per_sec), value_parser = parse_size)]
    pub guest_log_bytes: usize,

    /// Compile the app afresh instead of using wasmtime's cache of compiled code.
    #[arg(env = "WASMHOST_NO_CACHE", long)]
    pub no_cache: bool,

    /// Serve an app precompiled by `wasmhost compile`: machine code that runs
    /// outside the sandbox, so only a file you compiled yourself [default:
    /// refused, whatever the file is named].
    #[arg(env = "WASMHOST_ALLOW_PRECOMPILED", long)]
    pub allow_precompiled: bool,

    /// After SIGINT/SIGTERM, how long in-flight requests may take to finish.
    #[arg(env = "WASMHOST_DRAIN_TIMEOUT", long, value_name = "DURATION", default_value = duration_text(DEFAULT_DRAIN_TIMEOUT), value_parser = parse_duration)]
    pub drain_timeout: Duration,

    /// Serve /metrics, /healthz and /readyz on this address (never the app's).
    #[arg(env = "WASMHOST_ADMIN_LISTEN", long, value_name = "ADDR")]
    pub admin_listen: Option<SocketAddr>,

    /// Reload the app whenever its file changes, without dropping a request
    /// (SIGHUP reloads it too).
    #[arg(env = "WASMHOST_WATCH", long)]
    pub watch: bool,

    /// A line in the log for every answered request (off by default: a line
    /// per request is not free; BENCHMARKS.md says what it costs).
    #[arg(
        env = "WASMHOST_ACCESS_LOG",
        long,
        value_name = "on|off",
        default_value = "off"
    )]
    pub access_log: Switch,

    /// How the log is written: `text` or `json` (one object per line).
    #[arg(
        env = "WASMHOST_LOG_FORMAT",
        long,
        value_name = "FORMAT",
        default_value = "text"
    )]
    pub log_format: LogFormat,
}

/// The guest's environment: `--env-file`'s variables, then `--env`'s, a later
/// one replacing an earlier one of the same name.
fn guest_env(
    cli_env: Vec<(String, String)>,
    file: Option<&Path>,
) -> Result<Vec<(String, String)>, String> {
    let mut env = match file {
        // Its errors name a line by number, never by its text.
        Some(path) => env_file::read(path).map_err(|error| match error {
            env_file::ReadError::Io(e) => format!("cannot read --env-file {}: {e}", path.display()),
            other => format!("--env-file {}: {other}", path.display()),
        })?,
        None => Vec::new(),
    };
    env.extend(cli_env);
    // Keep the last of each name, in first-seen order.
    let mut merged: Vec<(String, String)> = Vec::with_capacity(env.len());
    for (key, value) in env {
        match merged.iter_mut().find(|(known, _)| *known == key) {
            Some(slot) => slot.1 = value,
            None => merged.push((key, value)),
        }
    }
    Ok(merged)
}

impl TryFrom<Cli> for Config {
    type Error = String;

    fn try_from(cli: Cli) -> Result<Self, String> {
        let app = cli.app.ok_or("the app file (APP.wasm) is missing")?;
        let store = parse_store_url(&cli.store)?;
        if let Some(admin) = cli.admin_listen
            && admin.port() != 0
            && admin == cli.listen
        {
            return Err(format!(
                "--admin-listen {admin} is the app's address; give the admin endpoint its own"
            ));
        }
        if cli.max_buffered < cli.max_body.max(cli.max_response) {
            return Err(format!(
                "--max-buffered {} is less than --max-body or --max-response: a body that large could never be held",
                cli.max_buffered
            ));
        }
        let threads = cli.threads.map_or_else(cpus, |n| n.get() as usize);
        let tasks = match (cli.tasks, &store) {
            (Some(tasks), _) => tasks.get(),
            (None, StoreUrl::Memory) => u32::try_from(threads).unwrap_or(u32::MAX),
            (None, StoreUrl::Redis(_)) => {
                u32::try_from(threads.saturating_mul(REDIS_TASKS_PER_THREAD)).unwrap_or(u32::MAX)
            }
        };
        Ok(Config {
            app,
            listen: cli.listen,
            admin_listen: cli.admin_listen,
            watch: cli.watch,
            access_log: cli.access_log == Switch::On,
            env: guest_env(cli.env, cli.env_file.as_deref())?,
            call: CallLimits {
                request_timeout: cli.request_timeout,
                max_memory: cli.max_memory,
                guest_log: GuestLogLimits {
                    max_line: cli.guest_log_max_line,
                    lines_per_sec: cli.guest_log_lines,
                    bytes_per_sec: cli.guest_log_bytes,
                },
            },
            outbound: OutboundSettings {
                allowed: cli.allow_outbound,
                max_in_flight: cli.max_outbound,
            },
            pool: PoolSettings {
                tasks,
                max_pending: cli.max_pending.unwrap_or(cli.max_connections),
                queue_timeout: cli.queue_timeout,
                recycle_after: cli.recycle_after,
            },
            http: HttpLimits {
                max_connections: cli.max_connections,
                max_body: cli.max_body,
                max_response: cli.max_response,
                max_header_size: cli.max_header_size,
                header_timeout: cli.header_timeout,
                idle_timeout: cli.idle_timeout,
                body_timeout: cli.body_timeout,
                write_timeout: cli.write_timeout,
                max_buffered: cli.max_buffered,
            },
            store: StoreSettings {
                url: store,
                limits: Limits {
                    max_key_bytes: cli.store_max_key,
                    max_value_bytes: cli.store_max_value,
                    max_entries: cli.store_max_entries,
                    max_bytes: cli.store_max_bytes,
                    eviction: cli.store_eviction,
                },
                prefix: cli.store_prefix,
                timeout: cli.store_timeout,
            },
            process: ProcessSettings {
                threads,
                cache: !cli.no_cache,
                precompiled: if cli.allow_precompiled {
                    Precompiled::Allow
                } else {
                    Precompiled::Refuse
                },
                drain_timeout: cli.drain_timeout,
            },
        })
    }
}

fn parse_env_var(arg: &str) -> Result<(String, String), String> {
    match arg.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got `{arg}`")),
    }
}

/// `--store-prefix`: short, printable, no spaces (it ends up in every key).
fn parse_store_prefix(text: &str) -> Result<String, String> {
    if text.len() > 256 {
        return Err("longer than 256 bytes".to_owned());
    }
    if text.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("must not contain spaces or control characters".to_owned());
    }
    Ok(text.to_owned())
}

/// `--store-eviction`.
fn parse_eviction(text: &str) -> Result<Eviction, String> {
    match text {
        // `unused-first` was its name before it evicted by recency too.
        "lru" | "unused-first" => Ok(Eviction::Lru),
        "none" => Ok(Eviction::None),
        _ => Err(format!("`{text}` is not a policy; use lru or none")),
    }
}

/// A count that must be 1 or more.
fn parse_at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("`{text}` is not a whole number")),
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
            Err(error) => Err(format!(
                "invalid Redis URL in --store: {}",
                log_text::one_line(&error)
            )),
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

/// Parses a byte size: `1048576`, `512KiB`, `128MiB`, `1GiB` (K, KB, M, MB,
/// G, GB mean the same powers of 1024; case does not matter).
pub fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: usize = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size like 1048576, 512KiB or 128MiB"))?;
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => KIB,
        "m" | "mb" | "mib" => MIB,
        "g" | "gb" | "gib" => GIB,
        other => return Err(format!("unknown size unit `{other}`; use KiB, MiB or GiB")),
    };
    number
        .checked_mul(scale)
        .ok_or_else(|| format!("`{text}` is too large"))
}

/// Parses a duration: `30s`, `500ms`, `2m`.
/// `bytes` as `--help` shows a default: in the largest unit that divides it
/// (`1MiB`, `64KiB`, `1024` for less than a KiB multiple).
fn size_text(bytes: usize) -> String {
    [(GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")]
        .iter()
        .find(|&&(unit, _)| bytes >= unit && bytes.is_multiple_of(unit))
        .map_or_else(
            || bytes.to_string(),
            |&(unit, name)| format!("{}{name}", bytes / unit),
        )
}

/// `duration` as `--help` shows a default (`30s`, `500ms`).
fn duration_text(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("`{text}` is not a duration like 30s or 500ms: {e}"))
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
        assert_eq!(Config::try_from(cli).unwrap().pool.tasks, 3);
    }

    #[test]
    fn limits_have_their_defaults_and_take_units() {
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
        let config = Config::try_from(cli).unwrap();
        assert_eq!(config.call.request_timeout, Duration::from_millis(1500));
        assert_eq!(config.call.max_memory, 64 * 1024 * 1024);
        assert_eq!(config.pool.recycle_after, Some(100));
        assert!(
            Cli::try_parse_from(["wasmhost", "--max-header-size", "1KiB", "app.wasm"]).is_err()
        );
        assert!(Cli::try_parse_from(["wasmhost", "--recycle-after", "0", "app.wasm"]).is_err());
    }

    #[test]
    fn debug_output_shows_no_secret() {
        let cli = Cli::try_parse_from([
            "wasmhost",
            "--store",
            "redis://app:s3cret@127.0.0.1:6379/0",
            "--env",
            "SESSION_SECRET=hunter2",
            "app.wasm",
        ])
        .unwrap();
        let shown = format!("{:?}", Config::try_from(cli).unwrap());
        assert!(
            !shown.contains("s3cret") && !shown.contains("hunter2"),
            "{shown}"
        );
        assert!(
            shown.contains("redis://app:***@127.0.0.1:6379/0"),
            "{shown}"
        );
        assert!(shown.contains("SESSION_SECRET"), "{shown}");
    }

    #[test]
    fn env_file_is_read_and_env_flags_override_it() {
        let dir = std::env::temp_dir().join(format!("wasmhost-env-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("guest.env");
        std::fs::write(
            &file,
            "# secrets\nSESSION_SECRET=from-file\nOTHER=\"a b\"\n\
             LEAK=${HOME}\nPASS=pa$$w0rd$x-tail\n",
        )
        .unwrap();
        let cli = Cli::try_parse_from([
            "wasmhost",
            "--env-file",
            file.to_str().unwrap(),
            "--env",
            "SESSION_SECRET=from-flag",
            "app.wasm",
        ])
        .unwrap();
        let env = Config::try_from(cli).unwrap().env;
        assert_eq!(
            env,
            vec![
                ("SESSION_SECRET".to_owned(), "from-flag".to_owned()),
                ("OTHER".to_owned(), "a b".to_owned()),
                // Read literally: nothing of the host's environment.
                ("LEAK".to_owned(), "${HOME}".to_owned()),
                ("PASS".to_owned(), "pa$$w0rd$x-tail".to_owned()),
            ]
        );
        std::fs::write(&file, "GOOD=1\nthis is not a line hunter2\n").unwrap();
        let cli =
            Cli::try_parse_from(["wasmhost", "--env-file", file.to_str().unwrap(), "app.wasm"])
                .unwrap();
        let error = Config::try_from(cli).unwrap_err();
        assert_eq!(
            error,
            format!("--env-file {}: line 2: expected KEY=VALUE", file.display())
        );
        let cli = Cli::try_parse_from(["wasmhost", "--env-file", "/nonexistent/env", "app.wasm"])
            .unwrap();
        assert!(
            Config::try_from(cli)
                .unwrap_err()
                .contains("cannot read --env-file")
        );
        let _ = std::fs::remove_dir_all(dir);
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

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1048576"), Ok(MIB));
        assert_eq!(parse_size("512KiB"), Ok(512 * KIB));
        assert_eq!(parse_size("128mib"), Ok(128 * MIB));
        assert_eq!(parse_size("2G"), Ok(2 * GIB));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("99999999999999999999GiB").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn the_command_line_defaults_are_the_config_defaults() {
        let cli = Cli::parse_from(["wasmhost", "app.wasm"]);
        let config = Config::try_from(cli).unwrap();
        assert_eq!(config, Config::new("app.wasm"));
    }

    #[test]
    fn tasks_default_to_threads_and_to_more_with_redis() {
        let parse = |args: &[&str]| {
            let mut all = vec!["wasmhost", "app.wasm"];
            all.extend_from_slice(args);
            Config::try_from(Cli::parse_from(all)).unwrap()
        };
        let memory = parse(&["--threads", "3"]);
        assert_eq!((memory.pool.tasks, memory.process.threads), (3, 3));
        let redis = parse(&["--threads", "2", "--store", "redis://127.0.0.1:6379"]);
        assert_eq!(redis.pool.tasks, 2 * REDIS_TASKS_PER_THREAD as u32);
        let chosen = parse(&["--threads", "2", "--tasks", "5"]);
        assert_eq!((chosen.pool.tasks, chosen.process.threads), (5, 2));
    }
}
