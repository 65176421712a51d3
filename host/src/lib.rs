//! wasmhost: runs one WebAssembly web app as N persistent, isolated task
//! instances, served by a pool of worker threads, all sharing one session
//! store. `docs/architecture.md` in the repository follows one request
//! through these layers, each of which imports only the ones below it:
//!
//! 1. [`store`]: the shared store (memory or Redis); knows nothing of guests.
//! 2. `guest`: the guest's world: bindings, each instance's state, the WIT
//!    imports, one persistent instance with its limits and deadline.
//! 3. `pool`: the task instances, admission, leases and typed outcomes.
//! 4. `http`: hyper requests to guest records and back, outcomes to statuses,
//!    the client socket's deadlines.
//! 5. [`server`]: a [`Server`] started from a [`Config`], serving a listener
//!    until a shutdown future resolves.
//!
//! [`config`] gathers each layer's settings; [`cli`] fills them from the
//! command line, and [`env_file`] reads `--env-file` literally.
//! `metrics` holds what every layer counts, for the admin
//! endpoint, and `log_text` makes guest and client text safe to log; [`scaffold`] writes new guest projects (`wasmhost new`). The
//! binary (`main.rs`) alone sets up logging, binds the addresses, watches
//! signals and prints.

pub mod cli;
pub mod config;
pub mod env_file;
pub(crate) mod guest;
pub(crate) mod http;
pub(crate) mod log_text;
pub(crate) mod metrics;
pub(crate) mod pool;
pub mod scaffold;
pub mod server;
pub mod store;

pub use config::Config;
pub use guest::LoadError;
/// The access log's events and the layer that writes them (the binary
/// installs it beside the formatter).
pub use http::access;
pub use server::{Server, StartError};

/// Compiles the app at `input` ahead of time for this wasmhost and writes
/// it to `output` (`wasmhost compile`); serving `output` skips compilation.
pub fn compile(input: &std::path::Path, output: &std::path::Path) -> Result<(), LoadError> {
    guest::precompile(input, output)
}

/// Internals reachable from the fuzz targets (`fuzz/`) and the call-cost
/// example only: not part of the API, and free to change with them.
#[doc(hidden)]
pub mod __internals {
    pub use crate::guest::{
        AppContext, CallClocks, CallLimits, GuestApp, GuestMetrics, Instance, Method,
        OutboundPolicy, OutboundSettings, Precompiled, Request, Response, TaskContext, engine,
    };
    pub use crate::http::authority::is_valid as is_valid_host;
    pub use crate::http::budget::BodyBudget;
    pub use crate::http::convert::{
        InvalidResponse, MAX_RESPONSE_HEADERS, from_guest, is_framing, pack_target_and_headers,
    };
    pub use crate::metrics::Metrics;
}
