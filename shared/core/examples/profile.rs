//! A profiling harness: runs `normalize` + fingerprint id over every corpus line several times,
//! so that a sampling profiler (`perf record`) sees a long steady state without I/O or set-up.
//!
//! Usage: `cargo run --release -p smsguard-core --example profile -- [all|normalize|fingerprint|digest]
//! [PASSES] [DATASETS_DIR]`. Prints wall time and, on Linux, the CPU time of the thread
//! (`/proc/thread-self/schedstat`), which the other processes of a busy machine disturb less.
//! Prints only counts and timings, never message text.
//!
//! `digest` mode prints, per message, one 64-bit hash of its normalised text, transforms,
//! masked spans and fingerprint id (never the text itself): comparing two such files with `cmp`
//! shows whether a change of `normalize` or the fingerprint changed any output.

use std::hash::{Hash, Hasher};
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use smsguard_core::{normalize, MinHasher};

#[path = "../benches/support/corpus_lines.rs"]
mod corpus_lines;
use corpus_lines::corpus_lines;

/// Nanoseconds this thread has run on a CPU, where the kernel reports it.
fn thread_cpu_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse().ok()
}

/// One line per message: a hash of everything `normalize` + `fingerprint` output for it.
fn print_digests(hasher: &MinHasher, messages: &[String]) {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for message in messages {
        let normalized = normalize(message);
        // SipHash with fixed keys: stable across runs of the same toolchain, which is all a
        // before/after comparison needs.
        let mut state = std::collections::hash_map::DefaultHasher::new();
        normalized.text.hash(&mut state);
        for (transform, count) in &normalized.transforms {
            (transform.as_str(), count).hash(&mut state);
        }
        for masked in &normalized.masked {
            (masked.kind, &masked.value).hash(&mut state);
        }
        hasher.fingerprint(&normalized.text).id().hash(&mut state);
        if writeln!(out, "{:016x}", state.finish()).is_err() {
            return;
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "all".to_owned());
    let passes: usize = args.next().and_then(|p| p.parse().ok()).unwrap_or(5);
    let root = args.next().map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets"),
        PathBuf::from,
    );
    let messages = corpus_lines(&root);
    if messages.is_empty() {
        println!("profile: no corpora under {}", root.display());
        return;
    }
    let hasher = MinHasher::new();
    if mode == "digest" {
        print_digests(&hasher, &messages);
        return;
    }
    let normalized: Vec<String> = if mode == "fingerprint" {
        messages.iter().map(|m| normalize(m).text).collect()
    } else {
        Vec::new()
    };
    let n = messages.len() as f64;
    for pass in 0..passes {
        let (start, cpu_start) = (Instant::now(), thread_cpu_ns());
        let checksum = match mode.as_str() {
            "normalize" => messages
                .iter()
                .map(|m| normalize(m).text.len() as u64)
                .sum(),
            "fingerprint" => normalized
                .iter()
                .fold(0u64, |acc, text| acc ^ hasher.fingerprint(text).id()),
            _ => messages.iter().fold(0u64, |acc, message| {
                acc ^ hasher.fingerprint(&normalize(message).text).id()
            }),
        };
        black_box(checksum);
        let wall = start.elapsed().as_secs_f64();
        let cpu = thread_cpu_ns()
            .zip(cpu_start)
            .map_or(wall, |(end, start)| (end - start) as f64 / 1e9);
        println!(
            "{mode} pass {pass}: wall {:.0} messages/s ({:.2} us/message), cpu {:.0} messages/s ({:.2} us/message)",
            n / wall,
            wall * 1e6 / n,
            n / cpu,
            cpu * 1e6 / n
        );
    }
}
