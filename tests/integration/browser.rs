//! The README's demo in a real browser: headless Chromium (Debian's
//! `chromium`), driven by `tests/browser/demo.mjs` with playwright-core,
//! against the real binary running the seed app on five tasks.
//!
//! Node, npm and Chromium are required, not optional: `.ci/run` installs
//! them, and a machine without them fails this test with a message that says
//! what is missing rather than skipping it.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use wasmhost_tests::{Host, die_with_test, guest, workspace};

const NOT_SET: &str = "Not set. Go to '/set' to set value.";

/// How long the whole browser run may take (the script gives up after 50 s
/// by itself).
const DEMO_TIMEOUT: Duration = Duration::from_secs(60);

/// How long `npm ci` may take to fetch playwright-core.
const NPM_CI_TIMEOUT: Duration = Duration::from_secs(300);

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

/// A child's output, read as it comes so a full pipe never blocks it.
fn collect(mut from: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = from.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Runs `command` to its end, or stops it once `timeout` has passed (SIGTERM,
/// so playwright closes its browser, then SIGKILL) and fails the test. Its
/// exit status, stdout and stderr.
fn run(mut command: Command, what: &str, timeout: Duration) -> (ExitStatus, String, String) {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    die_with_test(&mut command);
    let program = command.get_program().to_string_lossy().into_owned();
    let mut child = command.spawn().unwrap_or_else(|e| {
        panic!(
            "cannot run `{program}` for {what}: {e}; install Node.js and npm \
             (`apt-get install nodejs npm`; .ci/run does)"
        )
    });
    let stdout = collect(child.stdout.take().expect("stdout is piped"));
    let stderr = collect(child.stderr.take().expect("stderr is piped"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait works") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let Some(status) = status else {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid fits i32"));
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let grace = Instant::now() + Duration::from_secs(5);
        while Instant::now() < grace && matches!(child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "{what} did not finish within {timeout:?}; stdout:\n{}\nstderr:\n{}",
            stdout.join().unwrap_or_default(),
            stderr.join().unwrap_or_default()
        );
    };
    (
        status,
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default(),
    )
}

/// The string at `pointer` in the JSON file at `path`, if there is one.
fn version_in(path: &Path, pointer: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let json: Value = serde_json::from_str(&text).ok()?;
    json.pointer(pointer)?.as_str().map(str::to_owned)
}

/// Installs the package's locked dependencies with `npm ci` once per test
/// run, unless `node_modules` already holds the locked playwright-core.
fn node_modules() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let dir = browser_dir();
        let locked = version_in(
            &dir.join("package-lock.json"),
            "/packages/node_modules~1playwright-core/version",
        )
        .expect("tests/browser/package-lock.json locks playwright-core");
        let installed = version_in(
            &dir.join("node_modules/playwright-core/package.json"),
            "/version",
        );
        if installed.as_deref() == Some(locked.as_str()) {
            return;
        }
        let mut npm = Command::new("npm");
        npm.current_dir(&dir)
            .args(["ci", "--no-audit", "--no-fund"]);
        let (status, stdout, stderr) = run(npm, "`npm ci` in tests/browser", NPM_CI_TIMEOUT);
        assert!(
            status.success(),
            "`npm ci` in tests/browser failed ({status}); stdout:\n{stdout}\nstderr:\n{stderr}"
        );
    });
}

#[test]
fn demo_in_a_real_browser_shares_the_session_across_tabs() {
    let chromium = chromium();
    node_modules();
    let host = Host::start(&guest("guest-app"), &["--tasks", "5"]);

    let mut node = Command::new("node");
    node.current_dir(workspace())
        .arg(browser_dir().join("demo.mjs"))
        .arg(&host.base)
        .env("CHROMIUM", &chromium);
    let (status, stdout, stderr) = run(node, "the browser demo (node demo.mjs)", DEMO_TIMEOUT);
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
