//! Standard `wasi:http/incoming-handler` components (WASI 0.2) on a task's
//! persistent instance.
//!
//! The pool gives every guest the same request record and takes the same
//! response record (`wit/app.wit`), whatever world the guest is of: the HTTP
//! layer has already read, bounded and checked the request, and it checks
//! this response as it checks any guest's. So here the record becomes the
//! request `wasmtime-wasi-http` hands the guest as its `incoming-request`,
//! and the guest's `outgoing-response` becomes the record again: its body
//! read while the guest writes it (the body stream buffers two chunks, so a
//! guest writing more than that waits for the reader), never more than one
//! byte past `--max-response` (the HTTP layer answers a longer one 500), and
//! its `content-length` dropped (the body is whole; hyper frames it).
//!
//! A WASI 0.2 guest runs nothing after `handle` returns (it has no threads),
//! so a response it has not set by then, or a body it has neither finished
//! nor dropped, never comes: that is a failed call, and the instance, which
//! holds what it leaked, is replaced.

use std::future::poll_fn;
use std::pin::pin;
use std::task::Poll;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{CONTENT_LENGTH, HOST};
use hyper::{HeaderMap, Uri};
use tokio::sync::oneshot;
use wasmhost_wire::{Packer, RequestHead, fields};
use wasmtime::Store;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::Proxy;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use super::state::TaskState;
use super::{Method, Request, Response};

/// Why a `wasi:http` call gave no response.
#[derive(Debug)]
pub enum Failure {
    /// The call itself failed (a trap, the deadline, memory), as wasmtime
    /// reports it.
    Call(wasmtime::Error),
    /// The call returned, but its answer cannot be sent.
    Answer(BadAnswer),
}

/// What was wrong with a guest's answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadAnswer {
    #[error("returned without setting a response")]
    NoResponse,
    #[error("returned before finishing its response body")]
    Unfinished,
    #[error("aborted its response body (or wrote other than its content-length)")]
    Aborted,
    #[error("answered a header value that is not UTF-8 text")]
    NotText,
}

/// The host a request is for when the client named none (HTTP/1.0):
/// `wasi:http` requests always have an authority.
const NO_AUTHORITY: &str = "localhost";

/// Runs `request` through the guest's `wasi:http/incoming-handler`.
pub async fn handle(
    store: &mut Store<TaskState>,
    proxy: &Proxy,
    request: &Request,
) -> Result<Response, Failure> {
    let max_body = store.data().context().app.max_response;
    let (sender, receiver) = oneshot::channel();
    let (incoming, outparam) = {
        let mut http = store.data_mut().http();
        let incoming = http
            .new_incoming_request(Scheme::Http, to_http(request))
            .map_err(Failure::Call)?;
        let outparam = http.new_response_outparam(sender).map_err(Failure::Call)?;
        (incoming, outparam)
    };
    let call = proxy
        .wasi_http_incoming_handler()
        .call_handle(&mut *store, incoming, outparam);
    // Unconstrained: once the call has returned, whatever the guest wrote
    // is read at once, never put off by tokio's per-task budget.
    let answer = tokio::task::unconstrained(read_answer(receiver, max_body));
    let (called, answered) = call_then_drain(call, answer).await;
    called.map_err(Failure::Call)?;
    let answer = answered.ok_or(Failure::Answer(BadAnswer::Unfinished))?;
    answer.map_err(Failure::Answer)
}

/// Runs `call` to its end while `answer` reads what it writes, then gives
/// the call's result and the answer, if the answer was complete by then.
async fn call_then_drain<C: Future, A: Future>(
    call: C,
    answer: A,
) -> (C::Output, Option<A::Output>) {
    let mut call = pin!(call);
    let mut answer = pin!(answer);
    let mut answered = None;
    poll_fn(|cx| {
        if answered.is_none()
            && let Poll::Ready(value) = answer.as_mut().poll(cx)
        {
            answered = Some(value);
        }
        let Poll::Ready(called) = call.as_mut().poll(cx) else {
            return Poll::Pending;
        };
        // What the call wrote on its way out is in the channels now.
        if answered.is_none()
            && let Poll::Ready(value) = answer.as_mut().poll(cx)
        {
            answered = Some(value);
        }
        Poll::Ready((called, answered.take()))
    })
    .await
}

