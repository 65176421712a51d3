//! Converting between hyper's requests and responses and the WIT records.
//!
//! This sits on the per-request path, so it copies each part once: the
//! request target and the headers into one packed string, the collected body
//! (if any) as one buffer, the guest's packed response headers sliced, not
//! copied, into header values. Whatever the guest sends back is checked before it reaches the
//! wire: an invalid status or header becomes a 500, never a host panic.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body as _, Incoming};
use hyper::header::{CONNECTION, CONTENT_LENGTH, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use wasmhost_wire::{self as wire, Packer};

use super::authority::{self, BadHost};
use super::budget::{BodyBudget, Held};
use crate::guest;
use crate::log_text;

/// The body type of every response wasmhost sends.
pub type Body = Full<Bytes>;

/// Fewest frames (chunks, in practice) a request body may always come in;
/// a larger `--max-body` allows one per [`BYTES_PER_FRAME`] of it. Each frame
/// costs a poll and a copy, so a body in one-byte chunks would cost far more
/// CPU than its size says; real clients send chunks of kilobytes.
pub const MIN_BODY_FRAMES: usize = 16 * 1024;

/// Bytes of `--max-body` that allow one more frame past [`MIN_BODY_FRAMES`].
pub const BYTES_PER_FRAME: usize = 64;

/// Most frames a body of at most `max_body` bytes may come in.
pub fn max_body_frames(max_body: usize) -> usize {
    (max_body / BYTES_PER_FRAME).max(MIN_BODY_FRAMES)
}

/// Why a request is answered by the host before it reaches the guest;
/// `respond::reject` picks what the client sees of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// No `Host`, several, or an invalid one.
    Host(BadHost),
    /// A body whose `Content-Length` is over `--max-body`, refused unread.
    BodyDeclaredTooLarge,
    /// A body that grew over `--max-body` as it came.
    BodyTooLarge,
    /// A body that broke off.
    BodyIncomplete,
    /// A body in more than [`max_body_frames`] pieces.
    BodyInTooManyPieces,
    /// A body not in within `--body-timeout`.
    BodyTooSlow,
    /// A body the budget (`--max-buffered`) cannot hold now.
    BodyOverBudget,
}

impl Rejection {
    /// Whether the rest of the request may still be on its way, so the
    /// connection cannot carry another request.
    pub fn closes(self) -> bool {
        !matches!(self, Rejection::BodyDeclaredTooLarge)
    }
}

/// Reads a whole request into the guest's record, with the bytes its body
/// holds taken from `budget` as they arrive, or says why it is refused:
/// its `Host`, a body over `max_body`, one that breaks off or comes in more
/// than [`max_body_frames`] pieces, one the budget cannot hold, or one not
/// in within `body_timeout`.
pub async fn to_guest(
    request: Request<Incoming>,
    max_body: usize,
    body_timeout: Duration,
    budget: &Arc<BodyBudget>,
) -> Result<(guest::Request, Option<Held>), Rejection> {
    let (mut parts, body) = request.into_parts();
    authority::check(&mut parts).map_err(Rejection::Host)?;
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max_body as u64) {
        return Err(Rejection::BodyDeclaredTooLarge);
    }
    // A request without a body (most GETs) passes none: no list to lower.
    let (body, held) = if body.is_end_stream() {
        (None, None)
    } else {
        // Only a request with a body pays for this timer.
        let read = read_body(body, max_body, budget);
        match tokio::time::timeout(body_timeout, read).await {
            Ok(Ok((bytes, held))) => (Some(bytes).filter(|bytes| !bytes.is_empty()), Some(held)),
            Ok(Err(refused)) => return Err(refused),
            Err(_) => return Err(Rejection::BodyTooSlow),
        }
    };

    let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let packed = pack_target_and_headers(target, &parts.headers);
    let received_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        });
    let request = guest::Request {
        method: method(&parts.method),
        target_and_headers: packed,
        body,
        received_ms,
    };
    Ok((request, held))
}

