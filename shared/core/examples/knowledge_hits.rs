//! How often the built-in knowledge base fires on labelled TSV files: per file, on ham (false
//! alarms) and on spam, split into harmful entries (fraud or illegal: what the edge tags on) and
//! all entries, and which entries fired on ham (ids and counts only, never text).
//!
//! Also the table's cost: build time, matcher memory, and the time of one lookup on an already
//! normalised message (release builds for figures).
//!
//! `cargo run --release -p smsguard-core --example knowledge_hits -- [--lines] FILE.tsv...`
//!
//! `--lines` also prints, for every message on which an entry fires, its line number and the ids
//! of the entries (still no text), to see which entries a hand-written set exercises.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use smsguard_core::knowledge::{KnowledgeBase, BUILTIN_TOML};
use smsguard_core::normalize;

#[derive(Default)]
struct Counts {
    messages: usize,
    harmful: usize,
    any: usize,
}

impl Counts {
    fn add(&mut self, harmful: bool, any: bool) {
        self.messages += 1;
        self.harmful += usize::from(harmful);
        self.any += usize::from(any);
    }
}

fn main() {
    let started = Instant::now();
    let kb = KnowledgeBase::builtin();
    let mut paths: Vec<String> = std::env::args().skip(1).collect();
    let per_line = paths.first().is_some_and(|a| a == "--lines");
    if per_line {
        paths.remove(0);
    }
    println!(
        "{} entries (revision {}), table {} bytes, matcher {} bytes, built in {:.2} ms",
        kb.entries().len(),
        kb.revisions().join(", "),
        BUILTIN_TOML.len(),
        kb.memory_usage(),
        started.elapsed().as_secs_f64() * 1e3
    );
    let mut lookups: Vec<Duration> = Vec::new();
    let mut all_ham = Counts::default();
    let mut on_ham: BTreeMap<String, usize> = BTreeMap::new();
    for path in paths {
        let corpus = match smsguard_corpus::read_tsv(&path) {
            Ok(corpus) => corpus,
            Err(e) => {
                eprintln!("{path}: {e}");
                std::process::exit(1);
            }
        };
        let (mut ham, mut spam) = (Counts::default(), Counts::default());
        for (line, record) in corpus.records.iter().enumerate() {
            let normalized = normalize(&record.text);
            let looked_up = Instant::now();
            let hits = kb.hits(&normalized);
            lookups.push(looked_up.elapsed());
            if per_line && !hits.is_empty() {
                let ids: Vec<&str> = hits.iter().map(|e| e.id.as_str()).collect();
                println!("{path}:{}: {}", line + 1, ids.join(" "));
            }
            let harmful = hits.iter().any(|e| e.is_harmful());
            if record.label.is_spam() {
                spam.add(harmful, !hits.is_empty());
            } else {
                ham.add(harmful, !hits.is_empty());
                all_ham.add(harmful, !hits.is_empty());
                for entry in hits {
                    *on_ham.entry(entry.id.clone()).or_default() += 1;
                }
            }
        }
        println!(
            "{path}: ham {}/{} harmful ({} any entry), spam {}/{} harmful ({} any entry)",
            ham.harmful, ham.messages, ham.any, spam.harmful, spam.messages, spam.any
        );
    }
    lookups.sort();
    let at = |q: f64| lookups.get((q * lookups.len() as f64) as usize).copied();
    println!(
        "lookup per message: p50 {:?}, p99 {:?} over {} messages",
        at(0.5).unwrap_or_default(),
        at(0.99).unwrap_or_default(),
        lookups.len()
    );
    println!(
        "all ham: {}/{} harmful, {} any entry; entries on ham: {on_ham:?}",
        all_ham.harmful, all_ham.messages, all_ham.any
    );
}
