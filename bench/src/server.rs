//! Building and running the servers under test, and reading their vital
//! signs from /proc.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::workspace;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    Wasmhost,
    Native,
}

impl ServerKind {
    pub fn name(self) -> &'static str {
        match self {
            ServerKind::Wasmhost => "wasmhost",
            ServerKind::Native => "native",
        }
    }
}

/// The built artifacts.
pub struct Paths {
    pub wasmhost: PathBuf,
    pub native: PathBuf,
    pub seed_app: PathBuf,
    pub test_app: PathBuf,
}

/// The cargo profile everything measured is built with: release with fat
/// LTO (the workspace's `dist` profile), for both servers and the guests, as
/// one would build them to deploy.
const PROFILE: &str = "dist";

/// Builds both servers and the guests (wasm32-wasip2) with [`PROFILE`].
pub fn build() -> Result<Paths> {
    let root = workspace()?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let run = |args: &[&str]| -> Result<()> {
        let status = Command::new(&cargo)
            .current_dir(&root)
            .args(args)
            .status()?;
        if !status.success() {
            bail!("cargo {} failed", args.join(" "));
        }
        Ok(())
    };
    run(&[
        "build",
        "--profile",
        PROFILE,
        "-p",
        "wasmhost",
        "-p",
        "native-seed",
    ])?;
    run(&[
        "build",
        "--profile",
        PROFILE,
        "--target",
        "wasm32-wasip2",
        "-p",
        "guest-app",
        "-p",
        "test-app",
    ])?;
    let target = root.join("target");
    let wasm = target.join("wasm32-wasip2").join(PROFILE);
    Ok(Paths {
        wasmhost: target.join(PROFILE).join("wasmhost"),
        native: target.join(PROFILE).join("native-seed"),
        seed_app: wasm.join("guest_app.wasm"),
        test_app: wasm.join("test_app.wasm"),
    })
}

/// A running server process.
pub struct Server {
    child: Child,
    kind: ServerKind,
    addr: String,
    startup: Duration,
    log: Arc<Mutex<String>>,
    log_reader: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts `kind` serving the seed app on a free port.
    pub fn start(paths: &Paths, kind: ServerKind, flags: &[&str]) -> Result<Server> {
        Server::start_under(&[], paths, kind, flags)
    }

    /// Starts `kind` serving the seed app on a free port, as an argument of
    /// `wrapper` (e.g. `valgrind --tool=callgrind`) if that is not empty.
    pub fn start_under(
        wrapper: &[&str],
        paths: &Paths,
        kind: ServerKind,
        flags: &[&str],
    ) -> Result<Server> {
        let program = match kind {
            ServerKind::Wasmhost => &paths.wasmhost,
            ServerKind::Native => &paths.native,
        };
        let mut command = match wrapper.split_first() {
            Some((tool, args)) => {
                let mut command = Command::new(tool);
                command.args(args).arg(program);
                command
            }
            None => Command::new(program),
        };
        command.args(["--listen", "127.0.0.1:0"]).args(flags);
        if kind == ServerKind::Wasmhost {
            // The write workload stores about a million sessions a run, the
            // default entry limit; the native server's map has no limit.
            command
                .args(["--store-max-entries", "100000000"])
                .args(["--store-max-bytes", "16GiB"])
                .arg(&paths.seed_app)
                .env("WASMHOST_LOG", "info");
        }
        Server::spawn(command, kind)
    }

    /// Starts wasmhost serving `app`.
    pub fn start_app(paths: &Paths, app: &Path, flags: &[&str]) -> Result<Server> {
        let mut command = Command::new(&paths.wasmhost);
        command
            .args(["--listen", "127.0.0.1:0"])
            .args(flags)
            .arg(app)
            .env("WASMHOST_LOG", "info");
        Server::spawn(command, ServerKind::Wasmhost)
    }

