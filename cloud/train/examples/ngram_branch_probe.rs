//! Fits the edge model's n-gram branch alone, by the shipped recipe (L2 logistic regression, 16
//! passes, ham and spam weighing the same), on the corpora's train splits, optionally with
//! hand-written rows added as `train --handwritten` adds them, and prints for each evaluation file
//! how many messages score >= 0.5 and how many reach the branch's own market TAG threshold (<= 0.5 %
//! of the corpora's dev ham of the message's market). Seconds; no text is printed.
//!
//! `cargo run --release -p smsguard-train --example ngram_branch_probe -- [--repeat N]
//! [--handwritten PATH]... EVAL.tsv...` (README, "Hand-written rows in training").

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use smsguard_core::features::FeatureEncoder;
use smsguard_core::ngrams::NgramConfig;
use smsguard_core::Market;
use smsguard_eval::metrics::threshold_for_fpr;
use smsguard_train::data::{self, Dataset, Split};
use smsguard_train::market_thresholds::markets_of;
use smsguard_train::ngram_fit::{self, NgramFit, NgramFitConfig};
use smsguard_train::trainer::EncodedSet;

fn main() -> Result<()> {
    let (handwritten, repeat, eval_files) = parse_args()?;
    let mut train = data::load(&data::split_files(&[], Split::Train)?, true)?;
    let added = data::add_handwritten(&mut train, &handwritten, repeat)?;
    let dev = data::load(&data::split_files(&[], Split::Dev)?, false)?;
    let vocab = std::fs::read_to_string("edge/models/vocab.json")
        .context("run from the repository root (reads edge/models/vocab.json)")?;
    let encoder = FeatureEncoder::from_json(&vocab, 128)?;
    let ngram = NgramConfig::default();
    let train_set = EncodedSet::encode(&train, &encoder, &ngram);
    let dev_set = EncodedSet::encode(&dev, &encoder, &ngram);
    let config = NgramFitConfig {
        epochs: 16,
        balanced: true,
        ..NgramFitConfig::default()
    };
    let fit = ngram_fit::fit(&train_set, &dev_set, &[1.0; 5], ngram.buckets, &config);
    println!(
        "hand-written rows: {added}, each {repeat} times; kept l2 {:e}",
        fit.l2
    );
    let tags = market_tags(&dev, &scores(&dev_set, &fit));
    for file in eval_files {
        let set = data::load(std::slice::from_ref(&file), false)?;
        let probabilities = scores(&EncodedSet::encode(&set, &encoder, &ngram), &fit);
        let leaning = probabilities.iter().filter(|&&p| p >= 0.5).count();
        let tagged = probabilities
            .iter()
            .zip(markets_of(&set))
            .filter(|(p, market)| tags.get(market).is_some_and(|t| **p >= *t))
            .count();
        println!(
            "{}: {} messages, >= 0.5: {leaning}, >= TAG: {tagged}",
            file.display(),
            probabilities.len()
        );
    }
    Ok(())
}

fn parse_args() -> Result<(Vec<PathBuf>, usize, Vec<PathBuf>)> {
    let (mut handwritten, mut repeat, mut eval_files) = (Vec::new(), 10, Vec::new());
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--handwritten" => handwritten.push(args.next().context("--handwritten PATH")?.into()),
            "--repeat" => repeat = args.next().context("--repeat N")?.parse()?,
            _ => eval_files.push(PathBuf::from(arg)),
        }
    }
    if eval_files.is_empty() {
        bail!("usage: ngram_branch_probe [--repeat N] [--handwritten PATH]... EVAL.tsv...");
    }
    Ok((handwritten, repeat, eval_files))
}

/// The branch's spam probability of every row of `set`.
fn scores(set: &EncodedSet, fit: &NgramFit) -> Vec<f32> {
    (0..set.len())
        .map(|row| fit.probability(set, row))
        .collect()
}

/// Per market, the threshold for <= 0.5 % of that market's dev ham.
fn market_tags(dev: &Dataset, probabilities: &[f32]) -> BTreeMap<Market, f32> {
    let mut ham: BTreeMap<Market, Vec<f32>> = BTreeMap::new();
    for ((example, market), &p) in dev.examples.iter().zip(markets_of(dev)).zip(probabilities) {
        if example.label == 0 {
            ham.entry(market).or_default().push(p);
        }
    }
    ham.into_iter()
        .map(|(market, scores)| (market, threshold_for_fpr(&scores, 0.005)))
        .collect()
}
