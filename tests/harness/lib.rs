//! The integration-test harness: real guests, the real binary, real sockets.
//!
//! - [`guest`] builds the guest components for `wasm32-wasip2` once per test
//!   run (one `cargo build` for all of them, whichever test asks first).
//! - [`Host::start`] runs the `wasmhost` binary on a free port, waits for its
//!   `listening on` line and collects its log, and stops it when dropped.
//! - [`http`] gives a client that opens a new connection for every request,
//!   so consecutive requests can land on different tasks.
//! - [`RedisServer`] runs a test's own `redis-server` on a free port.
//! - [`node`] runs Node.js children and installs their locked npm packages.
//! - [`python::python_app`] builds the Python `wasi:http` app with
//!   componentize-py, locked, once per run.

mod in_process;
mod listening;
pub mod node;
pub mod python;
mod redis_server;

pub use in_process::InProcess;
pub use listening::Listening;
pub use redis_server::{RedisServer, free_port};

use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long a host may take to print its `listening on` line.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The workspace root (this package's directory).
pub fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"))
}

/// The guest components the tests use, by package name.
const GUESTS: [&str; 6] = [
    "guest-app",
    "counter-app",
    "test-app",
    "http-app",
    "no-handler",
    "unknown-import",
];

/// The path of guest `package`'s component, building all guests on first use.
pub fn guest(package: &str) -> PathBuf {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    assert!(GUESTS.contains(&package), "unknown guest {package}");
    let built = BUILT.get_or_init(|| {
        // A fresh machine may lack the guest target; adding it is a no-op
        // when it is there (rust-toolchain.toml names it, but rustup does not
        // install targets of an already installed toolchain by itself).
        match Command::new("rustup")
            .args(["target", "add", "wasm32-wasip2"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
        {
            Ok(status) if status.success() => {}
            _ => eprintln!("note: `rustup target add wasm32-wasip2` failed; building anyway"),
        }
        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .current_dir(workspace())
            .args(["build", "--release", "--target", "wasm32-wasip2"]);
        for guest in GUESTS {
            cargo.args(["-p", guest]);
        }
        match cargo.status() {
            Ok(status) if status.success() => Ok(()),
            Ok(status) => Err(format!("building the guests failed: {status}")),
            Err(e) => Err(format!("cannot run cargo: {e}")),
        }
    });
    if let Err(why) = built {
        panic!("{why}");
    }
    target_dir()
        .join("wasm32-wasip2/release")
        .join(format!("{}.wasm", package.replace('-', "_")))
}

/// The `wasmhost` binary built by this same `cargo test` run (the README's
/// test command, `cargo test --workspace`, builds it), or built now if the
/// run did not include it. `WASMHOST_BIN` names another build to test (one
/// built with `panic = "abort"`, say).
pub fn wasmhost_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("WASMHOST_BIN") {
            return PathBuf::from(bin);
        }
        // Test binaries live in target/<profile>/deps; the binary one up.
        let exe = std::env::current_exe().expect("the test binary knows its path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("tests run from target/<profile>/deps");
        let bin = profile_dir.join("wasmhost");
        if !bin.exists() {
            let release = profile_dir.ends_with("release");
            let mut cargo = Command::new(env!("CARGO"));
            cargo
                .current_dir(workspace())
                .args(["build", "-p", "wasmhost", "--bin", "wasmhost"]);
            if release {
                cargo.arg("--release");
            }
            let status = cargo.status().expect("cannot run cargo");
            assert!(status.success(), "building wasmhost failed");
        }
        bin
    })
    .clone()
}

/// A running server, in process or not: where to send requests.
pub trait Served {
    /// The URL of `path` on this server.
    fn url(&self, path: &str) -> String;
}

impl Served for Host {
    fn url(&self, path: &str) -> String {
        Host::url(self, path)
    }
}

impl Served for InProcess {
    fn url(&self, path: &str) -> String {
        InProcess::url(self, path)
    }
}

/// A running `wasmhost` process.
pub struct Host {
    server: Listening,
    /// `http://127.0.0.1:PORT`
    pub base: String,
}

impl Host {
    /// Starts `wasmhost` on a free port with `app` and extra `args`, and
    /// waits until it is listening.
    pub fn start(app: &Path, args: &[&str]) -> Host {
        let mut command = Command::new(wasmhost_bin());
        command
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .arg(app)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        die_with_test(&mut command);
        let child = command.spawn().expect("wasmhost starts");
        match Listening::wait(child, START_TIMEOUT) {
            Ok(server) => Host {
                base: server.base.clone(),
                server,
            },
            Err(output) => panic!("wasmhost did not start {output}"),
        }
    }

