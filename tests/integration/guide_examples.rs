//! Every Rust example in docs/guide.md and the README builds, as written, in
//! a project made by `wasmhost new`: the examples are read from the Markdown
//! here, so the docs cannot drift from the SDK or the template.
//!
//! A ```` ```rust ```` block is a whole `src/lib.rs`, built for
//! `wasm32-wasip2`; one with `#[test]`s also has them run natively with
//! `cargo test`, against the SDK's test host. A block whose first line is
//! `// tests/NAME.rs` is that integration test file (`, continued` adds to
//! it), compiled natively. A ```` ```toml ```` block that starts with
//! `[dev-dependencies]` is added to the project's `Cargo.toml` first.

use std::path::{Path, PathBuf};
use std::process::Command;

use wasmhost_tests::{wasmhost_succeeds, workspace};

/// The documents whose examples are built.
const DOCS: &[&str] = &["docs/guide.md", "README.md"];

/// One fenced block of a document.
struct Block {
    /// Where it was: `docs/guide.md:63`.
    origin: String,
    language: String,
    text: String,
}

fn blocks(doc: &str) -> Vec<Block> {
    let text = std::fs::read_to_string(workspace().join(doc)).expect("the document reads");
    let mut blocks = Vec::new();
    let mut open: Option<Block> = None;
    for (number, line) in text.lines().enumerate() {
        match open.take() {
            None => {
                if let Some(language) = line.strip_prefix("```")
                    && !language.is_empty()
                {
                    open = Some(Block {
                        origin: format!("{doc}:{}", number + 1),
                        language: language.trim().to_owned(),
                        text: String::new(),
                    });
                }
            }
            Some(mut block) => {
                if line.starts_with("```") {
                    blocks.push(block);
                } else {
                    block.text.push_str(line);
                    block.text.push('\n');
                    open = Some(block);
                }
            }
        }
    }
    blocks
}

fn cargo(project: &Path, args: &[&str], origin: &str) {
    let output = Command::new(env!("CARGO"))
        .current_dir(project)
        .args(args)
        .env("CARGO_TARGET_DIR", target_dir())
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "the example at {origin}: `cargo {}` failed:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The workspace's target directory, so the examples reuse its compiled
/// dependencies.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace().join("target"), PathBuf::from)
}

#[test]
fn every_rust_example_of_the_guide_and_readme_builds_in_a_new_project() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("hello");
    wasmhost_succeeds(dir.path(), &["new".as_ref(), project.as_os_str()]);
    // The workspace's versions, so the build reuses its compiled crates.
    std::fs::copy(workspace().join("Cargo.lock"), project.join("Cargo.lock")).unwrap();
    let all: Vec<Block> = DOCS.iter().flat_map(|doc| blocks(doc)).collect();
    let mut manifest = std::fs::read_to_string(project.join("Cargo.toml")).unwrap();
    for block in all.iter().filter(|b| b.language == "toml") {
        if block.text.starts_with("[dev-dependencies]") {
            manifest.push('\n');
            manifest.push_str(&block.text);
        }
    }
    std::fs::write(project.join("Cargo.toml"), manifest).unwrap();

    let mut built = 0;
    for block in all.iter().filter(|b| b.language == "rust") {
        let first = block.text.lines().next().unwrap_or_default();
        let file = first
            .strip_prefix("// ")
            .filter(|name| name.starts_with("tests/"))
            .map(|name| name.trim_end_matches(", continued"));
        match file {
            Some(file) => {
                let path = project.join(file);
                let mut text = if first.ends_with(", continued") {
                    std::fs::read_to_string(&path).unwrap_or_default()
                } else {
                    String::new()
                };
                text.push_str(&block.text);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, text).unwrap();
                let name = Path::new(file).file_stem().unwrap().to_str().unwrap();
                cargo(
                    &project,
                    &["test", "--release", "--no-run", "--test", name],
                    &block.origin,
                );
            }
            None => {
                std::fs::write(project.join("src/lib.rs"), &block.text).unwrap();
                cargo(
                    &project,
                    &["build", "--release", "--target", "wasm32-wasip2"],
                    &block.origin,
                );
                if block.text.contains("#[test]") {
                    cargo(&project, &["test", "--release", "--lib"], &block.origin);
                }
            }
        }
        built += 1;
    }
    assert!(built >= 20, "only {built} Rust examples found");
}
