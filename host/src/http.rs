//! Converting between hyper's requests and responses and the WIT records.
//!
//! This sits on the per-request path, so it copies each part once: header
//! names and values straight into the guest's record, the collected body as
//! one buffer. Whatever the guest sends back is checked before it reaches the
//! wire: an invalid status or header becomes a 500, never a host panic.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};

use crate::guest;

/// The body type of every response wasmhost sends.
pub type Body = Full<Bytes>;

/// Reads a whole request into the guest's record, or answers it directly
/// (413 for a body over `max_body`, 400 for a body that breaks off).
pub async fn to_guest(
    request: Request<Incoming>,
    max_body: usize,
) -> Result<guest::Request, Response<Body>> {
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max_body as u64) {
        return Err(plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body too large",
        ));
    }
    let body = match Limited::new(body, max_body).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.is::<LengthLimitError>() => {
            return Err(plain(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large",
            ));
        }
        Err(_) => return Err(plain(StatusCode::BAD_REQUEST, "request body incomplete")),
    };

    let path_with_query = parts
        .uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    let mut headers = String::with_capacity(
        parts
            .headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 2)
            .sum(),
    );
    for (name, value) in &parts.headers {
        headers.push_str(name.as_str());
        headers.push('\0');
        headers.push_str(&String::from_utf8_lossy(value.as_bytes()));
        headers.push('\0');
    }
    let received_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        });
    Ok(guest::Request {
        method: parts.method.as_str().to_owned(),
        path_with_query,
        headers,
        body: Vec::from(body),
        received_ms,
    })
}

/// Turns the guest's answer into a hyper response, refusing anything invalid.
pub fn from_guest(response: guest::Response) -> Result<Response<Body>, InvalidResponse> {
    let status = StatusCode::from_u16(response.status)
        .map_err(|_| InvalidResponse::Status(response.status))?;
    let mut headers = HeaderMap::with_capacity(response.headers.len());
    for (name, value) in response.headers {
        let header_name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| InvalidResponse::HeaderName(name.clone()))?;
        let header_value =
            HeaderValue::try_from(value).map_err(|_| InvalidResponse::HeaderValue(name))?;
        headers.append(header_name, header_value);
    }
    let mut answer = Response::new(Full::new(Bytes::from(response.body)));
    *answer.status_mut() = status;
    *answer.headers_mut() = headers;
    Ok(answer)
}

/// What was wrong with a guest's response.
#[derive(Debug, thiserror::Error)]
pub enum InvalidResponse {
    #[error("invalid status code {0}")]
    Status(u16),
    #[error("invalid header name {0:?}")]
    HeaderName(String),
    #[error("invalid value for header {0:?}")]
    HeaderValue(String),
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
