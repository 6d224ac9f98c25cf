//! Prints the share of messages on which the int8 and fp32 edge models pick the same arg-max
//! label (the release check needs >= 99 % on dev), and how many flip the spam/ham verdict at
//! the stored 0.5 % ham-FPR threshold. Both models run through ONNX Runtime, as on the phone.
//!
//! `cargo run --release -p smsguard-train --example int8_agreement -- [--scores FILE] MODEL_DIR DEV.tsv...`
//! (MODEL_DIR holds edge-fp32.onnx, edge-int8.onnx and vocab.json.) `--scores` writes every int8
//! probability row as the hex bits of its f32s, one message per line, so that two CPUs' runs
//! (e.g. native and under `qemu-x86_64 -cpu EPYC`, AVX2 without VNNI) can be compared bit for bit.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use smsguard_model::{init_runtime, EdgeModel};
use smsguard_train::data;

/// Rows per ONNX Runtime call.
const BATCH: usize = 256;

fn main() -> Result<()> {
    let mut args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let scores_path = match args.first().and_then(|a| a.to_str()) {
        Some("--scores") if args.len() > 1 => Some(args.drain(..2).nth(1).unwrap_or_default()),
        _ => None,
    };
    let Some((dir, files)) = args.split_first().filter(|(_, f)| !f.is_empty()) else {
        bail!("usage: int8_agreement [--scores FILE] MODEL_DIR DEV.tsv...");
    };
    let mut scores = String::new();
    init_runtime().context("loading ONNX Runtime")?;
    let fp32 = load(dir, "edge-fp32.onnx")?;
    let int8 = load(dir, "edge-int8.onnx")?;
    let threshold = int8.metadata().threshold_fpr_0_5;
    let (mut total, mut same_label, mut same_verdict) = (0usize, 0usize, 0usize);
    for file in files {
        let dev = data::load(std::slice::from_ref(file), false)?;
        let texts: Vec<&str> = dev.examples.iter().map(|e| e.text.as_str()).collect();
        let (mut n, mut agree) = (0usize, 0usize);
        for chunk in texts.chunks(BATCH) {
            let a = rows_of(&fp32, chunk)?;
            let b = rows_of(&int8, chunk)?;
            for (pa, pb) in a.iter().zip(&b) {
                let bits: Vec<String> = pb.iter().map(|p| format!("{:08x}", p.to_bits())).collect();
                scores.push_str(&bits.join(" "));
                scores.push('\n');
                n += 1;
                agree += usize::from(arg_max(pa) == arg_max(pb));
                same_verdict +=
                    usize::from((1.0 - pa[0] >= threshold) == (1.0 - pb[0] >= threshold));
            }
        }
        println!(
            "{}: {agree}/{n} arg-max agree ({:.2}%)",
            file.display(),
            100.0 * agree as f64 / n.max(1) as f64
        );
        total += n;
        same_label += agree;
    }
    println!(
        "all: {same_label}/{total} arg-max agree ({:.3}%); verdict at the 0.5 % FPR threshold agrees on {:.3}%",
        100.0 * same_label as f64 / total.max(1) as f64,
        100.0 * same_verdict as f64 / total.max(1) as f64
    );
    if let Some(path) = scores_path {
        std::fs::write(&path, scores).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn load(dir: &Path, name: &str) -> Result<EdgeModel> {
    let model = std::fs::read(dir.join(name)).with_context(|| format!("reading {name}"))?;
    let vocab = std::fs::read_to_string(dir.join("vocab.json")).context("reading vocab.json")?;
    EdgeModel::from_bytes(&model, &vocab).with_context(|| format!("loading {name}"))
}

/// Softmax rows of already normalised texts.
fn rows_of(model: &EdgeModel, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
    let inputs: Vec<_> = texts.iter().map(|t| model.encode(t)).collect();
    let labels = model.metadata().labels.len();
    let logits = model.logits(&inputs)?;
    Ok(logits
        .chunks(labels)
        .map(smsguard_model::model::softmax)
        .collect())
}

fn arg_max(values: &[f32]) -> usize {
    values
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i)
}
