//! The wire format of `wasmhost:app/handler`: how a request's target and
//! headers, and a response's headers, are packed into one string each to
//! cross the WIT boundary. The host and the guest SDK both use this crate,
//! so the format is written and read in one place.
//!
//! - A **request head** is the target (path and query), a NUL, then
//!   `name NUL value NUL` for each header, in the order received. A target
//!   without a path (no target, or only a query) is packed with `/` in front:
//!   an empty path means `/` (RFC 9110, section 4.2.3).
//! - A **header list** (a response's headers, or the part of a request head
//!   after the target) is `name NUL value NUL ...`.
//!
//! One string instead of a list of records saves the guest an allocation per
//! name and value. A NUL in a name or value would shift every later field (a
//! value could smuggle in a header of its own), so [`push_field`] escapes it
//! to DEL: still one field, and one the host refuses as an invalid header.
//!
//! The byte search is done eight bytes at a time ([`find_byte`]): in a guest,
//! `str::find` with a `char` goes through core's generic searcher, which
//! costs a function call and a `memcmp` per match, and a byte-at-a-time loop
//! pays wasmtime's epoch check on every byte (`docs/architecture.md`).

#![no_std]

extern crate alloc;

use alloc::string::String;
use core::ops::Range;

/// What separates fields.
pub const NUL: u8 = 0;

/// What a NUL inside a field becomes.
pub const ESCAPED_NUL: char = '\x7f';

/// Builds a packed request head or header list in one allocation, from a
/// target and fields that hold no NUL (the host's, from hyper).
#[derive(Debug, Default, Clone)]
pub struct Packer {
    packed: String,
}

impl Packer {
    /// A request head for `target` (which holds no NUL), with room for
    /// `headers_len` more bytes of headers (the sum of [`packed_len`]).
    pub fn request(target: &str, headers_len: usize) -> Packer {
        // The path is empty: no target at all, or only a query.
        let root = target.is_empty() || target.starts_with('?');
        let mut packed = String::with_capacity(usize::from(root) + target.len() + 1 + headers_len);
        if root {
            packed.push('/');
        }
        push_clean(&mut packed, target);
        Packer { packed }
    }

    /// Appends one header a guest (or a test) wrote, a NUL in it escaped.
    pub fn push_escaped(&mut self, name: &str, value: &str) {
        push_field(&mut self.packed, name);
        push_field(&mut self.packed, value);
    }

    /// A header list with room for `capacity` bytes.
    pub fn headers(capacity: usize) -> Packer {
        Packer {
            packed: String::with_capacity(capacity),
        }
    }

    /// Appends one header whose name and value hold no NUL, as hyper's
    /// header names and values cannot (text that may hold one goes through
    /// [`push_field`] instead).
    pub fn push(&mut self, name: &str, value: &str) {
        push_clean(&mut self.packed, name);
        push_clean(&mut self.packed, value);
    }

    /// The packed string.
    pub fn finish(self) -> String {
        self.packed
    }
}

/// Bytes one header takes when packed.
pub const fn packed_len(name: &str, value: &str) -> usize {
    name.len() + value.len() + 2
}

/// Appends `field`, which holds no NUL, and its NUL to `packed`.
fn push_clean(packed: &mut String, field: &str) {
    debug_assert!(find_byte(field, NUL).is_none(), "a NUL in {field:?}");
    packed.push_str(field);
    packed.push('\0');
}

/// Appends `field` and its NUL to `packed`, a NUL inside it escaped to DEL:
/// for fields a guest wrote.
pub fn push_field(packed: &mut String, field: &str) {
    if find_byte(field, NUL).is_some() {
        for c in field.chars() {
            packed.push(if c == '\0' { ESCAPED_NUL } else { c });
        }
    } else {
        packed.push_str(field);
    }
    packed.push('\0');
}

/// Where a packed request head's parts end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHead {
    /// Where the target ends: at its NUL (or the end of a head without one).
    pub target_end: usize,
    /// Where the path ends: at the `?` before the query, if any, else with
    /// the target.
    pub path_end: usize,
}

