//! The packed request format round trips from the host to the SDK.
//!
//! A target and a header map built from arbitrary names and values (invalid
//! ones skipped) are packed by the host's `pack_target_and_headers`
//! (host/src/http.rs, what `to_guest` sends) and unpacked by the SDK's own
//! `Request` (sdk/src/request.rs). The SDK must see the same path and query,
//! and exactly the same (name, value) pairs in the same order (values that are
//! not UTF-8 converted lossily, as the host does).
#![no_main]

use arbitrary::Arbitrary;
use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use wasmhost::__internals::pack_target_and_headers;
use wasmhost_sdk::__fuzz as sdk;

#[derive(Arbitrary, Debug)]
struct Input {
    target: String,
    headers: Vec<(String, Vec<u8>)>,
}

fuzz_target!(|input: Input| {
    // The host only ever packs a request's real path and query.
    let target = PathAndQuery::try_from(input.target.as_str())
        .unwrap_or_else(|_| PathAndQuery::from_static("/"));
    let mut headers = HeaderMap::new();
    for (name, value) in &input.headers {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value),
        ) else {
            continue;
        };
        headers.append(name, value);
    }

    let packed = pack_target_and_headers(target.as_str(), &headers);
    let request = sdk::unpack_request(packed);

    assert_eq!(request.path(), target.path());
    assert_eq!(request.query(), target.query());
    let expected = headers.iter().map(|(name, value)| {
        (
            name.as_str().to_owned(),
            String::from_utf8_lossy(value.as_bytes()).into_owned(),
        )
    });
    let seen: Vec<(String, String)> = request
        .headers()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
    assert!(expected.eq(seen.iter().cloned()), "{headers:?} -> {seen:?}");
    // Looked up by name, whatever its case, the first value wins.
    for name in headers.keys() {
        let first = headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()));
        assert_eq!(request.header(name.as_str()), first.as_deref());
        let upper = name.as_str().to_ascii_uppercase();
        assert_eq!(request.header(&upper), first.as_deref());
    }
});
