//! Converting between hyper's requests and responses and the WIT records.
//!
//! This sits on the per-request path, so it copies each part once: the
//! request target and the headers into one packed string, the collected body
//! (if any) as one buffer, the guest's packed response headers sliced, not
//! copied, into header values. Whatever the guest sends back is checked before it reaches the
//! wire: an invalid status or header becomes a 500, never a host panic.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Body as _, Incoming};
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

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
    // A request without a body (most GETs) passes none: no list to lower.
    let body = if body.is_end_stream() {
        None
    } else {
        match Limited::new(body, max_body).collect().await {
            Ok(collected) => Some(collected.to_bytes()).filter(|bytes| !bytes.is_empty()),
            Err(error) if error.is::<LengthLimitError>() => {
                return Err(plain(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "request body too large",
                ));
            }
            Err(_) => return Err(plain(StatusCode::BAD_REQUEST, "request body incomplete")),
        }
    };

    let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let mut packed = String::with_capacity(
        target.len()
            + 1
            + parts
                .headers
                .iter()
                .map(|(name, value)| name.as_str().len() + value.len() + 2)
                .sum::<usize>(),
    );
    packed.push_str(target);
    packed.push('\0');
    for (name, value) in &parts.headers {
        packed.push_str(name.as_str());
        packed.push('\0');
        // Header values are almost always ASCII; only others pay for the
        // lossy conversion.
        match std::str::from_utf8(value.as_bytes()) {
            Ok(value) => packed.push_str(value),
            Err(_) => packed.push_str(&String::from_utf8_lossy(value.as_bytes())),
        }
        packed.push('\0');
    }
    let received_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        });
    Ok(guest::Request {
        method: method(&parts.method),
        target_and_headers: packed,
        body: body.map(Vec::from),
        received_ms,
    })
}

/// The WIT method for `method`; only uncommon ones are passed as a string.
fn method(method: &Method) -> guest::Method {
    match *method {
        Method::GET => guest::Method::Get,
        Method::HEAD => guest::Method::Head,
        Method::POST => guest::Method::Post,
        Method::PUT => guest::Method::Put,
        Method::DELETE => guest::Method::Delete,
        Method::CONNECT => guest::Method::Connect,
        Method::OPTIONS => guest::Method::Options,
        Method::TRACE => guest::Method::Trace,
        Method::PATCH => guest::Method::Patch,
        _ => guest::Method::Other(method.as_str().to_owned()),
    }
}

/// Turns the guest's answer into a hyper response, refusing anything invalid.
pub fn from_guest(response: guest::Response) -> Result<Response<Body>, InvalidResponse> {
    let status = StatusCode::from_u16(response.status)
        .map_err(|_| InvalidResponse::Status(response.status))?;
    let headers = unpack_headers(response.headers)?;
    let mut answer = Response::new(Full::new(Bytes::from(response.body)));
    *answer.status_mut() = status;
    *answer.headers_mut() = headers;
    Ok(answer)
}

/// Unpacks `name\0value\0...`. The values are slices of the one buffer the
/// guest's string was lifted into, so no value is copied again.
fn unpack_headers(packed: String) -> Result<HeaderMap, InvalidResponse> {
    let nuls = memchr::memchr_iter(0, packed.as_bytes()).count();
    let packed = Bytes::from(packed.into_bytes());
    let mut headers = HeaderMap::with_capacity(nuls / 2);
    let mut at = 0;
    while at < packed.len() {
        let name_end = nul_after(&packed, at)?;
        let value_end = nul_after(&packed, name_end + 1)?;
        let name = &packed[at..name_end];
        let name = HeaderName::from_bytes(name)
            .map_err(|_| InvalidResponse::HeaderName(String::from_utf8_lossy(name).into()))?;
        let value = HeaderValue::from_maybe_shared(packed.slice(name_end + 1..value_end))
            .map_err(|_| InvalidResponse::HeaderValue(name.as_str().to_owned()))?;
        headers.append(name, value);
        at = value_end + 1;
    }
    Ok(headers)
}

/// The position of the first NUL in `bytes` from `from` on.
fn nul_after(bytes: &[u8], from: usize) -> Result<usize, InvalidResponse> {
    memchr::memchr(0, &bytes[from..])
        .map(|offset| from + offset)
        .ok_or(InvalidResponse::Unterminated)
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
    #[error("headers not packed as name NUL value NUL")]
    Unterminated,
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