/// The response the guest sets, with its body read to its end or to one
/// byte past `max_body`.
async fn read_answer(
    receiver: oneshot::Receiver<Result<hyper::Response<HyperOutgoingBody>, ErrorCode>>,
    max_body: usize,
) -> Result<Response, BadAnswer> {
    let response = match receiver.await {
        Ok(Ok(response)) => response,
        // The guest answered with an error code: `wasmtime serve` answers
        // those 500 too. The guest chose to, so its instance stays.
        Ok(Err(_)) => {
            return Ok(Response {
                status: 500,
                headers: String::new(),
                body: Vec::new(),
            });
        }
        Err(_) => return Err(BadAnswer::NoResponse),
    };
    let (parts, mut body) = response.into_parts();
    let headers = pack_headers(&parts.headers)?;
    let mut bytes = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| BadAnswer::Aborted)?;
        // Trailers are not sent: wasmhost answers HTTP/1.1 with whole bodies.
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let room = max_body.saturating_add(1) - bytes.len();
        if data.len() >= room {
            // One byte over is enough for the HTTP layer to refuse it; the
            // rest is not read, and the guest's next write fails.
            bytes.extend_from_slice(&data[..room]);
            break;
        }
        bytes.extend_from_slice(&data);
    }
    Ok(Response {
        status: parts.status.as_u16(),
        headers,
        body: bytes,
    })
}

/// The guest's headers in the wire format, without `content-length`.
fn pack_headers(headers: &HeaderMap) -> Result<String, BadAnswer> {
    let len = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 2)
        .sum();
    let mut packer = Packer::headers(len);
    for (name, value) in headers {
        if name == CONTENT_LENGTH {
            continue;
        }
        let value = value.to_str().map_err(|_| BadAnswer::NotText)?;
        packer.push(name.as_str(), value);
    }
    Ok(packer.finish())
}

/// The request record as an `http` request, for `new-incoming-request`.
fn to_http(request: &Request) -> hyper::Request<Full<Bytes>> {
    let packed = request.target_and_headers.as_str();
    let head = RequestHead::parse(packed);
    let mut has_host = false;
    let mut headers = HeaderMap::new();
    for (name, value) in fields(head.headers(packed)) {
        // The HTTP layer packed them from a request hyper accepted, so each
        // is valid; one that is not could only be dropped.
        let (Ok(name), Ok(value)) = (
            hyper::header::HeaderName::from_bytes(name.as_bytes()),
            hyper::header::HeaderValue::from_str(value),
        ) else {
            continue;
        };
        has_host |= name == HOST;
        headers.append(name, value);
    }
    let target = &packed[..head.target_end];
    // The target as it came (origin form): `new-incoming-request` takes the
    // authority from the `Host` header, which the HTTP layer has checked
    // (RFC 9112 §3.2), so only a request without one (HTTP/1.0) pays for
    // building an absolute URI.
    // The HTTP layer checked the target, so neither fallback is expected;
    // each keeps an authority where the request has no `Host`.
    let uri = if has_host {
        Uri::try_from(target).unwrap_or_else(|_| Uri::from_static("/"))
    } else {
        Uri::builder()
            .scheme("http")
            .authority(NO_AUTHORITY)
            .path_and_query(target)
            .build()
            .unwrap_or_else(|_| Uri::from_static("http://localhost/"))
    };
    let body = request
        .body
        .as_deref()
        .map_or_else(Bytes::new, Bytes::copy_from_slice);
    let mut http = hyper::Request::new(Full::new(body));
    *http.method_mut() = method(&request.method);
    *http.uri_mut() = uri;
    *http.headers_mut() = headers;
    http
}

fn method(method: &Method) -> hyper::Method {
    match method {
        Method::Get => hyper::Method::GET,
        Method::Head => hyper::Method::HEAD,
        Method::Post => hyper::Method::POST,
        Method::Put => hyper::Method::PUT,
        Method::Delete => hyper::Method::DELETE,
        Method::Connect => hyper::Method::CONNECT,
        Method::Options => hyper::Method::OPTIONS,
        Method::Trace => hyper::Method::TRACE,
        Method::Patch => hyper::Method::PATCH,
        // hyper parsed it from the request line.
        Method::Other(other) => {
            hyper::Method::from_bytes(other.as_bytes()).unwrap_or(hyper::Method::GET)
        }
    }
}
