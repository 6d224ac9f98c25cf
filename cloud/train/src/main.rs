//! `smsguard-train`: trains the edge char-CNN and writes the shipped model files.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use smsguard_core::features::FeatureEncoder;
use smsguard_core::ngrams::NgramConfig;
use smsguard_core::{model_meta, PIPELINE_VERSION};
use smsguard_eval::metrics::ThresholdMetrics;
use smsguard_train::config::{ArchConfig, ConvKind, HeadKind};
use smsguard_train::data::{self, Dataset, Split, EDGE_LABELS};
use smsguard_train::manifest::{FileEntry, Manifest, SourceCount};
use smsguard_train::model::CharCnn;
use smsguard_train::ngram_fit::{self, NgramFitConfig};
use smsguard_train::trainer::{self, CorpusMetrics, EncodedSet, Thresholds, TrainConfig};
use smsguard_train::vocab::{self, VocabConfig};
use smsguard_train::{market_thresholds, onnx_export, quantize, requantize};

#[derive(Debug, Parser)]
#[command(version, about = "Train and export the smsguard edge and cloud models")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Train the edge char-CNN on train splits, tune on dev splits, export ONNX fp32 + int8.
    Train(TrainArgs),
    /// Evaluate an edge model on corpora through ONNX Runtime and write a report.
    Eval(smsguard_train::eval::EvalArgs),
    /// Train the cloud multiclass model and fit the fusion on dev; write cloud/models.
    TrainCloud(smsguard_train::cloud_models::CloudTrainArgs),
    /// Leave one corpus out: fit every cloud model on the other corpora, score the held-out
    /// corpus's dev split; beside the pooled raw-text SVM and the shipped edge model.
    Loco(smsguard_train::loco::LocoArgs),
    /// Train the TF-IDF + linear SVM reference baseline (per corpus or pooled) and print its
    /// binary dev figures.
    Baseline(smsguard_train::baseline_cli::BaselineArgs),
    /// Export the int8 model again from a model folder's fp32 ONNX file (no training): the
    /// float weights, metadata and thresholds stay; edge-int8.onnx and its manifest entry change.
    Requantize(smsguard_train::requantize::RequantizeArgs),
    /// Pick each market's (zh, en) tag and quarantine thresholds on its own dev ham with the
    /// shipped int8 model; write them into both ONNX files' metadata and the manifest.
    MarketThresholds(smsguard_train::market_thresholds::MarketThresholdArgs),
    /// Train the private-mode linear model (integer weights, scored under homomorphic
    /// encryption) on the train splits; report dev accuracy and check encrypted exactness.
    TrainPrivate(smsguard_train::private_model::PrivateTrainArgs),
    /// Fit, on dev only, how the phone fuses its local score with the private model's decrypted
    /// scores (per market: weights, tag and quarantine thresholds); write the published head.
    FitPrivateHead(smsguard_train::private_head_fit::PrivateHeadArgs),
}

