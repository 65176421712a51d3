//! Sessions as express-session has them (`docs/architecture.md`, "The session format").
//!
//! A signed `connect.sid` cookie carries the session id; the session itself
//! lives in the shared store under `sess:<id>` as the JSON express-session
//! writes (its fields plus a `cookie` object), with a TTL that follows the
//! cookie's expiry. Whether a request saves, touches or sets the cookie follows
//! express-session's rules for `resave`, `saveUninitialized` and `rolling`, so
//! a Node app using the same store and secret shares sessions with this one.
//!
//! A missing, unsigned, tampered or unknown cookie gives a fresh empty session,
//! never an error page. An unreachable store is an error (503), and so, with
//! [`SessionOptions::merge_concurrent_writes`], is a conflicting concurrent
//! save (409).
//!
//! Turn sessions on with [`crate::App::sessions`] and [`SessionOptions`]; in a
//! handler, [`crate::Request::session`] gives the request's [`Session`].
//!
//! ```no_run
//! use std::time::Duration;
//! use wasmhost_sdk::{App, Request, Response, SessionError, SessionOptions, StatusCode};
//!
//! fn app() -> App {
//!     let secret = std::env::var("SESSION_SECRET").expect("run with --env SESSION_SECRET=...");
//!     App::new()
//!         .sessions(
//!             SessionOptions::new(secret)
//!                 .max_age(Duration::from_secs(30 * 60))
//!                 .save_uninitialized(false),
//!         )
//!         .post("/login/:user", login)
//!         .get("/me", me)
//!         .post("/logout", logout)
//! }
//!
//! fn login(req: &mut Request) -> Result<Response, SessionError> {
//!     let user = req.param("user").unwrap_or_default().to_owned();
//!     // (check the password here)
//!     req.session().regenerate()?; // a new id on login
//!     req.session().insert("user", &user)?;
//!     Ok(Response::text(format!("welcome, {user}")))
//! }
//!
//! fn me(req: &mut Request) -> Result<Response, SessionError> {
//!     Ok(match req.session().get::<String>("user")? {
//!         Some(user) => Response::text(user),
//!         None => Response::text("not logged in").with_status(StatusCode::UNAUTHORIZED),
//!     })
//! }
//!
//! fn logout(req: &mut Request) -> Result<StatusCode, SessionError> {
//!     req.session().destroy()?;
//!     Ok(StatusCode::NO_CONTENT)
//! }
//! # let _ = app;
//! ```

// The layout: one file per concept, each with a module doc saying what it
// owns, each using only those above it in this list (no module reaches back
// up, so there is no import circle):
//
// - `cookie.rs`: the cookie's options and attributes (`SessionCookie`,
//   `SameSite`) and the `Cookie` header parser; `signature.rs`:
//   cookie-signature's `sign` and `unsign`.
// - `error.rs`: `SessionError` and the response it answers with.
// - `options.rs`: `SessionOptions` (with `Unset`), their builders, and
//   the one session id generator.
// - `stored.rs`: the stored JSON, read into fields and a cookie and written
//   back, and the merge of concurrent writes.
// - `handle.rs`: `Session`, what a handler reads and changes, and how it
//   is saved, merged or touched.
// - `layer.rs`: the middleware of an `App`: loading the session
//   before a handler and committing it (save, touch, cookie) after.
//
// (`Session` is in `handle.rs`, not `session.rs`: clippy's `module_inception`
// refuses a module named as its parent.)

pub(crate) mod cookie;
mod error;
mod handle;
mod layer;
mod options;
mod signature;
mod stored;

pub use cookie::{SameSite, SessionCookie};
pub use error::SessionError;
pub use handle::Session;
pub(crate) use layer::SessionLayer;
pub use options::{SessionOptions, Unset};
pub(crate) use signature::{sign, unsign};
pub(crate) use stored::{StoredRoundTrip, stored_round_trip};