impl RequestHead {
    /// Finds the parts of `packed`.
    pub fn parse(packed: &str) -> RequestHead {
        let target_end = find_byte(packed, NUL).unwrap_or(packed.len());
        RequestHead {
            target_end,
            path_end: find_byte(&packed[..target_end], b'?').unwrap_or(target_end),
        }
    }

    /// The path, as sent.
    pub fn path<'a>(&self, packed: &'a str) -> &'a str {
        &packed[..self.path_end]
    }

    /// The query after `?`, if there is one.
    pub fn query<'a>(&self, packed: &'a str) -> Option<&'a str> {
        packed.get(self.path_end + 1..self.target_end)
    }

    /// The header list after the target.
    pub fn headers<'a>(&self, packed: &'a str) -> &'a str {
        packed.get(self.target_end + 1..).unwrap_or("")
    }
}

/// The (name, value) pairs of a header list. A name without a value at the
/// end is ignored (the host never packs one).
pub fn fields(packed: &str) -> Fields<'_> {
    Fields { rest: packed }
}

/// The iterator of [`fields`].
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    rest: &'a str,
}

impl<'a> Iterator for Fields<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let (name, rest) = split_once_byte(self.rest, NUL)?;
        let (value, rest) = match split_once_byte(rest, NUL) {
            Some(split) => split,
            None => (rest, ""),
        };
        self.rest = rest;
        Some((name, value))
    }
}

/// A header list that is not `name NUL value NUL ...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unterminated;

/// The byte ranges of each (name, value) of a strictly packed header list,
/// for a reader that slices a shared buffer rather than copying; an error
/// for a list whose last field has no NUL.
pub fn field_spans(
    packed: &[u8],
) -> impl Iterator<Item = Result<(Range<usize>, Range<usize>), Unterminated>> + '_ {
    let mut at = 0;
    core::iter::from_fn(move || {
        if at >= packed.len() {
            return None;
        }
        let spans = (|| {
            let name_end = at + find(&packed[at..], NUL).ok_or(Unterminated)?;
            let value_start = name_end + 1;
            let value_end = value_start + find(&packed[value_start..], NUL).ok_or(Unterminated)?;
            Ok((at..name_end, value_start..value_end))
        })();
        match &spans {
            Ok((_, value)) => at = value.end + 1,
            Err(_) => at = packed.len(),
        }
        Some(spans)
    })
}

/// How many headers a packed header list holds (its NULs, halved), counted
/// before anything is allocated for them.
pub fn count_fields(packed: &[u8]) -> usize {
    let mut count = 0;
    let mut rest = packed;
    while let Some(at) = find(rest, NUL) {
        count += 1;
        rest = &rest[at + 1..];
    }
    count / 2
}

/// Eight copies of `byte`.
const fn splat(byte: u8) -> u64 {
    u64::from_ne_bytes([byte; 8])
}

/// The high bit of each byte of `word` that is zero, and no other bit.
const fn zero_bytes(word: u64) -> u64 {
    const LOW7: u64 = splat(0x7f);
    !(((word & LOW7).wrapping_add(LOW7)) | word | LOW7)
}

/// Where `byte` first occurs in `text`, eight bytes at a time.
pub fn find_byte(text: &str, byte: u8) -> Option<usize> {
    find(text.as_bytes(), byte)
}

/// Where `byte` first occurs in `bytes`, eight bytes at a time.
pub fn find(bytes: &[u8], byte: u8) -> Option<usize> {
    let (words, rest) = bytes.as_chunks::<8>();
    for (i, word) in words.iter().enumerate() {
        let found = zero_bytes(u64::from_le_bytes(*word) ^ splat(byte));
        if found != 0 {
            return Some(i * 8 + found.trailing_zeros() as usize / 8);
        }
    }
    let at = rest.iter().position(|&b| b == byte)?;
    Some(words.len() * 8 + at)
}

/// Where `byte` last occurs in `text`, eight bytes at a time.
pub fn rfind_byte(text: &str, byte: u8) -> Option<usize> {
    let (rest, words) = text.as_bytes().as_rchunks::<8>();
    for (i, word) in words.iter().enumerate().rev() {
        let found = zero_bytes(u64::from_le_bytes(*word) ^ splat(byte));
        if found != 0 {
            return Some(rest.len() + i * 8 + 7 - found.leading_zeros() as usize / 8);
        }
    }
    rest.iter().rposition(|&b| b == byte)
}

