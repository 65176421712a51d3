//! The README's demo in a real browser: headless Chromium (Debian's
//! `chromium`), driven by `tests/browser/demo.mjs` with playwright-core,
//! against the real binary running the seed app on five tasks.
//!
//! Node, npm and Chromium are required, not optional: `.ci/run` installs
//! them, and a machine without them fails this test with a message that says
//! what is missing rather than skipping it.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use wasmhost_tests::node::{npm_ci, run_to_end};
use wasmhost_tests::{Host, guest, workspace};

const NOT_SET: &str = "Not set. Go to '/set' to set value.";

/// How long the whole browser run may take (the script gives up after 50 s
/// by itself).
const DEMO_TIMEOUT: Duration = Duration::from_secs(60);

/// The tabs of profile A that open `/` after `/set` (demo.mjs's `TABS`).
const TABS: usize = 4;

/// The Node package that holds the script.
fn browser_dir() -> PathBuf {
    workspace().join("tests/browser")
}

/// The Chromium to drive: `CHROMIUM`, or Debian's.
fn chromium() -> PathBuf {
    let path = std::env::var_os("CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(
        path.is_file(),
        "no Chromium at {}: install Debian's `chromium` package (.ci/run does) \
         or set CHROMIUM to a Chromium executable",
        path.display()
    );
    path
}

#[test]
fn demo_in_a_real_browser_shares_the_session_across_tabs() {
    let chromium = chromium();
    npm_ci(&browser_dir(), &["playwright-core"]);
    let host = Host::start(&guest("guest-app"), &["--tasks", "5"]);

    let mut node = Command::new("node");
    node.current_dir(workspace())
        .arg(browser_dir().join("demo.mjs"))
        .arg(&host.base)
        .env("CHROMIUM", &chromium);
    let (status, stdout, stderr) =
        run_to_end(node, "the browser demo (node demo.mjs)", DEMO_TIMEOUT);
    assert!(
        status.success(),
        "the browser demo failed ({status}); stdout:\n{stdout}\nstderr:\n{stderr}\nhost log:\n{}",
        host.log()
    );

    let line = stdout
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .unwrap_or_else(|| panic!("the demo printed no summary; stderr:\n{stderr}"));
    let summary: Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("the summary is not JSON ({e}): {line}"));
    assert_eq!(summary["ok"], true, "{summary}");

    let message = summary["set"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("foo value set to 'bar'"),
        "/set answered {}",
        summary["set"]
    );

    let tabs = summary["tabs"]
        .as_array()
        .expect("the summary lists the tabs");
    assert_eq!(tabs.len(), TABS, "{summary}");
    let mut threads = BTreeSet::new();
    for tab in tabs {
        assert_eq!(
            tab["foo"], "bar",
            "every tab of the profile sees the session: {tab}"
        );
        let thread = tab["thread"].as_u64().expect("each tab names its task");
        assert!(thread < 5, "task ids are 0..5, got {thread}");
        threads.insert(thread);
    }
    assert!(
        threads.len() >= 2,
        "the tabs were served by tasks {threads:?} only: the session was not read across tasks"
    );

    let cookie = &summary["cookie"];
    assert_eq!(cookie["name"], "connect.sid", "{cookie}");
    assert_eq!(
        cookie["httpOnly"], true,
        "the session cookie is HttpOnly: {cookie}"
    );
    assert_eq!(cookie["path"], "/", "{cookie}");
    let expires_in = cookie["expires_in_s"].as_i64().expect("the cookie expires");
    assert!(
        (870..=901).contains(&expires_in),
        "the cookie expires {expires_in} s ahead, not about 900 s"
    );
    let document_cookie = summary["document_cookie"].as_str().unwrap_or_default();
    assert!(
        !document_cookie.contains("connect.sid"),
        "page scripts see the session cookie: {document_cookie:?}"
    );

    let other = &summary["other_profile"];
    assert_eq!(
        other["foo"], NOT_SET,
        "another profile does not share the session: {other}"
    );
    assert_eq!(
        other["cookies"], 0,
        "another profile holds no cookie: {other}"
    );
}
