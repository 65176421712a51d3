//! The `Cookie` header parser and `decodeURIComponent` of the SDK
//! (sdk/src/session/cookie.rs).
//!
//! `find` never panics, whatever the headers and cookie name. On any text,
//! `decode_uri_component` agrees with the `percent-encoding` crate as
//! JavaScript's `decodeURIComponent` would: a malformed escape (a `%` not
//! followed by two hex digits) or a result that is not UTF-8 gives none, and
//! otherwise it gives exactly `percent_decode_str`'s UTF-8 result. A value
//! encoded with `NON_ALPHANUMERIC` decodes back to itself, both directly and
//! as a cookie found in a header.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use percent_encoding::{NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use wasmhost_sdk::__fuzz as sdk;

#[derive(Arbitrary, Debug)]
struct Input {
    headers: Vec<String>,
    name: String,
    value: String,
}

/// Whether every `%` in `text` starts an escape of two hex digits.
fn escapes_well_formed(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.iter().enumerate().all(|(at, &byte)| {
        byte != b'%'
            || (bytes.get(at + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(at + 2).is_some_and(u8::is_ascii_hexdigit))
    })
}

fn check_decode(text: &str) {
    let decoded = sdk::decode_uri_component(text);
    if !escapes_well_formed(text) {
        assert_eq!(decoded, None, "{text:?}: a malformed escape decoded");
        return;
    }
    let reference = percent_decode_str(text).decode_utf8().ok();
    assert_eq!(decoded.as_deref(), reference.as_deref(), "{text:?}");
}

fuzz_target!(|input: Input| {
    let _ = sdk::find_cookie(input.headers.iter().map(String::as_str), &input.name);
    for header in &input.headers {
        check_decode(header);
    }
    check_decode(&input.value);
    check_decode(&input.name);

    let encoded = utf8_percent_encode(&input.value, NON_ALPHANUMERIC).to_string();
    assert_eq!(
        sdk::decode_uri_component(&encoded).as_deref(),
        Some(input.value.as_str()),
        "{encoded:?}"
    );
    // As a cookie: found under a name the parser can tell (no `;` or `=`,
    // no surrounding whitespace), after whatever other headers came first.
    let name = input.name.as_str();
    if !name.contains([';', '=']) && name.trim() == name {
        let cookie = format!("{name}={encoded}");
        assert_eq!(
            sdk::find_cookie([cookie.as_str()], name).as_deref(),
            Some(input.value.as_str()),
            "{cookie:?}"
        );
        let headers = input.headers.iter().map(String::as_str);
        let found = sdk::find_cookie(headers.clone().chain([cookie.as_str()]), name);
        if sdk::find_cookie(headers, name).is_none() {
            assert_eq!(found.as_deref(), Some(input.value.as_str()), "{cookie:?}");
        }
    }
});
