//! The benchmark harness: wasmhost beside a native hyper server, in one run.
//!
//! `cargo run --release -p wasmhost-bench` builds both servers and the seed
//! guest, then for each round and workload starts each server fresh (in
//! alternating order, so drift of the machine hits both alike), warms it up,
//! drives it with `wrk` on loopback and records requests/s, latency
//! percentiles, errors, CPU time per request, peak RSS and how the
//! connections spread over tasks. It prints medians and wasmhost/native
//! ratios as a markdown table, then the start-up, replacement, scaling and
//! stall measurements. BENCHMARKS.md records its output.

mod instructions;
mod measure;
mod server;
mod wrk;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;

use crate::measure::{Sample, median, print_table};
use crate::server::{Server, ServerKind};

/// `cargo run --release -p wasmhost-bench -- [OPTIONS]`
#[derive(Debug, Parser)]
#[command(about = "Benchmark wasmhost against a native hyper server on the seed app")]
struct Args {
    /// Rounds of every workload on both servers; medians are reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Length of each measured run.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// wrk connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// wasmhost tasks and native worker threads.
    #[arg(long, default_value_t = 2)]
    tasks: usize,
    /// Workloads to run: plain, read, write.
    #[arg(long, value_delimiter = ',', default_value = "plain,read,write")]
    workloads: Vec<Workload>,
    /// Skip the extra measurements (start-up, replacement, RSS at 5 tasks,
    /// scaling, stall).
    #[arg(long, conflicts_with = "only_extras")]
    quick: bool,
    /// Run only the extra measurements.
    #[arg(long)]
    only_extras: bool,
    /// Instead of timing, count the instructions each server executes per
    /// request with callgrind (needs valgrind): exact and repeatable.
    #[arg(long, conflicts_with_all = ["quick", "only_extras"])]
    instructions: bool,
}

/// What the load generator asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Workload {
    /// `GET /` without a cookie.
    Plain,
    /// `GET /` with a valid session cookie.
    Read,
    /// `GET /set` without a cookie: a new session stored per request.
    Write,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::Plain => "plain",
            Workload::Read => "read",
            Workload::Write => "write",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Workload::Plain | Workload::Read => "/",
            Workload::Write => "/set",
        }
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    require("wrk")?;
    if args.instructions {
        require("valgrind")?;
    }
    let paths = server::build()?;
    if args.only_extras {
        return extras(&paths, &args);
    }
    if args.instructions {
        return instruction_counts(&paths, &args);
    }

    println!(
        "# wasmhost vs native: {} tasks/threads, wrk -t1 -c{} -d{:?}, {} rounds (medians)\n",
        args.tasks, args.connections, args.duration, args.rounds
    );
    let mut samples: Vec<Sample> = Vec::new();
    for round in 0..args.rounds {
        for &workload in &args.workloads {
            // A B A B: which server goes first alternates every round.
            let order = if round % 2 == 0 {
                [ServerKind::Wasmhost, ServerKind::Native]
            } else {
                [ServerKind::Native, ServerKind::Wasmhost]
            };
            for kind in order {
                let sample = run_one(&paths, kind, workload, &args).with_context(|| {
                    format!("{} {} round {}", kind.name(), workload.name(), round + 1)
                })?;
                eprintln!("{}", sample.summary());
                samples.push(sample);
            }
        }
    }
    print_table(
        &samples,
        &args.workloads.iter().map(|w| w.name()).collect::<Vec<_>>(),
    );

    if !args.quick {
        extras(&paths, &args)?;
    }
    Ok(())
}

/// One server, one workload: start fresh, warm up, measure, stop.
fn run_one(
    paths: &server::Paths,
    kind: ServerKind,
    workload: Workload,
    args: &Args,
) -> Result<Sample> {
    let server = Server::start(paths, kind, &["--tasks", &args.tasks.to_string()])?;
    let cookie = match workload {
        Workload::Read => Some(server.session_cookie()?),
        _ => None,
    };
    let url = server.url(workload.path());
    wrk::run(
        &url,
        args.connections,
        Duration::from_secs(1),
        cookie.as_deref(),
    )?;
    let cpu_before = server.cpu_time()?;
    let result = wrk::run(&url, args.connections, args.duration, cookie.as_deref())?;
    let cpu = server.cpu_time()? - cpu_before;
    let rss = server.peak_rss_kib()?;
    let spread = server.stop()?;
    Ok(Sample {
        server: kind.name(),
        workload: workload.name(),
        requests_per_sec: result.requests_per_sec,
        p50_ms: result.p50_ms,
        p99_ms: result.p99_ms,
        errors: result.errors,
        cpu_us_per_request: cpu.as_secs_f64() * 1e6 / result.requests.max(1) as f64,
        peak_rss_kib: rss,
        spread,
    })
}

/// The instructions-per-request table (see `instructions`).
fn instruction_counts(paths: &server::Paths, args: &Args) -> Result<()> {
    println!(
        "# Instructions per request (callgrind), {} tasks/threads, wrk -t1 -c4 -d{:?} counted\n",
        args.tasks, args.duration
    );
    println!("| workload | wasmhost | native | wasmhost/native |");
    println!("|---|---|---|---|");
    for &workload in &args.workloads {
        let mut counts = [0.0; 2];
        for (count, kind) in counts
            .iter_mut()
            .zip([ServerKind::Wasmhost, ServerKind::Native])
        {
            *count = instructions::per_request(paths, kind, workload, args.tasks, args.duration)
                .with_context(|| format!("{} {}", kind.name(), workload.name()))?;
            eprintln!(
                "{} {}: {:.0} instructions per request",
                kind.name(),
                workload.name(),
                *count
            );
        }
        println!(
            "| {} | {:.0} | {:.0} | {:.2} |",
            workload.name(),
            counts[0],
            counts[1],
            counts[0] / counts[1]
        );
    }
    Ok(())
}

