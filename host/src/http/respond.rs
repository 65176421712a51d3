//! What a client sees of each [`Outcome`] and each [`Rejection`]: the one
//! place that picks the status, the `Retry-After`, whether the connection
//! closes and the log level of the host's own answers.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONNECTION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper::{Response, StatusCode};
use std::sync::Arc;

use tracing::{debug, warn};

use super::budget::BodyBudget;
use super::convert::{Body, InvalidResponse, Rejection, from_guest};
use crate::pool::Outcome;

/// The response for `outcome`; a guest's response over `max_response` bytes
/// or otherwise invalid is a 500 and a warning naming what was wrong. A
/// failed call was already logged by the pool with its replacement.
pub fn respond(outcome: Outcome, max_response: usize, budget: &Arc<BodyBudget>) -> Response<Body> {
    match outcome {
        Outcome::Served { task, response } => match from_guest(response, max_response, budget) {
            Ok(response) => response,
            Err(InvalidResponse::OverBudget(len)) => {
                debug!(task, len, "response body refused: --max-buffered is spent");
                busy()
            }
            Err(e) => {
                warn!(task, "guest returned an invalid response: {e}");
                internal_error()
            }
        },
        Outcome::Busy => busy(),
        Outcome::TimedOut => plain(StatusCode::GATEWAY_TIMEOUT, "request timed out"),
        Outcome::Trapped | Outcome::OutOfMemory => internal_error(),
        Outcome::NoInstance => plain(StatusCode::SERVICE_UNAVAILABLE, "no instance available"),
    }
}

/// The answer to a request refused before it reached the guest.
pub fn reject(rejection: Rejection) -> Response<Body> {
    let mut response = match rejection {
        Rejection::Host(bad) => plain(StatusCode::BAD_REQUEST, bad.message()),
        Rejection::BodyDeclaredTooLarge | Rejection::BodyTooLarge => {
            plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large")
        }
        Rejection::BodyIncomplete => plain(StatusCode::BAD_REQUEST, "request body incomplete"),
        Rejection::BodyInTooManyPieces => {
            plain(StatusCode::BAD_REQUEST, "request body in too many pieces")
        }
        Rejection::BodyTooSlow => plain(StatusCode::REQUEST_TIMEOUT, "request body too slow"),
        Rejection::BodyOverBudget => busy(),
    };
    if rejection.closes() {
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// 503 with `Retry-After`: the server is at one of its limits for now.
fn busy() -> Response<Body> {
    let mut busy = plain(StatusCode::SERVICE_UNAVAILABLE, "server busy, retry later");
    busy.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    busy
}

fn internal_error() -> Response<Body> {
    plain(StatusCode::INTERNAL_SERVER_ERROR, "internal server error")
}

/// A short plain-text response from the host itself.
pub fn plain(status: StatusCode, message: &'static str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from_static(message.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
