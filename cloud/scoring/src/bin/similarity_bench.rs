//! Benchmark of the similarity store: lookup latency (p50/p99) and resident memory with N stored
//! fingerprints (default 100,000), plus insert and reopen (index rebuild) times.
//!
//! `cargo run --release -p smsguard-scoring --bin similarity-bench -- [entries] [queries]`
//! Texts are synthetic (random pseudo-words, Zipf-like frequencies), so nothing of any corpus is needed or printed.

use std::error::Error;
use std::time::Instant;

use smsguard_core::fingerprint::splitmix64;
use smsguard_core::{Fingerprint, Label, MinHasher};
use smsguard_scoring::SimilarityStore;

const SYLLABLES: &[&str] = &[
    "ka", "lo", "mi", "ne", "su", "ta", "ri", "po", "de", "gu", "ba", "zo", "fe", "xi", "wa", "ch",
    "qu", "an", "微", "信", "红", "包", "领", "取", "贷", "款", "优", "惠", "会", "员", "积", "分",
    "明", "天",
];

/// Pseudo-word `n` of a vocabulary of about 33^3 words made of 2-3 syllables.
fn word(n: u64) -> String {
    let k = SYLLABLES.len() as u64;
    let syllables = 2 + (n % 2) as usize;
    let mut rest = n / 2;
    (0..syllables)
        .map(|_| {
            let s = SYLLABLES[(rest % k) as usize];
            rest /= k;
            s
        })
        .collect()
}

/// Deterministic pseudo-random text of 12-24 words with a Zipf-like word distribution (common
/// words recur across texts, as in real messages).
fn text(seed: u64) -> Vec<String> {
    let mut state = splitmix64(seed);
    let len = 12 + (state % 13) as usize;
    (0..len)
        .map(|_| {
            state = splitmix64(state);
            let uniform = (state >> 11) as f64 / (1u64 << 53) as f64;
            word((20_000f64.powf(uniform)) as u64)
        })
        .collect()
}

fn fingerprint(hasher: &MinHasher, words: &[String]) -> Fingerprint {
    hasher.fingerprint(&words.join(" "))
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let entries: u64 = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(100_000);
    let queries: u64 = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(20_000);
    let dir =
        std::env::temp_dir().join(format!("smsguard-similarity-bench-{}", std::process::id()));
    let hasher = MinHasher::new();
    println!(
        "build: {}",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );

    let rss_start = rss_kib();
    let fps: Vec<Fingerprint> = (0..entries)
        .map(|i| fingerprint(&hasher, &text(i)))
        .collect();
    let rss_fps = rss_kib();
    let store = SimilarityStore::open(&dir)?;
    let started = Instant::now();
    for fp in &fps {
        store.add_spam(fp, Label::Spam)?;
    }
    store.flush()?;
    let insert_s = started.elapsed().as_secs_f64();
    let rss_loaded = rss_kib();
    println!(
        "entries: {} ({} distinct), insert+flush {:.2} s ({:.1} µs/entry)",
        entries,
        store.len(),
        insert_s,
        insert_s * 1e6 / entries as f64
    );

    // Half the queries are near-duplicates of stored texts (one word changed), half are new.
    let query_fps: Vec<(bool, Fingerprint)> = (0..queries)
        .map(|q| {
            let near = q % 2 == 0;
            let mut words = text(if near {
                splitmix64(q) % entries
            } else {
                entries + q
            });
            if near {
                let at = (splitmix64(q ^ 0xabc) % words.len() as u64) as usize;
                words[at] = "changed".to_owned();
            }
            (near, fingerprint(&hasher, &words))
        })
        .collect();
    let mut micros = Vec::with_capacity(query_fps.len());
    let (mut near_hits, mut new_hits) = (0u64, 0u64);
    for (near, fp) in &query_fps {
        let t = Instant::now();
        let found = store.lookup(fp)?;
        micros.push(t.elapsed().as_secs_f64() * 1e6);
        match (near, found.is_some()) {
            (true, true) => near_hits += 1,
            (false, true) => new_hits += 1,
            _ => {}
        }
    }
    micros.sort_by(f64::total_cmp);
    let half = (queries / 2).max(1) as f64;
    println!(
        "lookup over {} queries: p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs; near-duplicates found {:.1} %, random texts matched {:.1} %",
        queries,
        percentile(&micros, 0.5),
        percentile(&micros, 0.99),
        micros.last().copied().unwrap_or(0.0),
        near_hits as f64 * 100.0 / half,
        new_hits as f64 * 100.0 / half
    );
    println!(
        "RSS: start {} MiB, +fingerprints {} MiB, +store and index {} MiB (index + sled cache ≈ {} MiB)",
        rss_start / 1024,
        rss_fps / 1024,
        rss_loaded / 1024,
        rss_loaded.saturating_sub(rss_fps) / 1024
    );
    drop(store);
    let started = Instant::now();
    let reopened = SimilarityStore::open(&dir)?;
    println!(
        "reopen (index rebuild from sled): {:.2} s for {} entries",
        started.elapsed().as_secs_f64(),
        reopened.len()
    );
    drop(reopened);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
