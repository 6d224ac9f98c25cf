//! Benchmark of the fused cloud scorer: messages/s on one core, p50/p99 latency and peak RSS,
//! then RSS with the similarity memory grown to 100,000 entries.
//!
//! `cargo run --release -p smsguard-scoring --bin fusion-bench -- [messages] [--no-seed]`
//! Scores real `dev.tsv` messages (read into memory; no text is printed or written). The
//! similarity store lives in a temporary directory, seeded from the `train.tsv` spam unless
//! `--no-seed`.

use std::error::Error;
use std::time::Instant;

use smsguard_core::fingerprint::splitmix64;
use smsguard_core::{Fingerprint, Label};
use smsguard_scoring::cloud_scorer::EmbeddedOptions;
use smsguard_scoring::{CloudScorer, SimilarityStore};

/// Size the similarity memory is grown to for the memory figure.
const GROWN_ENTRIES: usize = 100_000;

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    smsguard_core::percentile::nearest_rank(sorted, q).unwrap_or(0.0)
}

fn dev_texts() -> Result<Vec<String>, Box<dyn Error>> {
    let dir = smsguard_corpus::datasets_dir()?;
    let mut texts = Vec::new();
    for file in smsguard_corpus::split_files(&dir, "dev")? {
        texts.extend(
            smsguard_corpus::read_tsv(&file)?
                .records
                .into_iter()
                .map(|r| r.text),
        );
    }
    Ok(texts)
}

/// A fingerprint with pseudo-random slots (unrelated to any text).
fn synthetic_fingerprint(seed: u64) -> Fingerprint {
    let mut minhash = [0u32; smsguard_core::fingerprint::NUM_HASHES];
    for (i, slot) in minhash.iter_mut().enumerate() {
        *slot = splitmix64(seed.wrapping_mul(131).wrapping_add(i as u64)) as u32;
    }
    Fingerprint { minhash }
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seed = !args.iter().any(|a| a == "--no-seed");
    let messages: usize = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(5_000);
    let data_dir =
        std::env::temp_dir().join(format!("smsguard-fusion-bench-{}", std::process::id()));
    println!(
        "build: {}",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );

    let texts = dev_texts()?;
    let started = Instant::now();
    let options = EmbeddedOptions {
        seed_from_corpora: seed,
        ..EmbeddedOptions::default()
    };
    let scorer = CloudScorer::embedded_with(&data_dir, &options)?;
    println!(
        "CloudScorer::embedded_with (seed from corpora: {seed}) built in {:.2} s; scorers {:?}",
        started.elapsed().as_secs_f64(),
        scorer.scorer_names()
    );

    let mut micros = Vec::with_capacity(messages);
    let mut spam_verdicts = 0usize;
    let started = Instant::now();
    for (i, text) in texts.iter().cycle().take(messages).enumerate() {
        let t = Instant::now();
        let sender = format!("+4470000{:05}", i % 1000);
        let verdict = scorer.score_text(&sender, text, i as i64 * 1000, "bench-device", None);
        micros.push(t.elapsed().as_secs_f64() * 1e6);
        spam_verdicts += usize::from(verdict.label != Label::Ham);
    }
    let elapsed = started.elapsed().as_secs_f64();
    micros.sort_by(f64::total_cmp);
    println!(
        "scored {} dev messages on one thread: {:.0} messages/s per core (target >= 5000), p50 {:.0} µs, p99 {:.0} µs (target <= 2000), max {:.0} µs; non-ham verdicts {:.1} %",
        micros.len(),
        micros.len() as f64 / elapsed,
        percentile(&micros, 0.5),
        percentile(&micros, 0.99),
        micros.last().copied().unwrap_or(0.0),
        spam_verdicts as f64 * 100.0 / micros.len().max(1) as f64
    );
    println!(
        "peak RSS (VmHWM) {} MiB, RSS {} MiB",
        status_kib("VmHWM:") / 1024,
        status_kib("VmRSS:") / 1024
    );
    drop(scorer);

    // Grow the same on-disk store to 100,000 fingerprints and reopen the scorer on it.
    let store = SimilarityStore::open(data_dir.join("similarity"))?;
    let missing = GROWN_ENTRIES.saturating_sub(store.len());
    for seed in 0..missing as u64 {
        store.add_spam(&synthetic_fingerprint(seed), Label::Spam)?;
    }
    store.flush()?;
    drop(store);
    let scorer = CloudScorer::embedded_with(&data_dir, &options)?;
    let t = Instant::now();
    for (i, text) in texts.iter().take(1000).enumerate() {
        scorer.score_text("+447000000000", text, i as i64, "bench-device", None);
    }
    println!(
        "similarity memory grown by {missing} synthetic fingerprints to {GROWN_ENTRIES}: peak RSS (VmHWM) {} MiB, RSS {} MiB; 1000 messages at {:.0} messages/s",
        status_kib("VmHWM:") / 1024,
        status_kib("VmRSS:") / 1024,
        1000.0 / t.elapsed().as_secs_f64()
    );
    drop(scorer);
    std::fs::remove_dir_all(&data_dir)?;
    Ok(())
}