/// `text` before and after the first `byte` (an ASCII byte: both pieces
/// are then valid UTF-8, since ASCII never occurs inside a character).
pub fn split_once_byte(text: &str, byte: u8) -> Option<(&str, &str)> {
    let at = find_byte(text, byte)?;
    Some((&text[..at], &text[at + 1..]))
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;
    use std::string::ToString;

    fn pack(target: &str, headers: &[(&str, &str)]) -> String {
        let len = headers.iter().map(|(n, v)| packed_len(n, v)).sum();
        let mut packer = Packer::request(target, len);
        for (name, value) in headers {
            packer.push(name, value);
        }
        packer.finish()
    }

    #[test]
    fn a_request_head_round_trips() {
        let headers = [
            ("host", "example.com"),
            ("cookie", "a=1"),
            ("cookie", "b=é"),
        ];
        let packed = pack("/search?q=1", &headers);
        assert_eq!(
            packed,
            "/search?q=1\0host\0example.com\0cookie\0a=1\0cookie\0b=é\0"
        );
        let head = RequestHead::parse(&packed);
        assert_eq!(head.path(&packed), "/search");
        assert_eq!(head.query(&packed), Some("q=1"));
        assert_eq!(fields(head.headers(&packed)).collect::<Vec<_>>(), headers);
        let spans: Vec<_> = field_spans(head.headers(&packed).as_bytes())
            .map(|spans| spans.unwrap())
            .collect();
        assert_eq!(spans.len(), 3);
        assert_eq!(count_fields(head.headers(&packed).as_bytes()), 3);
    }

    #[test]
    fn a_target_without_a_path_gets_the_root() {
        let packed = pack("?a=1", &[]);
        assert_eq!(packed, "/?a=1\0");
        let head = RequestHead::parse(&packed);
        assert_eq!(head.path(&packed), "/");
        assert_eq!(head.query(&packed), Some("a=1"));
        assert_eq!(pack("", &[]), "/\0");
        let plain = pack("/x", &[]);
        assert_eq!(RequestHead::parse(&plain).query(&plain), None);
    }

    #[test]
    fn a_nul_in_a_field_cannot_add_a_field() {
        let mut packed = String::new();
        push_field(&mut packed, "x-echo");
        push_field(&mut packed, "1\0set-cookie\0evil=1");
        assert_eq!(
            fields(&packed).collect::<Vec<_>>(),
            vec![("x-echo", "1\x7fset-cookie\x7fevil=1")]
        );
        assert_eq!(count_fields(packed.as_bytes()), 1);
    }

    #[test]
    fn malformed_lists_are_reported_not_panicked_on() {
        for packed in ["a", "a\0", "a\0b", "\0v"] {
            assert!(
                field_spans(packed.as_bytes()).any(|spans| spans.is_err()),
                "{packed:?}"
            );
        }
        assert!(field_spans(b"\0\0").all(|spans| spans.is_ok()));
        assert_eq!(fields("a\0").collect::<Vec<_>>(), vec![("a", "")]);
    }

    #[test]
    fn finds_every_byte_at_every_position() {
        for len in 0..20 {
            for at in 0..len {
                for second in at..len {
                    let mut bytes = vec![b'/' ^ 1; len];
                    bytes[at] = b'/';
                    bytes[second] = b'/';
                    let text = core::str::from_utf8(&bytes).unwrap();
                    assert_eq!(find_byte(text, b'/'), text.find('/'), "{text:?}");
                    assert_eq!(rfind_byte(text, b'/'), text.rfind('/'), "{text:?}");
                    assert_eq!(find_byte(text, 0), None);
                }
            }
        }
        let high = "ééééé\u{0}ü".to_string();
        assert_eq!(find_byte(&high, 0), high.find('\0'));
        assert_eq!(rfind_byte(&high, 0), high.rfind('\0'));
    }
}
