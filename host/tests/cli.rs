//! Bad command lines and bad app files: one clear line on stderr and a
//! non-zero exit, never a panic. (These live in the host package so that
//! `cargo test --workspace` always builds the `wasmhost` binary the
//! integration tests in the workspace's tests/ start.)

use std::path::PathBuf;
use std::process::Command;

fn wasmhost(args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_wasmhost"))
        .args(args)
        .output()
        .expect("wasmhost runs");
    (
        output.status.success(),
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

fn assert_one_line_error(args: &[&str], expected: &str) {
    let (success, stderr) = wasmhost(args);
    assert!(!success, "{args:?} should fail");
    assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
    assert!(
        stderr.contains(expected),
        "{args:?}: expected {expected:?} in {stderr:?}"
    );
    let first = stderr.lines().next().unwrap_or_default();
    assert!(
        first.contains("error"),
        "{args:?}: the first line names the error: {stderr:?}"
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
}