/// Reads a body into one buffer as it arrives (a frame is never kept as
/// it came: a chunk's bytes share the read buffer they came in, and a body
/// of one-byte chunks would keep one such buffer per byte), growing the
/// buffer only as bytes come and as far as the budget allows: a declared
/// length costs nothing until it is sent, so a client must send bytes to
/// hold any of the budget.
async fn read_body(
    mut body: Incoming,
    max_body: usize,
    budget: &Arc<BodyBudget>,
) -> Result<(Vec<u8>, Held), Rejection> {
    let mut held = budget.hold();
    let mut bytes: Vec<u8> = Vec::new();
    let max_frames = max_body_frames(max_body);
    let mut frames = 0;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return Err(Rejection::BodyIncomplete);
        };
        frames += 1;
        if frames > max_frames {
            return Err(Rejection::BodyInTooManyPieces);
        }
        let Ok(data) = frame.into_data() else {
            continue; // trailers: not passed on
        };
        let needed = bytes.len().saturating_add(data.len());
        if needed > max_body {
            return Err(Rejection::BodyTooLarge);
        }
        if needed > bytes.capacity() {
            // Doubling, as Vec would, but held first and never past the limit.
            let capacity = needed.max(bytes.capacity().saturating_mul(2)).min(max_body);
            if !held.grow_to(capacity) {
                return Err(Rejection::BodyOverBudget);
            }
            bytes.reserve_exact(capacity - bytes.len());
        }
        bytes.extend_from_slice(&data);
    }
    Ok((bytes, held))
}

/// Packs the request target and headers in the wire format
/// (`wasmhost-wire`), in one allocation. A value that is not UTF-8 is
/// converted lossily.
pub fn pack_target_and_headers(target: &str, headers: &HeaderMap) -> String {
    let len = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 2)
        .sum();
    let mut packer = Packer::request(target, len);
    for (name, value) in headers {
        // Header values are almost always ASCII; only others pay for the
        // lossy conversion.
        match std::str::from_utf8(value.as_bytes()) {
            Ok(value) => packer.push(name.as_str(), value),
            Err(_) => packer.push(name.as_str(), &String::from_utf8_lossy(value.as_bytes())),
        }
    }
    packer.finish()
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

/// Most headers a guest's response may carry; more is refused before any
/// header map is allocated (hyper's own limit for request headers is 100).
pub const MAX_RESPONSE_HEADERS: usize = 256;

/// Most bytes a guest's packed response headers may take.
pub const MAX_RESPONSE_HEADER_BYTES: usize = 64 * 1024;

/// Turns the guest's answer into a hyper response, refusing anything invalid
/// or larger than the limits: a body over `max_response` bytes, more than
/// [`MAX_RESPONSE_HEADERS`] headers or [`MAX_RESPONSE_HEADER_BYTES`] of them,
/// a 1xx status (only the host may send an interim response), and any header
/// that frames the message or the connection (see [`is_framing`]), which
/// only the host may set.
///
/// A body of [`BUDGETED_RESPONSE`] bytes or more takes its bytes from
/// `budget` until hyper has written them and frees them; a body the budget
/// cannot take is [`InvalidResponse::OverBudget`].
pub fn from_guest(
    response: guest::Response,
    max_response: usize,
    budget: &Arc<BodyBudget>,
) -> Result<Response<Body>, InvalidResponse> {
    let status = match StatusCode::from_u16(response.status) {
        Ok(status) if !status.is_informational() => status,
        _ => return Err(InvalidResponse::Status(response.status)),
    };
    if response.body.len() > max_response {
        return Err(InvalidResponse::BodyTooLarge {
            len: response.body.len(),
            limit: max_response,
        });
    }
    let headers = unpack_headers(response.headers)?;
    let len = response.body.len();
    let body = if len < BUDGETED_RESPONSE {
        Bytes::from(response.body)
    } else {
        let held = budget.take(len).ok_or(InvalidResponse::OverBudget(len))?;
        Bytes::from_owner(HeldBytes {
            bytes: response.body,
            _held: held,
        })
    };
    let mut answer = Response::new(Full::new(body));
    *answer.status_mut() = status;
    *answer.headers_mut() = headers;
    Ok(answer)
}