    /// The server's process id (valgrind's, when it runs under valgrind).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn spawn(mut command: Command, kind: ServerKind) -> Result<Server> {
        let launched = Instant::now();
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {command:?}"))?;
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().context("stderr is piped")?;
        let sink = Arc::clone(&log);
        let log_reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap_or_else(PoisonError::into_inner);
                log.push_str(&line);
                log.push('\n');
            }
        });
        let stdout = child.stdout.take().context("stdout is piped")?;
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(at) = line.find("listening on http://") {
                        break line[at + "listening on http://".len()..].trim().to_owned();
                    }
                }
                _ => {
                    let _ = child.kill();
                    bail!("{} exited before listening", kind.name());
                }
            }
        };
        let startup = launched.elapsed();
        // Keep draining stdout so the server never blocks on it.
        std::thread::spawn(move || lines.for_each(drop));
        Ok(Server {
            child,
            kind,
            addr,
            startup,
            log,
            log_reader: Some(log_reader),
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// From launch to the `listening on` line.
    pub fn startup(&self) -> Duration {
        self.startup
    }

    /// A valid session cookie from `GET /set`.
    pub fn session_cookie(&self) -> Result<String> {
        let (status, head) = self.get("/set")?;
        if status != 200 {
            bail!("GET /set answered {status}");
        }
        head.lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("set-cookie").then(|| {
                    value
                        .trim()
                        .split(';')
                        .next()
                        .unwrap_or_default()
                        .to_owned()
                })
            })
            .context("no session cookie")
    }

    /// `GET path` on a new connection: status and response head.
    fn get(&self, path: &str) -> Result<(u16, String)> {
        get(&self.addr, path)
    }

    /// User plus system CPU time of the whole process so far.
    pub fn cpu_time(&self) -> Result<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))?;
        // Fields after the command name, which is in parentheses.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .context("odd /proc stat")?
            .1
            .split_whitespace()
            .collect();
        let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
        Ok(Duration::from_secs_f64(
            ticks as f64 / clock_ticks_per_second(),
        ))
    }

    /// Peak resident memory (VmHWM) in KiB.
    pub fn peak_rss_kib(&self) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmHWM")
    }

    /// Calls `/panic` `count` times and reads how long each replacement took
    /// from the host's log.
    pub fn replacement_times(&self, count: usize) -> Result<Vec<Duration>> {
        for _ in 0..count {
            let (status, _) = self.get("/panic")?;
            if status != 500 {
                bail!("/panic answered {status}");
            }
        }
        std::thread::sleep(Duration::from_millis(200));
        let log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(log
            .lines()
            .filter(|line| line.contains("instance replaced"))
            .filter_map(|line| field(line, "took_us"))
            .map(Duration::from_micros)
            .collect())
    }

    /// Requests `path` over and over, one at a time, until stopped.
    pub fn hammer(&self, path: &'static str) -> Hammer {
        let stop = Arc::new(AtomicBool::new(false));
        let addr = self.addr.clone();
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                let _ = get(&addr, path);
            }
        });
        Hammer { stop, thread }
    }

    /// Stops the server (SIGINT) and returns, for wasmhost, the requests
    /// each task served.
    pub fn stop(mut self) -> Result<Option<Vec<u64>>> {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-INT", &pid]).status()?;
        let status = self.child.wait()?;
        if let Some(reader) = self.log_reader.take() {
            let _ = reader.join();
        }
        if !status.success() {
            bail!("{} exited with {status}", self.kind.name());
        }
        if self.kind == ServerKind::Native {
            return Ok(None);
        }
        let log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        let mut served: Vec<(u64, u64)> = log
            .lines()
            .filter(|line| line.contains("task stopped"))
            .filter_map(|line| Some((field(line, "task")?, field(line, "served")?)))
            .collect();
        served.sort_unstable();
        Ok(Some(served.into_iter().map(|(_, n)| n).collect()))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A thread requesting one path in a loop.
pub struct Hammer {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Hammer {
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

/// `GET path` with `Connection: close`: status and the response head.
fn get(addr: &str, path: &str) -> Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let response = String::from_utf8_lossy(&response);
    let head = response
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .to_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no status line")?;
    Ok((status, head))
}

/// The number after `name=` in a log line.
fn field(line: &str, name: &str) -> Option<u64> {
    let start = line.find(&format!("{name}="))? + name.len() + 1;
    let digits: String = line[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}
