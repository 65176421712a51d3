//! The benchmark harness: wasmhost beside a native hyper server, in one run.
//!
//! `cargo run --release -p wasmhost-bench` builds both servers and the seed
//! guest, then for each round and workload starts each server fresh (in
//! alternating order, so drift of the machine hits both alike), warms it up,
//! drives it with `wrk` on loopback and records requests/s, latency
//! percentiles, errors, CPU time per request, peak RSS and how the
//! connections spread over tasks. It prints medians and wasmhost/native
//! ratios as markdown tables: first per core (each server pinned to one CPU
//! with one thread, wrk pinned to the others: the honest ratio, since the
//! load generator's and the kernel's work, equal for both, is not mixed in),
//! then unpinned on all CPUs. Then the start-up, replacement, `--threads`
//! sweep, burst and stall measurements. BENCHMARKS.md records its output.

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
    /// Skip the per-core (pinned) table and run only the unpinned one.
    #[arg(long)]
    no_pin: bool,
    /// Instead of timing, count the instructions each server executes per
    /// request with callgrind (needs valgrind): exact and repeatable.
    #[arg(long, conflicts_with_all = ["quick", "only_extras"])]
    instructions: bool,
    /// With --instructions: keep each server's callgrind dump in DIR (as
    /// `<server>-<workload>.callgrind.1`, for callgrind_annotate) and write
    /// its request count beside it (`.requests`).
    #[arg(long, value_name = "DIR", requires = "instructions")]
    keep_dumps: Option<std::path::PathBuf>,
    /// With --instructions: count only wasmhost (skip the native server).
    #[arg(long, requires = "instructions")]
    wasmhost_only: bool,
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

    let cores = cores();
    let mut placements = Vec::new();
    if cores >= 2 && !args.no_pin {
        placements.push(Placement::per_core(cores));
    }
    placements.push(Placement::unpinned(args.tasks));
    for placement in &placements {
        println!(
            "# wasmhost vs native, {}: wrk -c{} -d{:?}, {} rounds (medians)\n",
            placement.title, args.connections, args.duration, args.rounds
        );
        let samples = timed_rounds(&paths, &args, placement)?;
        print_table(
            &samples,
            &args.workloads.iter().map(|w| w.name()).collect::<Vec<_>>(),
        );
        println!();
    }

    if !args.quick {
        extras(&paths, &args)?;
    }
    Ok(())
}

/// Every round of every workload on both servers, placed as `placement` says.
fn timed_rounds(paths: &server::Paths, args: &Args, placement: &Placement) -> Result<Vec<Sample>> {
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
                let sample = run_one(
                    paths,
                    kind,
                    workload,
                    args.connections,
                    args.duration,
                    placement,
                )
                .with_context(|| {
                    format!("{} {} round {}", kind.name(), workload.name(), round + 1)
                })?;
                eprintln!("{}", sample.summary());
                samples.push(sample);
            }
        }
    }
    Ok(samples)
}

/// The CPUs this machine has.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Where the servers and wrk run, and with how many threads.
#[derive(Debug, Clone)]
struct Placement {
    title: String,
    /// Server worker threads; wasmhost gets as many tasks as `tasks`.
    threads: usize,
    tasks: usize,
    /// `taskset -c` lists; none: unpinned.
    server_cpus: Option<String>,
    wrk_cpus: Option<String>,
    /// wrk's own threads.
    wrk_threads: usize,
}

impl Placement {
    /// Each server on CPU 0 with one thread (and one task), wrk on the rest.
    fn per_core(cores: usize) -> Placement {
        Placement::pinned(1, cores)
    }

    /// Servers with `threads` threads on CPUs `0..threads`, wrk on the rest.
    fn pinned(threads: usize, cores: usize) -> Placement {
        let server = cpu_list(0, threads);
        let wrk = cpu_list(threads, cores - threads);
        Placement {
            title: format!(
                "pinned: each server on CPU {server} ({threads} thread(s), {threads} task(s)), wrk on CPU {wrk}"
            ),
            threads,
            tasks: threads,
            server_cpus: Some(server),
            wrk_threads: (cores - threads).clamp(1, 8),
            wrk_cpus: Some(wrk),
        }
    }

