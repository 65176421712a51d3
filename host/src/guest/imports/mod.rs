//! The host side of the world's imports, one `Host` impl per WIT interface
//! (as wasmtime's `crates/wasi-http` has them); WASI itself comes from
//! `wasmtime-wasi`.

mod crypto;
mod keyvalue;
mod store;
mod task;
