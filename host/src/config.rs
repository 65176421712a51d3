//! Everything a server needs to start, grouped by the scope each setting
//! applies to: per guest call ([`CallLimits`]), per connection
//! ([`HttpLimits`]), the pool ([`PoolSettings`]), the store
//! ([`StoreSettings`]) and the process ([`ProcessSettings`]). Each scope's
//! type lives with the layer that uses it; this module only gathers them.
//! The command line (`cli`) is one way to fill a [`Config`]; a test or an
//! embedding program can build one with [`Config::new`].

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::guest::{CallLimits, OutboundSettings, Precompiled};
use crate::http::{DEFAULT_MAX_CONNECTIONS, HttpLimits};
use crate::pool::PoolSettings;
use crate::store::StoreSettings;

/// Everything the server needs to start. Its `Debug` shows no secret: no
/// store password, no guest variable's value.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    /// The guest app: a component exporting `wasmhost:app/handler`.
    pub app: PathBuf,
    /// Address to serve; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Environment variables the guest sees.
    pub env: Vec<(String, String)>,
    /// Where the admin endpoint listens, if anywhere (`--admin-listen`); the
    /// binary binds it, as it binds `listen`.
    pub admin_listen: Option<SocketAddr>,
    /// Reload the app when its file changes (`--watch`).
    pub watch: bool,
    /// A log line per answered request (`--access-log`).
    pub access_log: bool,
    pub call: CallLimits,
    /// Where guests may send HTTP requests (`--allow-outbound`, `--max-outbound`).
    pub outbound: OutboundSettings,
    pub pool: PoolSettings,
    pub http: HttpLimits,
    pub store: StoreSettings,
    pub process: ProcessSettings,
}

/// Settings of the process as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessSettings {
    /// Worker threads serving connections and running calls (`--threads`).
    pub threads: usize,
    /// Keep compiled code in wasmtime's cache.
    pub cache: bool,
    /// Whether the app file may be precompiled machine code (`--allow-precompiled`).
    pub precompiled: Precompiled,
    /// After a shutdown is asked for, in-flight requests get this long.
    pub drain_timeout: Duration,
}

impl Config {
    /// The defaults the command line has, for `app`: one task and one worker
    /// thread per CPU, a memory store, 127.0.0.1:8080.
    pub fn new(app: impl Into<PathBuf>) -> Config {
        let cpus = cpus();
        Config {
            app: app.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            env: Vec::new(),
            admin_listen: None,
            watch: false,
            access_log: false,
            call: CallLimits::default(),
            outbound: OutboundSettings::default(),
            pool: PoolSettings {
                tasks: u32::try_from(cpus).unwrap_or(u32::MAX),
                max_pending: DEFAULT_MAX_CONNECTIONS,
                queue_timeout: DEFAULT_QUEUE_TIMEOUT,
                recycle_after: None,
            },
            http: HttpLimits::default(),
            store: StoreSettings::default(),
            process: ProcessSettings {
                threads: cpus,
                cache: true,
                precompiled: Precompiled::Refuse,
                drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            },
        }
    }
}

/// Default of `--queue-timeout`: how long a request may wait for a free instance.
pub const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(10);

/// Default of `--drain-timeout`: how long in-flight requests get at shutdown.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The CPUs this process may use (at least 1).
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let env_names: Vec<&str> = self.env.iter().map(|(key, _)| key.as_str()).collect();
        f.debug_struct("Config")
            .field("app", &self.app)
            .field("listen", &self.listen)
            .field("env (names only)", &env_names)
            .field("admin_listen", &self.admin_listen)
            .field("watch", &self.watch)
            .field("access_log", &self.access_log)
            .field("call", &self.call)
            .field("outbound", &self.outbound)
            .field("pool", &self.pool)
            .field("http", &self.http)
            .field("store", &self.store)
            .field("process", &self.process)
            .finish()
    }
}