    /// Both servers with `threads` threads (and tasks), wrk beside them, all
    /// on every CPU.
    fn unpinned(threads: usize) -> Placement {
        Placement {
            title: format!("unpinned: {threads} thread(s) and task(s), wrk sharing the CPUs"),
            threads,
            tasks: threads,
            server_cpus: None,
            wrk_cpus: None,
            wrk_threads: 1,
        }
    }

    fn flags(&self, kind: ServerKind) -> Vec<String> {
        let threads = self.threads.to_string();
        match kind {
            ServerKind::Wasmhost => vec![
                "--threads".into(),
                threads,
                "--tasks".into(),
                self.tasks.to_string(),
            ],
            ServerKind::Native => vec!["--threads".into(), threads],
        }
    }

    fn wrapper(&self) -> Vec<String> {
        match &self.server_cpus {
            Some(cpus) => vec!["taskset".into(), "-c".into(), cpus.clone()],
            None => Vec::new(),
        }
    }

    fn load(&self, connections: usize) -> wrk::Load<'_> {
        wrk::Load {
            connections,
            threads: self.wrk_threads,
            cpus: self.wrk_cpus.as_deref(),
        }
    }

    /// Starts `kind` placed as this says.
    fn start(&self, paths: &server::Paths, kind: ServerKind) -> Result<Server> {
        let wrapper = self.wrapper();
        let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
        let flags = self.flags(kind);
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        Server::start_under(&wrapper, paths, kind, &flags)
    }
}

/// `first`..`first + count - 1` as a `taskset` list.
fn cpu_list(first: usize, count: usize) -> String {
    if count <= 1 {
        first.to_string()
    } else {
        format!("{first}-{}", first + count - 1)
    }
}

