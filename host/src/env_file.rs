//! The `--env-file` format: `KEY=VALUE` lines as dotenv files are written
//! (comments, `export`, single and double quotes, values spanning lines),
//! read literally.
//!
//! This module owns reading that file, and reads it without variable
//! expansion of any kind: a `$` is kept as written, quoted or not. The
//! file's values are the guest's secrets, and must never pull in the host's
//! environment: with expansion, `LEAK=${SECRET_X}` would hand the guest the
//! host's `SECRET_X`, and `PASS=pa$$w0rd` would silently lose characters.
//! For the same reason an error names the line and what is wrong with it,
//! never the line's text, which may hold a secret.
//!
//! The rules, line by line (a CRLF line ending counts as LF, and a UTF-8
//! byte-order mark at the start is ignored):
//!
//! - a blank line, or one whose first non-blank character is `#`, is skipped;
//! - otherwise the line is `KEY=VALUE`, optionally after `export `, with
//!   blanks (spaces and tabs) around the key and after the `=` ignored; a key
//!   is `[A-Za-z_][A-Za-z0-9_.]*`;
//! - an unquoted value ends at the line's end or at a `#` after a blank (a
//!   comment), and is trimmed of blanks;
//! - a value in single quotes is everything up to the closing quote, as
//!   written;
//! - a value in double quotes is everything up to the closing quote, with the
//!   escapes `\n`, `\r`, `\t`, `\"`, `\\` and `\$` (for `$`, though a bare
//!   `$` is kept too); any other backslash is kept as written;
//! - a quoted value may span lines; after its closing quote only blanks and a
//!   comment (after a blank) may follow on that line;
//! - no value may hold a NUL byte, which no environment variable can.

use std::borrow::Cow;
use std::fmt;
use std::io::Read;
use std::path::Path;

/// The largest env file [`read`] takes, in bytes.
pub const MAX_BYTES: u64 = 1024 * 1024;

/// Spaces and tabs: what is trimmed around keys, `=` and unquoted values.
const BLANK: [char; 2] = [' ', '\t'];

/// What is wrong with a line of an env file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// Neither blank, a comment nor `KEY=VALUE`.
    ExpectedKeyValue,
    /// The key is empty or not `[A-Za-z_][A-Za-z0-9_.]*`.
    InvalidName,
    /// A quoted value whose closing quote never comes.
    Unterminated,
    /// Something other than blanks or a comment after a closing quote.
    TextAfterQuote,
    /// A value holding a NUL byte.
    Nul,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Problem::ExpectedKeyValue => "expected KEY=VALUE",
            Problem::InvalidName => "invalid variable name",
            Problem::Unterminated => "unterminated quoted value",
            Problem::TextAfterQuote => "unexpected text after the closing quote",
            Problem::Nul => "a value cannot hold a NUL byte",
        })
    }
}

/// A line that cannot be read: its number (from 1) and what is wrong with it,
/// never its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {problem}")]
pub struct EnvFileError {
    /// The line's number, from 1. Where a quoted value spans lines: the
    /// line of its opening quote if it is never closed, of its closing quote
    /// for text after it, of the NUL byte for one.
    pub line: usize,
    pub problem: Problem,
}

