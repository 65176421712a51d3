//! Text that a guest or a client chose, on its way into the host's log.
//!
//! Beside the layers, like `metrics`: the guest's log lines, a header name a
//! guest got wrong, a trap's message with the guest's function names, a
//! request's path all end up in host log lines, and a line that carried a
//! `\r`, a `\n`, a Unicode line separator or a terminal escape could forge or
//! split a line of the host's own. [`for_log`] cuts such text to a bound and
//! escapes every character that could, so one event stays one line whatever
//! the text (the JSON format escapes too, and stays valid JSON).

use std::borrow::Cow;
use std::fmt::{self, Write};

/// Longest error message [`one_line`] makes.
pub const MAX_ERROR_LINE: usize = 4096;

/// An error (its whole chain, for `anyhow`'s) as one line a user reads:
/// line breaks as spaces, then escaped and cut like any text in a log line
/// (an error may quote a guest's names or a server's reply).
pub fn one_line(error: &impl fmt::Display) -> String {
    let text = format!("{error:#}").replace(['\n', '\r'], " ");
    for_log(&text, MAX_ERROR_LINE).into_owned()
}

/// `text` with control characters, line and paragraph separators and
/// bidirectional overrides written as escapes (`\r`, `\n`, `\t`,
/// `\u{2028}`), cut to at most `max` bytes of that (at a character or
/// escape boundary, the cut marked with `…`); borrowed when nothing needed
/// changing. The cut applies to the escaped text, so what is logged stays
/// within `max` however many escapes the text needs.
pub fn for_log(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max && !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len().min(max) + 8);
    for c in text.chars() {
        let before = out.len();
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
        if out.len() > max {
            out.truncate(before);
            out.push('…');
            break;
        }
    }
    Cow::Owned(out)
}

/// Characters that could end, split or disguise a log line.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed() {
        assert!(matches!(for_log("GET / ok", 100), Cow::Borrowed(_)));
    }

    #[test]
    fn line_breaks_and_escapes_cannot_forge_a_line() {
        let forged = "ok\r\n2026-12-04T00:00:00Z  WARN wasmhost: forged\u{2028}x\u{1b}[2J\u{202e}";
        let logged = for_log(forged, 1000);
        assert!(!logged.chars().any(needs_escape), "{logged}");
        assert_eq!(
            logged,
            "ok\\r\\n2026-12-04T00:00:00Z  WARN wasmhost: forged\\u{2028}x\\u{1b}[2J\\u{202e}"
        );
    }

    #[test]
    fn long_text_is_cut_at_a_character_boundary_and_marked() {
        let logged = for_log("ééééé", 5);
        assert_eq!(logged, "éé…");
        assert_eq!(for_log("abc", 3), "abc");
    }

    #[test]
    fn escapes_count_against_the_limit() {
        let escapes = "\u{1b}".repeat(100);
        let logged = for_log(&escapes, 20);
        assert_eq!(logged, format!("{}…", "\\u{1b}".repeat(3)));
    }
}
