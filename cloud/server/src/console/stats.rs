//! What the overview shows, read from the server's own Prometheus registry (the same counters
//! `/metrics` serves, so the console adds nothing to the gRPC path), plus a one-hour history of
//! the verdict count sampled in the background.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::metrics::Metrics;

/// How often the verdict history is sampled, and how many samples make the hour it covers.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(10);
const SAMPLES_KEPT: usize = 360;

/// Latency percentiles of one RPC, as histogram bucket upper bounds (seconds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
}

/// The counters the overview shows, at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Verdicts by (label, action).
    pub verdicts: BTreeMap<(String, String), u64>,
    /// Scorer failures by model: each made one verdict degraded.
    pub scorer_failures: BTreeMap<String, u64>,
    /// Verdicts marked degraded.
    pub degraded_verdicts: u64,
    /// Times each rule fired, by id.
    pub rule_hits: BTreeMap<String, u64>,
    /// Request latency by RPC.
    pub latency: BTreeMap<String, Latency>,
}

impl Snapshot {
    pub fn read(metrics: &Metrics) -> Self {
        Snapshot::parse(&metrics.encode())
    }

    pub fn total_verdicts(&self) -> u64 {
        self.verdicts.values().sum()
    }

    /// Verdicts by label (all actions together).
    pub fn verdicts_by_label(&self) -> BTreeMap<String, u64> {
        let mut by_label = BTreeMap::new();
        for ((label, _), count) in &self.verdicts {
            *by_label.entry(label.clone()).or_default() += count;
        }
        by_label
    }

    /// Share of verdicts marked degraded (a scorer failed or the shared state did not answer).
    pub fn degraded_share(&self) -> f64 {
        let total = self.total_verdicts();
        if total == 0 {
            return 0.0;
        }
        (self.degraded_verdicts as f64 / total as f64).min(1.0)
    }

    /// Parses the Prometheus text exposition of the service's registry.
    pub fn parse(text: &str) -> Self {
        let mut snapshot = Snapshot::default();
        let mut buckets: BTreeMap<String, Vec<(f64, u64)>> = BTreeMap::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((name, labels, value)) = sample(line) else {
                continue;
            };
            let label = |key: &str| labels.get(key).cloned().unwrap_or_default();
            match name {
                "smsguard_verdicts_total" => {
                    *snapshot
                        .verdicts
                        .entry((label("label"), label("action")))
                        .or_default() += value as u64;
                }
                "smsguard_rule_hits_total" => {
                    *snapshot.rule_hits.entry(label("rule")).or_default() += value as u64;
                }
                "smsguard_degraded_verdicts_total" => {
                    snapshot.degraded_verdicts += value as u64;
                }
                "smsguard_model_errors_total" => {
                    *snapshot.scorer_failures.entry(label("model")).or_default() += value as u64;
                }
                "smsguard_request_duration_seconds_bucket" => {
                    let le = labels.get("le").map(String::as_str);
                    let bound = match le {
                        Some("+Inf") => f64::INFINITY,
                        Some(le) => le.parse().unwrap_or(f64::INFINITY),
                        None => continue,
                    };
                    buckets
                        .entry(label("rpc"))
                        .or_default()
                        .push((bound, value as u64));
                }
                _ => {}
            }
        }
        for (rpc, mut cumulative) in buckets {
            cumulative.sort_by(|a, b| a.0.total_cmp(&b.0));
            if let Some(latency) = percentiles(&cumulative) {
                snapshot.latency.insert(rpc, latency);
            }
        }
        snapshot
    }
}

/// `name{k="v",...} value` -> (name, labels, value).
fn sample(line: &str) -> Option<(&str, HashMap<String, String>, f64)> {
    let (series, value) = line.rsplit_once(' ')?;
    let value: f64 = value.parse().ok()?;
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}')?)),
        None => (series, HashMap::new()),
    };
    Some((name, labels, value))
}

/// `k="v",k2="v2"`; the service's label values hold no quotes or commas.
fn parse_labels(text: &str) -> HashMap<String, String> {
    text.split(',')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim_matches('"').to_owned()))
        .collect()
}

