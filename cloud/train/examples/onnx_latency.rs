//! Prints ONNX Runtime latency per message of the exported edge char-CNN, fp32 vs int8, on one
//! intra-op thread (the edge setting). Random weights of the default architecture: latency does
//! not depend on the values.
//!
//! `cargo run --release -p smsguard-train --example onnx_latency [-- ITERATIONS]`
//! The ONNX Runtime library comes from `ORT_DYLIB_PATH` or `<repo>/.ort/libonnxruntime.so`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use ort::session::Session;
use ort::value::Tensor;
use smsguard_core::ngrams::NgramConfig;
use smsguard_train::config::{ArchConfig, ConvKind, HeadKind};
use smsguard_train::onnx_export::{
    export_fp32, INPUT_NAME, NGRAM_IDS_NAME, NGRAM_WEIGHTS_NAME, OUTPUT_NAME,
};
use smsguard_train::quantize::{export_int8_calibrated, synthetic_ids};

fn default_config() -> ArchConfig {
    ArchConfig {
        vocab_size: 3064,
        embed_dim: 32,
        filters: 96,
        kernel_widths: vec![3, 5, 7],
        seq_len: 128,
        labels: ["ham", "spam", "smishing", "promo", "fraud"]
            .map(String::from)
            .to_vec(),
        ngram: NgramConfig::default(),
        conv: ConvKind::Separable,
        head: HeadKind::Pooled,
    }
}

/// N-grams per message in the latency runs: about what a 100-character SMS yields.
const NGRAMS_PER_MESSAGE: usize = 400;

/// Fan-in scaled pseudo-random weights with the contract's names and shapes.
fn random_weights(cfg: &ArchConfig) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let mut state = 0x1234_5678_u64;
    let mut tensor = |name: String, shape: Vec<usize>, scale: f32| {
        let len = shape.iter().product();
        let values = (0..len)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                ((state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
            })
            .collect();
        (name, shape, values)
    };
    let (d, f, c) = (cfg.embed_dim, cfg.filters, cfg.num_labels());
    let mut weights = vec![tensor(
        "embedding.weight".into(),
        vec![cfg.vocab_size, d],
        1.0,
    )];
    for (i, &k) in cfg.kernel_widths.iter().enumerate() {
        weights.push(tensor(format!("convs.{i}.dw.weight"), vec![d, 1, k], 0.5));
        weights.push(tensor(format!("convs.{i}.dw.bias"), vec![d], 0.1));
        weights.push(tensor(format!("convs.{i}.pw.weight"), vec![f, d, 1], 0.2));
        weights.push(tensor(format!("convs.{i}.pw.bias"), vec![f], 0.1));
    }
    weights.push(tensor(
        "head.weight".into(),
        vec![c, cfg.pooled_width()],
        0.1,
    ));
    weights.push(tensor("head.bias".into(), vec![c], 0.1));
    weights.push(tensor("ngram.weight".into(), vec![cfg.ngram.buckets], 1.0));
    weights
}

fn ort_library() -> PathBuf {
    std::env::var_os("ORT_DYLIB_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.ort/libonnxruntime.so")
        })
}

/// Median and 90th percentile of per-call latency for batches of `batch` messages.
fn measure(
    session: &mut Session,
    inputs: &[Vec<i64>],
    batch: usize,
    iterations: usize,
) -> anyhow::Result<(Duration, Duration)> {
    let seq_len = inputs[0].len();
    let mut samples = Vec::with_capacity(iterations);
    for i in 0..iterations + iterations / 10 {
        let flat: Vec<i64> = (0..batch)
            .flat_map(|j| inputs[(i * batch + j) % inputs.len()].clone())
            .collect();
        let input = Tensor::from_array(([batch, seq_len], flat))?;
        let k = NGRAMS_PER_MESSAGE;
        let gram_ids: Vec<i64> = (0..batch * k)
            .map(|j| 1 + (j as i64 * 157) % 65_000)
            .collect();
        let gram_ids = Tensor::from_array(([batch, k], gram_ids))?;
        let gram_weights = Tensor::from_array(([batch, k], vec![0.05f32; batch * k]))?;
        let start = Instant::now();
        let outputs = session.run(ort::inputs![
            INPUT_NAME => input,
            NGRAM_IDS_NAME => gram_ids,
            NGRAM_WEIGHTS_NAME => gram_weights,
        ])?;
        let (_, logits) = outputs[OUTPUT_NAME].try_extract_tensor::<f32>()?;
        std::hint::black_box(logits);
        // The first tenth warms caches and ONNX Runtime's allocators.
        if i >= iterations / 10 {
            samples.push(start.elapsed());
        }
    }
    samples.sort();
    Ok((samples[samples.len() / 2], samples[samples.len() * 9 / 10]))
}

fn main() -> anyhow::Result<()> {
    let iterations: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(2000);
    let cfg = default_config();
    let weights = random_weights(&cfg);
    let calibration = synthetic_ids(&cfg, 64, 1);
    let models = [
        ("fp32", export_fp32(&cfg, &weights, &[])?),
        (
            "int8",
            export_int8_calibrated(&cfg, &weights, &[], &calibration)?,
        ),
    ];
    let environment = ort::init_from(ort_library())
        .context("loading ONNX Runtime (edge/provision-onnxruntime.sh provisions it)")?
        .build()?;
    let inputs = synthetic_ids(&cfg, 256, 2);
    println!(
        "config: V={} D={} F={} kernels={:?} L={} C={}",
        cfg.vocab_size,
        cfg.embed_dim,
        cfg.filters,
        cfg.kernel_widths,
        cfg.seq_len,
        cfg.num_labels()
    );
    for (precision, model) in &models {
        let mut session = Session::builder(&environment)?
            .with_intra_threads(1)
            .map_err(ort::Error::<()>::from)?
            .commit_from_memory(model)?;
        for batch in [1, 32] {
            let (median, p90) = measure(&mut session, &inputs, batch, iterations / batch.min(8))?;
            let per_message = |d: Duration| d.as_secs_f64() * 1e6 / batch as f64;
            println!(
                "{precision}: {} bytes, batch {batch:>2}: {:.1} µs/message median, {:.1} µs p90",
                model.len(),
                per_message(median),
                per_message(p90)
            );
        }
    }
    Ok(())
}