/// One server, one workload: start fresh, warm up, measure, stop.
fn run_one(
    paths: &server::Paths,
    kind: ServerKind,
    workload: Workload,
    connections: usize,
    duration: Duration,
    placement: &Placement,
) -> Result<Sample> {
    let server = placement.start(paths, kind)?;
    let cookie = match workload {
        Workload::Read => Some(server.session_cookie()?),
        _ => None,
    };
    let url = server.url(workload.path());
    let load = placement.load(connections);
    wrk::run_with(&url, &load, Duration::from_secs(1), cookie.as_deref())?;
    let cpu_before = server.cpu_time()?;
    let result = wrk::run_with(&url, &load, duration, cookie.as_deref())?;
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
    let kinds = if args.wasmhost_only {
        &[ServerKind::Wasmhost][..]
    } else {
        &[ServerKind::Wasmhost, ServerKind::Native][..]
    };
    for &workload in &args.workloads {
        let mut counts = Vec::with_capacity(kinds.len());
        for &kind in kinds {
            let count = instructions::per_request(
                paths,
                kind,
                workload,
                args.tasks,
                args.duration,
                args.keep_dumps.as_deref(),
            )
            .with_context(|| format!("{} {}", kind.name(), workload.name()))?;
            eprintln!(
                "{} {}: {count:.0} instructions per request",
                kind.name(),
                workload.name(),
            );
            counts.push(count);
        }
        match counts[..] {
            [wasmhost, native] => println!(
                "| {} | {wasmhost:.0} | {native:.0} | {:.2} |",
                workload.name(),
                wasmhost / native
            ),
            [wasmhost] => println!("| {} | {wasmhost:.0} | – | – |", workload.name()),
            _ => unreachable!("one or two servers are counted"),
        }
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

    threads_sweep(paths, args)?;
    burst(paths, args)?;

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

/// Both servers at 1, 2, 4 and 8 threads (as many as the machine has):
/// throughput and CPU per request at each, pinned where wrk still has CPUs
/// of its own, else all unpinned.
fn threads_sweep(paths: &server::Paths, args: &Args) -> Result<()> {
    let cores = cores();
    let counts: Vec<usize> = [1, 2, 4, 8].into_iter().filter(|&t| t <= cores).collect();
    let most = counts.iter().copied().max().unwrap_or(1);
    let pin = cores > most;
    println!(
        "\n## --threads sweep ({}), one run each\n",
        if pin {
            "servers pinned to CPUs 0..threads, wrk on the rest"
        } else {
            "unpinned: this machine has no CPU left for wrk at the most threads"
        }
    );
    println!(
        "| threads | workload | wasmhost req/s | native req/s | ratio | wasmhost CPU µs/req | native CPU µs/req |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut cpu: Vec<(usize, &str, f64, f64)> = Vec::new();
    for &threads in &counts {
        let placement = if pin {
            Placement::pinned(threads, cores)
        } else {
            Placement::unpinned(threads)
        };
        for &workload in &args.workloads {
            let [w, n] = [ServerKind::Wasmhost, ServerKind::Native].map(|kind| {
                run_one(
                    paths,
                    kind,
                    workload,
                    args.connections,
                    args.duration,
                    &placement,
                )
            });
            let (w, n) = (w?, n?);
            println!(
                "| {threads} | {} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} |",
                workload.name(),
                w.requests_per_sec,
                n.requests_per_sec,
                w.requests_per_sec / n.requests_per_sec,
                w.cpu_us_per_request,
                n.cpu_us_per_request
            );
            cpu.push((
                threads,
                workload.name(),
                w.cpu_us_per_request,
                n.cpu_us_per_request,
            ));
        }
    }
    // How CPU per request grows from one thread to the most.
    for &workload in &args.workloads {
        let at = |threads: usize| {
            cpu.iter()
                .find(|(t, name, _, _)| *t == threads && *name == workload.name())
                .map(|&(_, _, w, n)| (w, n))
        };
        if let (Some((w1, n1)), Some((wm, nm))) = (at(1), at(most))
            && most > 1
        {
            println!(
                "- {}: CPU per request from 1 to {most} threads: wasmhost {:+.0} %, native {:+.0} %",
                workload.name(),
                (wm / w1 - 1.0) * 100.0,
                (nm / n1 - 1.0) * 100.0
            );
        }
    }
    Ok(())
}

/// A burst of 2,000 connections on `--tasks 2` (plain): p99 against native's,
/// each run `--rounds` times in alternating order, medians reported (a
/// burst's tail moves more from run to run than its throughput).
fn burst(paths: &server::Paths, args: &Args) -> Result<()> {
    const CONNECTIONS: usize = 2000;
    println!(
        "\n## Burst: wrk -t2 -c{CONNECTIONS}, plain, 2 threads and tasks, unpinned, medians of {} runs\n",
        args.rounds
    );
    println!("| server | req/s | p50 ms | p99 ms | max ms | errors |");
    println!("|---|---|---|---|---|---|");
    let placement = Placement {
        wrk_threads: 2,
        ..Placement::unpinned(2)
    };
    let kinds = [ServerKind::Wasmhost, ServerKind::Native];
    let mut runs: [Vec<wrk::WrkResult>; 2] = [Vec::new(), Vec::new()];
    for round in 0..args.rounds {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            let server = placement.start(paths, kinds[i])?;
            let url = server.url("/");
            let load = placement.load(CONNECTIONS);
            wrk::run_with(&url, &load, Duration::from_secs(1), None)?;
            let result = wrk::run_with(&url, &load, args.duration, None)?;
            server.stop()?;
            runs[i].push(result);
        }
    }
    let mut p99 = [0.0; 2];
    for (i, kind) in kinds.into_iter().enumerate() {
        let of = |field: fn(&wrk::WrkResult) -> f64| {
            median(&mut runs[i].iter().map(field).collect::<Vec<f64>>())
        };
        p99[i] = of(|r| r.p99_ms);
        println!(
            "| {} | {:.0} | {:.2} | {:.2} | {:.2} | {} |",
            kind.name(),
            of(|r| r.requests_per_sec),
            of(|r| r.p50_ms),
            p99[i],
            of(|r| r.max_ms),
            runs[i].iter().map(|r| r.errors).sum::<u64>()
        );
    }
    println!("- p99 wasmhost/native: {:.2}", p99[0] / p99[1]);
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
