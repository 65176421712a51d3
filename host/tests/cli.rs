//! Bad command lines and bad app files: one clear line on stderr and a
//! non-zero exit, never a panic. (These live in the host package so that
//! `cargo test --workspace` always builds the `wasmhost` binary the
//! integration tests in the workspace's tests/ start.)

use std::path::PathBuf;
use std::process::Command;

fn wasmhost(args: &[&str]) -> (bool, String) {
    let (code, stderr) = wasmhost_exit(args);
    (code == Some(0), stderr)
}

/// The exit code and stderr of `wasmhost ARGS`.
fn wasmhost_exit(args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_wasmhost"))
        .args(args)
        .output()
        .expect("wasmhost runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn scratch_file(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wasmhost-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// `wasmhost ARGS` fails with exit code 1 and one line on stderr, which
/// names the error and holds `expected`.
fn assert_one_line_error(args: &[&str], expected: &str) {
    let (code, stderr) = wasmhost_exit(args);
    assert_eq!(code, Some(1), "{args:?}: exit code 1: {stderr}");
    assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
    assert!(
        stderr.contains(expected),
        "{args:?}: expected {expected:?} in {stderr:?}"
    );
    assert_eq!(stderr.lines().count(), 1, "{args:?}: one line: {stderr:?}");
    assert!(
        stderr.starts_with("wasmhost: error: "),
        "{args:?}: the line names the error: {stderr:?}"
    );
}

/// Starts wasmhost on `app` and expects a refusal: one line naming `expected`.
fn assert_app_refused(app: &str, expected: &str) {
    let (success, stderr) = wasmhost(&["--listen", "127.0.0.1:0", app]);
    assert!(!success, "{app} was accepted");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(expected), "{stderr}");
}

#[test]
fn a_missing_app_file_is_one_line() {
    assert_app_refused("/no/such/app.wasm", "cannot read /no/such/app.wasm");
    // The OS's reason once, not once per layer of the error.
    let (_, stderr) = wasmhost(&["--listen", "127.0.0.1:0", "/no/such/app.wasm"]);
    assert_eq!(
        stderr.matches("No such file or directory").count(),
        1,
        "{stderr}"
    );
    let dir = std::env::temp_dir();
    let (_, stderr) = wasmhost(&["--listen", "127.0.0.1:0", dir.to_str().unwrap()]);
    assert_eq!(stderr.matches("Is a directory").count(), 1, "{stderr}");
}

#[test]
fn command_line_mistakes_are_one_line_with_exit_code_1() {
    // clap's own refusals, made one line.
    assert_one_line_error(
        &["--tasks", "0", "app.wasm"],
        "invalid value '0' for '--tasks <N>'",
    );
    assert_one_line_error(
        &["--no-such-flag", "app.wasm"],
        "unexpected argument '--no-such-flag'",
    );
    assert_one_line_error(&[], "required arguments were not provided: <APP.wasm>");
    assert_one_line_error(&["new"], "required arguments were not provided: <PATH>");
    // A mistyped subcommand is not taken for an app file.
    assert_one_line_error(&["nwe", "hello"], "did you mean `wasmhost new`?");
    assert_one_line_error(&["compil", "app.wasm"], "did you mean `wasmhost compile`?");
}

#[test]
fn help_and_version_still_print_and_succeed() {
    let output = Command::new(env!("CARGO_BIN_EXE_wasmhost"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("wasmhost "));
    let output = Command::new(env!("CARGO_BIN_EXE_wasmhost"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("--tasks"));
}

#[test]
fn env_file_errors_name_the_line() {
    let path = scratch_file("bad.env", b"# comment\nGOOD=1\nnot a pair\n");
    assert_one_line_error(
        &["--env-file", path.to_str().unwrap(), "app.wasm"],
        "bad.env: line 3: expected KEY=VALUE",
    );
}

#[test]
fn a_file_that_is_not_wasm_is_one_line() {
    let path = scratch_file("not.wasm", b"#!/bin/sh\necho hi\n");
    assert_app_refused(path.to_str().unwrap(), "is not a WebAssembly file");
}

#[test]
fn a_core_module_is_not_a_component() {
    // The smallest valid core module: magic and version 1.
    let path = scratch_file("core.wasm", b"\0asm\x01\0\0\0");
    assert_app_refused(
        path.to_str().unwrap(),
        "core WebAssembly module, not a component",
    );
}

#[test]
fn bad_arguments_are_refused() {
    assert_one_line_error(&["--tasks", "0", "app.wasm"], "--tasks");
    assert_one_line_error(&["--tasks", "many", "app.wasm"], "--tasks");
    assert_one_line_error(&["--listen", "nowhere", "app.wasm"], "--listen");
    assert_one_line_error(&["--store", "postgres://x", "app.wasm"], "unknown store");
    assert_one_line_error(&["--env", "NOEQUALS", "app.wasm"], "KEY=VALUE");
}

#[test]
fn every_flag_can_come_from_a_wasmhost_variable() {
    // A bad value through the variable is refused as the flag would be.
    let output = Command::new(env!("CARGO_BIN_EXE_wasmhost"))
        .env("WASMHOST_TASKS", "0")
        .arg("app.wasm")
        .output()
        .expect("wasmhost runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--tasks"), "{stderr}");
    // The app and the store URL (with its password off the command line).
    let output = Command::new(env!("CARGO_BIN_EXE_wasmhost"))
        .env("WASMHOST_APP", "/no/such/app.wasm")
        .env("WASMHOST_STORE", "redis://:s3cret@127.0.0.1:1")
        .output()
        .expect("wasmhost runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot read /no/such/app.wasm"), "{stderr}");
    assert!(!stderr.contains("s3cret"), "{stderr}");
    // The help names the variables.
    let (_, help) = {
        let output = Command::new(env!("CARGO_BIN_EXE_wasmhost"))
            .arg("--help")
            .output()
            .expect("wasmhost runs");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    for variable in [
        "WASMHOST_TASKS",
        "WASMHOST_STORE",
        "WASMHOST_ENV_FILE",
        "WASMHOST_MAX_CONNECTIONS",
    ] {
        assert!(help.contains(variable), "{variable} in {help}");
    }
}

#[test]
fn new_limits_refuse_bad_values() {
    assert_one_line_error(&["--max-connections", "0", "app.wasm"], "--max-connections");
    assert_one_line_error(
        &["--store-eviction", "random", "app.wasm"],
        "--store-eviction",
    );
    assert_one_line_error(&["--store-prefix", "a b", "app.wasm"], "--store-prefix");
    assert_one_line_error(&["--env-file", "/no/such/file", "app.wasm"], "--env-file");
    assert_one_line_error(&["--max-response", "lots", "app.wasm"], "--max-response");
    assert_one_line_error(
        &["--allow-outbound", "ftp://example.com", "app.wasm"],
        "the scheme must be http or https",
    );
    assert_one_line_error(
        &["--allow-outbound", "https://example.com/api", "app.wasm"],
        "no path or query",
    );
    assert_one_line_error(&["--max-outbound", "0", "app.wasm"], "--max-outbound");
}

#[test]
fn new_takes_a_path_as_cargo_new_does() {
    let dir = std::env::temp_dir().join(format!("wasmhost-new-path-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let project = dir.join("apps/hello-app");
    let (success, stderr) = wasmhost(&["new", project.to_str().unwrap()]);
    assert!(success, "{stderr}");
    let manifest = std::fs::read_to_string(project.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("name = \"hello-app\""), "{manifest}");
    assert!(
        manifest.contains("serde_json"),
        "the guide's examples use it"
    );
    assert_one_line_error(
        &["new", dir.join("apps/9lives").to_str().unwrap()],
        "`9lives` is not a usable name",
    );
    assert_one_line_error(&["new", project.to_str().unwrap()], "already exists");
    std::fs::remove_dir_all(&dir).unwrap();
}
