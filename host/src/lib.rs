//! wasmhost: runs one WebAssembly web app on N task threads, each with its own
//! persistent, isolated wasmtime instance, all sharing one session store.
//!
//! The binary (`main.rs`) only parses the command line and reports errors; this
//! library owns everything else so that tests and benchmarks can reuse it.
//!
//! - [`cli`]: the command line and the [`Config`] it produces.
//! - [`guest`]: loading and checking the guest component, once per process.
//! - [`task`]: one task thread: its event loop, its instance, its connections.
//! - [`http`]: converting hyper requests and responses to the WIT records.
//! - [`instance`]: one task's persistent instance, replaced after a trap.
//! - [`store`]: the shared session store (memory backend with TTL and limits).
//! - [`state`]: what each wasmtime `Store` holds, and the host side of the WIT imports.
//! - [`guest_log`]: guest stdout/stderr into the host's log, tagged with the task.
//! - [`listener`]: one listening socket per task, so the kernel spreads connections.
//! - [`server`]: start-up, readiness, signals and graceful shutdown.

pub mod cli;
pub mod guest;
pub mod guest_log;
pub mod http;
pub mod instance;
pub mod listener;
pub mod server;
pub mod state;
pub mod store;
pub mod task;

pub use cli::Config;
