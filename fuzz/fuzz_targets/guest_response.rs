//! A guest's response through `from_guest` (host/src/http/convert.rs).
//!
//! Whatever the status, packed headers and body, it never panics. When it
//! accepts the response: the status and body are the guest's, the status is
//! not 1xx, the body is within `max_response`, the packing was well formed
//! (`name\0value\0...`), the headers are exactly the (lowercased) pairs of
//! the packing, each appearing as often as there, and none of them frames
//! the message (`is_framing`).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use wasmhost::__internals as guest;
use wasmhost::__internals::{from_guest, is_framing};

#[derive(Arbitrary, Debug)]
enum Headers {
    /// Packed by the fuzzer itself, well formed or not.
    Raw(String),
    /// Packed here as a guest packs them (a NUL in a name or value still
    /// breaks the packing).
    Pairs(Vec<(String, String)>),
}

#[derive(Arbitrary, Debug)]
struct Input {
    status: u16,
    headers: Headers,
    body_len: u16,
    max_response: u16,
}

fuzz_target!(|input: Input| {
    let packed = match input.headers {
        Headers::Raw(packed) => packed,
        Headers::Pairs(pairs) => pairs
            .iter()
            .flat_map(|(name, value)| [name.as_str(), "\0", value.as_str(), "\0"])
            .collect(),
    };
    let body = vec![b'x'; usize::from(input.body_len)];
    let max_response = usize::from(input.max_response);
    let response = guest::Response {
        status: input.status,
        headers: packed.clone(),
        body: body.clone(),
    };
    let Ok(answer) = from_guest(response, max_response, &guest::BodyBudget::new(usize::MAX)) else {
        return;
    };
    assert_eq!(answer.status().as_u16(), input.status);
    assert!(!answer.status().is_informational());
    assert!(body.len() <= max_response);

    // Well formed: empty, or ending in a NUL with an even number of them.
    assert!(packed.is_empty() || packed.ends_with('\0'), "{packed:?}");
    let fields: Vec<&str> = packed.split('\0').collect();
    assert_eq!(fields.len() % 2, 1, "{packed:?}");
    let mut expected: Vec<(String, Vec<u8>)> = fields
        .chunks_exact(2)
        .map(|pair| (pair[0].to_ascii_lowercase(), pair[1].as_bytes().to_vec()))
        .collect();
    let mut got: Vec<(String, Vec<u8>)> = answer
        .headers()
        .iter()
        .map(|(name, value)| {
            assert!(!is_framing(name), "framing header {name} let through");
            (name.as_str().to_owned(), value.as_bytes().to_vec())
        })
        .collect();
    expected.sort();
    got.sort();
    assert_eq!(got, expected, "{packed:?}");
    assert!(answer.headers().len() <= wasmhost::__internals::MAX_RESPONSE_HEADERS);
});
