//! Node.js for the tests that need it (the browser demo, the express app
//! sharing sessions): running a child to its end under a deadline, and the
//! locked npm packages of a test's Node package, installed once per run.
//!
//! Node and npm are required, not optional: `.ci/run` installs them, and a
//! machine without them fails those tests with a message that says what is
//! missing rather than skipping them.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::die_with_test;

/// How long `npm ci` may take to fetch a package's locked dependencies.
const NPM_CI_TIMEOUT: Duration = Duration::from_secs(300);

/// The panic message for a `program` that cannot be run.
pub fn missing(program: &str, what: &str, error: &std::io::Error) -> String {
    format!(
        "cannot run `{program}` for {what}: {error}; install Node.js and npm \
         (`apt-get install nodejs npm`; .ci/run does)"
    )
}

/// A child's output, read as it comes so a full pipe never blocks it.
fn collect(mut from: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = from.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Runs `command` to its end, or stops it once `timeout` has passed
/// (SIGTERM, so a browser driver closes its browser, then SIGKILL) and fails
/// the test. Its exit status, stdout and stderr.
pub fn run_to_end(
    mut command: Command,
    what: &str,
    timeout: Duration,
) -> (ExitStatus, String, String) {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    die_with_test(&mut command);
    let program = command.get_program().to_string_lossy().into_owned();
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("{}", missing(&program, what, &e)));
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
fn string_in(path: &Path, pointer: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json.pointer(pointer)?.as_str().map(str::to_owned)
}

/// Installs the locked dependencies of the Node package in `dir` (a
/// directory of the workspace) with `npm ci`, once per test run, unless its
/// `node_modules` already holds the locked versions of `packages`.
pub fn npm_ci(dir: &Path, packages: &[&str]) {
    static INSTALLED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    let mut installed = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
    if installed.iter().any(|done| done == dir) {
        return;
    }
    let name = dir
        .strip_prefix(crate::workspace())
        .unwrap_or(dir)
        .display()
        .to_string();
    let up_to_date = packages.iter().all(|package| {
        let locked = string_in(
            &dir.join("package-lock.json"),
            &format!("/packages/node_modules~1{package}/version"),
        )
        .unwrap_or_else(|| panic!("{name}/package-lock.json locks {package}"));
        let present = string_in(
            &dir.join("node_modules").join(package).join("package.json"),
            "/version",
        );
        present.as_deref() == Some(locked.as_str())
    });
    if !up_to_date {
        let mut npm = Command::new("npm");
        npm.current_dir(dir).args(["ci", "--no-audit", "--no-fund"]);
        let what = format!("`npm ci` in {name}");
        let (status, stdout, stderr) = run_to_end(npm, &what, NPM_CI_TIMEOUT);
        assert!(
            status.success(),
            "{what} failed ({status}); stdout:\n{stdout}\nstderr:\n{stderr}"
        );
    }
    installed.push(dir.to_owned());
}
