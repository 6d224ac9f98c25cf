//! Benchmark of the similarity store: lookup latency (p50/p99) and resident memory with N stored
//! fingerprints (default 100,000), plus insert and reopen (index rebuild) times.
//!
//! `cargo run --release -p smsguard-scoring --bin similarity-bench -- [entries] [queries] [--synthetic]`
//!
//! With the corpora present (`smsguard_corpus::datasets_dir()`), the store holds real texts (the
//! spam of every `train.tsv`, then its ham, then variants of them with three words replaced up to
//! `entries`) and queries are the `dev.tsv` lines plus one-word edits of stored spam. Otherwise
//! (or with `--synthetic`) texts are random pseudo-words with Zipf-like frequencies; these share
//! far more 3-shingles than real messages do. Texts stay in memory: nothing of any corpus is
//! written or printed. Recall is measured against a brute-force scan of every entry.

use std::error::Error;
use std::time::Instant;

use smsguard_core::fingerprint::{splitmix64, NUM_HASHES};
use smsguard_core::{Fingerprint, Label, MinHasher};
use smsguard_scoring::SimilarityStore;

/// Queries checked against a brute-force scan of every entry (recall).
const RECALL_SAMPLE: usize = 400;
/// Jaccard estimate from which a stored entry counts as a true near-duplicate.
const TRUE_NEAR_JACCARD: f32 = 0.6;
/// Shortest normalised text stored (as `SimilarityConfig::min_seed_chars`).
const MIN_CHARS: usize = 12;

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

fn percentile(sorted: &[f64], q: f64) -> f64 {
    smsguard_core::percentile::nearest_rank(sorted, q).unwrap_or(0.0)
}

/// The stored fingerprints and the queries (`true` for an edited copy of a stored text).
struct Workload {
    source: &'static str,
    stored: Vec<Fingerprint>,
    queries: Vec<(bool, Fingerprint)>,
}

fn synthetic_workload(hasher: &MinHasher, entries: u64, queries: u64) -> Workload {
    let stored = (0..entries)
        .map(|i| fingerprint(hasher, &text(i)))
        .collect();
    // Half the queries are near-duplicates of stored texts (one word changed), half are new.
    let queries = (0..queries)
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
            (near, fingerprint(hasher, &words))
        })
        .collect();
    Workload {
        source: "synthetic pseudo-word texts",
        stored,
        queries,
    }
}

/// `text` with `edits` chars at pseudo-random places replaced (each edit changes up to three
/// 3-shingles, as a changed digit, letter or short word does).
fn edit_chars(text: &str, seed: u64, edits: usize) -> String {
    const REPLACEMENTS: &[char] = &['q', 'z', '7', '3', 'x', '龙', '券', 'j'];
    let mut chars: Vec<char> = text.chars().collect();
    let mut state = seed;
    for _ in 0..edits {
        state = splitmix64(state);
        let at = (state % chars.len().max(1) as u64) as usize;
        if let Some(c) = chars.get_mut(at) {
            *c = REPLACEMENTS[((state >> 32) % REPLACEMENTS.len() as u64) as usize];
        }
    }
    chars.into_iter().collect()
}

/// Normalised spam and ham texts of every `<split>.tsv`, long enough to store.
fn corpus_texts(
    dir: &std::path::Path,
    split: &str,
) -> Result<(Vec<String>, Vec<String>), Box<dyn Error>> {
    let (mut spam, mut ham) = (Vec::new(), Vec::new());
    for file in smsguard_corpus::split_files(dir, split)? {
        for record in smsguard_corpus::read_tsv(&file)?.records {
            let text = smsguard_core::normalize(&record.text).text;
            if text.chars().count() < MIN_CHARS {
                continue;
            }
            if record.label == Label::Ham {
                ham.push(text);
            } else {
                spam.push(text);
            }
        }
    }
    Ok((spam, ham))
}

fn corpus_workload(
    hasher: &MinHasher,
    dir: &std::path::Path,
    entries: u64,
    queries: u64,
) -> Result<Workload, Box<dyn Error>> {
    let (train_spam, train_ham) = corpus_texts(dir, "train")?;
    let (dev_spam, dev_ham) = corpus_texts(dir, "dev")?;
    let real: Vec<&String> = train_spam.iter().chain(&train_ham).collect();
    let stored: Vec<Fingerprint> = (0..entries as usize)
        .map(|i| match real.get(i) {
            Some(text) => hasher.fingerprint(text),
            None => {
                let base = real[i % real.len()];
                hasher.fingerprint(&edit_chars(base, i as u64, 4))
            }
        })
        .collect();
    let dev: Vec<&String> = dev_spam.iter().chain(&dev_ham).collect();
    let queries = (0..queries as usize)
        .map(|q| {
            if q % 2 == 0 && !train_spam.is_empty() {
                let base = &train_spam[(splitmix64(q as u64) % train_spam.len() as u64) as usize];
                (true, hasher.fingerprint(&edit_chars(base, q as u64, 2)))
            } else {
                (false, hasher.fingerprint(dev[q % dev.len()]))
            }
        })
        .collect();
    println!(
        "corpus texts (normalised, >= {MIN_CHARS} chars): train spam {}, train ham {}, dev {}",
        train_spam.len(),
        train_ham.len(),
        dev.len()
    );
    Ok(Workload {
        source: "corpora: train spam, then train ham, then 4-char edits of them; queries: dev lines and 2-char edits of train spam",
        stored,
        queries,
    })
}

