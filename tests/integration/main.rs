//! The integration suite, one test binary so a test run links once: each
//! module drives the real `wasmhost` binary (or the real server in process)
//! with real guests built for `wasm32-wasip2`, over real sockets, against a
//! Redis each test starts itself. The shared harness is this package's
//! library (`tests/harness`).

mod browser;
mod containment;
mod counter_app;
mod docs;
mod express_session;
mod faults;
mod guide_examples;
mod host;
mod hostile;
mod layering;
mod node_interop;
mod ops;
mod redis_hosts;
mod seed_app;
mod session_concurrency;
mod startup;
mod store;
mod wasi_http;
