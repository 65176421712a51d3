//! The stored-session JSON (sdk/src/session/stored.rs) round trips.
//!
//! Any text parsed as a stored session (as the SDK reads one from the store)
//! never panics. A session that parses, written back with the SDK's own
//! writer (`stored::to_json`, which `Session::to_json` calls), parses again
//! to an equal session: the same fields (names and JSON text) in the same
//! order and an equal cookie; the cookie is written first, and writing the
//! reparsed session gives the same JSON again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmhost_sdk::__fuzz as sdk;

fuzz_target!(|data: &[u8]| {
    let Ok(json) = std::str::from_utf8(data) else {
        return;
    };
    let Some((fields, cookie, written)) = sdk::stored_round_trip(json) else {
        return;
    };
    assert!(written.starts_with("{\"cookie\":{"), "{written}");
    let Some((again_fields, again_cookie, again_written)) = sdk::stored_round_trip(&written) else {
        panic!("{json:?} parsed, but what the SDK wrote for it does not: {written:?}");
    };
    assert_eq!(fields, again_fields, "{json:?} -> {written:?}");
    assert_eq!(cookie, again_cookie, "{json:?} -> {written:?}");
    assert_eq!(written, again_written, "{json:?}");
    // Each field's text is one JSON value, as serde_json delimits it.
    for (name, text) in &fields {
        assert!(
            !text.is_empty() && text.trim() == text,
            "{name:?}: {text:?}"
        );
    }
});
