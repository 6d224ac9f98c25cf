//! `fit-private-head`: fits, on the dev splits only, how the phone fuses its local spam score
//! with the private model's decrypted class scores (`smsguard_private::head`), and writes the
//! head the cloud publishes with the private model (`cloud/models/private_head.json`).
//!
//! Per market (zh, en; a message's dominant script) a monotone logistic regression on the logit
//! of the shipped edge model's spam score and the private margin (best non-ham score minus ham
//! score, scaled), then the tag and quarantine thresholds ([`crate::private_head_pick`]). It
//! prints, per dev corpus, the edge alone beside private mode under the new head.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::Serialize;
use sha2::{Digest, Sha256};
use smsguard_core::{normalize, Action, Market};
use smsguard_model::EdgeModel;
use smsguard_private::head::{local_logit, MarketHead, PrivateEvidence, PrivateHead};
use smsguard_private::PrivateModel;
use smsguard_scoring::fusion::{FusionInput, InputTransform};

use crate::data::{self, Dataset, Split, EDGE_LABELS};
use crate::fusion_head::{fit_weights, FitConfig};
use crate::private_head_pick::{pick_quarantine, pick_tag, HeadRow};

#[derive(Debug, Args)]
pub struct PrivateHeadArgs {
    /// Corpus folders, folders of corpora or .tsv files (default: every corpus of the datasets
    /// folder); only their dev splits are read.
    #[arg(long = "data")]
    data: Vec<PathBuf>,
    /// The private model the head is fitted for (its version is the server's).
    #[arg(long, default_value = "cloud/models/private.json")]
    model: PathBuf,
    #[arg(long, default_value = "cloud/models/private_head.json")]
    out: PathBuf,
    /// Share of a market's dev ham the head may tag beyond the edge alone.
    #[arg(long, default_value_t = 0.005)]
    tag_fpr: f64,
    /// Share of a market's dev ham the head may hold beyond the edge alone.
    #[arg(long, default_value_t = 0.001)]
    quarantine_fpr: f64,
}

/// One dev message: the edge model's view and the private margin.
#[derive(Debug, Clone, Copy)]
struct DevRow {
    corpus: usize,
    market: Market,
    spam: bool,
    local: f32,
    local_action: Action,
    margin: i64,
}

/// Binary accuracy, spam recall and ham FPR of one corpus, edge alone and private mode.
#[derive(Debug, Default, Serialize)]
struct CorpusFigures {
    corpus: String,
    messages: usize,
    edge: [f64; 3],
    private: [f64; 3],
}

/// The private model's version as the server computes it (`smsguard-server`'s `PrivateMode`):
/// hex of the first 8 bytes of the SHA-256 of its JSON file.
pub fn model_version(json: &[u8]) -> String {
    hex::encode(&Sha256::digest(json)[..8])
}

pub fn run(args: PrivateHeadArgs) -> Result<()> {
    let json =
        std::fs::read(&args.model).with_context(|| format!("reading {}", args.model.display()))?;
    let model: PrivateModel = serde_json::from_slice(&json)?;
    model.validate()?;
    let Some(ham) = model.labels.iter().position(|l| l == EDGE_LABELS[0]) else {
        bail!("the private model has no {} class", EDGE_LABELS[0]);
    };
    let dev = data::load(&data::split_files(&args.data, Split::Dev)?, false)?;
    let rows = dev_rows(&dev, &model, ham)?;
    let base = PrivateHead {
        version: String::new(),
        model_version: model_version(&json),
        ham_label: model.labels[ham].clone(),
        margin_scale: spread(&rows),
        markets: BTreeMap::new(),
    };
    let mut head = fit_head(&base, &rows, &args);
    head.version = head_version(&head)?;
    head.validate()?;
    let judged: Vec<(&DevRow, Action)> = rows.iter().map(|r| (r, fused(&head, r))).collect();
    let figures = figures_by_corpus(&dev, &judged);
    std::fs::write(&args.out, serde_json::to_string_pretty(&head)? + "\n")
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!("{}", serde_json::to_string_pretty(&head)?);
    println!("In sample (weights and thresholds fitted on all of dev, judged on it):");
    print_table(&figures);
    println!("Two-fold (row i in fold i % 2; each fold judged by a head fitted on the other):");
    print_table(&figures_by_corpus(&dev, &two_fold(&base, &rows, &args)));
    Ok(())
}