fn equal_slots(a: &Fingerprint, b: &Fingerprint) -> usize {
    a.minhash
        .iter()
        .zip(&b.minhash)
        .filter(|(x, y)| x == y)
        .count()
}

/// Recall of the store on true near-duplicates (best brute-force Jaccard >= 0.6) of a sample of
/// the queries: (true near-duplicates, of them found).
fn brute_force_recall(
    store: &SimilarityStore,
    workload: &Workload,
) -> Result<(usize, usize), Box<dyn Error>> {
    let step = (workload.queries.len() / RECALL_SAMPLE).max(1);
    let (mut truly_near, mut found) = (0, 0);
    for (_, query) in workload.queries.iter().step_by(step) {
        let best = workload
            .stored
            .iter()
            .map(|fp| equal_slots(fp, query))
            .max()
            .unwrap_or(0);
        if (best as f32 / NUM_HASHES as f32) < TRUE_NEAR_JACCARD {
            continue;
        }
        truly_near += 1;
        if store
            .lookup(query)?
            .is_some_and(|m| m.jaccard >= TRUE_NEAR_JACCARD)
        {
            found += 1;
        }
    }
    Ok((truly_near, found))
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let synthetic = args.iter().any(|a| a == "--synthetic");
    let mut numbers = args.iter().filter(|a| !a.starts_with("--"));
    let entries: u64 = numbers
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(100_000);
    let queries: u64 = numbers
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
    let datasets = smsguard_corpus::datasets_dir().ok().filter(|_| !synthetic);
    let workload = match datasets {
        Some(datasets) => corpus_workload(&hasher, &datasets, entries, queries)?,
        None => synthetic_workload(&hasher, entries, queries),
    };
    println!("workload: {}", workload.source);
    let rss_fps = rss_kib();
    let store = SimilarityStore::open(&dir)?;
    let started = Instant::now();
    for fp in &workload.stored {
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

    measure_lookups(&store, &workload)?;
    let (truly_near, found) = brute_force_recall(&store, &workload)?;
    println!(
        "recall vs brute force (sample of {} queries): {found}/{truly_near} true near-duplicates (best J >= {TRUE_NEAR_JACCARD}) found at J >= {TRUE_NEAR_JACCARD} ({:.1} %)",
        RECALL_SAMPLE.min(workload.queries.len().max(1)),
        found as f64 * 100.0 / truly_near.max(1) as f64
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

/// Times every query's lookup and prints the latency percentiles, the candidates scanned and
/// how many edited stored texts (and how many other queries) matched.
fn measure_lookups(store: &SimilarityStore, workload: &Workload) -> Result<(), Box<dyn Error>> {
    let mut micros = Vec::with_capacity(workload.queries.len());
    let (mut near_hits, mut other_hits, mut near_total) = (0u64, 0u64, 0u64);
    let (mut candidates, mut max_candidates, mut capped) = (0usize, 0usize, 0usize);
    for (near, fp) in &workload.queries {
        let t = Instant::now();
        let (found, stats) = store.lookup_with_stats(fp)?;
        micros.push(t.elapsed().as_secs_f64() * 1e6);
        candidates += stats.candidates;
        max_candidates = max_candidates.max(stats.candidates);
        capped += stats.skipped_by_cap;
        near_total += u64::from(*near);
        match (near, found.is_some()) {
            (true, true) => near_hits += 1,
            (false, true) => other_hits += 1,
            _ => {}
        }
    }
    micros.sort_by(f64::total_cmp);
    let total = workload.queries.len().max(1);
    let others = (total as u64 - near_total).max(1);
    println!(
        "lookup over {} queries: p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs; candidates/lookup mean {:.1}, max {}; bucket entries skipped by cap/lookup {:.1}",
        total,
        percentile(&micros, 0.5),
        percentile(&micros, 0.99),
        micros.last().copied().unwrap_or(0.0),
        candidates as f64 / total as f64,
        max_candidates,
        capped as f64 / total as f64
    );
    println!(
        "edited stored texts found {:.1} %, other queries matched {:.1} %",
        near_hits as f64 * 100.0 / near_total.max(1) as f64,
        other_hits as f64 * 100.0 / others as f64
    );
    Ok(())
}
