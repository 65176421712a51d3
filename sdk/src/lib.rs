//! The wasmhost guest SDK: write a web app in Rust, compile it to a
//! `wasm32-wasip2` component, run it with `wasmhost --tasks N app.wasm`.
//!
//! ```no_run,standalone_crate
//! use wasmhost_sdk::{App, Json, Request, SessionError, SessionOptions};
//!
//! fn app() -> App {
//!     App::new()
//!         .sessions(SessionOptions::new("a secret"))
//!         .get("/", visits)
//! }
//!
//! fn visits(req: &mut Request) -> Result<Json<serde_json::Value>, SessionError> {
//!     let visits = req.session().get::<u64>("visits")?.unwrap_or(0) + 1;
//!     req.session().insert("visits", &visits)?;
//!     Ok(Json(serde_json::json!({ "visits": visits })))
//! }
//!
//! wasmhost_sdk::export_app!(app);
//! ```
//!
//! A guest is a `cdylib` crate that depends on this one; build and run it with
//!
//! ```sh
//! cargo build --release --target wasm32-wasip2
//! wasmhost --tasks 5 target/wasm32-wasip2/release/my_app.wasm
//! ```
//!
//! What it owns:
//! - [`App`] and its router: method + path (with `:param` segments) to handler.
//! - [`Request`] and [`Response`]: the HTTP types handlers see, with JSON helpers;
//!   handlers return anything [`IntoResponse`] (a `Result` too, so `?` works),
//!   with [`StatusCode`] (the `http` crate's) and [`Json`].
//! - [`store`]: typed access to the store every task shares, with atomic
//!   operations ([`store::set_if_absent`], [`store::compare_and_swap`],
//!   [`store::increment`]).
//! - [`session`]: express-session's sessions, cookie and stored format included,
//!   so a Node app on the same store and secret shares sessions with yours.
//! - [`task_id`] and [`task_count`]: which task runs this request.
//! - `testing` (off wasm only): the test host a guest's unit tests run against.
//! - [`export_app!`]: exports the app from the guest crate.
//!
//! # How a guest runs
//!
//! The host runs `--tasks N` instances of the component, each with its own
//! memory, kept from one request to the next. The function given to
//! [`export_app!`] builds the [`App`] once per instance, when it starts;
//! a `static` or `thread_local!` in the guest lives as long as the instance
//! and is seen by that task only. State every task must see belongs in the
//! [`store`] (sessions live there too). An instance that traps (a panic, say)
//! or runs past the host's limits is replaced by a fresh one, and its request
//! answered `500` or `504`.
//!
//! The guest's environment holds only the variables given with `--env` and
//! `--env-file` (read them with [`std::env::var`]), and what it prints with
//! `println!` and `eprintln!` goes to the host's log, tagged with the task.
//!
//! A handler can be unit-tested natively (`cargo test` on your own machine)
//! with [`App::handle`] and [`Request::new`], sessions and store calls
//! included: off wasm the SDK's host calls go to an in-process test host
//! ([`testing`]: an in-memory store with TTLs and the atomic operations, a
//! task id and count).
//!
//! The guide in the repository (`docs/guide.md`) walks through all of this.
//! The raw WIT bindings are an implementation detail; guest code never needs them.

#![deny(missing_docs)]

mod app;
mod into_response;
mod request;
mod response;
pub mod session;
pub mod store;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
mod text;

pub use app::{App, IntoApp};
/// An HTTP status code, the `http` crate's: `StatusCode::OK`,
/// `StatusCode::CREATED`, `StatusCode::NOT_FOUND`... A handler can return one
/// by itself (an empty response) or paired with a body, as
/// `(StatusCode::CREATED, Json(value))`.
pub use http::StatusCode;
pub use into_response::{IntoResponse, Json};
pub use request::{Request, RequestHead};
pub use response::Response;
pub use session::{SameSite, Session, SessionError, SessionOptions, Unset};

#[doc(hidden)]
pub mod bindings;
mod task;

pub use task::{task_count, task_id};

