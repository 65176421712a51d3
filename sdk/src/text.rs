//! Splitting text at an ASCII byte.
//!
//! `str::split`, `find` and `split_once` with a `char` go through core's
//! generic searcher, which in a guest costs a function call and a `memcmp`
//! per match: about 250 instructions for each of the half-dozen searches a
//! request makes (BENCHMARKS.md). Splitting at an ASCII byte needs no
//! searcher, and every piece is still valid UTF-8, since an ASCII byte never
//! occurs inside a multi-byte character. The search looks at eight bytes at a
//! time (a byte-at-a-time loop, with the epoch check wasmtime puts in every
//! loop, cost ~12 instructions a byte over a cookie header).

/// Eight copies of `byte`.
const fn splat(byte: u8) -> u64 {
    u64::from_ne_bytes([byte; 8])
}

/// The high bit of each byte of `word` that is zero, and no other bit.
const fn zero_bytes(word: u64) -> u64 {
    const LOW7: u64 = splat(0x7f);
    !(((word & LOW7).wrapping_add(LOW7)) | word | LOW7)
}

/// Where `byte` first occurs in `text`.
pub(crate) fn find_byte(text: &str, byte: u8) -> Option<usize> {
    let (words, rest) = text.as_bytes().as_chunks::<8>();
    for (i, word) in words.iter().enumerate() {
        let found = zero_bytes(u64::from_le_bytes(*word) ^ splat(byte));
        if found != 0 {
            return Some(i * 8 + found.trailing_zeros() as usize / 8);
        }
    }
    let at = rest.iter().position(|&b| b == byte)?;
    Some(words.len() * 8 + at)
}

/// Where `byte` last occurs in `text`.
pub(crate) fn rfind_byte(text: &str, byte: u8) -> Option<usize> {
    let (rest, words) = text.as_bytes().as_rchunks::<8>();
    for (i, word) in words.iter().enumerate().rev() {
        let found = zero_bytes(u64::from_le_bytes(*word) ^ splat(byte));
        if found != 0 {
            return Some(rest.len() + i * 8 + 7 - found.leading_zeros() as usize / 8);
        }
    }
    rest.iter().rposition(|&b| b == byte)
}

/// `text` before and after the first `byte`.
pub(crate) fn split_once_byte(text: &str, byte: u8) -> Option<(&str, &str)> {
    let at = find_byte(text, byte)?;
    Some((&text[..at], &text[at + 1..]))
}

/// `text` before and after the last `byte`.
pub(crate) fn rsplit_once_byte(text: &str, byte: u8) -> Option<(&str, &str)> {
    let at = rfind_byte(text, byte)?;
    Some((&text[..at], &text[at + 1..]))
}

/// The (name, value) pairs of text packed as `name\0value\0...`.
pub(crate) fn nul_pairs(packed: &str) -> impl Iterator<Item = (&str, &str)> {
    let mut fields = split_byte(packed, 0);
    std::iter::from_fn(move || Some((fields.next()?, fields.next()?)))
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
    fn finds_every_byte_at_every_position() {
        // Every length around the 8-byte words, the byte at every place,
        // once or twice, next to bytes that differ from it by one bit.
        for len in 0..20 {
            for at in 0..len {
                for second in at..len {
                    let mut bytes = vec![b'/' ^ 1; len];
                    bytes[at] = b'/';
                    bytes[second] = b'/';
                    let text = std::str::from_utf8(&bytes).unwrap();
                    assert_eq!(find_byte(text, b'/'), text.find('/'), "{text:?}");
                    assert_eq!(rfind_byte(text, b'/'), text.rfind('/'), "{text:?}");
                    assert_eq!(find_byte(text, 0), None);
                }
            }
        }
        let high = "ééééé\u{0}ü";
        assert_eq!(find_byte(high, 0), high.find('\0'));
        assert_eq!(rfind_byte(high, 0), high.rfind('\0'));
    }

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
