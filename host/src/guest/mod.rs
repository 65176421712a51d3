//! The guest's world: everything that knows the app is a WebAssembly
//! component of the `wasmhost:app/app` world (`docs/architecture.md`, "Layers").
//!
//! Inside, the modules build on each other one way, as wasmtime's
//! `crates/wasi-http` does: [`bindings`] (generated once) ← [`state`] (what
//! each wasmtime `Store` holds) ← `imports` (one `Host` impl per WIT
//! interface) ← [`instance`] (one persistent instance, its limits and
//! deadline). [`load`] compiles the app once; [`clock`] and [`watchdog`]
//! give each call its deadline.
//!
//! Outside, the pool sees only [`GuestApp`], [`Instance`], the
//! [`Request`]/[`Response`] records, [`CallError`] and the clocks, whatever
//! world the guest is of: a standard `wasi:http` component ([`wasi_http`],
//! with outbound requests refused by `outbound`) is served through the same
//! records as wasmhost's own world, and a reload swaps the compiled app
//! here, without touching the pool or the server.

pub mod bindings;
pub mod clock;
mod imports;
pub mod instance;
pub mod limiter;
pub mod limits;
pub mod load;
pub mod log;
pub mod outbound;
pub mod state;
pub mod wasi_http;
pub mod watchdog;

pub use bindings::exports::wasmhost::app::handler::{Method, Request, Response};
pub use clock::CallClocks;
pub use instance::{CallError, Instance};
pub use limits::{CallLimits, GuestLogLimits};
pub use load::{GuestApp, LoadError, Precompiled, engine, precompile};
pub use outbound::{Origin, OutboundPolicy, OutboundSettings};
pub use state::{AppContext, GuestMetrics, TaskContext};
pub use watchdog::Watchdog;
