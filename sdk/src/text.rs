//! Splitting text at an ASCII byte, with the wire format's eight-bytes-at-a-
//! time search (`wasmhost-wire`): in a guest, `str::split` with a `char`
//! goes through core's generic searcher, which costs far more per search.
//! Every piece is valid UTF-8, since an ASCII byte never occurs inside a
//! multi-byte character.

use percent_encoding::percent_decode_str;

pub(crate) use wasmhost_wire::{find_byte, rfind_byte, split_once_byte};

/// Percent-decodes a path segment; invalid UTF-8 is replaced, never an error.
pub(crate) fn decode(text: &str) -> String {
    percent_decode_str(text).decode_utf8_lossy().into_owned()
}

/// Decodes a form or query component: `+` is a space, then percent-decoding.
pub(crate) fn decode_form(text: &str) -> String {
    decode(&text.replace('+', " "))
}

/// `text` before and after the last `byte`.
pub(crate) fn rsplit_once_byte(text: &str, byte: u8) -> Option<(&str, &str)> {
    let at = rfind_byte(text, byte)?;
    Some((&text[..at], &text[at + 1..]))
}

/// The (name, value) pairs of a packed header list.
pub(crate) fn nul_pairs(packed: &str) -> impl Iterator<Item = (&str, &str)> {
    wasmhost_wire::fields(packed)
}

/// The pieces of `text` between occurrences of `byte`, as `str::split`.
pub(crate) fn split_byte(text: &str, byte: u8) -> SplitByte<'_> {
    SplitByte {
        rest: Some(text),
        byte,
    }
}

pub(crate) struct SplitByte<'a> {
    rest: Option<&'a str>,
    byte: u8,
}

impl<'a> Iterator for SplitByte<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let rest = self.rest?;
        match split_once_byte(rest, self.byte) {
            Some((piece, after)) => {
                self.rest = Some(after);
                Some(piece)
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_as_str_does() {
        for text in [
            "",
            "a",
            "/",
            "//a//b/",
            "é/ü/",
            "a/b/c",
            "0123456789/abcdefgh/ijk",
        ] {
            assert_eq!(
                split_byte(text, b'/').collect::<Vec<_>>(),
                text.split('/').collect::<Vec<_>>(),
                "{text:?}"
            );
            assert_eq!(
                split_once_byte(text, b'/'),
                text.split_once('/'),
                "{text:?}"
            );
            assert_eq!(
                rsplit_once_byte(text, b'/'),
                text.rsplit_once('/'),
                "{text:?}"
            );
            assert_eq!(find_byte(text, b'/'), text.find('/'), "{text:?}");
        }
    }
}
