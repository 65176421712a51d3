//! [`SessionError`]: why a session operation failed, and the response it
//! answers with as a handler's error ([`crate::IntoResponse`]), kept beside
//! the type so that each error's status is chosen where the error is defined.
//!
//! With [`super::options`] the bottom of the session layer: it uses no other
//! session module. It uses [`crate::into_response`] (the trait and the plain
//! `500`), which in turn knows nothing of sessions.

use std::fmt;

use crate::store::StoreError;
use crate::{IntoResponse, Response, StatusCode};

/// Why a session operation failed.
///
/// As a handler's error it is [`crate::IntoResponse`]: a
/// [`SessionError::Store`] answers as its [`StoreError`] does (`503` while the
/// store is unavailable or full, else `500`), a [`SessionError::Conflict`]
/// `409`, anything else `500`; the error
/// goes to the guest's stderr (the host log), not to the client. A
/// [`StoreError`] converts into it, so `?` works on store calls in a handler
/// returning `Result<_, SessionError>`.
///
/// ```no_run
/// use wasmhost_sdk::{Request, SessionError, store};
///
/// fn visit(req: &mut Request) -> Result<String, SessionError> {
///     let total = store::increment("visits", 1)?; // a StoreError, converted
///     let mine = req.session().get::<i64>("visits")?.unwrap_or(0) + 1;
///     req.session().insert("visits", &mine)?;
///     Ok(format!("visit {mine} of yours, {total} in all"))
/// }
/// # let _ = visit;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionError {
    /// The store failed (see [`StoreError`]).
    Store(StoreError),
    /// [`Session::reload`](crate::Session::reload) found no stored session (it expired or was
    /// destroyed, or the session was never saved).
    NotFound,
    /// The session is detached: the app has no sessions enabled (see
    /// [`crate::App::sessions`]), so [`Session::regenerate`](crate::Session::regenerate),
    /// [`Session::destroy`](crate::Session::destroy), [`Session::save`](crate::Session::save) and [`Session::reload`](crate::Session::reload) have
    /// no store to work on.
    Detached,
    /// The OS random number generator failed.
    Random(String),
    /// A field holds JSON that is not the type asked for.
    Decode {
        /// The field's name.
        field: String,
        /// What serde said.
        reason: String,
    },
    /// A value could not be serialized to JSON (a map with non-string keys, say).
    Encode {
        /// The field's name.
        field: String,
        /// What serde said.
        reason: String,
    },
    /// The field name is express-session's own (`cookie`, `id`, `req`, a
    /// session method such as `save`) or one every JavaScript object has
    /// (`constructor`, `__proto__`...), which a Node app sharing the session
    /// could not read back. Change the cookie with [`Session::cookie_mut`](crate::Session::cookie_mut).
    Reserved(String),
    /// The session was destroyed in this request ([`Session::destroy`](crate::Session::destroy)):
    /// there is nothing to save or reload (in express-session
    /// `req.session` is gone); [`Session::regenerate`](crate::Session::regenerate) starts a new one.
    Destroyed,
    /// With [`SessionOptions::merge_concurrent_writes`](crate::SessionOptions::merge_concurrent_writes), another request
    /// saved the session since this one loaded it and the changes cannot be
    /// merged: the payload says why (a field both changed, or the session
    /// was removed). Nothing was saved: [`Session::reload`](crate::Session::reload) and redo the
    /// change. A handler that gives up reloads too (or calls
    /// [`Session::unset`](crate::Session::unset)): otherwise the save at the end of the request
    /// meets the same conflict and answers `409`.
    Conflict(String),
    /// The session was dropped in this request ([`Session::unset`](crate::Session::unset)): there
    /// is nothing to save or reload (in express-session `req.session` is
    /// null); [`Session::regenerate`](crate::Session::regenerate) starts a new one.
    Unset,
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::Store(error) => write!(f, "session store: {error}"),
            SessionError::NotFound => f.write_str("session not found in the store"),
            SessionError::Detached => f.write_str("sessions are not enabled on this app"),
            SessionError::Random(why) => write!(f, "cannot generate a session id: {why}"),
            SessionError::Decode { field, reason } => {
                write!(
                    f,
                    "session field {field:?} is not of the type asked for: {reason}"
                )
            }
            SessionError::Encode { field, reason } => {
                write!(f, "cannot store session field {field:?} as JSON: {reason}")
            }
            SessionError::Reserved(field) => {
                write!(f, "session field {field:?} is express-session's own")
            }
            SessionError::Destroyed => f.write_str("the session was destroyed in this request"),
            SessionError::Conflict(why) => {
                write!(f, "the session changed concurrently: {why}")
            }
            SessionError::Unset => f.write_str("the session was unset in this request"),
        }
    }
}

impl std::error::Error for SessionError {}

/// [`SessionError::Store`], so `?` on a store call works in a handler that
/// returns `Result<_, SessionError>`.
impl From<StoreError> for SessionError {
    fn from(error: StoreError) -> Self {
        SessionError::Store(error)
    }
}

/// A store failure as [`StoreError`] answers it, a conflicting concurrent
/// save 409 (the client may try again); anything else is a 500.
impl IntoResponse for SessionError {
    fn into_response(self) -> Response {
        match self {
            SessionError::Store(error) => error.into_response(),
            SessionError::Conflict(why) => {
                eprintln!("wasmhost-sdk: session not saved: {why}");
                Response::text("the session was changed by another request; try again")
                    .with_status(StatusCode::CONFLICT)
            }
            other => {
                eprintln!("wasmhost-sdk: session: {other}");
                crate::Response::internal_error()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_with_a_session_error_answer_as_the_error_says() {
        let bad: Result<&'static str, SessionError> = Err(SessionError::NotFound);
        assert_eq!(
            bad.into_response().status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        let full: Result<&'static str, SessionError> = Err(SessionError::Store(StoreError::Full));
        assert_eq!(
            full.into_response().status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
}
