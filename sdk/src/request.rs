//! The request a handler sees: method, path, query, headers, body, route
//! parameters and, with sessions enabled, its session.

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use percent_encoding::percent_decode_str;
use serde::de::DeserializeOwned;

use crate::bindings::exports::wasmhost::app::handler as raw;
use crate::session::Session;
use wasmhost_wire::{Packer, RequestHead, packed_len};

use crate::text::{find_byte, nul_pairs, split_byte, split_once_byte};

/// One HTTP request.
pub struct Request {
    method: Cow<'static, str>,
    /// The target and headers in the wire format (`wasmhost-wire`).
    packed: String,
    /// Where the target and the path end in `packed`: found once, since
    /// routing asks for the path once per route.
    head: RequestHead,
    body: Vec<u8>,
    received_ms: u64,
    pub(crate) params: Vec<(String, String)>,
    pub(crate) session: Option<Session>,
}

impl Request {
    /// A request built by hand, e.g. in a guest's own unit tests. Header
    /// names are matched case-insensitively.
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
        let head = RequestHead::parse(&packed);
        Request {
            method,
            head,
            packed,
            body,
            received_ms,
            params: Vec::new(),
            session: None,
        }
    }

    /// When the host received the request (millisecond precision). Sessions
    /// use it as "now", which saves a clock call per request.
    pub fn received(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(self.received_ms)
    }

    /// The method, e.g. `GET`.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The method, copied without an allocation for the usual ones.
    pub(crate) fn method_cow(&self) -> Cow<'static, str> {
        self.method.clone()
    }

    /// The path without the query, as sent (not percent-decoded).
    pub fn path(&self) -> &str {
        self.head.path(&self.packed)
    }

    /// The raw query string after `?`, if any.
    pub fn query(&self) -> Option<&str> {
        self.head.query(&self.packed)
    }

    /// The first query parameter called `name`, percent-decoded (`+` is a space).
    pub fn query_param(&self, name: &str) -> Option<String> {
        split_byte(self.query()?, b'&').find_map(|pair| {
            let (key, value) = split_once_byte(pair, b'=').unwrap_or((pair, ""));
            (decode_form(key) == name).then(|| decode_form(value))
        })
    }

    /// The route parameter `name` (from a `:name` segment), decoded.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The first value of header `name`, whatever its case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    }

    /// Every value of header `name`, in order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers()
            .filter(move |(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    }

    /// All headers as (name, value), in the order received.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        nul_pairs(self.head.headers(&self.packed))
    }

    /// The body, as received (empty if there was none).
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body parsed as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    /// This request's session, as `req.session` in express-session.
    ///
    /// Without [`crate::App::sessions`] the session is a detached one that is
    /// never stored: enable sessions on the app to keep anything in it.
    pub fn session(&mut self) -> &mut Session {
        self.session.get_or_insert_with(Session::detached)
    }
}

/// Percent-decodes a path segment; invalid UTF-8 is replaced, never an error.
pub(crate) fn decode(text: &str) -> String {
    percent_decode_str(text).decode_utf8_lossy().into_owned()
}

fn decode_form(text: &str) -> String {
    decode(&text.replace('+', " "))
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