#[derive(Debug, Args)]
struct TrainArgs {
    /// Corpus folders, folders of corpora or train .tsv files (default: every corpus of the
    /// datasets folder). Their dev.tsv files are used for early stopping and thresholds.
    #[arg(long = "data")]
    data: Vec<PathBuf>,
    /// Output folder of the model files.
    #[arg(long, default_value = "edge/models")]
    out: PathBuf,
    #[arg(long, default_value_t = 12)]
    epochs: usize,
    #[arg(long, default_value_t = 20240617)]
    seed: u64,
    /// Wall-clock budget for the training loop.
    #[arg(long)]
    max_minutes: Option<f64>,
    /// Stop after this many optimiser steps (quick runs).
    #[arg(long)]
    max_steps: Option<usize>,
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    #[arg(long, default_value_t = 3e-3)]
    lr: f64,
    #[arg(long, default_value_t = 1e-4)]
    weight_decay: f64,
    #[arg(long, default_value_t = 3)]
    patience: usize,
    /// Per-epoch cap of examples drawn from any one corpus (0 = no cap).
    #[arg(long, default_value_t = 6000)]
    max_per_source: usize,
    #[arg(long, default_value_t = 32)]
    embed_dim: usize,
    #[arg(long, default_value_t = 64)]
    filters: usize,
    #[arg(long, value_delimiter = ',', default_values_t = vec![3, 5, 7])]
    kernels: Vec<usize>,
    #[arg(long, default_value_t = 128)]
    seq_len: usize,
    /// Convolution of each branch: depthwise-separable (shipped) or one full conv.
    #[arg(long, value_enum, default_value_t = ConvKind::Separable)]
    conv: ConvKind,
    /// Input of the output layer: global max pooling (shipped) or every position (dense).
    #[arg(long, value_enum, default_value_t = HeadKind::Pooled)]
    head: HeadKind,
    #[arg(long, default_value_t = 3000)]
    max_chars: usize,
    #[arg(long, default_value_t = 3)]
    min_count: usize,
    #[arg(long, default_value_t = 64)]
    hash_buckets: usize,
    /// Buckets of the hashed n-gram branch (one int8 weight each in the shipped model).
    #[arg(long, default_value_t = NgramConfig::default().buckets)]
    ngram_buckets: usize,
    /// Longest character n-gram of the n-gram branch.
    #[arg(long, default_value_t = NgramConfig::default().max_n)]
    ngram_max_n: usize,
    /// Plain cross-entropy (every example counts once) instead of class weights that lift the
    /// rarer labels: better calibrated spam scores, so better accuracy at the 0.5 cut.
    #[arg(long)]
    unweighted: bool,
    /// Passes of the n-gram branch's fit.
    #[arg(long, default_value_t = NgramFitConfig::default().epochs)]
    ngram_epochs: usize,
    /// Fit the n-gram branch with ham and spam weighing the same in total.
    #[arg(long)]
    ngram_balanced: bool,
    /// Train the n-gram branch jointly with the CNN by Adam, instead of fitting it first as a
    /// regularised logistic regression and freezing it.
    #[arg(long)]
    joint_ngrams: bool,
    /// Characters of a message the n-gram branch reads.
    #[arg(long, default_value_t = NgramConfig::default().max_chars)]
    ngram_max_chars: usize,
    /// Dev messages used to calibrate int8 activation ranges.
    #[arg(long, default_value_t = 1024)]
    calibration_samples: usize,
    #[command(flatten)]
    handwritten: data::HandwrittenArgs,
    /// Only the n-gram branch (and the vocabulary) learns from the `--handwritten` rows; the CNN
    /// trains on the corpora alone. The linear branch learns a type from a few hundred rows
    /// without moving the rest of the model; the CNN, trained on them too, overfits the repeated
    /// rows and raises its false alarms on the corpora (README, "Hand-written rows in training").
    #[arg(long)]
    handwritten_ngram_only: bool,
    /// Hide the progress bars.
    #[arg(long)]
    quiet: bool,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Train(args) => run_train(args),
        Command::Eval(args) => smsguard_train::eval::run(args),
        Command::TrainCloud(args) => smsguard_train::cloud_models::run(args),
        Command::Loco(args) => smsguard_train::loco::run(args),
        Command::Baseline(args) => smsguard_train::baseline_cli::run(args),
        Command::Requantize(args) => smsguard_train::requantize::run(args),
        Command::MarketThresholds(args) => smsguard_train::market_thresholds::run(args),
        Command::TrainPrivate(args) => smsguard_train::private_model::run(args),
        Command::FitPrivateHead(args) => smsguard_train::private_head_fit::run(args),
    }
}