/// Exports an app from this crate. Give it a function that builds the
/// [`App`]; it runs once per instance, when the instance starts (before its
/// first request). A panic there, or an app that refuses its configuration
/// (an empty session secret), stops `wasmhost` at start with one line saying
/// why, and a reload with such an app keeps the old one.
///
/// Write it once in a guest crate (a `cdylib` built for `wasm32-wasip2`),
/// at the top level of its `lib.rs`. The argument is the path of a function
/// (not a closure) returning an [`App`], or a `Result<App, E>` whose error
/// (any `Display`) is the one line wasmhost refuses to start with
/// ([`IntoApp`]). The app it builds serves every later request
/// of that instance; an instance that is replaced (after a trap, say) builds
/// it again, so keep the function free of effects that must happen only once
/// (for those, use [`store::set_if_absent`]).
///
/// ```no_run,standalone_crate
/// use wasmhost_sdk::{App, Response};
///
/// fn app() -> App {
///     let greeting = std::env::var("GREETING").unwrap_or_else(|_| "Hello".to_owned());
///     App::new().get("/", move |_| Response::text(format!("{greeting}, world!")))
/// }
///
/// wasmhost_sdk::export_app!(app);
/// ```
#[macro_export]
macro_rules! export_app {
    ($build:path) => {
        struct __WasmhostApp;

        impl $crate::bindings::exports::wasmhost::app::handler::Guest for __WasmhostApp {
            fn start() -> ::core::result::Result<(), ::std::string::String> {
                $crate::__start($build)
            }

            fn handle(
                request: $crate::bindings::exports::wasmhost::app::handler::Request,
            ) -> $crate::bindings::exports::wasmhost::app::handler::Response {
                $crate::__dispatch(request, $build)
            }
        }

        $crate::bindings::export!(__WasmhostApp with_types_in $crate::bindings);
    };
}

#[doc(hidden)]
pub use app::dispatch as __dispatch;
#[doc(hidden)]
pub use app::start as __start;

/// Thin wrappers over internals, for the fuzz targets in `fuzz/` only: not
/// part of the API, and free to change with them.
#[doc(hidden)]
pub mod __fuzz {
    pub use crate::session::SessionCookie;

    pub fn find_byte(text: &str, byte: u8) -> Option<usize> {
        crate::text::find_byte(text, byte)
    }

    pub fn rfind_byte(text: &str, byte: u8) -> Option<usize> {
        crate::text::rfind_byte(text, byte)
    }

    pub fn split_once_byte(text: &str, byte: u8) -> Option<(&str, &str)> {
        crate::text::split_once_byte(text, byte)
    }

    pub fn rsplit_once_byte(text: &str, byte: u8) -> Option<(&str, &str)> {
        crate::text::rsplit_once_byte(text, byte)
    }

    pub fn split_byte(text: &str, byte: u8) -> impl Iterator<Item = &str> {
        crate::text::split_byte(text, byte)
    }

    pub fn nul_pairs(packed: &str) -> impl Iterator<Item = (&str, &str)> {
        crate::text::nul_pairs(packed)
    }

    /// A GET request from the target and headers packed as the host packs them.
    pub fn unpack_request(packed: String) -> crate::Request {
        crate::Request::unpack("GET".into(), packed, Vec::new(), 0)
    }

    /// The `Cookie` header parser.
    pub fn find_cookie<'a>(
        headers: impl IntoIterator<Item = &'a str>,
        name: &str,
    ) -> Option<String> {
        crate::session::cookie::find(headers, name)
    }

    /// cookie-signature's `sign`.
    pub fn sign(value: &str, secret: &str) -> String {
        crate::session::sign(value, secret.as_bytes())
    }

    /// cookie-signature's `unsign`, against any of `secrets`.
    pub fn unsign<'a>(signed: &'a str, secrets: &[String]) -> Option<&'a str> {
        crate::session::unsign(signed, secrets)
    }

    pub fn decode_uri_component(value: &str) -> Option<String> {
        crate::session::cookie::decode_uri_component(value)
    }

    /// A stored session's fields (name, JSON text) in order, its cookie, and
    /// the JSON the SDK writes back for it.
    pub type StoredRoundTrip = crate::session::StoredRoundTrip;

    /// What [`StoredRoundTrip`] says; none if `json` is not a stored session.
    pub fn stored_round_trip(json: &str) -> Option<StoredRoundTrip> {
        crate::session::stored_round_trip(json)
    }
}