/// A header name the guest got wrong, as the log may show it: cut short
/// and escaped (it is the guest's text, up to the size of all headers).
fn logged_name(name: &[u8]) -> String {
    log_text::for_log(&String::from_utf8_lossy(name), MAX_LOGGED_NAME).into_owned()
}

/// Longest part of a wrong header name the log shows.
const MAX_LOGGED_NAME: usize = 64;

/// Smallest response body counted in the body budget: smaller ones, at
/// most one per connection, are bounded by `--max-connections` already.
pub const BUDGETED_RESPONSE: usize = 16 * 1024;

/// A response body with its bytes taken from the budget, given back when
/// the last `Bytes` of it is dropped (once written, not once handed over).
struct HeldBytes {
    bytes: Vec<u8>,
    _held: Held,
}

impl AsRef<[u8]> for HeldBytes {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

/// Unpacks the guest's header list. The values are slices of the one
/// buffer the guest's string was lifted into, so no value is copied again.
fn unpack_headers(packed: String) -> Result<HeaderMap, InvalidResponse> {
    if packed.len() > MAX_RESPONSE_HEADER_BYTES {
        return Err(InvalidResponse::HeadersTooLarge(packed.len()));
    }
    let count = wire::count_fields(packed.as_bytes());
    if count > MAX_RESPONSE_HEADERS {
        return Err(InvalidResponse::TooManyHeaders(count));
    }
    let mut headers = HeaderMap::with_capacity(count);
    let packed = Bytes::from(packed.into_bytes());
    for span in wire::field_spans(&packed) {
        let (name, value) = span.map_err(|_| InvalidResponse::Unterminated)?;
        let name = &packed[name];
        let name = HeaderName::from_bytes(name)
            .map_err(|_| InvalidResponse::HeaderName(logged_name(name)))?;
        if is_framing(&name) {
            return Err(InvalidResponse::Framing(logged_name(
                name.as_str().as_bytes(),
            )));
        }
        let value = HeaderValue::from_maybe_shared(packed.slice(value))
            .map_err(|_| InvalidResponse::HeaderValue(logged_name(name.as_str().as_bytes())))?;
        headers.append(name, value);
    }
    Ok(headers)
}

/// Whether `name` frames the message or governs the connection: the body's
/// length and coding, keep-alive, upgrades, trailers, proxy hops. hyper
/// frames every response itself from the real body; a guest's own
/// `content-length` or `transfer-encoding` would contradict it and could
/// split the response stream (a forged second response on a keep-alive
/// connection), and the others are hop-by-hop, the host's to decide.
pub fn is_framing(name: &HeaderName) -> bool {
    use hyper::header::{TE, TRAILER, TRANSFER_ENCODING, UPGRADE};
    [
        CONTENT_LENGTH,
        TRANSFER_ENCODING,
        CONNECTION,
        TE,
        TRAILER,
        UPGRADE,
    ]
    .contains(name)
        || name.as_str() == "keep-alive"
        || name.as_str().starts_with("proxy-")
}

/// What was wrong with a guest's response.
#[derive(Debug, thiserror::Error)]
pub enum InvalidResponse {
    #[error("invalid status code {0}")]
    Status(u16),
    #[error("invalid header name \"{0}\"")]
    HeaderName(String),
    #[error("invalid value for header {0:?}")]
    HeaderValue(String),
    #[error("headers not packed as name NUL value NUL")]
    Unterminated,
    #[error("header {0:?} frames the message or the connection; only the host sets it")]
    Framing(String),
    #[error("{0} headers, more than the {MAX_RESPONSE_HEADERS} allowed")]
    TooManyHeaders(usize),
    #[error("{0} bytes of headers, more than the {MAX_RESPONSE_HEADER_BYTES} allowed")]
    HeadersTooLarge(usize),
    #[error("a body of {len} bytes, more than --max-response ({limit})")]
    BodyTooLarge { len: usize, limit: usize },
    /// Not the guest's fault: the body budget is spent for now.
    #[error("a body of {0} bytes while --max-buffered is spent")]
    OverBudget(usize),
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::CONTENT_TYPE;

