//! Throughput of `normalize` + `MinHasher::fingerprint` on real corpus lines, single-threaded.
//!
//! Reads `train.tsv`/`dev.tsv` of every corpus under `$SMSGUARD_DATASETS` (default: the
//! `shared/datasets` folder next to the workspace root), prints messages/s per core from one
//! timed pass (and from one pass of `fingerprint` alone on pre-normalised texts), then runs
//! criterion benchmarks of the same loop and of `normalize` alone. Skips with a message when the
//! corpora are absent.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use smsguard_core::{normalize, MinHasher};

fn datasets_root() -> PathBuf {
    std::env::var_os("SMSGUARD_DATASETS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets"),
        PathBuf::from,
    )
}

#[path = "support/corpus_lines.rs"]
mod corpus_lines;

fn load_messages() -> Vec<String> {
    corpus_lines::corpus_lines(&datasets_root())
}

fn process_all(hasher: &MinHasher, messages: &[String]) -> u64 {
    let mut checksum = 0u64;
    for message in messages {
        let normalized = normalize(message);
        checksum ^= hasher.fingerprint(&normalized.text).id();
    }
    checksum
}

/// `normalize` alone, to follow its share of the cost.
fn normalize_all(messages: &[String]) -> usize {
    messages.iter().map(|m| normalize(m).text.len()).sum()
}

/// Times `fingerprint` alone on pre-normalised texts, to separate its cost from `normalize`'s.
fn report_fingerprint_only(hasher: &MinHasher, messages: &[String]) {
    let texts: Vec<String> = messages.iter().map(|m| normalize(m).text).collect();
    let shingles: usize = texts
        .iter()
        .map(|t| t.chars().count().saturating_sub(2))
        .sum();
    let start = Instant::now();
    let checksum = texts
        .iter()
        .fold(0u64, |acc, text| acc ^ hasher.fingerprint(text).id());
    black_box(checksum);
    let elapsed = start.elapsed().as_secs_f64();
    println!(
        "fingerprint only: {:.0} messages/s per core ({:.2} us/message, {:.1} shingles/message)",
        texts.len() as f64 / elapsed,
        elapsed * 1e6 / texts.len() as f64,
        shingles as f64 / texts.len() as f64
    );
}

fn main() {
    let messages = load_messages();
    if messages.is_empty() {
        println!(
            "normalize bench: no corpora under {} (set SMSGUARD_DATASETS); skipped",
            datasets_root().display()
        );
        return;
    }
    let hasher = MinHasher::new();
    let bytes: usize = messages.iter().map(String::len).sum();
    // Warm up lazily built tables (regexes, zhconv automaton, keyword table) outside the timing.
    black_box(process_all(&hasher, &messages[..messages.len().min(1000)]));

    let start = Instant::now();
    black_box(process_all(&hasher, &messages));
    let elapsed = start.elapsed().as_secs_f64();
    println!(
        "normalize+fingerprint: {} messages ({:.1} MB) in {:.3} s = {:.0} messages/s per core ({:.1} us/message)",
        messages.len(),
        bytes as f64 / 1e6,
        elapsed,
        messages.len() as f64 / elapsed,
        elapsed * 1e6 / messages.len() as f64
    );

    report_fingerprint_only(&hasher, &messages);

    let sample: Vec<String> = messages.iter().step_by(20).cloned().collect();
    let mut criterion = Criterion::default()
        .configure_from_args()
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    let mut group = criterion.benchmark_group("normalize");
    group.throughput(Throughput::Elements(sample.len() as u64));
    group.bench_function("normalize+fingerprint (1/20 of corpora)", |b| {
        b.iter(|| process_all(&hasher, black_box(&sample)))
    });
    group.bench_function("normalize only (1/20 of corpora)", |b| {
        b.iter(|| normalize_all(black_box(&sample)))
    });
    group.finish();
    criterion.final_summary();
}
