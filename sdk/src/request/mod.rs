//! The request a handler sees: its head (method, path, query, headers, in
//! `head.rs`), body, route parameters and, with sessions enabled, its
//! session.

mod head;

use std::borrow::Cow;
use std::ops::Deref;
use std::time::SystemTime;

use serde::de::DeserializeOwned;

use crate::bindings::exports::wasmhost::app::handler as raw;
use crate::session::Session;
use crate::text::find_byte;
use wasmhost_wire::{Packer, packed_len};

pub use head::RequestHead;

/// One HTTP request, as a handler sees it: `&mut Request`.
///
/// It gives the method, the path and query, route parameters, headers, the
/// body (as bytes or parsed JSON), when the host received it and, with
/// [`crate::App::sessions`], its [`Session`]. Header names are matched
/// whatever their case. The method, target, headers and time of arrival
/// are its [`RequestHead`], which it dereferences to: `req.header("accept")`
/// is [`RequestHead::header`].
///
/// ```
/// use wasmhost_sdk::{App, Request, Response};
///
/// fn show(req: &mut Request) -> Response {
///     Response::text(format!(
///         "{} {} id={} page={} agent={}",
///         req.method(),
///         req.path(),
///         req.param("id").unwrap_or("?"),
///         req.query_param("page").unwrap_or_else(|| "1".to_owned()),
///         req.header("user-agent").unwrap_or("unknown"),
///     ))
/// }
///
/// let app = App::new().get("/items/:id", show);
/// let headers = vec![("User-Agent".to_owned(), "curl/8".to_owned())];
/// let response = app.handle(Request::new("GET", "/items/9?page=2", headers, Vec::new()));
/// assert_eq!(response.body(), b"GET /items/9 id=9 page=2 agent=curl/8");
/// ```
pub struct Request {
    head: RequestHead,
    body: Vec<u8>,
    pub(crate) params: Vec<(String, String)>,
    pub(crate) session: Option<Session>,
}

/// The method, path, query and body size (not the headers, which may hold
/// cookies and credentials that have no place in a log).
impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("head", &self.head)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

impl Request {
    /// A request built by hand, e.g. in a guest's own unit tests, to pass
    /// to [`crate::App::handle`]. `path_with_query` is the request target as
    /// on the request line (`/search?q=a+b`); header names are matched
    /// case-insensitively. Its [`RequestHead::received`] time is now.
    ///
    /// ```
    /// use wasmhost_sdk::Request;
    ///
    /// let request = Request::new(
    ///     "POST",
    ///     "/api/todos?draft=1",
    ///     vec![("Content-Type".to_owned(), "application/json".to_owned())],
    ///     br#"{"title":"test"}"#.to_vec(),
    /// );
    /// assert_eq!(request.method(), "POST");
    /// assert_eq!(request.path(), "/api/todos");
    /// assert_eq!(request.query(), Some("draft=1"));
    /// assert_eq!(request.header("content-type"), Some("application/json"));
    /// assert_eq!(request.body(), br#"{"title":"test"}"#);
    /// ```
    pub fn new(
        method: impl Into<String>,
        path_with_query: impl Into<String>,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Self {
        let mut target: String = path_with_query.into();
        if find_byte(&target, 0).is_some() {
            target = target.replace('\0', "\x7f");
        }
        let len = headers
            .iter()
            .map(|(name, value)| packed_len(name, value))
            .sum();
        let mut packer = Packer::request(&target, len);
        for (name, value) in &headers {
            packer.push_escaped(name, value);
        }
        let packed = packer.finish();
        let received_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |since| {
                u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
            });
        Request::unpack(Cow::Owned(method.into()), packed, body, received_ms)
    }

    pub(crate) fn from_raw(raw: raw::Request) -> Self {
        let method = match raw.method {
            raw::Method::Get => Cow::Borrowed("GET"),
            raw::Method::Head => Cow::Borrowed("HEAD"),
            raw::Method::Post => Cow::Borrowed("POST"),
            raw::Method::Put => Cow::Borrowed("PUT"),
            raw::Method::Delete => Cow::Borrowed("DELETE"),
            raw::Method::Connect => Cow::Borrowed("CONNECT"),
            raw::Method::Options => Cow::Borrowed("OPTIONS"),
            raw::Method::Trace => Cow::Borrowed("TRACE"),
            raw::Method::Patch => Cow::Borrowed("PATCH"),
            raw::Method::Other(method) => Cow::Owned(method),
        };
        Request::unpack(
            method,
            raw.target_and_headers,
            raw.body.unwrap_or_default(),
            raw.received_ms,
        )
    }

