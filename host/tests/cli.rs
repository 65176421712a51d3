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
