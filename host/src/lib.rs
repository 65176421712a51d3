//! wasmhost: runs one WebAssembly web app on N task threads, each with its own
//! persistent, isolated wasmtime instance, all sharing one session store.
//!
//! The binary (`main.rs`) only parses the command line and reports errors; this
//! library owns everything else so that tests and benchmarks can reuse it.
//!
//! - [`cli`]: the command line and the [`Config`] it produces.
//! - [`board`]: who is busy, and the bounded line for free instances.
//! - [`guest`]: loading and checking the guest component, once per process.
//! - [`task`]: the tasks' persistent instances, and running a request on one.
//! - [`http`]: converting hyper requests and responses to the WIT records.
//! - [`header_timer`]: the header-read and idle deadlines at one timer per connection.
//! - [`connection`]: a client's socket, with the idle and write deadlines.
//! - [`instance`]: one task's persistent instance, replaced after a trap.
//! - [`limits`]: deadlines, memory, recycling, queue and HTTP limits.
//! - [`store`]: the shared session store: the `Backend` trait, the memory
//!   backend (DashMap, TTLs, limits) and the Redis backend (several hosts).
//! - [`state`]: what each wasmtime `Store` holds, and the host side of the WIT imports.
//! - [`guest_log`]: guest stdout/stderr into the host's log, tagged with the task.
//! - [`server`]: start-up, readiness, signals and graceful shutdown.
//! - [`watchdog`]: advances the epoch when a call is slow, for deadlines and yields.

pub mod board;
pub mod cli;
pub mod connection;
pub mod guest;
pub mod guest_log;
pub mod header_timer;
pub mod http;
pub mod instance;
pub mod limits;
pub mod server;
pub mod state;
pub mod store;
pub mod task;
pub mod watchdog;

pub use cli::Config;
