//! The per-device watermark (`smsguard_server::watermark`) on the dev split of every corpus.
//!
//! `calibrate DIR [MARGIN]` writes `DIR/watermark.json` for `DIR/edge-int8.onnx`: the n-gram
//! buckets no dev message within MARGIN (default 0.005) of a threshold reads, in any window.
//! `check [DEVICES]` marks the model for DEVICES random devices (default 3) under a fresh operator
//! key with that plan, reads every mark back from the marked bytes, and counts the dev messages
//! whose verdict (label or action) differs between the original model and a marked copy.
//!
//! `cost [N]` times what a device-bound `GetModel` adds per request: the mark, the model's SHA-256
//! and the package's Ed25519 signature (median of N).
//!
//! ```sh
//! cargo run -p smsguard-server --example watermark_dev -- calibrate edge/models
//! cargo run -p smsguard-server --example watermark_dev -- check 20
//! ```
//! (datasets from `$SMSGUARD_DATASETS`, else `../shared/datasets`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use smsguard_container::device::DeviceSecret;
use smsguard_core::{normalize, Normalized};
use smsguard_model::{EdgeModel, Prediction};
use smsguard_server::watermark::{device_mark, marked_tensor, SafeBuckets, Watermarker, PLAN_FILE};
use smsguard_signing::{sha256_hex, SigningKey};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("calibrate") => {
            let dir = PathBuf::from(args.get(1).context("calibrate DIR [MARGIN]")?);
            let margin = args.get(2).map_or(Ok(0.005), |m| m.parse())?;
            calibrate(&dir, margin, &args.join(" "))
        }
        Some("check") => check(args.get(1).map_or(Ok(3), |n| n.parse())?),
        Some("cost") => cost(args.get(1).map_or(Ok(200), |n| n.parse())?),
        _ => bail!("usage: watermark_dev calibrate DIR [MARGIN] | check [DEVICES] | cost [N]"),
    }
}

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../edge/models")
}

fn load(dir: &Path) -> Result<(Vec<u8>, EdgeModel)> {
    let bytes = std::fs::read(dir.join("edge-int8.onnx"))?;
    let vocab = std::fs::read_to_string(dir.join("vocab.json"))?;
    let model = EdgeModel::from_bytes(&bytes, &vocab)?;
    Ok((bytes, model))
}

/// Every normalised dev message of every corpus, with its corpus name.
fn dev_messages() -> Result<Vec<(String, Normalized)>> {
    let datasets = smsguard_corpus::datasets_dir()?;
    let mut messages = Vec::new();
    for file in smsguard_corpus::split_files(&datasets, "dev")? {
        let corpus = smsguard_corpus::read_tsv(&file)?;
        let name = corpus.name();
        messages.extend(
            corpus
                .records
                .iter()
                .map(|r| (name.clone(), normalize(&r.text))),
        );
    }
    Ok(messages)
}

/// Whether a verdict lies within `margin` of flipping: the spam score near the tag or quarantine
/// threshold, or ham's probability near the best other label's.
fn near(prediction: &Prediction, margin: f32) -> bool {
    let point = prediction.judged.point;
    let p = &prediction.probabilities;
    let best_other = p.iter().skip(1).copied().fold(0.0_f32, f32::max);
    [point.tag, point.quarantine]
        .iter()
        .any(|t| (prediction.spam_score - t).abs() < margin)
        || (p[0] - best_other).abs() < margin
}