fn run_train(args: TrainArgs) -> Result<()> {
    let started = Instant::now();
    let command_line = std::env::args().collect::<Vec<_>>().join(" ");
    let (mut train_data, dev_data) = load_data(&args.data)?;
    let corpora_only = args.handwritten_ngram_only.then(|| train_data.clone());
    args.handwritten.add_to(&mut train_data)?;
    let vocab_cfg = VocabConfig {
        min_count: args.min_count,
        max_chars: args.max_chars,
        hash_buckets: args.hash_buckets,
    };
    let vocab_json = vocab::train_vocab(
        train_data.examples.iter().map(|e| e.text.as_str()),
        &vocab_cfg,
    )?;
    let encoder = FeatureEncoder::from_json(&vocab_json, args.seq_len)?;
    let arch = arch_config(&args, &encoder);
    arch.ngram.validate()?;
    eprintln!(
        "vocab: {} known chars + {} buckets = {} ids",
        encoder.known_chars(),
        encoder.hash_buckets(),
        encoder.vocab_size()
    );
    let train_set = EncodedSet::encode(&train_data, &encoder, &arch.ngram);
    let corpora_set = corpora_only
        .as_ref()
        .map(|data| EncodedSet::encode(data, &encoder, &arch.ngram));
    let cnn_train_set = corpora_set.as_ref().unwrap_or(&train_set);
    let dev_set = EncodedSet::encode(&dev_data, &encoder, &arch.ngram);
    let class_weights = if args.unweighted {
        vec![1.0; EDGE_LABELS.len()]
    } else {
        trainer::class_weights_of(&train_data)
    };
    eprintln!("class weights {EDGE_LABELS:?}: {class_weights:?}");
    let tc = train_config(&args);
    let ngram_fit = (!args.joint_ngrams)
        .then(|| fit_ngram_branch(&args, &train_set, &dev_set, &class_weights, &arch));
    let outcome = trainer::train(
        &arch,
        cnn_train_set,
        &dev_set,
        &class_weights,
        &tc,
        ngram_fit.as_ref(),
    )?;
    let model = CharCnn::from_weights(&arch, &outcome.weights)?;
    let observations = trainer::predict(&model, &dev_set)?;
    let dev_metrics = trainer::metrics_by_corpus(&observations, &dev_set);
    let thresholds = trainer::pick_thresholds(&observations);
    let market_picks =
        market_thresholds::pick(&observations, &market_thresholds::markets_of(&dev_data));
    let at_fpr_0_5 =
        trainer::threshold_metrics_by_corpus(&observations, &dev_set, thresholds.fpr_0_5.threshold);
    print_summary(&dev_metrics, &thresholds, &at_fpr_0_5, outcome.best_epoch);

    let mut metadata = metadata(&arch, &encoder, &dev_metrics, &thresholds, &command_line)?;
    metadata.push((
        model_meta::MARKET_THRESHOLDS.to_string(),
        market_thresholds::metadata_value(&market_picks)?,
    ));
    let calibration = requantize::calibration_ids(&dev_set, args.calibration_samples, args.seed);
    let fp32 = onnx_export::export_fp32(&arch, &outcome.weights, &metadata)?;
    let int8 = quantize::export_int8_calibrated(&arch, &outcome.weights, &metadata, &calibration)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let files = [
        ("edge-fp32.onnx", fp32.as_slice()),
        ("edge-int8.onnx", int8.as_slice()),
        ("vocab.json", vocab_json.as_bytes()),
    ];
    for (name, bytes) in files {
        write_file(&args.out.join(name), bytes)?;
    }
    let manifest = Manifest {
        pipeline_version: PIPELINE_VERSION,
        files: files.iter().map(|(n, b)| FileEntry::of(n, b)).collect(),
        arch: arch.clone(),
        training: tc,
        parameter_count: model.parameter_count(),
        vocab_sha256: encoder.sha256().to_string(),
        hash_buckets: encoder.hash_buckets(),
        known_chars: encoder.known_chars(),
        dev_metrics,
        thresholds,
        dev_at_threshold_fpr_0_5: at_fpr_0_5,
        ngram_fit,
        best_epoch: outcome.best_epoch,
        history: outcome.history,
        train_sources: source_counts(&train_data),
        duplicates_removed: train_data.duplicates_removed,
        command_line,
        wall_seconds: started.elapsed().as_secs_f64(),
        market_thresholds: market_picks,
    };
    manifest.write(&args.out.join("manifest.json"))?;
    eprintln!(
        "wrote {} (fp32 {} B, int8 {} B) in {:.0} s",
        args.out.display(),
        fp32.len(),
        int8.len(),
        manifest.wall_seconds
    );
    Ok(())
}

/// The char-CNN's shape: the encoder's vocabulary, the command's sizes, the edge labels.
fn arch_config(args: &TrainArgs, encoder: &FeatureEncoder) -> ArchConfig {
    ArchConfig {
        vocab_size: encoder.vocab_size(),
        embed_dim: args.embed_dim,
        filters: args.filters,
        kernel_widths: args.kernels.clone(),
        seq_len: args.seq_len,
        labels: EDGE_LABELS.iter().map(|l| l.to_string()).collect(),
        ngram: NgramConfig {
            buckets: args.ngram_buckets,
            max_n: args.ngram_max_n,
            max_chars: args.ngram_max_chars,
        },
        conv: args.conv,
        head: args.head,
    }
}

/// Fits the n-gram branch alone (before the CNN, unless trained jointly), printing each L2
/// candidate's dev figures and the kept branch's accuracy per corpus.
fn fit_ngram_branch(
    args: &TrainArgs,
    train_set: &EncodedSet,
    dev_set: &EncodedSet,
    class_weights: &[f32],
    arch: &ArchConfig,
) -> ngram_fit::NgramFit {
    let fit_config = NgramFitConfig {
        seed: args.seed,
        epochs: args.ngram_epochs,
        balanced: args.ngram_balanced,
        ..NgramFitConfig::default()
    };
    let fit = ngram_fit::fit(
        train_set,
        dev_set,
        class_weights,
        arch.ngram.buckets,
        &fit_config,
    );
    for (l2, loss, accuracy) in &fit.candidates {
        eprintln!(
            "n-gram branch, l2 {l2:e}: dev loss {loss:.4}, dev accuracy {:.2}%",
            100.0 * accuracy
        );
    }
    eprintln!("n-gram branch: kept l2 {:e}", fit.l2);
    for (corpus, accuracy) in ngram_fit::accuracy_by_corpus(dev_set, &fit) {
        eprintln!(
            "n-gram branch alone: {corpus} dev accuracy {:.2}%",
            100.0 * accuracy
        );
    }
    fit
}