    /// The URL of `path` on this host.
    pub fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    /// `wasmhost` serving the test app (`tests/fixtures/test-app`) with `args`.
    pub fn test_app(args: &[&str]) -> Host {
        Host::start(&guest("test-app"), args)
    }

    /// `wasmhost` serving the guest `package` on `redis`'s store, with
    /// `args` after `--store`.
    pub fn on_redis(package: &str, redis: &RedisServer, args: &[&str]) -> Host {
        let url = redis.url();
        let mut all = vec!["--store", url.as_str()];
        all.extend_from_slice(args);
        Host::start(&guest(package), &all)
    }

    /// Status and body of `GET path` on a new connection.
    pub fn get(&self, path: &str) -> (u16, String) {
        get_text(&http(), &self.url(path), None)
    }

    /// `GET path` on a new connection with an optional `Cookie` header and
    /// extra `headers`: the whole response.
    pub fn send(
        &self,
        path: &str,
        cookie: Option<&str>,
        headers: &[(&str, &str)],
    ) -> reqwest::blocking::Response {
        let mut request = http().get(self.url(path));
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().expect("the host answers")
    }

    /// Everything the host has logged so far.
    pub fn log(&self) -> String {
        self.server.log()
    }

    /// Waits until the log contains `needle` (the log arrives asynchronously).
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.log().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Fails the test, showing the log, unless the log contains `needle`
    /// within `timeout`.
    pub fn assert_logged(&self, needle: &str, timeout: Duration) {
        assert!(
            self.wait_for_log(needle, timeout),
            "{needle:?} not in the log within {timeout:?}: {}",
            self.log()
        );
    }

    /// The host has logged no panic of its own (a guest's panic message is a
    /// guest log line, tagged `guest:`).
    pub fn assert_no_host_panic(&self) {
        let log = self.log();
        let host_panic = log
            .lines()
            .find(|line| line.contains("panicked") && !line.contains(" guest: "));
        assert!(host_panic.is_none(), "{host_panic:?}");
    }

    /// The host's process id.
    pub fn pid(&self) -> u32 {
        self.server.child.id()
    }

    /// Sends `signal` and waits up to `timeout` for the process to exit.
    pub fn stop_with(&mut self, signal: nix::sys::signal::Signal, timeout: Duration) -> ExitStatus {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.pid()).expect("pid fits i32"));
        nix::sys::signal::kill(pid, signal).expect("signal is delivered");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.server.child.try_wait().expect("wait works") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "wasmhost did not exit within {timeout:?} of {signal}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Runs `wasmhost ARGS` (a subcommand such as `new` or `compile`) in `dir`,
/// which must succeed; its output.
pub fn wasmhost_succeeds(dir: &Path, args: &[&std::ffi::OsStr]) -> std::process::Output {
    let output = Command::new(wasmhost_bin())
        .current_dir(dir)
        .args(args)
        .output()
        .expect("wasmhost runs");
    assert!(
        output.status.success(),
        "wasmhost {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Starts `wasmhost` with `app` and `args` and expects it to refuse at
/// start: a non-zero exit, nothing on stdout (no `listening on`), and one
/// line on stderr, which it returns.
pub fn refused_at_start(app: &Path, args: &[&str]) -> String {
    let output = Command::new(wasmhost_bin())
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .arg(app)
        .output()
        .expect("wasmhost runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "refused: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    // Not a host panic's trace (a guest's panic may be quoted in the line).
    assert!(stderr.starts_with("wasmhost: error: "), "{stderr}");
    assert!(output.stdout.is_empty(), "nothing on stdout: {stderr}");
    stderr
}

/// Makes the process `command` starts receive SIGKILL when the thread that
/// started it (the test's) ends: a test that fails while other threads still
/// hold its host leaves no server behind.
pub fn die_with_test(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the child between fork and exec and only
    // makes one system call, which is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                .map_err(std::io::Error::from)
        });
    }
}

/// Starts `wasmhost` like [`Host::start`], with its admin endpoint on a
/// free port of its own; the host and that port.
pub fn start_with_admin(app: &Path, args: &[&str]) -> (Host, u16) {
    let admin = free_port();
    let admin_addr = format!("127.0.0.1:{admin}");
    let mut all = vec!["--admin-listen", admin_addr.as_str()];
    all.extend_from_slice(args);
    (Host::start(app, &all), admin)
}

/// `GET path` on the admin endpoint at `port`: the status and the body.
pub fn admin_get(port: u16, path: &str) -> (u16, String) {
    get_text(&http(), &format!("http://127.0.0.1:{port}{path}"), None)
}

