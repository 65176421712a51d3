//! The SDK's byte search (`sdk/src/text.rs`) agrees with `str`'s own.
//!
//! Input: the first byte, masked to ASCII, is the byte searched for; the rest
//! is the text (lossily made UTF-8). `find_byte`, `rfind_byte`,
//! `split_once_byte`, `rsplit_once_byte` and `split_byte` must give exactly
//! what `str::find`, `rfind`, `split_once`, `rsplit_once` and `split` give
//! for that byte as a `char`, and `nul_pairs` the consecutive pairs of
//! `split('\0')` (an odd last piece dropped).
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmhost_sdk::__fuzz as sdk;

fuzz_target!(|data: &[u8]| {
    let Some((&byte, text)) = data.split_first() else {
        return;
    };
    let byte = byte & 0x7f;
    let text = String::from_utf8_lossy(text);
    let text: &str = &text;
    let ch = char::from(byte);

    assert_eq!(sdk::find_byte(text, byte), text.find(ch), "find {byte:#x}");
    assert_eq!(
        sdk::rfind_byte(text, byte),
        text.rfind(ch),
        "rfind {byte:#x}"
    );
    assert_eq!(sdk::split_once_byte(text, byte), text.split_once(ch));
    assert_eq!(sdk::rsplit_once_byte(text, byte), text.rsplit_once(ch));
    assert!(
        sdk::split_byte(text, byte).eq(text.split(ch)),
        "split {byte:#x}"
    );
    // The same text searched for NUL, as the packed headers are.
    assert_eq!(sdk::find_byte(text, 0), text.find('\0'));
    assert_eq!(sdk::rfind_byte(text, 0), text.rfind('\0'));
    let pieces: Vec<&str> = text.split('\0').collect();
    let pairs = pieces.chunks_exact(2).map(|pair| (pair[0], pair[1]));
    assert!(sdk::nul_pairs(text).eq(pairs), "nul_pairs");
});