/// Why [`read`] failed. None of these shows the file's text.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file could not be opened or read.
    #[error("cannot read it: {0}")]
    Io(#[from] std::io::Error),
    /// The file is larger than [`MAX_BYTES`].
    #[error("larger than {} MiB", MAX_BYTES / (1024 * 1024))]
    TooLarge,
    /// The file is not UTF-8: `line` has the first byte that is not.
    #[error("line {line}: not UTF-8 text")]
    NotUtf8 { line: usize },
    /// A line is not one the format allows.
    #[error(transparent)]
    Parse(#[from] EnvFileError),
}

/// Reads the env file at `path` (up to [`MAX_BYTES`], UTF-8) and parses it.
pub fn read(path: &Path) -> Result<Vec<(String, String)>, ReadError> {
    let mut bytes = Vec::new();
    // `take` rather than the file's length: a pipe (`--env-file <(...)`)
    // has none.
    std::fs::File::open(path)?
        .take(MAX_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(ReadError::TooLarge);
    }
    let text = std::str::from_utf8(&bytes).map_err(|error| ReadError::NotUtf8 {
        line: line_at(&bytes[..error.valid_up_to()]),
    })?;
    Ok(parse(text)?)
}

/// Parses the text of an env file into its `(key, value)` pairs, in the
/// file's order (a key given twice appears twice).
pub fn parse(text: &str) -> Result<Vec<(String, String)>, EnvFileError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let text = without_crlf(text);
    let mut rest: &str = &text;
    let mut line = 1;
    let mut pairs = Vec::new();
    while !rest.is_empty() {
        let (current, next) = rest.split_once('\n').unwrap_or((rest, ""));
        let error = |problem| EnvFileError { line, problem };
        let content = current.trim_start_matches(BLANK);
        if content.is_empty() || content.starts_with('#') {
            rest = next;
            line += 1;
            continue;
        }
        let (head, tail) = current
            .split_once('=')
            .ok_or(error(Problem::ExpectedKeyValue))?;
        let key = key(head).ok_or(error(Problem::InvalidName))?;
        let start = tail.trim_start_matches(BLANK);
        let quote = match start.chars().next() {
            Some(quote @ ('\'' | '"')) => quote,
            _ => {
                let value = tail[..comment_start(tail)].trim_matches(BLANK);
                if value.contains('\0') {
                    return Err(error(Problem::Nul));
                }
                pairs.push((key.to_owned(), value.to_owned()));
                rest = next;
                line += 1;
                continue;
            }
        };
        // The quoted value runs on from its opening quote, across lines.
        let body = &rest[current.len() - start.len() + 1..];
        let (value, raw_len) = if quote == '\'' {
            let end = body.find('\'').ok_or(error(Problem::Unterminated))?;
            (Cow::Borrowed(&body[..end]), end)
        } else {
            let (value, end) = double_quoted(body).ok_or(error(Problem::Unterminated))?;
            (Cow::Owned(value), end)
        };
        let raw = &body[..raw_len];
        if let Some(at) = raw.find('\0') {
            return Err(EnvFileError {
                line: line + raw[..at].matches('\n').count(),
                problem: Problem::Nul,
            });
        }
        line += raw.matches('\n').count();
        let after = &body[raw_len + 1..];
        let (trailing, next) = after.split_once('\n').unwrap_or((after, ""));
        if !blank_or_comment(trailing) {
            return Err(EnvFileError {
                line,
                problem: Problem::TextAfterQuote,
            });
        }
        pairs.push((key.to_owned(), value.into_owned()));
        rest = next;
        line += 1;
    }
    Ok(pairs)
}

/// The text with each line's CRLF ending made LF (and a last line's
/// trailing CR dropped).
fn without_crlf(text: &str) -> Cow<'_, str> {
    if !text.contains('\r') {
        return Cow::Borrowed(text);
    }
    let mut text = text.replace("\r\n", "\n");
    if text.ends_with('\r') {
        text.pop();
    }
    Cow::Owned(text)
}

/// The key before a line's `=`, after an optional `export `; none if it is
/// not a valid name.
fn key(head: &str) -> Option<&str> {
    let head = head.trim_matches(BLANK);
    let key = match head.strip_prefix("export") {
        Some(after) if after.starts_with(BLANK) => after.trim_start_matches(BLANK),
        _ => head,
    };
    let mut chars = key.chars();
    let first = chars.next()?;
    let valid = (first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    valid.then_some(key)
}

/// Where an unquoted value's comment starts: at its first `#` after a blank,
/// or at its end.
fn comment_start(value: &str) -> usize {
    let bytes = value.as_bytes();
    (1..bytes.len())
        .find(|&at| bytes[at] == b'#' && matches!(bytes[at - 1], b' ' | b'\t'))
        .unwrap_or(bytes.len())
}

/// Whether what follows a closing quote on its line is only blanks, and then
/// perhaps a comment (a `#` after a blank).
fn blank_or_comment(trailing: &str) -> bool {
    let comment = trailing.trim_start_matches(BLANK);
    comment.is_empty() || (comment.starts_with('#') && comment.len() < trailing.len())
}

/// A double-quoted value, from just after its opening quote: the value with
/// its escapes applied, and the offset of the closing quote; none if there
/// is no closing quote.
fn double_quoted(body: &str) -> Option<(String, usize)> {
    let mut value = String::new();
    let mut chars = body.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return Some((value, at)),
            '\\' => {
                let (_, escaped) = chars.next()?;
                match escaped {
                    'n' => value.push('\n'),
                    'r' => value.push('\r'),
                    't' => value.push('\t'),
                    '"' | '\\' | '$' => value.push(escaped),
                    other => {
                        value.push('\\');
                        value.push(other);
                    }
                }
            }
            c => value.push(c),
        }
    }
    None
}

