//! Samples, medians and the results table.

use std::collections::BTreeMap;

/// One measured run of one server on one workload.
#[derive(Debug, Clone)]
pub struct Sample {
    pub server: &'static str,
    pub workload: &'static str,
    pub requests_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: u64,
    pub cpu_us_per_request: f64,
    pub peak_rss_kib: u64,
    /// Requests served per task (wasmhost only), e.g. "52/48" in percent.
    pub spread: Option<Vec<u64>>,
}

impl Sample {
    pub fn summary(&self) -> String {
        format!(
            "{:9} {:5} {:>9.0} req/s  p50 {:.3} ms  p99 {:.3} ms  errors {}  cpu {:.2} µs/req  rss {:.1} MiB  spread {}",
            self.server,
            self.workload,
            self.requests_per_sec,
            self.p50_ms,
            self.p99_ms,
            self.errors,
            self.cpu_us_per_request,
            self.peak_rss_kib as f64 / 1024.0,
            spread_text(self.spread.as_deref()),
        )
    }
}

/// Shares of requests per task in percent, e.g. `55/45`.
pub fn spread_text(spread: Option<&[u64]>) -> String {
    match spread {
        Some(counts) if counts.iter().sum::<u64>() > 0 => {
            let total: u64 = counts.iter().sum();
            counts
                .iter()
                .map(|c| format!("{:.0}", *c as f64 * 100.0 / total as f64))
                .collect::<Vec<_>>()
                .join("/")
        }
        _ => "-".to_owned(),
    }
}

pub fn median(values: &mut [f64]) -> f64 {
    percentile(values, 0.5)
}

/// The value at `fraction` of the sorted values (nearest rank).
pub fn percentile(values: &mut [f64], fraction: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((values.len() as f64 - 1.0) * fraction).round() as usize;
    values[rank.min(values.len() - 1)]
}

/// Medians per workload and server, and wasmhost/native ratios.
pub fn print_table(samples: &[Sample], workloads: &[&str]) {
    println!(
        "| workload | server | req/s | p50 ms | p99 ms | errors | CPU µs/req | peak RSS MiB | task spread % (per round) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut rates: BTreeMap<(&str, &str), (f64, f64, f64)> = BTreeMap::new();
    for &workload in workloads {
        for server in ["wasmhost", "native"] {
            let runs: Vec<&Sample> = samples
                .iter()
                .filter(|s| s.workload == workload && s.server == server)
                .collect();
            let pick =
                |f: fn(&Sample) -> f64| median(&mut runs.iter().map(|s| f(s)).collect::<Vec<_>>());
            let rate = pick(|s| s.requests_per_sec);
            let p99 = pick(|s| s.p99_ms);
            let cpu = pick(|s| s.cpu_us_per_request);
            rates.insert((workload, server), (rate, p99, cpu));
            let spreads = runs
                .iter()
                .map(|s| spread_text(s.spread.as_deref()))
                .collect::<Vec<_>>()
                .join(", ");
            println!(
                "| {workload} | {server} | {rate:.0} | {:.3} | {p99:.3} | {} | {:.2} | {:.1} | {spreads} |",
                pick(|s| s.p50_ms),
                runs.iter().map(|s| s.errors).sum::<u64>(),
                cpu,
                pick(|s| s.peak_rss_kib as f64) / 1024.0,
            );
        }
    }
    println!(
        "\n| workload | wasmhost/native req/s | CPU µs/req wasmhost / native | wasmhost/native p99 |"
    );
    println!("|---|---|---|---|");
    for &workload in workloads {
        let (w_rate, w_p99, w_cpu) = rates[&(workload, "wasmhost")];
        let (n_rate, n_p99, n_cpu) = rates[&(workload, "native")];
        println!(
            "| {workload} | {:.2} | {w_cpu:.2} / {n_cpu:.2} | {:.2} |",
            w_rate / n_rate,
            w_p99 / n_p99
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_percentiles() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(percentile(&mut [1.0, 2.0, 3.0, 4.0, 5.0], 0.99), 5.0);
        assert!(median(&mut []).is_nan());
    }

    #[test]
    fn spreads() {
        assert_eq!(spread_text(Some(&[60, 40])), "60/40");
        assert_eq!(spread_text(None), "-");
    }
}
