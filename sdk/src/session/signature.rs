//! Cookie signatures exactly as express's `cookie-signature` makes them:
//! `value + "." + base64(HMAC-SHA256(secret, value))` with the `=` padding
//! removed. Checked in constant time, against several secrets for rotation.
//!
//! In a guest the HMAC itself is computed by the host (`wasmhost:app/crypto`),
//! natively; SHA-256 compiled to WebAssembly was the largest single cost of a
//! request carrying a session cookie.

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;

use crate::text::rsplit_once_byte;

#[cfg(target_arch = "wasm32")]
fn hmac_sha256(secret: &[u8], value: &str) -> Vec<u8> {
    crate::bindings::wasmhost::app::crypto::hmac_sha256(secret, value.as_bytes())
}

#[cfg(not(target_arch = "wasm32"))]
fn hmac_sha256(secret: &[u8], value: &str) -> Vec<u8> {
    use hmac::{Hmac, Mac};
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(value.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// Signs `value` with `secret` (the text's UTF-8 bytes, or any bytes, as a
/// `Buffer` secret in Node): `value.signature`.
pub fn sign(value: &str, secret: &[u8]) -> String {
    let signature = STANDARD_NO_PAD.encode(hmac_sha256(secret, value));
    format!("{value}.{signature}")
}

/// The value of a signed string if any of `secrets` signed it, else none.
pub fn unsign<'a>(signed: &'a str, secrets: &[impl AsRef<[u8]>]) -> Option<&'a str> {
    let (value, signature) = rsplit_once_byte(signed, b'.')?;
    // A SHA-256 signature is 32 bytes; decoded on the stack, as anything
    // longer cannot match.
    let mut decoded = [0u8; 48];
    let length = STANDARD_NO_PAD.decode_slice(signature, &mut decoded).ok()?;
    let signature = &decoded[..length];
    secrets
        .iter()
        .any(|secret| constant_time_eq(&hmac_sha256(secret.as_ref(), value), signature))
        .then_some(value)
}

/// Whether `a` and `b` are equal, looking at every byte whatever the first
/// difference (so the time taken says nothing about where it is). One
/// `black_box` on the folded difference keeps the compiler from stopping
/// early; subtle's per-byte barriers cost a tenth of a cookie check in a guest.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let difference = a
        .iter()
        .zip(b)
        .fold(0u8, |difference, (x, y)| difference | (x ^ y));
    a.len() == b.len() && std::hint::black_box(difference) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vector from cookie-signature's own test suite.
    #[test]
    fn matches_cookie_signature() {
        assert_eq!(
            sign("hello", b"tobiiscool"),
            "hello.DGDUkGlIkCzPz+C0B064FNgHdEjox7ch8tOBGslZ5QI"
        );
    }

    #[test]
    fn unsigns_what_it_signed_and_nothing_else() {
        let secrets = vec!["tobiiscool".to_owned()];
        let signed = sign("hello", b"tobiiscool");
        assert_eq!(unsign(&signed, &secrets), Some("hello"));
        assert_eq!(
            unsign(
                "hello.DGDUkGlIkCzPz+C0B064FNgHdEjox7ch8tOBGslZ5QX",
                &secrets
            ),
            None
        );
        assert_eq!(
            unsign(
                "hellO.DGDUkGlIkCzPz+C0B064FNgHdEjox7ch8tOBGslZ5QI",
                &secrets
            ),
            None
        );
        assert_eq!(unsign("hello", &secrets), None);
        assert_eq!(unsign(&signed, &["luna".to_owned()]), None);
    }

    #[test]
    fn constant_time_eq_compares_every_byte_and_the_length() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"xbc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
    }

    /// A `Buffer` secret in Node: any bytes, not only text.
    #[test]
    fn a_secret_of_bytes_signs_as_its_bytes() {
        let key = [0u8, 159, 146, 150, 255];
        let signed = sign("id", &key);
        assert_eq!(unsign(&signed, &[key]), Some("id"));
        assert_eq!(unsign(&signed, &["\u{0}".to_owned()]), None);
    }

    #[test]
    fn any_listed_secret_verifies() {
        let signed = sign("id", b"old");
        let secrets = vec!["new".to_owned(), "old".to_owned()];
        assert_eq!(unsign(&signed, &secrets), Some("id"));
    }
}