/// The number (from 1) of the line that the byte after `before` is on.
fn line_at(before: &[u8]) -> usize {
    1 + before.iter().filter(|&&b| b == b'\n').count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    fn one(text: &str) -> String {
        let mut parsed = pairs(text);
        assert_eq!(parsed.len(), 1, "{text:?}: {parsed:?}");
        parsed.pop().unwrap().1
    }

    fn problem(text: &str) -> (usize, Problem) {
        let error = parse(text).expect_err(text);
        (error.line, error.problem)
    }

    #[test]
    fn dollar_signs_are_never_expanded() {
        // Not even from a variable the host has (setting one is unsafe in
        // a threaded test, so one every test process has).
        assert!(std::env::var("PATH").is_ok());
        assert_eq!(one("LEAK=${SECRET_X}"), "${SECRET_X}");
        assert_eq!(one("LEAK=$PATH"), "$PATH");
        assert_eq!(one("LEAK=${PATH}"), "${PATH}");
        assert_eq!(one("PASS=pa$$w0rd$x-tail"), "pa$$w0rd$x-tail");
        assert_eq!(one("PASS='pa$$w0rd$x-tail'"), "pa$$w0rd$x-tail");
        assert_eq!(one("PASS=\"pa$$w0rd$x-tail\""), "pa$$w0rd$x-tail");
        assert_eq!(one("LEAK=\"${PATH}\""), "${PATH}");
        assert_eq!(one("LEAK='${PATH}'"), "${PATH}");
        assert_eq!(pairs("A=1\nB=$A")[1].1, "$A");
        assert_eq!(one(r#"E="\$HOME \$""#), "$HOME $");
    }

    #[test]
    fn blank_lines_and_comments_are_skipped() {
        assert_eq!(pairs(""), vec![]);
        assert_eq!(pairs("\n\n  \n\t\n"), vec![]);
        assert_eq!(pairs("# A=1\n   # B=2\n\t#\n"), vec![]);
        assert_eq!(
            pairs("\n# a comment\nA=1\n\n  # another\nB=2"),
            vec![
                ("A".to_owned(), "1".to_owned()),
                ("B".to_owned(), "2".to_owned())
            ]
        );
    }

    #[test]
    fn keys_values_and_whitespace() {
        assert_eq!(pairs("A=1"), vec![("A".to_owned(), "1".to_owned())]);
        assert_eq!(one("  KEY  =  some value  "), "some value");
        assert_eq!(one("\tKEY\t=\tv\t"), "v");
        assert_eq!(one("EMPTY="), "");
        assert_eq!(one("EMPTY=   "), "");
        assert_eq!(one("EQUALS=a=b==c"), "a=b==c");
        assert_eq!(
            one("URL=redis://u:p@h:6379/0?x=1"),
            "redis://u:p@h:6379/0?x=1"
        );
        assert_eq!(one("INNER=it's \"quoted\" here"), "it's \"quoted\" here");
        assert_eq!(one("BACKSLASH=a\\nb\\"), "a\\nb\\");
        assert_eq!(one("UNICODE=héllo wörld ✓"), "héllo wörld ✓");
        assert_eq!(one("NBSP=\u{a0}x\u{a0}"), "\u{a0}x\u{a0}");
        assert_eq!(pairs("_a.b_9=1")[0].0, "_a.b_9");
        assert_eq!(pairs("lower=1")[0].0, "lower");
        // A key given twice appears twice; the caller keeps the last.
        assert_eq!(
            pairs("A=1\nA=2"),
            vec![
                ("A".to_owned(), "1".to_owned()),
                ("A".to_owned(), "2".to_owned())
            ]
        );
        // A leading byte-order mark (as some Windows editors write) is not
        // part of the first key.
        assert_eq!(pairs("\u{feff}A=1")[0].0, "A");
    }

    #[test]
    fn export_prefix() {
        assert_eq!(pairs("export A=1"), vec![("A".to_owned(), "1".to_owned())]);
        assert_eq!(
            pairs("  export\t  A = 1")[0],
            ("A".to_owned(), "1".to_owned())
        );
        assert_eq!(pairs("export A='x y'")[0].1, "x y");
        // `export` alone before the `=` is the key itself.
        assert_eq!(pairs("export=1")[0].0, "export");
        assert_eq!(pairs("export =1")[0].0, "export");
        assert_eq!(pairs("exported=1")[0].0, "exported");
        assert_eq!(pairs("export.x=1")[0].0, "export.x");
        assert_eq!(problem("export A"), (1, Problem::ExpectedKeyValue));
        assert_eq!(problem("export A B=1"), (1, Problem::InvalidName));
        assert_eq!(problem("A=1\nexport 1A=1"), (2, Problem::InvalidName));
    }

    #[test]
    fn unquoted_inline_comments() {
        assert_eq!(one("A=1 # the count"), "1");
        assert_eq!(one("A=1\t# the count"), "1");
        assert_eq!(one("A=some value   #c"), "some value");
        assert_eq!(one("A= # only a comment"), "");
        // A `#` not after a blank is part of the value.
        assert_eq!(one("A=#not-a-comment"), "#not-a-comment");
        assert_eq!(one("COLOR=#fff"), "#fff");
        assert_eq!(one("URL=http://x/#frag"), "http://x/#frag");
        assert_eq!(one("A=a#b #c"), "a#b");
    }

    #[test]
    fn single_quotes_are_literal() {
        assert_eq!(one("A='x'"), "x");
        assert_eq!(one("A=''"), "");
        assert_eq!(one("A= '  padded  '  "), "  padded  ");
        assert_eq!(one(r"A='\n\t\\ \'"), r"\n\t\\ \");
        assert_eq!(one("A='# not a comment'"), "# not a comment");
        assert_eq!(one("A='say \"hi\"'"), "say \"hi\"");
        assert_eq!(one("A='x' # comment"), "x");
        assert_eq!(one("A='x'\t#comment"), "x");
        assert_eq!(
            pairs("KEY='-----BEGIN KEY-----\nabc\n-----END KEY-----'\nB=2"),
            vec![
                (
                    "KEY".to_owned(),
                    "-----BEGIN KEY-----\nabc\n-----END KEY-----".to_owned()
                ),
                ("B".to_owned(), "2".to_owned())
            ]
        );
    }

    #[test]
    fn double_quotes_take_a_few_escapes() {
        assert_eq!(one("A=\"x\""), "x");
        assert_eq!(one("A=\"\""), "");
        assert_eq!(one("A= \"  padded  \" "), "  padded  ");
        assert_eq!(one(r#"A="a\nb\rc\td""#), "a\nb\rc\td");
        assert_eq!(one(r#"A="say \"hi\"""#), "say \"hi\"");
        assert_eq!(one(r#"A="back\\slash""#), "back\\slash");
        assert_eq!(one(r#"A="\$""#), "$");
        // Any other backslash is kept, with what follows it.
        assert_eq!(one(r#"A="\a\'\x\u00e9""#), r"\a\'\x\u00e9");
        assert_eq!(one(r#"A="C:\Users\me""#), r"C:\Users\me");
        assert_eq!(one(r#"A="\\\"""#), "\\\"");
        assert_eq!(
            one("A=\"it's # not a comment\" # comment"),
            "it's # not a comment"
        );
        assert_eq!(one("A=\"x\"\t"), "x");
        assert_eq!(
            pairs("A=\"line 1\nline 2\"\nB=\"x\""),
            vec![
                ("A".to_owned(), "line 1\nline 2".to_owned()),
                ("B".to_owned(), "x".to_owned())
            ]
        );
        // A backslash before a line break keeps both.
        assert_eq!(one("A=\"a\\\nb\""), "a\\\nb");
    }

    #[test]
    fn crlf_files_read_like_lf_ones() {
        let lf = "# c\nA=1\nB='x'\nC=\"y\" # c\nexport D=2\n\nE='m\nn'\nF=\"p\nq\"\n";
        let crlf = lf.replace('\n', "\r\n");
        assert_eq!(pairs(&crlf), pairs(lf));
        assert_eq!(pairs(&crlf)[0], ("A".to_owned(), "1".to_owned()));
        assert_eq!(pairs(&crlf)[4].1, "m\nn");
        assert_eq!(one("A=1\r"), "1");
        assert_eq!(one("A=\r\n"), "");
        // A CR elsewhere is the value's, as is one escaped.
        assert_eq!(one("A=x\ry\r\n"), "x\ry");
        assert_eq!(one("A=\"x\\r\"\r\n"), "x\r");
        assert_eq!(
            problem("A=1\r\nB=2\r\nnot a line\r\n"),
            (3, Problem::ExpectedKeyValue)
        );
    }

    #[test]
    fn nul_bytes_are_refused() {
        assert_eq!(problem("A=1\nB=a\0b"), (2, Problem::Nul));
        assert_eq!(problem("A='a\0'"), (1, Problem::Nul));
        assert_eq!(problem("A=\"x\ny\0\""), (2, Problem::Nul));
        // In a comment it is no value's.
        assert_eq!(one("# \0\nA=1 # \0"), "1");
    }

    #[test]
    fn errors_name_the_line_and_never_its_text() {
        assert_eq!(
            problem("A=1\nB=2\n\nthis is not a line"),
            (4, Problem::ExpectedKeyValue)
        );
        assert_eq!(problem("A=1\nB C=2"), (2, Problem::InvalidName));
        assert_eq!(problem("=value"), (1, Problem::InvalidName));
        assert_eq!(problem("1A=1"), (1, Problem::InvalidName));
        assert_eq!(problem("A-B=1"), (1, Problem::InvalidName));
        assert_eq!(problem("\"A\"=1"), (1, Problem::InvalidName));
        assert_eq!(problem("ÉTÉ=1"), (1, Problem::InvalidName));
        assert_eq!(
            problem("A=1\n\n\n\n\n\nB='never closed\nC=3\n"),
            (7, Problem::Unterminated)
        );
        assert_eq!(problem("A=\"never closed"), (1, Problem::Unterminated));
        assert_eq!(problem("A=\"escaped close\\\""), (1, Problem::Unterminated));
        assert_eq!(
            problem("A=\"trailing backslash\\"),
            (1, Problem::Unterminated)
        );
        assert_eq!(problem("A='x'y"), (1, Problem::TextAfterQuote));
        assert_eq!(problem("A=\"x\" y"), (1, Problem::TextAfterQuote));
        assert_eq!(
            problem("A='x'#no blank before"),
            (1, Problem::TextAfterQuote)
        );
        assert_eq!(problem("A='x''y'"), (1, Problem::TextAfterQuote));
        // After a value spanning lines, the line of its closing quote.
        assert_eq!(
            problem("A=1\nB='x\ny\nz' junk"),
            (4, Problem::TextAfterQuote)
        );
        // The line after a value spanning lines is counted right.
        assert_eq!(problem("A=\"x\ny\"\nbad"), (3, Problem::ExpectedKeyValue));

        let error = parse("A=1\nSECRET hunter2").unwrap_err();
        assert_eq!(error.to_string(), "line 2: expected KEY=VALUE");
        let error = parse("SECRET='hunter2").unwrap_err();
        assert_eq!(error.to_string(), "line 1: unterminated quoted value");
        let error = parse("A=1\nhunter 2=x").unwrap_err();
        assert_eq!(error.to_string(), "line 2: invalid variable name");
    }

    #[test]
    fn reading_files() {
        let dir = std::env::temp_dir().join(format!("wasmhost-env-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("app.env");

        std::fs::write(&path, "A=1\nB='$x'\n").unwrap();
        let read_back = read(&path).unwrap();
        assert_eq!(read_back[1], ("B".to_owned(), "$x".to_owned()));

        std::fs::write(&path, b"A=1\nB=\xff\xfe hunter2\n").unwrap();
        let error = read(&path).unwrap_err();
        assert!(matches!(error, ReadError::NotUtf8 { line: 2 }), "{error:?}");
        assert_eq!(error.to_string(), "line 2: not UTF-8 text");

        std::fs::write(&path, "A=1\nB='hunter2").unwrap();
        let error = read(&path).unwrap_err();
        assert_eq!(error.to_string(), "line 2: unterminated quoted value");

        let mut big = "A=".to_owned();
        big.push_str(&"x".repeat(MAX_BYTES as usize - 2));
        std::fs::write(&path, &big).unwrap();
        assert_eq!(read(&path).unwrap()[0].1.len(), MAX_BYTES as usize - 2);
        big.push('x');
        std::fs::write(&path, &big).unwrap();
        let error = read(&path).unwrap_err();
        assert!(matches!(error, ReadError::TooLarge), "{error:?}");
        assert_eq!(error.to_string(), "larger than 1 MiB");

        let error = read(&dir.join("missing.env")).unwrap_err();
        assert!(matches!(error, ReadError::Io(_)), "{error:?}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