    fn unlimited() -> Arc<BodyBudget> {
        BodyBudget::new(usize::MAX)
    }

    fn response(status: u16, headers: &str, body: &[u8]) -> guest::Response {
        guest::Response {
            status,
            headers: headers.to_owned(),
            body: body.to_vec(),
        }
    }

    #[test]
    fn a_target_without_a_path_is_packed_with_the_root_path() {
        // An absolute-form request for `http://example.com?a=1`.
        let uri: hyper::Uri = "http://example.com?a=1".parse().unwrap();
        let target = uri.path_and_query().unwrap().as_str();
        assert_eq!(target, "?a=1");
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert_eq!(
            pack_target_and_headers(target, &headers),
            "/?a=1\0content-type\0text/plain\0"
        );
        assert_eq!(pack_target_and_headers("/x?y", &HeaderMap::new()), "/x?y\0");
    }

    #[test]
    fn framing_and_hop_by_hop_headers_are_refused() {
        for name in [
            "content-length",
            "transfer-encoding",
            "connection",
            "keep-alive",
            "te",
            "trailer",
            "upgrade",
            "proxy-authenticate",
            "proxy-connection",
            "Content-Length",
        ] {
            let packed = format!("content-type\0text/plain\0{name}\00\0");
            match from_guest(response(200, &packed, b"x"), 1024, &unlimited()) {
                Err(InvalidResponse::Framing(refused)) => {
                    assert_eq!(refused, name.to_ascii_lowercase());
                }
                other => panic!("{name}: {other:?}"),
            }
        }
        let fine = from_guest(
            response(200, "content-type\0text/plain\0", b"x"),
            1024,
            &unlimited(),
        )
        .unwrap();
        assert_eq!(fine.headers().len(), 1);
    }

    #[test]
    fn interim_and_impossible_statuses_are_refused() {
        for status in [0, 99, 100, 101, 199, 1000] {
            assert!(
                matches!(
                    from_guest(response(status, "", b""), 1024, &unlimited()),
                    Err(InvalidResponse::Status(_))
                ),
                "{status}"
            );
        }
        assert_eq!(
            from_guest(response(204, "", b""), 1024, &unlimited())
                .unwrap()
                .status(),
            204
        );
    }

    #[test]
    fn header_count_and_size_are_capped_before_a_map_is_built() {
        // 40,000 headers overflow HeaderMap's capacity (a panic) if built.
        let many = "x-a\0b\0".repeat(40_000);
        assert!(matches!(
            from_guest(response(200, &many, b""), 1024, &unlimited()),
            Err(InvalidResponse::HeadersTooLarge(_))
        ));
        let many_small = "a\0\0".repeat(MAX_RESPONSE_HEADERS + 1);
        assert!(matches!(
            from_guest(response(200, &many_small, b""), 1024, &unlimited()),
            Err(InvalidResponse::TooManyHeaders(_))
        ));
        let most = "a\0\0".repeat(MAX_RESPONSE_HEADERS);
        assert!(from_guest(response(200, &most, b""), 1024, &unlimited()).is_ok());
        let huge = format!("x-big\0{}\0", "v".repeat(MAX_RESPONSE_HEADER_BYTES));
        assert!(matches!(
            from_guest(response(200, &huge, b""), 1024, &unlimited()),
            Err(InvalidResponse::HeadersTooLarge(_))
        ));
    }

    #[test]
    fn bodies_over_the_response_limit_are_refused() {
        assert!(from_guest(response(200, "", &[b'x'; 1024]), 1024, &unlimited()).is_ok());
        assert!(matches!(
            from_guest(response(200, "", &[b'x'; 1025]), 1024, &unlimited()),
            Err(InvalidResponse::BodyTooLarge {
                len: 1025,
                limit: 1024
            })
        ));
    }

    #[test]
    fn malformed_packing_is_an_error_not_a_panic() {
        for packed in ["a", "a\0", "a\0b", "\0\0", "\0v\0", "a b\0c\0"] {
            assert!(
                from_guest(response(200, packed, b""), 1024, &unlimited()).is_err(),
                "{packed:?}"
            );
        }
    }
}
