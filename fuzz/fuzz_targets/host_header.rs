//! The `Host` check (host/src/http/authority.rs) on arbitrary bytes.
//!
//! It never panics, and a value it accepts is one a guest can take as a
//! host: a valid header value with no whitespace, control character,
//! userinfo, path, query or fragment in it, and at most one port.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmhost::__internals::is_valid_host;

fuzz_target!(|value: &[u8]| {
    if !is_valid_host(value) {
        return;
    }
    assert!(http::HeaderValue::from_bytes(value).is_ok());
    assert!(
        !value
            .iter()
            .any(|&b| b.is_ascii_whitespace() || b.is_ascii_control() || b"@/?#\\\"<>".contains(&b)),
        "{value:?}"
    );
    let after_literal = match value.iter().position(|&b| b == b']') {
        Some(end) => &value[end + 1..],
        None => value,
    };
    assert!(after_literal.iter().filter(|&&b| b == b':').count() <= 1);
});