/// Start-up, replacement, RSS with 5 tasks, scaling with tasks, and the stall test.
fn extras(paths: &server::Paths, args: &Args) -> Result<()> {
    println!("\n## Start-up (launch to `listening on`), median of 5\n");
    for (label, extra) in [
        ("uncached (--no-cache)", vec!["--no-cache"]),
        ("cached (wasmtime cache, warm)", vec![]),
    ] {
        let mut times = Vec::new();
        for _ in 0..5 {
            let mut flags = vec!["--tasks", "2"];
            flags.extend(extra.iter().copied());
            let server = Server::start(paths, ServerKind::Wasmhost, &flags)?;
            times.push(server.startup().as_secs_f64() * 1e3);
            server.stop()?;
        }
        println!("- {label}: {:.1} ms", median(&mut times));
    }
    // Precompiled by `wasmhost compile`: the file is only mapped, never compiled.
    let cwasm = paths.seed_app.with_extension("cwasm");
    let compiled = std::process::Command::new(&paths.wasmhost)
        .arg("compile")
        .arg(&paths.seed_app)
        .arg("-o")
        .arg(&cwasm)
        .output()?;
    anyhow::ensure!(
        compiled.status.success(),
        "wasmhost compile failed: {}",
        String::from_utf8_lossy(&compiled.stderr)
    );
    let mut times = Vec::new();
    for _ in 0..5 {
        let server = Server::start_app(paths, &cwasm, &["--tasks", "2", "--allow-precompiled"])?;
        times.push(server.startup().as_secs_f64() * 1e3);
        server.stop()?;
    }
    println!(
        "- precompiled (wasmhost compile, .cwasm): {:.1} ms",
        median(&mut times)
    );

    println!("\n## Instance replacement after a trap (host log, 200 traps)\n");
    let server = Server::start_app(paths, &paths.test_app, &["--tasks", "1"])?;
    let replaced = server.replacement_times(200)?;
    let mut micros: Vec<f64> = replaced.iter().map(|d| d.as_secs_f64() * 1e6).collect();
    server.stop()?;
    let p99 = measure::percentile(&mut micros, 0.99);
    println!("- median {:.1} µs, p99 {p99:.1} µs", median(&mut micros));

    println!("\n## Peak RSS, --tasks 5 under the read workload\n");
    let server = Server::start(paths, ServerKind::Wasmhost, &["--tasks", "5"])?;
    let cookie = server.session_cookie()?;
    wrk::run(
        &server.url("/"),
        args.connections,
        args.duration,
        Some(&cookie),
    )?;
    println!(
        "- wasmhost --tasks 5: {:.1} MiB",
        server.peak_rss_kib()? as f64 / 1024.0
    );
    server.stop()?;

    println!(
        "\n## Scaling: plain workload by --tasks (wasmhost) / threads (native), one run each\n"
    );
    println!("| tasks | wasmhost req/s | native req/s | ratio |");
    println!("|---|---|---|---|");
    for tasks in [1, 2, 4, 8] {
        let mut rates = [0.0; 2];
        for (i, kind) in [ServerKind::Wasmhost, ServerKind::Native]
            .into_iter()
            .enumerate()
        {
            let server = Server::start(paths, kind, &["--tasks", &tasks.to_string()])?;
            let url = server.url("/");
            wrk::run(&url, args.connections, Duration::from_secs(1), None)?;
            rates[i] = wrk::run(&url, args.connections, args.duration, None)?.requests_per_sec;
            server.stop()?;
        }
        println!(
            "| {tasks} | {:.0} | {:.0} | {:.2} |",
            rates[0],
            rates[1],
            rates[0] / rates[1]
        );
    }

    println!(
        "\n## Stall: one client calling a 50 ms handler while wrk runs GET /task (test-app)\n"
    );
    println!("| tasks | p50 ms | p99 ms | max ms | req/s |");
    println!("|---|---|---|---|---|");
    for tasks in [2, 5] {
        let server = Server::start_app(paths, &paths.test_app, &["--tasks", &tasks.to_string()])?;
        let slow = server.hammer("/spin?ms=50");
        let result = wrk::run(&server.url("/task"), args.connections, args.duration, None)?;
        slow.stop();
        server.stop()?;
        println!(
            "| {tasks} | {:.2} | {:.2} | {:.2} | {:.0} |",
            result.p50_ms, result.p99_ms, result.max_ms, result.requests_per_sec
        );
    }
    Ok(())
}

/// Fails with how to install `program` (a Debian package of the same name)
/// unless it can be run.
fn require(program: &str) -> Result<()> {
    match std::process::Command::new(program)
        .arg("--version")
        .output()
    {
        Ok(_) => Ok(()),
        Err(_) => bail!("{program} is not installed: `apt-get install -y {program}` installs it"),
    }
}

/// Where the workspace is (the bench runs from it).
fn workspace() -> Result<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    match dir.parent() {
        Some(root) => Ok(root.to_owned()),
        None => bail!("bench/ has no parent"),
    }
}
