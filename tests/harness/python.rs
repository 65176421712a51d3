//! A standard `wasi:http` guest built by a real toolchain other than Rust's:
//! `tests/fixtures/py-app` (Python) built with componentize-py, installed
//! from PyPI at the version and wheel hashes `requirements.txt` locks, into a
//! virtual environment under the target directory, once per test run.
//!
//! Python 3 with `venv` and pip is required, not optional (Debian's python3
//! and the CI machine have them): a machine without it fails the test with
//! a message that says what is missing rather than skipping it.
//!
//! The WIT the app is built against is assembled beside its world: `wasi:http`
//! 0.2 and the WASI packages it uses as the host's `wasmtime-wasi-http` has
//! them (from cargo's registry, where building the host unpacked it), and wasmhost's own `wit/` (its
//! `wasmhost:app` package and `wasi:keyvalue`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::{target_dir, workspace};

/// The Python app's component, built on first use.
pub fn python_app() -> PathBuf {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match BUILT.get_or_init(build) {
        Ok(path) => path.clone(),
        Err(why) => panic!("{why}"),
    }
}

fn build() -> Result<PathBuf, String> {
    let fixture = workspace().join("tests/fixtures/py-app");
    let out = target_dir().join("py-app");
    let venv = out.join("venv");
    let requirements = read(&fixture.join("requirements.txt"))?;
    let stamp = venv.join("requirements.installed");
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(requirements.as_str()) {
        let _ = std::fs::remove_dir_all(&venv);
        run(
            Command::new("python3").args(["-m", "venv"]).arg(&venv),
            "python3 -m venv (install python3 with venv and pip)",
        )?;
        run(
            Command::new(venv.join("bin/pip"))
                .args(["install", "--quiet", "--require-hashes", "-r"])
                .arg(fixture.join("requirements.txt")),
            "pip install --require-hashes -r tests/fixtures/py-app/requirements.txt",
        )?;
        write(&stamp, &requirements)?;
    }

    let wit = out.join("wit");
    let _ = std::fs::remove_dir_all(&wit);
    copy(&fixture.join("world.wit"), &wit.join("world.wit"))?;
    let wasi_http = wasmtime_wasi_http_dir()?.join("wit/deps");
    for entry in
        std::fs::read_dir(&wasi_http).map_err(|e| format!("{}: {e}", wasi_http.display()))?
    {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.extension().is_some_and(|ext| ext == "wit") {
            let stem = path
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let name = path.file_name().unwrap_or_default();
            copy(&path, &wit.join("deps").join(stem).join(name))?;
        }
    }
    copy(
        &workspace().join("wit/app.wit"),
        &wit.join("deps/wasmhost/app.wit"),
    )?;
    copy(
        &workspace().join("wit/deps/keyvalue/keyvalue.wit"),
        &wit.join("deps/keyvalue/keyvalue.wit"),
    )?;

    // Built from a copy, so Python's bytecode cache stays out of the fixture.
    let src = out.join("src");
    copy(&fixture.join("app.py"), &src.join("app.py"))?;
    let component = out.join("py_app.wasm");
    run(
        Command::new(venv.join("bin/componentize-py"))
            .arg("-d")
            .arg(&wit)
            .args(["-w", "py-app", "componentize", "-p"])
            .arg(&src)
            .arg("app")
            .arg("-o")
            .arg(&component),
        "componentize-py componentize",
    )?;
    Ok(component)
}

/// The directory of the `wasmtime-wasi-http` package the host builds with:
/// the version `Cargo.lock` names, in cargo's registry, where building the
/// host unpacked it.
fn wasmtime_wasi_http_dir() -> Result<PathBuf, String> {
    let lock = read(&workspace().join("Cargo.lock"))?;
    let version = lock
        .split("[[package]]")
        .find(|package| package.contains("name = \"wasmtime-wasi-http\"\n"))
        .and_then(|package| {
            package
                .lines()
                .find_map(|line| line.strip_prefix("version = \""))
                .and_then(|rest| rest.strip_suffix('"'))
        })
        .ok_or("Cargo.lock names no wasmtime-wasi-http")?;
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))
        .ok_or("neither CARGO_HOME nor HOME is set")?;
    let registry = cargo_home.join("registry/src");
    let name = format!("wasmtime-wasi-http-{version}");
    std::fs::read_dir(&registry)
        .map_err(|e| format!("{}: {e}", registry.display()))?
        .filter_map(Result::ok)
        .map(|index| index.path().join(&name))
        .find(|dir| dir.join("wit/deps").is_dir())
        .ok_or_else(|| format!("{name} is not unpacked under {}", registry.display()))
}

fn run(command: &mut Command, what: &str) -> Result<(), String> {
    match command.status() {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(format!("`{what}` failed: {status}")),
        Err(e) => Err(format!("cannot run `{what}`: {e}")),
    }
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

fn copy(from: &Path, to: &Path) -> Result<(), String> {
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::copy(from, to)
        .map(drop)
        .map_err(|e| format!("{} -> {}: {e}", from.display(), to.display()))
}
