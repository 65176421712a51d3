//! Cookie signatures (sdk/src/session/signature.rs): `sign` and `unsign`.
//!
//! `unsign` never panics, whatever the text and secrets, and accepts only
//! what one of the secrets signed: whatever it returns is the text before
//! the last `.`, and signing that with one of the secrets gives the text
//! back. `unsign(sign(v, s), secrets)` is `Some(v)` for any value `v`
//! whenever `s` is among the secrets, and none when it is not; with one
//! byte of the signed text changed (to another ASCII byte) it is none.
//!
//! "Not among the secrets" is up to HMAC's own key equivalence: a key of up
//! to a block (64 bytes) is padded with zero bytes, so `""`, `"\0"` and
//! `"\0\0"` are one key, as `"k"` and `"k\0"` are (Node's `crypto.createHmac`,
//! which express's cookie-signature uses, is the same).
//!
//! Off wasm the SDK computes the HMAC with the `hmac` and `sha2` crates (in a
//! guest the host computes it), so this exercises the same `sign`/`unsign`
//! code with that native HMAC.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use wasmhost_sdk::__fuzz::{sign, unsign};

#[derive(Arbitrary, Debug)]
struct Input {
    signed: String,
    secrets: Vec<String>,
    value: String,
    secret: String,
    tamper_at: u16,
    tamper_to: u8,
}

fuzz_target!(|input: Input| {
    let Input {
        signed,
        mut secrets,
        value,
        secret,
        tamper_at,
        tamper_to,
    } = input;
    secrets.truncate(2);

    // Arbitrary text verifies only if it carries a real signature.
    if let Some(unsigned) = unsign(&signed, &secrets) {
        assert_eq!(signed.rsplit_once('.').map(|(v, _)| v), Some(unsigned));
        assert!(secrets.iter().any(|s| sign(unsigned, s) == signed));
    }

    let good = sign(&value, &secret);
    assert_eq!(good.rsplit_once('.').map(|(v, _)| v), Some(value.as_str()));
    assert_eq!(
        unsign(&good, std::slice::from_ref(&secret)),
        Some(value.as_str())
    );
    let others: Vec<String> = secrets
        .into_iter()
        .filter(|s| !same_hmac_key(s, &secret))
        .collect();
    assert_eq!(unsign(&good, &others), None, "verified without its secret");
    let mut rotated = others.clone();
    rotated.push(secret.clone());
    assert_eq!(unsign(&good, &rotated), Some(value.as_str()));

    // One byte changed, to another ASCII one (so still UTF-8).
    let mut tampered = good.clone().into_bytes();
    let at = usize::from(tamper_at) % tampered.len();
    if tampered[at].is_ascii() {
        let to = tamper_to & 0x7f;
        tampered[at] = if to == tampered[at] { to ^ 1 } else { to };
        let tampered = String::from_utf8(tampered).expect("ASCII for ASCII keeps UTF-8");
        assert_eq!(
            unsign(&tampered, std::slice::from_ref(&secret)),
            None,
            "{tampered:?} verified"
        );
    }
});

/// Whether `a` and `b` are the same HMAC-SHA256 key: keys of up to a block
/// are zero-padded to one. (A longer key is first hashed, so it equals the
/// key that is its SHA-256; no fuzzer finds such a pair.)
fn same_hmac_key(a: &str, b: &str) -> bool {
    const BLOCK: usize = 64;
    if a.len() <= BLOCK && b.len() <= BLOCK {
        a.trim_end_matches('\0') == b.trim_end_matches('\0')
    } else {
        a == b
    }
}
