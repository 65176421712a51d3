//! Start-up validation with real components: each bad app is one clear line
//! on stderr and a non-zero exit, never a panic trace.

use std::process::Command;

use wasmhost_tests::{guest, wasmhost_bin};

fn refuse(package: &str, expected: &str) {
    let output = Command::new(wasmhost_bin())
        .args(["--listen", "127.0.0.1:0"])
        .arg(guest(package))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{package} was accepted");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(expected), "{package}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        output.stdout.is_empty(),
        "nothing on stdout: no `listening on`"
    );
}

#[test]
fn a_component_without_the_handler_is_refused() {
    refuse(
        "no-handler",
        "does not export the `wasmhost:app/handler` interface",
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
