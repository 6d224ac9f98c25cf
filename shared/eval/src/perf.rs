//! Latency and memory figures for benchmarks and evaluation reports (measured, never asserted).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Percentiles of per-message latencies, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    pub n: usize,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    pub mean_us: f64,
}

impl LatencySummary {
    /// Summarises `samples` (nearest-rank percentiles); all zeros when empty.
    pub fn from_durations(samples: &[Duration]) -> LatencySummary {
        let mut micros: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e6).collect();
        micros.sort_by(f64::total_cmp);
        let n = micros.len();
        let mean_us = if n == 0 {
            0.0
        } else {
            micros.iter().sum::<f64>() / n as f64
        };
        LatencySummary {
            n,
            p50_us: percentile(&micros, 0.50),
            p90_us: percentile(&micros, 0.90),
            p99_us: percentile(&micros, 0.99),
            max_us: micros.last().copied().unwrap_or(0.0),
            mean_us,
        }
    }
}

/// The core's nearest-rank percentile of sorted values (0 for none).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    smsguard_core::percentile::nearest_rank(sorted, q).unwrap_or(0.0)
}

/// Peak resident set size of this process in KiB (`VmHWM` of /proc/self/status), if readable.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        let summary = LatencySummary::from_durations(&samples);
        assert_eq!(summary.n, 100);
        assert!((summary.p50_us - 50.0).abs() < 1e-6);
        assert!((summary.p99_us - 99.0).abs() < 1e-6);
        assert!((summary.max_us - 100.0).abs() < 1e-6);
        assert!((summary.mean_us - 50.5).abs() < 1e-6);
        assert_eq!(LatencySummary::from_durations(&[]).p50_us, 0.0);
    }

    #[test]
    fn peak_rss_is_positive_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(peak_rss_kib().unwrap_or(0) > 0);
        }
    }
}
