//! The response a handler returns: status, headers (repeatable) and body.

use serde::Serialize;

use crate::bindings::exports::wasmhost::app::handler as raw;
use wasmhost_wire::push_field;

use crate::StatusCode;
use crate::text::nul_pairs;

/// Bytes set aside for a response's packed headers when the first is added:
/// a content type and a session cookie fit.
const HEADERS_CAPACITY: usize = 256;

/// One HTTP response: a status, headers (a name may repeat) and a body.
///
/// Build one with [`Response::new`], [`Response::text`] or
/// [`Response::json`] and the `with_` methods, or return anything else that
/// is [`crate::IntoResponse`] from a handler. The host adds `content-length`
/// and frames the response itself; a handler may not set framing or
/// hop-by-hop headers (`content-length`, `transfer-encoding`, `connection`,
/// ...), nor a 1xx status: the host answers such a response `500` instead.
///
/// ```
/// use wasmhost_sdk::{Response, StatusCode};
///
/// let response = Response::json(&serde_json::json!({ "error": "no such user" }))
///     .with_status(StatusCode::NOT_FOUND)
///     .with_header("cache-control", "no-store");
/// assert_eq!(response.status(), StatusCode::NOT_FOUND);
/// assert_eq!(response.header("Cache-Control"), Some("no-store"));
/// assert_eq!(response.body(), br#"{"error":"no such user"}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    status: StatusCode,
    /// Packed as the host takes them: `name\0value\0` for each header (one
    /// buffer for all headers, not two strings each).
    headers: String,
    body: Vec<u8>,
}

impl Response {
    /// An empty response with `status`, no headers and no body.
    ///
    /// ```
    /// use wasmhost_sdk::{Response, StatusCode};
    ///
    /// let redirect = Response::new(StatusCode::SEE_OTHER).with_header("location", "/login");
    /// assert_eq!(redirect.status(), 303);
    /// assert!(redirect.body().is_empty());
    /// ```
    pub fn new(status: StatusCode) -> Self {
        Response {
            status,
            headers: String::new(),
            body: Vec::new(),
        }
    }

    /// `200` with `value` as compact JSON, as express's `res.json` sends it,
    /// and `content-type: application/json; charset=utf-8`. A struct's fields
    /// keep their order; a `serde_json::json!` object's keys are sorted unless
    /// serde_json's `preserve_order` feature is on. A value that cannot be
    /// serialized (a map with non-string keys, say) gives a `500`.
    ///
    /// ```
    /// use wasmhost_sdk::Response;
    ///
    /// #[derive(serde::Serialize)]
    /// struct User<'a> {
    ///     name: &'a str,
    ///     admin: bool,
    /// }
    ///
    /// let response = Response::json(&User { name: "ada", admin: true });
    /// assert_eq!(response.status(), 200);
    /// assert_eq!(response.header("content-type"), Some("application/json; charset=utf-8"));
    /// assert_eq!(response.body(), br#"{"name":"ada","admin":true}"#);
    /// ```
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Self {
        // Room for a small answer up front, so most never grow the buffer.
        let mut body = Vec::with_capacity(128);
        match serde_json::to_writer(&mut body, value) {
            Ok(()) => Response::new(StatusCode::OK)
                .with_own_header("content-type", "application/json; charset=utf-8")
                .with_body(body),
            Err(_) => Response::text("cannot serialize response")
                .with_status(StatusCode::INTERNAL_SERVER_ERROR),
        }
    }

    /// `200` with a plain-text body, as `text/plain; charset=utf-8`.
    /// Returning a `String` or `&'static str` from a handler gives the same
    /// response.
    ///
    /// ```
    /// use wasmhost_sdk::Response;
    ///
    /// let response = Response::text(format!("{} + {} = {}", 2, 2, 4));
    /// assert_eq!(response.body(), b"2 + 2 = 4");
    /// assert_eq!(response.header("content-type"), Some("text/plain; charset=utf-8"));
    /// ```
    pub fn text(text: impl Into<String>) -> Self {
        Response::new(StatusCode::OK)
            .with_own_header("content-type", "text/plain; charset=utf-8")
            .with_body(text.into().into_bytes())
    }

