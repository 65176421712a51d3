//! The docs cite only what exists: every repository path a README, a doc
//! or a source comment names in backticks or links to is a file or folder
//! of the repository, so a rename cannot leave a reader walking to a file
//! that is gone. A path is found if it exists from the repository's root or
//! from the citing file's folder, or if a repository path ends with it (a
//! doc may name `http/convert.rs` in a section about `host/src`). Likewise
//! every section a doc cites as `document.md, "Section"` is a heading there.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use wasmhost_tests::workspace;

/// Where cited paths are looked for.
const CITING: &[&str] = &[
    "README.md",
    "BENCHMARKS.md",
    "docs",
    "fuzz/README.md",
    "host/src",
    "host/templates",
    "sdk/src",
    "wire/src",
    "tests/harness",
    "tests/integration",
    "tests/fixtures",
    "bench/src",
    "guest-app/src",
    "examples",
    ".ci",
];

/// Paths that name a file of the reader's own project, not of this one.
const THE_READERS_OWN: &[&str] = &["tests/http.rs", ".cargo/config.toml"];

/// What a cited path may end with.
const EXTENSIONS: &[&str] = &[
    ".rs", ".md", ".toml", ".wit", ".sh", ".json", ".mjs", ".lock", ".dict",
];

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if matches!(name.to_str(), Some("target" | "node_modules" | ".git")) {
            continue;
        }
        out.push(path.clone());
        if path.is_dir() {
            walk(&path, out);
        }
    }
}

/// Every file of [`CITING`].
fn citing_files(root: &Path) -> Vec<PathBuf> {
    let mut citing = Vec::new();
    for base in CITING {
        let path = root.join(base);
        if path.is_file() {
            citing.push(path);
        } else {
            walk(&path, &mut citing);
        }
    }
    citing
}

/// The paths a text cites: in backticks, or as a Markdown link's target.
fn cited(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (i, piece) in text.split('`').enumerate() {
        if i % 2 == 1 && !piece.contains(char::is_whitespace) {
            found.push(piece.to_owned());
        }
    }
    for piece in text.split("](").skip(1) {
        if let Some(end) = piece.find(')') {
            found.push(piece[..end].to_owned());
        }
    }
    found
        .into_iter()
        .map(|path| {
            let path = path.split('#').next().unwrap_or_default();
            path.trim_end_matches(['.', ',', ':', ';']).to_owned()
        })
        .filter(|path| {
            !path.is_empty()
                && path.contains('/')
                && !path.starts_with(['/', '-', '~'])
                && !path.contains("://")
                && !path.contains(['<', '>', '*', '$', '{', '}', '|', '=', ':', '…'])
                && !path.contains("...")
                && (path.ends_with('/') || EXTENSIONS.iter().any(|ext| path.ends_with(ext)))
        })
        .collect()
}

#[test]
fn every_path_the_docs_and_comments_cite_exists() {
    let root = workspace();
    let mut all = Vec::new();
    walk(root, &mut all);
    let known: BTreeSet<String> = all
        .iter()
        .filter_map(|path| path.strip_prefix(root).ok())
        .map(|path| {
            // Templates are cited by the names they are written as.
            path.to_string_lossy().trim_end_matches(".tmpl").to_owned()
        })
        .collect();
    let citing = citing_files(root);
    let mut missing = Vec::new();
    for file in citing.iter().filter(|file| {
        file.extension()
            .is_some_and(|ext| ext == "rs" || ext == "md" || ext == "tmpl")
    }) {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for path in cited(&text) {
            let bare = path.trim_start_matches("./").trim_end_matches('/');
            let dir = file.parent().unwrap_or(root);
            let exists = root.join(bare).exists()
                || dir.join(&path).exists()
                || known
                    .iter()
                    .any(|known| known == bare || known.ends_with(&format!("/{bare}")))
                || THE_READERS_OWN.contains(&bare);
            if !exists {
                let from = file.strip_prefix(root).unwrap_or(file);
                missing.push(format!("{}: `{path}`", from.display()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "cited paths that do not exist:\n{}",
        missing.join("\n")
    );
}

/// The documents a section may be cited in, by the name citations use.
const SECTIONED: &[(&str, &str)] = &[
    ("README.md", "README.md"),
    ("BENCHMARKS.md", "BENCHMARKS.md"),
    ("architecture.md", "docs/architecture.md"),
    ("guide.md", "docs/guide.md"),
];

/// `(document, section)` for every `document.md, "Section"` (the name in
/// backticks or not) in `text`.
fn cited_sections(text: &str) -> Vec<(&'static str, String)> {
    let mut found = Vec::new();
    for &(name, path) in SECTIONED {
        let mut rest = text;
        while let Some(at) = rest.find(name) {
            let after = rest[at + name.len()..].trim_start_matches(['`', ')']);
            if let Some(quoted) = after.strip_prefix(", \"")
                && let Some(end) = quoted.find('"')
            {
                // A citation may break across lines (of a comment, too).
                let section = quoted[..end]
                    .split_whitespace()
                    .filter(|word| !word.starts_with("//"))
                    .collect::<Vec<_>>()
                    .join(" ");
                found.push((path, section));
            }
            rest = &rest[at + name.len()..];
        }
    }
    found
}

#[test]
fn every_section_the_docs_and_comments_cite_exists() {
    let root = workspace();
    let citing = citing_files(root);
    let mut missing = Vec::new();
    for file in citing.iter().filter(|file| {
        file.extension()
            .is_some_and(|ext| ext == "rs" || ext == "md")
    }) {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for (document, section) in cited_sections(&text) {
            let headings = std::fs::read_to_string(root.join(document)).unwrap_or_default();
            let wanted = section.to_lowercase();
            let found = headings
                .lines()
                .filter(|line| line.starts_with('#'))
                .any(|line| line.to_lowercase().contains(&wanted));
            if !found {
                let from = file.strip_prefix(root).unwrap_or(file);
                missing.push(format!("{}: {document}, \"{section}\"", from.display()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "cited sections that do not exist:\n{}",
        missing.join("\n")
    );
}