/// The value of the metric line of `text` (Prometheus's format) that starts
/// with `prefix` (name and labels).
pub fn metric(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(prefix))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

/// An HTTP client that opens a new connection for every request.
pub fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .pool_max_idle_per_host(0)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("the HTTP client builds")
}

/// The `connect.sid=...` pair of a response's Set-Cookie, for a Cookie header.
pub fn session_cookie(response: &reqwest::blocking::Response) -> String {
    set_cookie(response).expect("a session cookie is set")
}

/// The `name=value` pair of a response's Set-Cookie, if it sent one.
pub fn set_cookie(response: &reqwest::blocking::Response) -> Option<String> {
    set_cookie_header(response).map(|value| value.split(';').next().unwrap_or_default().to_owned())
}

/// A response's whole Set-Cookie header, if it sent one.
pub fn set_cookie_header(response: &reqwest::blocking::Response) -> Option<String> {
    response
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

/// The session id a `connect.sid=s%3A<id>.<signature>` cookie carries.
pub fn session_id(cookie: &str) -> String {
    let value = cookie.split_once('=').map_or("", |(_, value)| value);
    let signed = percent_encoding::percent_decode_str(value)
        .decode_utf8()
        .expect("the cookie decodes");
    let signed = signed.strip_prefix("s:").expect("a signed cookie");
    signed.rsplit_once('.').expect("id.signature").0.to_owned()
}

/// `GET url` with an optional `Cookie` header: the status and the body.
pub fn get_text(
    client: &reqwest::blocking::Client,
    url: &str,
    cookie: Option<&str>,
) -> (u16, String) {
    let mut request = client.get(url);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().expect("the host answers");
    let status = response.status().as_u16();
    (status, response.text().expect("the body is text"))
}

/// A raw TCP connection to `host`, reads bounded by `read_timeout`.
pub fn connect(host: &Host, read_timeout: Duration) -> TcpStream {
    let stream = TcpStream::connect(host.base.trim_start_matches("http://"))
        .expect("the host accepts a connection");
    stream
        .set_read_timeout(Some(read_timeout))
        .expect("a read timeout can be set");
    stream
}

/// Reads one response with a `content-length` body: its head and body.
pub fn read_response(stream: &mut TcpStream) -> (String, String) {
    let mut bytes = Vec::new();
    let mut byte = [0u8; 1];
    while !bytes.ends_with(b"\r\n\r\n") {
        assert_eq!(
            stream.read(&mut byte).expect("the response arrives"),
            1,
            "closed mid-head: {bytes:?}"
        );
        bytes.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&bytes).into_owned();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length: "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no content-length in {head:?}"));
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).expect("the body arrives");
    (head, String::from_utf8_lossy(&body).into_owned())
}

/// Everything the server sends until it closes the connection (or the read
/// timeout passes), and how long that took.
pub fn read_until_closed(stream: &mut TcpStream) -> (String, Duration) {
    let started = Instant::now();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

/// Resident memory of process `pid`, in bytes.
pub fn rss_bytes(pid: u32) -> usize {
    proc_status_bytes(pid, "VmRSS:")
}

/// The anonymous memory (heap, stacks) resident in process `pid`
/// (RssAnon): what a request can make it allocate, without the pages of its
/// binary and compiled code that the kernel maps in and drops as it likes.
pub fn anon_rss_bytes(pid: u32) -> usize {
    proc_status_bytes(pid, "RssAnon:")
}

/// The lines of process `pid`'s `/proc/PID/status` that say where its
/// memory is (resident, peak, anonymous, file-backed) and how many threads
/// it runs: for a failed memory bound's message.
pub fn memory_status(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .filter(|line| {
            ["VmHWM:", "VmRSS:", "RssAnon:", "RssFile:", "Threads:"]
                .iter()
                .any(|field| line.starts_with(field))
        })
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The most memory process `pid` has had resident at once (VmHWM).
pub fn peak_rss_bytes(pid: u32) -> usize {
    proc_status_bytes(pid, "VmHWM:")
}

fn proc_status_bytes(pid: u32, field: &str) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    let kib: usize = status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/PID/status"));
    kib * 1024
}

/// cookie-signature's signature of `id` under `secret` (base64 of
/// HMAC-SHA256 without padding), computed with ring: an HMAC implementation
/// independent of the SDK's and of the Node app's.
pub fn express_signature(secret: &str, id: &str) -> String {
    use base64::Engine as _;
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    base64::engine::general_purpose::STANDARD_NO_PAD
        .encode(ring::hmac::sign(&key, id.as_bytes()).as_ref())
}
