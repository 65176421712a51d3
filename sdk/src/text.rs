//! Splitting text at an ASCII byte.
//!
//! `str::split`, `find` and `split_once` with a `char` go through core's
//! generic searcher, which in a guest costs a function call and a `memcmp`
//! per match: about 250 instructions for each of the half-dozen searches a
//! request makes (BENCHMARKS.md). Splitting at an ASCII byte needs no
//! searcher, and every piece is still valid UTF-8, since an ASCII byte never
//! occurs inside a multi-byte character.

/// Where `byte` first occurs in `text`.
pub(crate) fn find_byte(text: &str, byte: u8) -> Option<usize> {
    text.bytes().position(|b| b == byte)
}

/// `text` before and after the first `byte`.
pub(crate) fn split_once_byte(text: &str, byte: u8) -> Option<(&str, &str)> {
    let at = find_byte(text, byte)?;
    Some((&text[..at], &text[at + 1..]))
}

/// `text` before and after the last `byte`.
pub(crate) fn rsplit_once_byte(text: &str, byte: u8) -> Option<(&str, &str)> {
    let at = text.bytes().rposition(|b| b == byte)?;
    Some((&text[..at], &text[at + 1..]))
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
        for text in ["", "a", "/", "//a//b/", "é/ü/", "a/b/c"] {
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
