//! [`RequestHead`]: a request's method, target, headers and time of
//! arrival, without its body, route parameters or session. It is what a
//! session option's function (`genid`, `cookie_with`) sees, and what a
//! session keeps of its request to call them again on `regenerate`: the
//! session layer depends on this, not on [`crate::Request`], which holds the
//! session.

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use wasmhost_wire::RequestHead as Offsets;

use crate::text::{decode_form, nul_pairs, split_byte, split_once_byte};

/// A request's method, target, headers and time of arrival: everything but
/// its body, route parameters and session.
///
/// A [`crate::Request`] dereferences to its head, so every method here is
/// called on a request as `req.header("accept")`. Session options that are
/// functions of the request ([`crate::SessionOptions::genid`],
/// [`crate::SessionOptions::cookie_with`]) are given the head alone.
#[derive(Clone)]
pub struct RequestHead {
    method: Cow<'static, str>,
    /// The target and headers in the wire format (`wasmhost-wire`).
    packed: String,
    /// Where the target and the path end in `packed`: found once, since
    /// routing asks for the path once per route.
    offsets: Offsets,
    received_ms: u64,
}

/// The method, path and query (not the headers, which may hold cookies and
/// credentials that have no place in a log).
impl std::fmt::Debug for RequestHead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestHead")
            .field("method", &self.method())
            .field("path", &self.path())
            .field("query", &self.query())
            .finish_non_exhaustive()
    }
}

impl RequestHead {
    /// A head from the target and headers packed as the host packs them.
    pub(crate) fn unpack(method: Cow<'static, str>, packed: String, received_ms: u64) -> Self {
        let offsets = Offsets::parse(&packed);
        RequestHead {
            method,
            packed,
            offsets,
            received_ms,
        }
    }

    /// When the host received the request (millisecond precision). Sessions
    /// use it as "now", which saves a clock call per request; handlers can
    /// too (for a rate limit's time window, say).
    ///
    /// ```
    /// use std::time::UNIX_EPOCH;
    /// use wasmhost_sdk::Request;
    ///
    /// let request = Request::new("GET", "/", Vec::new(), Vec::new());
    /// let now_ms = request.received().duration_since(UNIX_EPOCH).unwrap().as_millis();
    /// let window = now_ms / 10_000; // which 10-second window this request falls in
    /// # let _ = window;
    /// ```
    pub fn received(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(self.received_ms)
    }

    /// The method, e.g. `GET`, as the client sent it.
    ///
    /// ```
    /// use wasmhost_sdk::Request;
    ///
    /// let request = Request::new("DELETE", "/x", Vec::new(), Vec::new());
    /// assert_eq!(request.method(), "DELETE");
    /// ```
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The method, copied without an allocation for the usual ones.
    pub(crate) fn method_cow(&self) -> Cow<'static, str> {
        self.method.clone()
    }

    /// The path without the query, as sent (not percent-decoded).
    ///
    /// ```
    /// use wasmhost_sdk::Request;
    ///
    /// let request = Request::new("GET", "/files/a%20b.txt?download", Vec::new(), Vec::new());
    /// assert_eq!(request.path(), "/files/a%20b.txt");
    /// ```
    pub fn path(&self) -> &str {
        self.offsets.path(&self.packed)
    }

    /// The raw query string after `?`, if any (not percent-decoded); see
    /// [`RequestHead::query_param`] for one parameter, decoded.
    ///
    /// ```
    /// use wasmhost_sdk::Request;
    ///
    /// let request = Request::new("GET", "/search?q=a+b&page=2", Vec::new(), Vec::new());
    /// assert_eq!(request.query(), Some("q=a+b&page=2"));
    /// let request = Request::new("GET", "/search", Vec::new(), Vec::new());
    /// assert_eq!(request.query(), None);
    /// ```
    pub fn query(&self) -> Option<&str> {
        self.offsets.query(&self.packed)
    }

    /// The first query parameter called `name`, percent-decoded (`+` is a
    /// space); `Some("")` for a name without a value, none if it is absent.
    ///
    /// ```
    /// use wasmhost_sdk::Request;
    ///
    /// let target = "/search?q=caf%C3%A9+au+lait&all";
    /// let request = Request::new("GET", target, Vec::new(), Vec::new());
    /// assert_eq!(request.query_param("q").as_deref(), Some("café au lait"));
    /// assert_eq!(request.query_param("all").as_deref(), Some(""));
    /// assert_eq!(request.query_param("page"), None);
    /// let page: u32 = request.query_param("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    /// assert_eq!(page, 1);
    /// ```
    pub fn query_param(&self, name: &str) -> Option<String> {
        split_byte(self.query()?, b'&').find_map(|pair| {
            let (key, value) = split_once_byte(pair, b'=').unwrap_or((pair, ""));
            (decode_form(key) == name).then(|| decode_form(value))
        })
    }

    /// The first value of header `name`, whatever its case.
    ///
    /// ```
    /// use wasmhost_sdk::Request;
    ///
    /// let headers = vec![("Accept".to_owned(), "application/json".to_owned())];
    /// let request = Request::new("GET", "/", headers, Vec::new());
    /// assert_eq!(request.header("accept"), Some("application/json"));
    /// assert_eq!(request.header("authorization"), None);
    /// ```
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    }

    /// Every value of header `name` (whatever its case), in the order
    /// received: a header sent several times has several values.
    ///
    /// ```
    /// use wasmhost_sdk::Request;
    ///
    /// let headers = vec![
    ///     ("x-forwarded-for".to_owned(), "10.0.0.1".to_owned()),
    ///     ("X-Forwarded-For".to_owned(), "10.0.0.2".to_owned()),
    /// ];
    /// let request = Request::new("GET", "/", headers, Vec::new());
    /// let hops: Vec<&str> = request.header_values("x-forwarded-for").collect();
    /// assert_eq!(hops, ["10.0.0.1", "10.0.0.2"]);
    /// ```
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers()
            .filter(move |(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    }

    /// All headers as (name, value), in the order received. Names from the
    /// host are in lower case.
    ///
    /// ```
    /// use wasmhost_sdk::Request;
    ///
    /// let headers = vec![
    ///     ("host".to_owned(), "example.com".to_owned()),
    ///     ("accept".to_owned(), "*/*".to_owned()),
    /// ];
    /// let request = Request::new("GET", "/", headers, Vec::new());
    /// for (name, value) in request.headers() {
    ///     println!("{name}: {value}");
    /// }
    /// assert_eq!(request.headers().count(), 2);
    /// ```
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        nul_pairs(self.offsets.headers(&self.packed))
    }
}