/// Percentiles from cumulative buckets sorted by bound: the first bound holding the share.
fn percentiles(cumulative: &[(f64, u64)]) -> Option<Latency> {
    let count = cumulative.last()?.1;
    if count == 0 {
        return None;
    }
    let at = |q: f64| {
        let wanted = (q * count as f64).ceil() as u64;
        cumulative
            .iter()
            .find(|(_, n)| *n >= wanted)
            .map_or(f64::INFINITY, |(bound, _)| *bound)
    };
    Some(Latency {
        count,
        p50: at(0.50),
        p90: at(0.90),
        p99: at(0.99),
    })
}

/// The verdict counts by label every [`SAMPLE_EVERY`] over the last hour.
#[derive(Debug, Default)]
pub struct History {
    samples: Mutex<VecDeque<BTreeMap<String, u64>>>,
}

/// One line of a chart: its name and a value per sampling interval, oldest first.
pub type Series = (String, Vec<f64>);

impl History {
    pub fn push(&self, by_label: BTreeMap<String, u64>) {
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        if samples.len() == SAMPLES_KEPT {
            samples.pop_front();
        }
        samples.push_back(by_label);
    }

    /// Verdicts per second in each interval: all labels first, then each label.
    pub fn rates(&self) -> Vec<Series> {
        let samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        let seconds = SAMPLE_EVERY.as_secs_f64();
        let per_interval = |count: &dyn Fn(&BTreeMap<String, u64>) -> u64| -> Vec<f64> {
            samples
                .iter()
                .zip(samples.iter().skip(1))
                .map(|(a, b)| count(b).saturating_sub(count(a)) as f64 / seconds)
                .collect()
        };
        let mut series = vec![("all".to_owned(), per_interval(&|s| s.values().sum()))];
        let labels = samples
            .back()
            .map(|s| s.keys().cloned().collect::<Vec<_>>());
        for label in labels.unwrap_or_default() {
            let rates = per_interval(&|s| s.get(&label).copied().unwrap_or(0));
            series.push((label, rates));
        }
        series
    }
}

/// Samples the verdict counts into `history` until the task is aborted.
pub async fn sample_forever(metrics: Arc<Metrics>, history: Arc<History>) {
    let mut ticker = tokio::time::interval(SAMPLE_EVERY);
    loop {
        ticker.tick().await;
        history.push(Snapshot::read(&metrics).verdicts_by_label());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_verdicts_failures_and_latency_from_the_registry() {
        let metrics = Metrics::new();
        metrics.record_verdict("spam", "block");
        metrics.record_verdict("spam", "block");
        metrics.record_verdict("ham", "allow");
        metrics.record_model_error("similarity");
        metrics.record_model_error("sender");
        metrics.record_degraded_verdict();
        for _ in 0..10 {
            metrics.record_request("Classify", tonic::Code::Ok, std::time::Instant::now());
        }
        let snapshot = Snapshot::read(&metrics);
        assert_eq!(snapshot.verdicts[&("spam".into(), "block".into())], 2);
        assert_eq!(snapshot.total_verdicts(), 3);
        assert_eq!(snapshot.scorer_failures["similarity"], 1);
        // Two scorers failed in one verdict: one degraded verdict of three, exactly.
        assert_eq!(snapshot.degraded_verdicts, 1);
        assert!((snapshot.degraded_share() - 1.0 / 3.0).abs() < 1e-9);
        let latency = snapshot.latency["Classify"];
        assert_eq!(latency.count, 10);
        assert!(
            latency.p50 <= latency.p99 && latency.p99 < 1.0,
            "{latency:?}"
        );
    }

    #[test]
    fn history_rates_are_per_second_deltas_overall_and_by_label() {
        let history = History::default();
        let sample = |ham: u64, spam: u64| {
            BTreeMap::from([("ham".to_owned(), ham), ("spam".to_owned(), spam)])
        };
        history.push(BTreeMap::new());
        history.push(sample(10, 0));
        history.push(sample(20, 10));
        let s = SAMPLE_EVERY.as_secs_f64();
        assert_eq!(
            history.rates(),
            vec![
                ("all".to_owned(), vec![10.0 / s, 20.0 / s]),
                ("ham".to_owned(), vec![10.0 / s, 10.0 / s]),
                ("spam".to_owned(), vec![0.0, 10.0 / s]),
            ]
        );
    }
}
