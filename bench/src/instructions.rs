//! Instructions per request, counted by callgrind: the steady measure.
//!
//! Requests per second on a small shared VM move by ±10 % between runs
//! minutes apart, and CPU time per request with them. The number of
//! instructions a server executes for a request does not: callgrind counts
//! them exactly, whatever else the machine is doing. It counts user space
//! only (the kernel's share, about the same for both servers, is left out)
//! and runs the server ~50× slower, so a few thousand requests suffice.
//!
//! Each server runs under `valgrind --tool=callgrind` with counting off
//! while it starts and warms up; counting is switched on for a fixed-length
//! `wrk` run and the counts dumped, so start-up and compilation are not in
//! the figure. One caveat: valgrind hides the CPU's SHA extensions, so
//! HMAC-SHA256 (one per read, one per write, in both servers) runs the
//! portable code, about 14k instructions each, which narrows the read and
//! write ratios compared with real hardware.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::server::{Paths, Server, ServerKind};
use crate::{Workload, wrk};

/// Connections while counting: few, since the server runs slowly.
const CONNECTIONS: usize = 4;

/// Instructions per request of `kind` on `workload`.
pub fn per_request(
    paths: &Paths,
    kind: ServerKind,
    workload: Workload,
    tasks: usize,
    duration: Duration,
    keep: Option<&Path>,
) -> Result<f64> {
    let dir = match keep {
        Some(dir) => dir.to_owned(),
        None => std::env::temp_dir().join(format!("wasmhost-bench-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir)?;
    let out = dir.join(format!("{}-{}.callgrind", kind.name(), workload.name()));
    let out_arg = format!("--callgrind-out-file={}", out.display());
    let wrapper = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        &out_arg,
    ];
    let server = Server::start_under(&wrapper, paths, kind, &["--tasks", &tasks.to_string()])?;
    let cookie = match workload {
        Workload::Read => Some(server.session_cookie()?),
        _ => None,
    };
    let url = server.url(workload.path());
    wrk::run(&url, CONNECTIONS, Duration::from_secs(3), cookie.as_deref())?;
    callgrind_control(&["-i", "on"], server.pid())?;
    let measured = wrk::run(&url, CONNECTIONS, duration, cookie.as_deref())?;
    callgrind_control(&["-d"], server.pid())?;
    server.stop()?;
    // The dump asked for is the first numbered file; the final one, written
    // at exit, holds what came after it.
    let dump = Path::new(&format!("{}.1", out.display())).to_owned();
    let instructions = totals(&dump)?;
    if keep.is_some() {
        std::fs::write(
            format!("{}.requests", out.display()),
            measured.requests.to_string(),
        )?;
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(instructions as f64 / measured.requests.max(1) as f64)
}

fn callgrind_control(args: &[&str], pid: u32) -> Result<()> {
    let status = Command::new("callgrind_control")
        .args(args)
        .arg(pid.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .context("running callgrind_control")?;
    if !status.success() {
        bail!("callgrind_control {args:?} failed");
    }
    Ok(())
}

/// The `totals:` line of a callgrind dump.
fn totals(dump: &Path) -> Result<u64> {
    let text =
        std::fs::read_to_string(dump).with_context(|| format!("reading {}", dump.display()))?;
    text.lines()
        .find_map(|line| line.strip_prefix("totals:"))
        .and_then(|count| count.trim().parse().ok())
        .with_context(|| format!("no totals in {}", dump.display()))
}