/// Weights and thresholds of every market, fitted on `rows`.
fn fit_head(base: &PrivateHead, rows: &[DevRow], args: &PrivateHeadArgs) -> PrivateHead {
    let mut head = base.clone();
    for market in Market::ALL {
        let fitted = fit_market(&head, rows, market, args);
        head.markets.insert(market, fitted);
    }
    head
}

/// The private-mode action of one row: the stronger of the edge's and the head's.
fn fused(head: &PrivateHead, r: &DevRow) -> Action {
    r.local_action
        .max(head.decide(r.market, r.local, r.margin).action)
}

/// Every row judged by a head fitted without it (two folds): how far the in-sample figures
/// flatter the head.
fn two_fold<'r>(
    base: &PrivateHead,
    rows: &'r [DevRow],
    args: &PrivateHeadArgs,
) -> Vec<(&'r DevRow, Action)> {
    let mut judged = Vec::with_capacity(rows.len());
    for fold in 0..2 {
        let others: Vec<DevRow> = rows
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 2 != fold)
            .map(|(_, r)| *r)
            .collect();
        let head = fit_head(base, &others, args);
        judged.extend(
            rows.iter()
                .enumerate()
                .filter(|(i, _)| i % 2 == fold)
                .map(|(_, r)| (r, fused(&head, r))),
        );
    }
    judged
}

fn dev_rows(dev: &Dataset, model: &PrivateModel, ham: usize) -> Result<Vec<DevRow>> {
    let edge = EdgeModel::embedded().context("loading the embedded edge model")?;
    let mut rows = Vec::with_capacity(dev.examples.len());
    for example in &dev.examples {
        let normalized = normalize(&example.original);
        // An empty message is delivered as is in both modes: nothing to fit.
        let Ok(prediction) = edge.classify_in_market(&normalized, None) else {
            continue;
        };
        let scores = model.plain_scores(&model.shape.features(&normalized.text))?;
        let evidence = PrivateEvidence::of(&scores, ham).context("no private evidence")?;
        rows.push(DevRow {
            corpus: example.source,
            market: prediction.judged.market,
            spam: example.label != 0,
            local: prediction.spam_score,
            local_action: prediction.action,
            margin: evidence.margin,
        });
    }
    Ok(rows)
}

