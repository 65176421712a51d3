//! `wasmhost new PATH`: writes a ready guest project, as `cargo new` or
//! `spin new` do: a Cargo.toml for a `wasm32-wasip2` component depending on
//! the SDK (and on `serde_json`, which the guide's examples use), a handler
//! with one route, a session and a store call, a unit test of them that
//! plain `cargo test` runs natively against the SDK's test host, and a
//! README with the commands that build, test and serve it. No
//! `.cargo/config.toml` makes wasm32-wasip2 the default target: `cargo test`
//! would then build the tests for wasm and fail to run them.
//!
//! The templates live in `host/templates/new` and are compiled into the
//! binary. The SDK is found by path: by default the SDK beside the host
//! sources this binary was built from (a `cargo install --path host` build
//! keeps pointing at them), or `--sdk PATH`.

use std::path::{Path, PathBuf};

/// The SDK beside the host sources this binary was built from.
pub fn default_sdk() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk")
}

/// Each template file: where it goes in the project, and its text.
const TEMPLATES: [(&str, &str); 4] = [
    (
        "Cargo.toml",
        include_str!("../templates/new/Cargo.toml.tmpl"),
    ),
    (
        "src/lib.rs",
        include_str!("../templates/new/src/lib.rs.tmpl"),
    ),
    ("README.md", include_str!("../templates/new/README.md.tmpl")),
    (
        ".gitignore",
        include_str!("../templates/new/gitignore.tmpl"),
    ),
];

/// Why a project could not be written; each says what to do in one line.
#[derive(Debug, thiserror::Error)]
pub enum NewError {
    #[error(
        "`{0}` is not a usable name: use letters, digits, `-` and `_`, starting with a letter (at most 64)"
    )]
    BadName(String),
    #[error("{0} already exists; choose another name or remove it")]
    Exists(PathBuf),
    #[error(
        "the SDK is not at {0} (no Cargo.toml there); pass --sdk PATH to the wasmhost-sdk crate"
    )]
    NoSdk(PathBuf),
    #[error("cannot write {path}: {error}")]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// Writes a project into the new directory `dir` (as `cargo new PATH`: the
/// project is named after its last component), depending on the SDK at
/// `sdk`; returns the project's directory.
pub fn new_project(dir: &Path, sdk: &Path) -> Result<PathBuf, NewError> {
    let name = dir
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or_default();
    check_name(name)?;
    let sdk = sdk
        .canonicalize()
        .ok()
        .filter(|sdk| sdk.join("Cargo.toml").is_file())
        .ok_or_else(|| NewError::NoSdk(sdk.to_owned()))?;
    if dir.exists() {
        return Err(NewError::Exists(dir.to_owned()));
    }
    let sdk_path = sdk.to_string_lossy().replace('\\', "/");
    let crate_name = name.replace('-', "_");
    for (file, template) in TEMPLATES {
        let text = template
            .replace("{{name}}", name)
            .replace("{{crate}}", &crate_name)
            .replace("{{sdk}}", &sdk_path);
        let path = dir.join(file);
        let write = |path: &Path| -> std::io::Result<()> {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(path, text.as_bytes())
        };
        write(&path).map_err(|error| NewError::Write {
            path: path.clone(),
            error,
        })?;
    }
    Ok(dir.to_owned())
}

/// A crate name Cargo accepts, and that is safe inside the templates'
/// strings and paths.
fn check_name(name: &str) -> Result<(), NewError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if valid {
        Ok(())
    } else {
        Err(NewError::BadName(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cargo_would_refuse_or_that_could_escape_are_refused() {
        for bad in [
            "",
            "1app",
            "my app",
            "../x",
            "a/b",
            "x\"y",
            "-x",
            &"a".repeat(65),
        ] {
            assert!(
                matches!(check_name(bad), Err(NewError::BadName(_))),
                "{bad:?} accepted"
            );
        }
        for good in ["demo", "my-app", "app_2"] {
            assert!(check_name(good).is_ok(), "{good} refused");
        }
    }

    #[test]
    fn a_project_is_written_with_every_placeholder_filled() {
        let parent = std::env::temp_dir().join(format!("wasmhost-new-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&parent);
        std::fs::create_dir_all(&parent).unwrap();
        let dir = new_project(&parent.join("apps/my-app"), &default_sdk()).unwrap();
        assert_eq!(
            dir,
            parent.join("apps/my-app"),
            "made with its parents, as cargo new"
        );
        for (file, _) in TEMPLATES {
            let text = std::fs::read_to_string(dir.join(file)).unwrap();
            assert!(!text.contains("{{"), "{file} has an unfilled placeholder");
        }
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        assert!(manifest.contains("name = \"my-app\""));
        let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
        assert!(readme.contains("target/wasm32-wasip2/release/my_app.wasm"));
        assert!(matches!(
            new_project(&parent.join("apps/my-app"), &default_sdk()),
            Err(NewError::Exists(_))
        ));
        assert!(matches!(
            new_project(&parent.join("other"), &parent.join("nowhere")),
            Err(NewError::NoSdk(_))
        ));
        std::fs::remove_dir_all(&parent).unwrap();
    }
}
