//! The `--env-file` parser (host/src/env_file.rs).
//!
//! Any text parsed as an env file never panics. An error names a line the
//! text has. Read with CRLF line endings, a text without CRs parses to the
//! same pairs or the same error. Parsed pairs have valid names and no NUL in
//! a value, and written back (each value single-quoted when it holds no `'`
//! and no CR, double-quoted with escapes, double-quoted with only the needed
//! escapes, and unquoted when it can be, some with `export `) parse again to
//! the same pairs: whatever a value holds, `$` included, comes back as it
//! was.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmhost::env_file::parse;

/// A key as the parser accepts one.
fn valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

fn single_quoted(value: &str) -> Option<String> {
    (!value.contains(['\'', '\r'])).then(|| format!("'{value}'"))
}

/// Every character that can be escaped, escaped.
fn double_quoted_escaped(value: &str) -> String {
    let mut out = String::from('"');
    for c in value.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '$' => out.push_str("\\$"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Only what must be escaped: line breaks, tabs and `$` as they are.
fn double_quoted_plain(value: &str) -> String {
    let mut out = String::from('"');
    for c in value.chars() {
        match c {
            '\r' => out.push_str("\\r"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The value as written bare, if it reads back as itself that way.
fn unquoted(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let blank = |b: &u8| matches!(b, b' ' | b'\t');
    let fits = !value.contains(['\n', '\r'])
        && !value.starts_with(['\'', '"'])
        && !bytes.first().is_some_and(blank)
        && !bytes.last().is_some_and(blank)
        && !bytes.windows(2).any(|w| blank(&w[0]) && w[1] == b'#');
    fits.then(|| value.to_owned())
}

fn write(pairs: &[(String, String)], quote: impl Fn(&str) -> Option<String>) -> Option<String> {
    let mut text = String::new();
    for (at, (key, value)) in pairs.iter().enumerate() {
        if at % 2 == 1 {
            text.push_str("export ");
        }
        text.push_str(key);
        text.push('=');
        text.push_str(&quote(value)?);
        text.push('\n');
    }
    Some(text)
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = parse(text);
    if !text.contains('\r') {
        assert_eq!(
            parse(&text.replace('\n', "\r\n")),
            parsed,
            "{text:?} with CRLF"
        );
    }
    let pairs = match parsed {
        Ok(pairs) => pairs,
        Err(error) => {
            let lines = text.split('\n').count();
            assert!(
                (1..=lines).contains(&error.line),
                "{text:?}: {error} of {lines} lines"
            );
            return;
        }
    };
    for (key, value) in &pairs {
        assert!(valid_key(key), "{text:?}: key {key:?}");
        assert!(!value.contains('\0'), "{text:?}: a NUL in {key:?}");
    }
    let written = [
        write(&pairs, single_quoted),
        write(&pairs, |v| Some(double_quoted_escaped(v))),
        write(&pairs, |v| Some(double_quoted_plain(v))),
        write(&pairs, unquoted),
    ];
    for text in written.iter().flatten() {
        assert_eq!(parse(text).as_ref(), Ok(&pairs), "{text:?}");
    }
});
