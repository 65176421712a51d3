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

#[test]
fn a_missing_app_file_is_one_line() {
    let (success, stderr) = wasmhost(&["--listen", "127.0.0.1:0", "/no/such/app.wasm"]);
    assert!(!success);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("cannot read /no/such/app.wasm"), "{stderr}");
}

#[test]
fn a_file_that_is_not_wasm_is_one_line() {
    let path = scratch_file("not.wasm", b"#!/bin/sh\necho hi\n");
    let (success, stderr) = wasmhost(&["--listen", "127.0.0.1:0", path.to_str().unwrap()]);
    assert!(!success);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("is not a WebAssembly file"), "{stderr}");
}

#[test]
fn a_core_module_is_not_a_component() {
    // The smallest valid core module: magic and version 1.
    let path = scratch_file("core.wasm", b"\0asm\x01\0\0\0");
    let (success, stderr) = wasmhost(&["--listen", "127.0.0.1:0", path.to_str().unwrap()]);
    assert!(!success);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("core WebAssembly module, not a component"),
        "{stderr}"
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