fn load_data(inputs: &[PathBuf]) -> Result<(Dataset, Dataset)> {
    let train_files = data::split_files(inputs, Split::Train)?;
    let dev_files = data::split_files(inputs, Split::Dev)?;
    let train = data::load(&train_files, true)?;
    let dev = data::load(&dev_files, false)?;
    eprintln!(
        "train: {} examples from {} files ({} duplicates removed, {} unusable lines); dev: {} examples",
        train.examples.len(),
        train_files.len(),
        train.duplicates_removed,
        train.skipped_lines,
        dev.examples.len()
    );
    Ok((train, dev))
}

fn train_config(args: &TrainArgs) -> TrainConfig {
    TrainConfig {
        epochs: args.epochs,
        batch_size: args.batch_size,
        learning_rate: args.lr,
        weight_decay: args.weight_decay,
        patience: args.patience,
        seed: args.seed,
        max_per_source: (args.max_per_source > 0).then_some(args.max_per_source),
        max_minutes: args.max_minutes,
        max_steps: args.max_steps,
        progress: !args.quiet,
    }
}

fn metadata(
    arch: &ArchConfig,
    encoder: &FeatureEncoder,
    dev_metrics: &[CorpusMetrics],
    thresholds: &Thresholds,
    command_line: &str,
) -> Result<Vec<(String, String)>> {
    let pairs = [
        (model_meta::PIPELINE_VERSION, PIPELINE_VERSION.to_string()),
        (model_meta::VOCAB_SHA256, encoder.sha256().to_string()),
        (model_meta::LABELS, serde_json::to_string(&arch.labels)?),
        (model_meta::SEQ_LEN, arch.seq_len.to_string()),
        (
            model_meta::NGRAM_CONFIG,
            serde_json::to_string(&arch.ngram)?,
        ),
        (
            model_meta::THRESHOLD_FPR_0_5,
            thresholds.fpr_0_5.threshold.to_string(),
        ),
        (
            model_meta::THRESHOLD_FPR_0_1,
            thresholds.fpr_0_1.threshold.to_string(),
        ),
        (model_meta::TRAINING_COMMAND, command_line.to_string()),
        (model_meta::DEV_METRICS, serde_json::to_string(dev_metrics)?),
    ];
    Ok(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

fn source_counts(data: &Dataset) -> Vec<SourceCount> {
    data.sources
        .iter()
        .zip(data.source_sizes())
        .map(|(corpus, examples)| SourceCount {
            corpus: corpus.clone(),
            examples,
        })
        .collect()
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

fn print_summary(
    metrics: &[CorpusMetrics],
    thresholds: &Thresholds,
    at_fpr_0_5: &[(String, ThresholdMetrics)],
    best_epoch: usize,
) {
    println!("best epoch {best_epoch}; dev metrics (binary, spam score >= 0.5):");
    println!(
        "{:<32} {:>6} {:>9} {:>9} {:>9} {:>9}",
        "corpus", "n", "accuracy", "recall", "ham_fpr", "label_acc"
    );
    for m in metrics {
        println!(
            "{:<32} {:>6} {:>8.2}% {:>8.2}% {:>8.2}% {:>8.2}%",
            m.corpus,
            m.n,
            100.0 * m.accuracy,
            100.0 * m.spam_recall,
            100.0 * m.ham_fpr,
            100.0 * m.label_accuracy
        );
    }
    for (name, t) in [("0.5%", &thresholds.fpr_0_5), ("0.1%", &thresholds.fpr_0_1)] {
        println!(
            "threshold for ham FPR <= {name}: {:.4} (all dev: recall {:.2}%, FPR {:.3}%)",
            t.threshold,
            100.0 * t.spam_recall,
            100.0 * t.ham_fpr
        );
    }
    println!("per corpus at the ham-FPR-0.5 % threshold:");
    for (corpus, t) in at_fpr_0_5 {
        println!(
            "{corpus:<32} recall {:>7.2}%  ham_fpr {:>6.2}%",
            100.0 * t.spam_recall,
            100.0 * t.ham_fpr
        );
    }
}