fn calibrate(dir: &Path, margin: f32, command: &str) -> Result<()> {
    let (bytes, model) = load(dir)?;
    let (tensor, elements) = marked_tensor(&bytes).context("no int8 tensor to mark")?;
    let mut safe = vec![true; elements];
    safe[0] = false; // the padding bucket
    let (mut dev, mut near_count) = (0, 0);
    for (_, normalized) in dev_messages()? {
        let Ok(prediction) = model.classify_normalized(&normalized) else {
            continue;
        };
        dev += 1;
        if !near(&prediction, margin) {
            continue;
        }
        near_count += 1;
        let text = normalized.text.as_str();
        for start in model.window_plan().starts(text) {
            for id in model.encode(&text[start..]).ngrams.ids {
                if let Some(slot) = usize::try_from(id).ok().and_then(|i| safe.get_mut(i)) {
                    *slot = false;
                }
            }
        }
    }
    let allowed = safe.iter().filter(|s| **s).count();
    let plan = SafeBuckets {
        model_sha256: sha256_hex(&bytes),
        tensor: tensor.clone(),
        safe: SafeBuckets::from_bits(&safe),
        margin,
        dev_messages: dev,
        near_messages: near_count,
        command: format!("cargo run -p smsguard-server --example watermark_dev -- {command}"),
    };
    std::fs::write(
        dir.join(PLAN_FILE),
        serde_json::to_string_pretty(&plan)? + "\n",
    )?;
    println!(
        "{dev} dev messages, {near_count} within {margin} of a threshold; \
         {allowed} of {elements} elements of `{tensor}` may carry a mark"
    );
    Ok(())
}

fn check(devices: usize) -> Result<()> {
    let dir = models_dir();
    let (bytes, original) = load(&dir)?;
    let vocab = std::fs::read_to_string(dir.join("vocab.json"))?;
    let plan: SafeBuckets = serde_json::from_slice(&std::fs::read(dir.join(PLAN_FILE))?)?;
    let marker = Watermarker::new(&bytes, &SigningKey::generate()?, &plan)
        .context("the plan does not fit the model")?;
    let mut copies = Vec::new();
    for _ in 0..devices {
        let mark = device_mark(&DeviceSecret::generate().public_key().key_id());
        let marked = marker.mark(&bytes, mark);
        if marker.read(&bytes, &marked) != Some(mark) {
            bail!("mark {mark:016x} not read back");
        }
        copies.push(EdgeModel::from_bytes(&marked, &vocab)?);
    }
    println!(
        "{devices} marks in `{}` read back from their copies",
        marker.tensor()
    );
    let (mut messages, mut changed, mut max_delta) = (0_usize, 0_usize, 0_f32);
    for (_, normalized) in dev_messages()? {
        let Ok(base) = original.classify_normalized(&normalized) else {
            continue; // empty after normalisation: no verdict to change
        };
        messages += 1;
        for copy in &copies {
            let other = copy.classify_normalized(&normalized)?;
            max_delta = max_delta.max((other.spam_score - base.spam_score).abs());
            if (other.label, other.action) != (base.label, base.action) {
                changed += 1;
            }
        }
    }
    println!(
        "all dev: {messages} messages x {devices} marked copies, {changed} verdict changes, \
         largest spam-score change {max_delta:.2e}"
    );
    Ok(())
}

fn cost(rounds: usize) -> Result<()> {
    let dir = models_dir();
    let (bytes, _) = load(&dir)?;
    let vocabulary = std::fs::read(dir.join("vocab.json"))?;
    let manifest = std::fs::read(dir.join("manifest.json"))?;
    let plan: SafeBuckets = serde_json::from_slice(&std::fs::read(dir.join(PLAN_FILE))?)?;
    let key = SigningKey::generate()?;
    let marker = Watermarker::new(&bytes, &key, &plan).context("the plan does not fit")?;
    let mut micros = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let started = std::time::Instant::now();
        let marked = marker.mark(&bytes, round as u64);
        let digest = sha256_hex(&marked);
        let signature = key.sign(smsguard_signing::PackageParts {
            manifest_json: &manifest,
            model: &marked,
            vocabulary: &vocabulary,
        });
        micros.push(started.elapsed().as_micros());
        std::hint::black_box((digest, signature));
    }
    micros.sort_unstable();
    println!(
        "mark + SHA-256 + signature of a {}-byte model: median {} us, max {} us ({rounds} rounds)",
        bytes.len(),
        micros[rounds / 2],
        micros[rounds - 1]
    );
    Ok(())
}