/// The margins' standard deviation (rounded, at least 1): margins divided by it are near 1.
fn spread(rows: &[DevRow]) -> f64 {
    let n = rows.len().max(1) as f64;
    let mean = rows.iter().map(|r| r.margin as f64).sum::<f64>() / n;
    let var = rows
        .iter()
        .map(|r| (r.margin as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    var.sqrt().round().max(1.0)
}

fn fit_market(
    head: &PrivateHead,
    rows: &[DevRow],
    market: Market,
    args: &PrivateHeadArgs,
) -> MarketHead {
    let rows: Vec<&DevRow> = rows.iter().filter(|r| r.market == market).collect();
    // The weights are fitted where the head can change the binary verdict: on the messages the
    // edge allows (a fit over all of them gave the same verdicts on dev).
    let fit_rows: Vec<&DevRow> = rows
        .iter()
        .copied()
        .filter(|r| r.local_action == Action::Allow)
        .collect();
    let inputs: Vec<FusionInput> = ["edge", "private_margin"]
        .iter()
        .map(|name| FusionInput {
            model: name.to_string(),
            transform: InputTransform::Identity,
            prior_weight: 1.0,
            min_weight: 0.0,
        })
        .collect();
    let features: Vec<Vec<f32>> = fit_rows
        .iter()
        .map(|r| {
            vec![
                local_logit(r.local) as f32,
                (r.margin as f64 / head.margin_scale) as f32,
            ]
        })
        .collect();
    let spam: Vec<bool> = fit_rows.iter().map(|r| r.spam).collect();
    // Each class weighs half, whatever the market's mix.
    let n_spam = spam.iter().filter(|&&s| s).count().max(1) as f32;
    let n_ham = spam.iter().filter(|&&s| !s).count().max(1) as f32;
    let weights: Vec<f32> = spam
        .iter()
        .map(|&s| if s { 0.5 / n_spam } else { 0.5 / n_ham } * spam.len() as f32)
        .collect();
    let fitted = fit_weights(
        &inputs,
        &features,
        &spam,
        &weights,
        &[true, true],
        &FitConfig::default(),
    );
    let mut market_head = MarketHead {
        local_weight: f64::from(fitted.weights[0]),
        margin_weight: f64::from(fitted.weights[1]),
        bias: f64::from(fitted.bias),
        tag: None,
        quarantine: None,
    };
    let mut probe = head.clone();
    probe.markets.insert(market, market_head);
    let picked: Vec<HeadRow> = rows
        .iter()
        .map(|r| HeadRow {
            corpus: r.corpus,
            spam: r.spam,
            local_action: r.local_action,
            probability: probe.probability(market, r.local, r.margin),
        })
        .collect();
    market_head.tag = pick_tag(&picked, args.tag_fpr);
    market_head.quarantine = pick_quarantine(&picked, market_head.tag, args.quarantine_fpr);
    market_head
}

/// `head-` and 16 hex digits of the SHA-256 of the head with an empty version.
fn head_version(head: &PrivateHead) -> Result<String> {
    let unversioned = PrivateHead {
        version: String::new(),
        ..head.clone()
    };
    let digest = Sha256::digest(serde_json::to_vec(&unversioned)?);
    Ok(format!("head-{}", hex::encode(&digest[..8])))
}

fn figures_by_corpus(dev: &Dataset, judged: &[(&DevRow, Action)]) -> Vec<CorpusFigures> {
    // per corpus: [ham, ham flagged edge, ham flagged private, spam, spam flagged edge, private]
    let mut tallies: BTreeMap<usize, [usize; 6]> = BTreeMap::new();
    for &(r, fused) in judged {
        let t = tallies.entry(r.corpus).or_default();
        let base = if r.spam { 3 } else { 0 };
        t[base] += 1;
        t[base + 1] += usize::from(r.local_action != Action::Allow);
        t[base + 2] += usize::from(fused != Action::Allow);
    }
    tallies
        .into_iter()
        .map(|(corpus, t)| {
            let pct = |a: usize, b: usize| 100.0 * a as f64 / b.max(1) as f64;
            let column = |k: usize| {
                let right = t[3 + k] + t[0] - t[k];
                [
                    pct(right, t[0] + t[3]),
                    pct(t[3 + k], t[3]),
                    pct(t[k], t[0]),
                ]
            };
            CorpusFigures {
                corpus: dev.sources[corpus].clone(),
                messages: t[0] + t[3],
                edge: column(1),
                private: column(2),
            }
        })
        .collect()
}

fn print_table(figures: &[CorpusFigures]) {
    println!("| corpus | n | edge acc / recall / FPR | private acc / recall / FPR |");
    println!("|---|---:|---|---|");
    for f in figures {
        let cell = |v: &[f64; 3]| format!("{:.2} / {:.2} / {:.2}", v[0], v[1], v[2]);
        println!(
            "| {} | {} | {} | {} |",
            f.corpus,
            f.messages,
            cell(&f.edge),
            cell(&f.private)
        );
    }
}
