//! The response a handler returns: status, headers (repeatable) and body.

use serde::Serialize;

use crate::bindings::exports::wasmhost::app::handler as raw;

/// One HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    /// An empty response with `status`.
    pub fn new(status: u16) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// `200` with `value` as compact JSON, as express's `res.json` sends it.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => Response::new(200)
                .with_header("content-type", "application/json; charset=utf-8")
                .with_body(body),
            Err(_) => Response::text("cannot serialize response").with_status(500),
        }
    }

    /// `200` with a plain-text body.
    pub fn text(text: impl Into<String>) -> Self {
        Response::new(200)
            .with_header("content-type", "text/plain; charset=utf-8")
            .with_body(text.into().into_bytes())
    }

    /// express's answer when no route matches.
    pub fn not_found(method: &str, path: &str) -> Self {
        Response::text(format!("Cannot {method} {path}")).with_status(404)
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// Adds a header; adding a name twice sends it twice (e.g. `set-cookie`).
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Adds a header to a response already built.
    pub fn append_header(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.headers.push((name.into(), value.into()));
    }

    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    pub fn status(&self) -> u16 {
        self.status
    }

    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The first value of header `name`, whatever its case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    pub fn body(&self) -> &[u8] {
        &self.body
    }

    pub(crate) fn into_raw(self) -> raw::Response {
        raw::Response {
            status: self.status,
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
        let response = Response::new(204)
            .with_header("set-cookie", "a=1")
            .with_header("set-cookie", "b=2");
        assert_eq!(response.headers().len(), 2);
    }
}
