//! Measures the whole edge path per message (normalise + encode + int8 inference, one thread)
//! over a labelled TSV file and prints p50/p99 latency, model load time and peak RSS.
//!
//! `cargo run --release -p smsguard-edge --bin edge-bench -- --data FILE.tsv [--model F --vocab F]`

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use smsguard_core::normalize;
use smsguard_edge::{init_runtime, EdgeModel};
use smsguard_eval::perf::{peak_rss_kib, LatencySummary};

#[derive(Debug, Parser)]
#[command(about = "Per-message latency of the edge path")]
struct Args {
    /// Labelled `label<TAB>text` file whose messages are timed (labels are ignored).
    #[arg(long)]
    data: PathBuf,
    /// ONNX model instead of the embedded int8 model (needs --vocab).
    #[arg(long, requires = "vocab")]
    model: Option<PathBuf>,
    #[arg(long, requires = "model")]
    vocab: Option<PathBuf>,
    /// Untimed passes over the first messages before measuring.
    #[arg(long, default_value_t = 200)]
    warmup: usize,
    /// Timed passes over the whole file.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let corpus = smsguard_corpus::read_tsv(&args.data)?;
    let texts: Vec<&str> = corpus.records.iter().map(|r| r.text.as_str()).collect();
    if texts.is_empty() {
        bail!("{} has no usable messages", args.data.display());
    }
    let started = Instant::now();
    init_runtime()?;
    let runtime_ms = started.elapsed().as_secs_f64() * 1e3;
    let started = Instant::now();
    let model = load(&args)?;
    let load_ms = started.elapsed().as_secs_f64() * 1e3;

    let started = Instant::now();
    model.warm_up();
    let warm_up_ms = started.elapsed().as_secs_f64() * 1e3;
    let started = Instant::now();
    let _ = model.classify(texts[0]);
    let first_ms = started.elapsed().as_secs_f64() * 1e3;
    for text in texts.iter().cycle().take(args.warmup) {
        let _ = model.classify(text);
    }
    let (total, normalize_only) = time_messages(&model, &texts, args.rounds);
    let summary = LatencySummary::from_durations(&total);
    let normalize_summary = LatencySummary::from_durations(&normalize_only);
    println!(
        "data: {} ({} messages x {} rounds)",
        args.data.display(),
        texts.len(),
        args.rounds
    );
    println!(
        "model: {} ({})",
        model_name(&args),
        model.metadata().precision
    );
    println!(
        "runtime init: {runtime_ms:.1} ms, model load: {load_ms:.1} ms, warm-up: {warm_up_ms:.1} ms, first message after it: {first_ms:.3} ms"
    );
    println!(
        "whole path per message: p50 {:.1} us, p90 {:.1} us, p99 {:.1} us, max {:.1} us, mean {:.1} us",
        summary.p50_us, summary.p90_us, summary.p99_us, summary.max_us, summary.mean_us
    );
    println!(
        "  of which normalise: p50 {:.1} us, p99 {:.1} us",
        normalize_summary.p50_us, normalize_summary.p99_us
    );
    match peak_rss_kib() {
        Some(kib) => println!("peak RSS: {:.1} MiB", kib as f64 / 1024.0),
        None => println!("peak RSS: unavailable"),
    }
    Ok(())
}

fn load(args: &Args) -> Result<EdgeModel> {
    match (&args.model, &args.vocab) {
        (Some(model), Some(vocab)) => {
            let bytes =
                std::fs::read(model).with_context(|| format!("reading {}", model.display()))?;
            let vocab_json = std::fs::read_to_string(vocab)
                .with_context(|| format!("reading {}", vocab.display()))?;
            Ok(EdgeModel::from_bytes(&bytes, &vocab_json)?)
        }
        _ => Ok(EdgeModel::embedded()?),
    }
}

fn model_name(args: &Args) -> String {
    args.model
        .as_ref()
        .map_or_else(|| "embedded".to_string(), |p| p.display().to_string())
}

/// Per-message durations of the whole path, and of normalisation alone (timed separately so
/// the two figures come from the same messages).
fn time_messages(
    model: &EdgeModel,
    texts: &[&str],
    rounds: usize,
) -> (Vec<Duration>, Vec<Duration>) {
    let mut total = Vec::with_capacity(texts.len() * rounds);
    let mut normalize_only = Vec::with_capacity(texts.len() * rounds);
    for _ in 0..rounds {
        for text in texts {
            let started = Instant::now();
            let normalized = normalize(text);
            let normalized_at = started.elapsed();
            if model.classify_normalized(&normalized).is_ok() {
                total.push(started.elapsed());
                normalize_only.push(normalized_at);
            }
        }
    }
    (total, normalize_only)
}
