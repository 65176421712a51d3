//! Start-up validation with real components: each bad app is one clear line
//! on stderr and a non-zero exit, never a panic trace.

use std::process::Command;

use wasmhost_tests::{guest, refused_at_start, wasmhost_bin};

fn refuse(package: &str, expected: &str) {
    let stderr = refused_at_start(&guest(package), &[]);
    assert!(stderr.contains(expected), "{package}: {stderr}");
}

/// The app is built when each instance starts: a panic there stops
/// wasmhost at start, in one line that quotes the panic's message.
#[test]
fn a_panic_while_the_app_is_built_stops_wasmhost_at_start() {
    let stderr = refused_at_start(&guest("test-app"), &["--env", "PANIC_IN_APP=1"]);
    assert!(stderr.contains("task 0 failed to start"), "{stderr}");
    assert!(stderr.contains("the app's start-up trapped"), "{stderr}");
    assert!(stderr.contains("app() was told to panic"), "{stderr}");
    assert!(!stderr.contains("RUST_BACKTRACE"), "{stderr}");
}

/// A guest's refusal is its own text: a line break or a terminal escape in
/// it cannot forge a line of the host's, and 4 MiB of it is cut.
#[test]
fn a_hostile_refusal_is_one_escaped_bounded_line() {
    let stderr = refused_at_start(&guest("test-app"), &["--env", "REFUSE_START=hostile"]);
    assert!(
        // An error's line breaks become spaces (`log_text::one_line`).
        stderr.contains("the app refused to start: told to refuse INFO wasmhost: forged line"),
        "{stderr}"
    );
    assert!(
        !stderr.contains('\u{1b}') && stderr.contains("forged line\\u{1b}[31m"),
        "the escape is written out: {stderr}"
    );
    assert!(stderr.len() < 8 * 1024, "cut: {} bytes", stderr.len());
}

/// What a guest prints while it starts well is logged, once it has started.
#[test]
fn what_a_guest_prints_while_starting_is_logged() {
    let host = wasmhost_tests::Host::start(&guest("guest-app"), &["--tasks", "2"]);
    host.assert_logged(
        "warning: SESSION_SECRET is not set",
        std::time::Duration::from_secs(5),
    );
}

#[test]
fn a_component_without_the_handler_is_refused() {
    refuse(
        "no-handler",
        "exports neither `wasmhost:app/handler` (a Rust guest exports it with `wasmhost_sdk::export_app!(app);` in its src/lib.rs) nor `wasi:http/incoming-handler`",
    );
}

#[test]
fn a_component_importing_what_wasmhost_lacks_is_refused() {
    refuse("unknown-import", "acme:gadgets/radio");
}

#[test]
fn a_port_in_use_is_refused() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = Command::new(wasmhost_bin())
        .args(["--listen", &addr])
        .arg(guest("guest-app"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("Address already in use"), "{stderr}");
}
