//! What a handler may return: anything that is [`IntoResponse`], as in axum.
//! A handler can so use `?` on store and session operations: their errors
//! answer with the statuses the session layer uses (503 while the store is
//! unreachable or full, 500 otherwise), logged to the guest's stderr.
//! The impls for [`crate::SessionError`] and [`crate::store::StoreError`]
//! live beside those types (`session/error.rs`, `store.rs`); this module
//! knows nothing of sessions or the store.

use serde::Serialize;

use crate::{Response, StatusCode};

/// Turns a handler's return value into the response sent, as in axum.
///
/// A handler may return any type that implements it:
///
/// | return value | response |
/// |---|---|
/// | [`Response`] | itself |
/// | `String`, `&'static str` | `200`, `text/plain; charset=utf-8` |
/// | [`Json<T>`] | `200`, the value as JSON ([`Response::json`]) |
/// | [`StatusCode`] | that status, empty body |
/// | `(StatusCode, T)` | `T`'s response with that status |
/// | `Result<T, E>` | `T`'s or `E`'s, so handlers use `?` |
/// | [`StoreError`](crate::store::StoreError) | `503` if the store is unavailable or full, else `500` (logged) |
/// | [`SessionError`](crate::SessionError) | as its [`StoreError`](crate::store::StoreError), `409` for a [`SessionError::Conflict`](crate::SessionError::Conflict), else `500` (logged) |
///
/// Implement it for your own error type to answer errors your way and keep
/// using `?`:
///
/// ```
/// use wasmhost_sdk::store::StoreError;
/// use wasmhost_sdk::{IntoResponse, Response, StatusCode};
///
/// enum AppError {
///     BadRequest(String),
///     Store(StoreError),
/// }
///
/// impl From<StoreError> for AppError {
///     fn from(error: StoreError) -> Self {
///         AppError::Store(error)
///     }
/// }
///
/// impl IntoResponse for AppError {
///     fn into_response(self) -> Response {
///         match self {
///             AppError::BadRequest(why) => (StatusCode::BAD_REQUEST, why).into_response(),
///             // 503 or 500, as the SDK answers a store error.
///             AppError::Store(error) => error.into_response(),
///         }
///     }
/// }
///
/// let answer: Result<&'static str, AppError> = Err(AppError::BadRequest("no name".into()));
/// assert_eq!(answer.into_response().status(), StatusCode::BAD_REQUEST);
/// # let _ = AppError::Store(StoreError::Full);
/// ```
pub trait IntoResponse {
    /// The response for `self`.
    ///
    /// ```
    /// use wasmhost_sdk::{IntoResponse, StatusCode};
    ///
    /// let response = (StatusCode::ACCEPTED, "queued").into_response();
    /// assert_eq!(response.status(), StatusCode::ACCEPTED);
    /// assert_eq!(response.body(), b"queued");
    /// ```
    fn into_response(self) -> Response;
}

/// The response itself.
impl IntoResponse for Response {
    fn into_response(self) -> Response {
        self
    }
}

/// A plain-text `200`.
impl IntoResponse for &'static str {
    fn into_response(self) -> Response {
        Response::text(self)
    }
}

/// A plain-text `200`.
impl IntoResponse for String {
    fn into_response(self) -> Response {
        Response::text(self)
    }
}

/// An empty response with this status.
impl IntoResponse for StatusCode {
    fn into_response(self) -> Response {
        Response::new(self)
    }
}

/// `T`'s response with another status.
impl<T: IntoResponse> IntoResponse for (StatusCode, T) {
    fn into_response(self) -> Response {
        self.1.into_response().with_status(self.0)
    }
}

/// The response of whichever it is, so handlers can use `?`.
impl<T: IntoResponse, E: IntoResponse> IntoResponse for Result<T, E> {
    fn into_response(self) -> Response {
        match self {
            Ok(ok) => ok.into_response(),
            Err(error) => error.into_response(),
        }
    }
}

/// A value sent as JSON: `200` with `application/json`, as express's `res.json`.
///
/// Wrap any `serde::Serialize` value (a `#[derive(Serialize)]` struct, a
/// `serde_json::json!` value, a `Vec`...) and return it from a handler; pair
/// it with a [`StatusCode`] for another status. To read JSON from a request,
/// see [`crate::Request::json`].
///
/// ```
/// use wasmhost_sdk::{IntoResponse, Json, StatusCode};
///
/// let created = (StatusCode::CREATED, Json(serde_json::json!({ "id": 7 })));
/// let response = created.into_response();
/// assert_eq!(response.status(), StatusCode::CREATED);
/// assert_eq!(response.body(), br#"{"id":7}"#);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Json<T>(
    /// The value sent.
    pub T,
);

/// [`Response::json`] of the value.
impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        Response::json(&self.0)
    }
}

/// 503 while the store is unreachable or full (try again later), 500 for
/// anything else; the error goes to the guest's stderr, not to the client.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_pair_and_json_compose() {
        let response = (StatusCode::CONFLICT, Json([1, 2])).into_response();
        assert_eq!(response.status(), StatusCode::CONFLICT);
        assert_eq!(response.body(), b"[1,2]");
        assert_eq!(
            response.header("content-type"),
            Some("application/json; charset=utf-8")
        );
        assert_eq!(StatusCode::NO_CONTENT.into_response().body(), b"");
    }
}
