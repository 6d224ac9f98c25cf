//! How often the built-in fraud knowledge fires on labelled TSV files: per file, on ham (false
//! alarms) and on spam, and which rules fired on ham (rule names and counts only, never text).
//!
//! Also the table's cost: build time, matcher memory, and the time of one lookup on an already
//! normalised message (release builds for figures).
//!
//! `cargo run --release -p smsguard-core --example fraud_kb_hits -- FILE.tsv...`

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use smsguard_core::fraud_kb::FraudKnowledge;
use smsguard_core::normalize;

fn main() {
    let started = Instant::now();
    let kb = FraudKnowledge::builtin();
    println!(
        "{} rules, table {} bytes, matcher {} bytes, built in {:.2} ms",
        kb.rule_count(),
        FraudKnowledge::builtin_table_bytes(),
        kb.memory_usage(),
        started.elapsed().as_secs_f64() * 1e3
    );
    let mut lookups: Vec<Duration> = Vec::new();
    let (mut all_ham, mut all_ham_hits) = (0usize, 0usize);
    let mut rules_on_ham: BTreeMap<String, usize> = BTreeMap::new();
    for path in std::env::args().skip(1) {
        let corpus = match smsguard_corpus::read_tsv(&path) {
            Ok(corpus) => corpus,
            Err(e) => {
                eprintln!("{path}: {e}");
                std::process::exit(1);
            }
        };
        let (mut ham, mut ham_hits, mut spam, mut spam_hits) = (0, 0, 0, 0);
        for record in &corpus.records {
            let normalized = normalize(&record.text).text;
            let looked_up = Instant::now();
            let hit = kb.first_hit(&normalized);
            lookups.push(looked_up.elapsed());
            if record.label.is_spam() {
                spam += 1;
                spam_hits += usize::from(hit.is_some());
            } else {
                ham += 1;
                if let Some(hit) = hit {
                    ham_hits += 1;
                    *rules_on_ham.entry(hit.rule.to_string()).or_default() += 1;
                }
            }
        }
        println!("{path}: ham {ham_hits}/{ham} fired, spam {spam_hits}/{spam} fired");
        (all_ham, all_ham_hits) = (all_ham + ham, all_ham_hits + ham_hits);
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
        "all: {all_ham_hits}/{all_ham} ham fired ({:.3} %); rules on ham: {rules_on_ham:?}",
        100.0 * all_ham_hits as f64 / all_ham.max(1) as f64
    );
}