    /// A request from the target and headers packed as the host packs them.
    pub(crate) fn unpack(
        method: Cow<'static, str>,
        packed: String,
        body: Vec<u8>,
        received_ms: u64,
    ) -> Self {
        Request {
            head: RequestHead::unpack(method, packed, received_ms),
            body,
            params: Vec::new(),
            session: None,
        }
    }

    /// The route parameter `name` (from a `:name` segment of the route that
    /// matched), percent-decoded; none if the route has no such segment.
    ///
    /// ```
    /// use wasmhost_sdk::{App, Request};
    ///
    /// let app = App::new().get("/users/:user/posts/:post", |req| {
    ///     format!("{} wrote {}", req.param("user").unwrap_or(""), req.param("post").unwrap_or(""))
    /// });
    /// let request = Request::new("GET", "/users/ada/posts/notes%201", Vec::new(), Vec::new());
    /// let response = app.handle(request);
    /// assert_eq!(response.body(), b"ada wrote notes 1");
    /// ```
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The body, as received (empty if there was none). The host refuses
    /// bodies over `--max-body` (1 MiB by default) with `413` before the
    /// guest sees them.
    ///
    /// ```
    /// use wasmhost_sdk::Request;
    ///
    /// let request = Request::new("POST", "/echo", Vec::new(), b"hello".to_vec());
    /// assert_eq!(request.body(), b"hello");
    /// assert_eq!(String::from_utf8_lossy(request.body()), "hello");
    /// ```
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body parsed as JSON into any `Deserialize` type (the
    /// `content-type` header is not checked). A body that is not such JSON is
    /// an error, which a handler usually answers `400`.
    ///
    /// ```
    /// use wasmhost_sdk::{Request, StatusCode};
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Login {
    ///     user: String,
    /// }
    ///
    /// let request = Request::new("POST", "/login", Vec::new(), br#"{"user":"ada"}"#.to_vec());
    /// let login: Login = request.json().unwrap();
    /// assert_eq!(login.user, "ada");
    ///
    /// let bad = Request::new("POST", "/login", Vec::new(), b"not json".to_vec());
    /// let answer = bad.json::<Login>().map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()));
    /// assert!(answer.is_err());
    /// ```
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    /// This request's session, as `req.session` in express-session.
    ///
    /// Without [`crate::App::sessions`] the session is a detached one that is
    /// never stored: enable sessions on the app to keep anything in it. See
    /// [`Session`] for what it offers.
    ///
    /// ```no_run
    /// use wasmhost_sdk::{App, Request, SessionError, SessionOptions};
    ///
    /// fn cart(req: &mut Request) -> Result<String, SessionError> {
    ///     let session = req.session();
    ///     let items = session.get::<u32>("items")?.unwrap_or(0) + 1;
    ///     session.insert("items", &items)?;
    ///     Ok(format!("{items} items in your cart"))
    /// }
    ///
    /// let app = App::new().sessions(SessionOptions::new("a secret")).post("/cart", cart);
    /// # let _ = app;
    /// ```
    pub fn session(&mut self) -> &mut Session {
        self.session.get_or_insert_with(Session::detached)
    }
}

/// A request is read through its head as well: `req.path()`,
/// `req.header(..)` and the rest of [`RequestHead`]'s methods.
impl Deref for Request {
    type Target = RequestHead;

    fn deref(&self) -> &RequestHead {
        &self.head
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_query_and_headers() {
        let request = Request::new(
            "GET",
            "/search?q=a+b%21&empty&q=second",
            vec![
                ("cookie".into(), "a=1".into()),
                ("Cookie".into(), "b=2".into()),
            ],
            Vec::new(),
        );
        assert_eq!(request.path(), "/search");
        assert_eq!(request.query(), Some("q=a+b%21&empty&q=second"));
        assert_eq!(request.query_param("q").as_deref(), Some("a b!"));
        assert_eq!(request.query_param("empty").as_deref(), Some(""));
        assert_eq!(request.query_param("missing"), None);
        assert_eq!(request.header("COOKIE"), Some("a=1"));
        assert_eq!(request.header_values("cookie").count(), 2);
    }
}
