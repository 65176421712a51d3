//! Running `wrk` and reading its report.

use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// What one `wrk` run measured.
#[derive(Debug, Clone, Copy)]
pub struct WrkResult {
    pub requests: u64,
    pub requests_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Socket errors plus non-2xx/3xx responses.
    pub errors: u64,
}

/// How `wrk` loads a server, and where it runs.
#[derive(Debug, Clone, Copy)]
pub struct Load<'a> {
    pub connections: usize,
    /// wrk's own threads.
    pub threads: usize,
    /// The CPUs wrk is pinned to (`taskset -c` list); none: unpinned.
    pub cpus: Option<&'a str>,
}

/// `wrk -t1 -c<connections> -d<duration> --latency [-H Cookie] url`
pub fn run(
    url: &str,
    connections: usize,
    duration: Duration,
    cookie: Option<&str>,
) -> Result<WrkResult> {
    let load = Load {
        connections,
        threads: 1,
        cpus: None,
    };
    run_with(url, &load, duration, cookie)
}

/// `[taskset -c CPUS] wrk -t<threads> -c<connections> -d<duration> --latency [-H Cookie] url`
pub fn run_with(
    url: &str,
    load: &Load<'_>,
    duration: Duration,
    cookie: Option<&str>,
) -> Result<WrkResult> {
    let mut wrk = match load.cpus {
        Some(cpus) => {
            let mut taskset = Command::new("taskset");
            taskset.args(["-c", cpus, "wrk"]);
            taskset
        }
        None => Command::new("wrk"),
    };
    wrk.args([
        format!("-t{}", load.threads),
        format!("-c{}", load.connections.max(load.threads)),
    ])
    .arg(format!("-d{}s", duration.as_secs().max(1)))
    .arg("--latency");
    if let Some(cookie) = cookie {
        wrk.args(["-H", &format!("Cookie: {cookie}")]);
    }
    let output = wrk.arg(url).output().context("running wrk")?;
    let report = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "wrk failed: {report} {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    parse(&report).with_context(|| format!("reading wrk's report:\n{report}"))
}

fn parse(report: &str) -> Result<WrkResult> {
    let mut result = WrkResult {
        requests: 0,
        requests_per_sec: 0.0,
        p50_ms: f64::NAN,
        p99_ms: f64::NAN,
        max_ms: f64::NAN,
        errors: 0,
    };
    for line in report.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Latency", _avg, _stdev, max, ..] => result.max_ms = millis(max)?,
            ["50%", value] => result.p50_ms = millis(value)?,
            ["99%", value] => result.p99_ms = millis(value)?,
            [requests, "requests", "in", ..] => result.requests = requests.parse()?,
            ["Requests/sec:", rate] => result.requests_per_sec = rate.parse()?,
            ["Non-2xx", "or", "3xx", "responses:", count] => {
                result.errors += count.parse::<u64>()?
            }
            ["Socket", "errors:", ..] => {
                result.errors += line
                    .split(',')
                    .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
                    .sum::<u64>();
            }
            _ => {}
        }
    }
    if result.requests == 0 {
        bail!("no requests completed");
    }
    Ok(result)
}

/// `312.45us`, `1.20ms`, `2.00s` in milliseconds.
fn millis(text: &str) -> Result<f64> {
    let (number, scale) = if let Some(n) = text.strip_suffix("us") {
        (n, 1e-3)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1e3)
    } else {
        bail!("unknown latency `{text}`")
    };
    Ok(number.parse::<f64>()? * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_wrk_report() {
        let report = "Running 10s test @ http://127.0.0.1:1/
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   320.45us  100.23us   5.67ms   90.00%
    Req/Sec    80.00k     2.00k   90.00k    70.00%
  Latency Distribution
     50%  300.00us
     75%  350.00us
     90%  400.00us
     99%    1.20ms
  800000 requests in 10.00s, 120.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:  80000.12
Transfer/sec:     12.00MB
";
        let result = parse(report).unwrap();
        assert_eq!(result.requests, 800_000);
        assert!((result.requests_per_sec - 80000.12).abs() < 1e-6);
        assert!((result.p50_ms - 0.3).abs() < 1e-9);
        assert!((result.p99_ms - 1.2).abs() < 1e-9);
        assert!((result.max_ms - 5.67).abs() < 1e-9);
        assert_eq!(result.errors, 7);
    }
}
