//! The wasmhost guest SDK: write a web app in Rust, compile it to a
//! `wasm32-wasip2` component, run it with `wasmhost --tasks N app.wasm`.
//!
//! ```no_run
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
//! What it owns:
//! - [`App`] and its router: method + path (with `:param` segments) to handler.
//! - [`Request`] and [`Response`]: the HTTP types handlers see, with JSON helpers;
//!   handlers return anything [`IntoResponse`] (a `Result` too, so `?` works),
//!   with [`StatusCode`] (the `http` crate's) and [`Json`].
//! - [`store`]: typed access to the store every task shares.
//! - [`session`]: express-session's sessions, cookie and stored format included,
//!   so a Node app on the same store and secret shares sessions with yours.
//! - [`task_id`] and [`task_count`]: which task runs this request.
//!
//! The raw WIT bindings are an implementation detail; guest code never needs them.

#![deny(missing_docs)]

mod app;
mod into_response;
mod request;
mod response;
pub mod session;
pub mod store;
mod text;

pub use app::App;
pub use http::StatusCode;
pub use into_response::{IntoResponse, Json};
pub use request::Request;
pub use response::Response;
pub use session::{SameSite, Session, SessionError, SessionOptions};

/// Raw bindings to the `wasmhost:app` world; used by [`export_app!`].
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "app",
        pub_export_macro: true,
        default_bindings_module: "wasmhost_sdk::bindings",
    });
}

thread_local! {
    /// The task id and count never change for an instance, so they are asked
    /// of the host once rather than on every request.
    static TASK: std::cell::OnceCell<(u32, u32)> = const { std::cell::OnceCell::new() };
}

fn task() -> (u32, u32) {
    TASK.with(|task| {
        *task.get_or_init(|| {
            (
                bindings::wasmhost::app::task::task_id(),
                bindings::wasmhost::app::task::task_count(),
            )
        })
    })
}

/// This task's id, `0..task_count()`, like JXcore's `process.threadId`.
pub fn task_id() -> u32 {
    task().0
}

/// How many tasks the host runs.
pub fn task_count() -> u32 {
    task().1
}

/// Exports an app from this crate. Give it a function that builds the
/// [`App`]; it runs once per instance, on the first request.
#[macro_export]
macro_rules! export_app {
    ($build:path) => {
        struct __WasmhostApp;

        impl $crate::bindings::exports::wasmhost::app::handler::Guest for __WasmhostApp {
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
        crate::session::sign(value, secret)
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
    pub type StoredRoundTrip = (Vec<(String, String)>, SessionCookie, String);

    /// What [`StoredRoundTrip`] says; none if `json` is not a stored session.
    pub fn stored_round_trip(json: &str) -> Option<StoredRoundTrip> {
        crate::session::stored_round_trip(json)
    }
}