    /// `500 internal server error`, telling the client nothing more: what
    /// the SDK answers for a failure inside the guest (the cause goes to the
    /// guest's stderr).
    pub(crate) fn internal_error() -> Self {
        Response::text("internal server error").with_status(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// express's answer when no route matches: `404` with the text
    /// `Cannot METHOD /path`. The router sends it by itself; a handler can
    /// send it too, for a path it does not know after all.
    ///
    /// ```
    /// use wasmhost_sdk::{Response, StatusCode};
    ///
    /// let response = Response::not_found("GET", "/missing");
    /// assert_eq!(response.status(), StatusCode::NOT_FOUND);
    /// assert_eq!(response.body(), b"Cannot GET /missing");
    /// ```
    pub fn not_found(method: &str, path: &str) -> Self {
        Response::text(format!("Cannot {method} {path}")).with_status(StatusCode::NOT_FOUND)
    }

    /// The same response with `status`.
    ///
    /// ```
    /// use wasmhost_sdk::{Response, StatusCode};
    ///
    /// let response = Response::text("slow down").with_status(StatusCode::TOO_MANY_REQUESTS);
    /// assert_eq!(response.status(), 429);
    /// ```
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// Adds a header; adding a name twice sends it twice (e.g. `set-cookie`).
    /// A name or value the host cannot send (with a line break, say) makes
    /// the response a 500 rather than reach the client.
    ///
    /// ```
    /// use wasmhost_sdk::Response;
    ///
    /// let response = Response::text("hi")
    ///     .with_header("set-cookie", "theme=dark; Path=/")
    ///     .with_header("set-cookie", "lang=en; Path=/");
    /// let cookies: Vec<(&str, &str)> =
    ///     response.headers().filter(|(name, _)| *name == "set-cookie").collect();
    /// assert_eq!(cookies.len(), 2);
    /// ```
    pub fn with_header(mut self, name: impl AsRef<str>, value: impl AsRef<str>) -> Self {
        self.append_header(name, value);
        self
    }

    /// Adds a header to a response already built (through `&mut`), as
    /// [`Response::with_header`] does.
    ///
    /// ```
    /// use wasmhost_sdk::Response;
    ///
    /// let mut response = Response::text("ok");
    /// let cache = true;
    /// if cache {
    ///     response.append_header("cache-control", "max-age=60");
    /// }
    /// assert_eq!(response.header("cache-control"), Some("max-age=60"));
    /// ```
    pub fn append_header(&mut self, name: impl AsRef<str>, value: impl AsRef<str>) {
        let (name, value) = (name.as_ref(), value.as_ref());
        self.reserve_header(name, value);
        push_field(&mut self.headers, name);
        push_field(&mut self.headers, value);
    }

    /// A header the SDK itself writes, with no NUL to look for.
    fn with_own_header(mut self, name: &'static str, value: &'static str) -> Self {
        self.reserve_header(name, value);
        for field in [name, value] {
            self.headers.push_str(field);
            self.headers.push('\0');
        }
        self
    }

    /// Room for one more header; the first takes room for a few, so a
    /// response's headers are usually one allocation, never regrown.
    fn reserve_header(&mut self, name: &str, value: &str) {
        let needed = name.len() + value.len() + 2;
        if self.headers.capacity() == 0 {
            self.headers.reserve(needed.max(HEADERS_CAPACITY));
        } else {
            self.headers.reserve(needed);
        }
    }

    /// The same response with `body` (bytes or text), replacing the body it
    /// had; headers, `content-type` included, are left as they are.
    ///
    /// ```
    /// use wasmhost_sdk::{Response, StatusCode};
    ///
    /// let svg = Response::new(StatusCode::OK)
    ///     .with_header("content-type", "image/svg+xml")
    ///     .with_body(r#"<svg xmlns="http://www.w3.org/2000/svg"/>"#);
    /// assert!(svg.body().starts_with(b"<svg"));
    /// ```
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// The status.
    ///
    /// ```
    /// use wasmhost_sdk::{Response, StatusCode};
    ///
    /// assert_eq!(Response::text("ok").status(), StatusCode::OK);
    /// ```
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// All headers as (name, value), in the order added.
    ///
    /// ```
    /// use wasmhost_sdk::{Response, StatusCode};
    ///
    /// let response = Response::new(StatusCode::NO_CONTENT).with_header("x-request-id", "42");
    /// assert_eq!(response.headers().collect::<Vec<_>>(), [("x-request-id", "42")]);
    /// ```
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        nul_pairs(&self.headers)
    }

    /// The first value of header `name`, whatever its case.
    ///
    /// ```
    /// use wasmhost_sdk::Response;
    ///
    /// let response = Response::text("ok").with_header("ETag", "\"v1\"");
    /// assert_eq!(response.header("etag"), Some("\"v1\""));
    /// assert_eq!(response.header("location"), None);
    /// ```
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    }

    /// The body.
    ///
    /// ```
    /// use wasmhost_sdk::Response;
    ///
    /// assert_eq!(Response::text("hello").body(), b"hello");
    /// ```
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    pub(crate) fn into_raw(self) -> raw::Response {
        raw::Response {
            status: self.status.as_u16(),
            headers: self.headers,
            body: self.body,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_compact_and_keeps_field_order() {
        #[derive(Serialize)]
        struct Body<'a> {
            foo: &'a str,
            thread: u32,
        }
        let response = Response::json(&Body {
            foo: "bar",
            thread: 3,
        });
        assert_eq!(response.status(), 200);
        assert_eq!(response.body(), br#"{"foo":"bar","thread":3}"#);
        assert_eq!(
            response.header("Content-Type"),
            Some("application/json; charset=utf-8")
        );
    }

    #[test]
    fn headers_may_repeat() {
        let response = Response::new(StatusCode::NO_CONTENT)
            .with_header("set-cookie", "a=1")
            .with_header("set-cookie", "b=2");
        assert_eq!(
            response.headers().collect::<Vec<_>>(),
            [("set-cookie", "a=1"), ("set-cookie", "b=2")]
        );
    }

    #[test]
    fn a_nul_cannot_add_a_header() {
        let response = Response::new(StatusCode::OK).with_header("x-echo", "1\0set-cookie\0evil=1");
        assert_eq!(
            response.headers().collect::<Vec<_>>(),
            [("x-echo", "1\x7fset-cookie\x7fevil=1")]
        );
    }
}
