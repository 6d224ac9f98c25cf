//! Training loop of the edge char-CNN: seeded shuffling and per-source subsampling, AdamW on a
//! class-weighted cross-entropy with linear warm-up and cosine decay of the learning rate,
//! per-epoch dev metrics per corpus, early stopping on the pooled dev loss that keeps the best
//! weights, and dev threshold picking.

use std::time::Instant;

use candle_core::{DType, Device, Tensor, D};
use candle_nn::optim::{AdamW, Optimizer, ParamsAdamW};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use smsguard_core::features::FeatureEncoder;
use smsguard_core::ngrams::{hash_ngrams, pad_batch, NgramConfig, NgramFeatures};
use smsguard_eval::metrics::{self, Observation};

use crate::config::ArchConfig;
use crate::data::{self, Dataset};
use crate::model::{BatchInput, CharCnn, NamedWeight, SplitMix64};
use crate::ngram_fit::NgramFit;

/// Optimisation settings (the architecture lives in [`ArchConfig`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    /// Epochs without dev improvement before stopping.
    pub patience: usize,
    pub seed: u64,
    /// Per epoch, at most this many examples of any one corpus (a fresh random subset each
    /// epoch), so a large single-class corpus cannot swamp the others.
    pub max_per_source: Option<usize>,
    /// Wall-clock budget; the running epoch stops early when it is spent.
    pub max_minutes: Option<f64>,
    /// Hard cap on optimiser steps (quick runs and tests).
    pub max_steps: Option<usize>,
    pub progress: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 12,
            batch_size: 64,
            learning_rate: 3e-3,
            weight_decay: 1e-4,
            patience: 3,
            seed: 20240617,
            max_per_source: Some(6000),
            max_minutes: None,
            max_steps: None,
            progress: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error("the {0} set is empty")]
    EmptySet(&'static str),
}

/// A dataset encoded once into char ids and hashed n-grams.
#[derive(Debug, Clone)]
pub struct EncodedSet {
    pub seq_len: usize,
    /// Row-major `[len, seq_len]`.
    pub ids: Vec<u32>,
    /// The n-gram features of every row.
    pub ngrams: Vec<NgramFeatures>,
    pub labels: Vec<u32>,
    pub sources: Vec<usize>,
    pub source_names: Vec<String>,
}

impl EncodedSet {
    pub fn encode(data: &Dataset, encoder: &FeatureEncoder, ngram: &NgramConfig) -> Self {
        let ids = data
            .examples
            .iter()
            .flat_map(|e| encoder.encode(&e.text))
            .map(|id| id as u32)
            .collect();
        let ngrams = data
            .examples
            .iter()
            .map(|e| hash_ngrams(&e.text, ngram))
            .collect();
        Self {
            seq_len: encoder.seq_len(),
            ids,
            ngrams,
            labels: data.examples.iter().map(|e| e.label as u32).collect(),
            sources: data.examples.iter().map(|e| e.source).collect(),
            source_names: data.sources.clone(),
        }
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The model inputs of the given rows: `[rows, seq_len]` ids, and n-grams padded (bucket 0,
    /// weight 0) to the longest row of the batch.
    pub fn batch(&self, rows: &[usize]) -> candle_core::Result<BatchInput> {
        let l = self.seq_len;
        let mut ids = Vec::with_capacity(rows.len() * l);
        for &r in rows {
            ids.extend_from_slice(&self.ids[r * l..(r + 1) * l]);
        }
        let grams: Vec<&NgramFeatures> = rows.iter().map(|&r| &self.ngrams[r]).collect();
        let padded = pad_batch(&grams);
        let n = rows.len();
        Ok(BatchInput {
            ids: Tensor::from_vec(ids, (n, l), &Device::Cpu)?,
            ngram_ids: Tensor::from_vec(padded.ids, (n, padded.width), &Device::Cpu)?,
            ngram_weights: Tensor::from_vec(padded.weights, (n, padded.width), &Device::Cpu)?,
        })
    }
}

/// Binary (ham vs any spam label) dev figures of one corpus, flagging at spam score >= 0.5.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CorpusMetrics {
    pub corpus: String,
    pub n: usize,
    pub accuracy: f64,
    pub spam_recall: f64,
    pub ham_fpr: f64,
    /// Accuracy of the arg-max over all edge labels.
    pub label_accuracy: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochStats {
    pub epoch: usize,
    pub steps: usize,
    pub train_loss: f64,
    /// Class-weighted cross-entropy over all dev messages pooled: the early-stopping
    /// criterion (smoother than accuracies of small corpora, which move by whole messages).
    #[serde(default)]
    pub dev_loss: f64,
    /// Mean binary dev accuracy over corpora (reported only).
    pub dev_score: f64,
    pub seconds: f64,
    pub dev: Vec<CorpusMetrics>,
}

/// Result of [`train`]: the weights of the lowest pooled dev loss and the history.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    pub weights: Vec<NamedWeight>,
    pub best_epoch: usize,
    pub history: Vec<EpochStats>,
    pub total_steps: usize,
}

/// Trains from a seeded initialisation; the same inputs and seed give the same weights. With a
/// fitted n-gram branch ([`crate::ngram_fit`]) the branch starts from it and stays frozen: only
/// the CNN learns; without one, everything trains jointly from zero n-gram weights.
pub fn train(
    cfg: &ArchConfig,
    train_set: &EncodedSet,
    dev_set: &EncodedSet,
    class_weights: &[f32],
    tc: &TrainConfig,
    ngram_branch: Option<&NgramFit>,
) -> Result<TrainOutcome, TrainError> {
    if train_set.is_empty() {
        return Err(TrainError::EmptySet("training"));
    }
    let started = Instant::now();
    let (model, mut optimizer) = model_and_optimizer(cfg, tc, ngram_branch)?;
    let mut rng = SplitMix64::new(tc.seed ^ 0x5348_5546_464c_4521);
    let weights = Tensor::new(class_weights, &Device::Cpu)?;
    let planned_steps = tc.epochs
        * epoch_rows(train_set, tc, &mut rng.clone())
            .len()
            .div_ceil(tc.batch_size);
    let planned_steps = tc
        .max_steps
        .map_or(planned_steps, |m| m.min(planned_steps))
        .max(1);

    // (dev loss, epoch, weights) of the best epoch so far.
    let mut best: Option<(f64, usize, Vec<NamedWeight>)> = None;
    let mut history = Vec::new();
    let mut steps = 0;
    for epoch in 1..=tc.epochs {
        let epoch_start = Instant::now();
        let rows = epoch_rows(train_set, tc, &mut rng);
        let pass = EpochPass {
            model: &model,
            train_set,
            weights: &weights,
            tc,
            planned_steps,
            started,
        };
        let train_loss = pass.run(&mut optimizer, &rows, epoch, &mut steps)?;
        let (observations, dev_loss) = predict_with_loss(&model, dev_set, class_weights)?;
        let dev = metrics_by_corpus(&observations, dev_set);
        let dev_score = mean_accuracy(&dev);
        let stats = EpochStats {
            epoch,
            steps,
            train_loss,
            dev_loss,
            dev_score,
            seconds: epoch_start.elapsed().as_secs_f64(),
            dev,
        };
        if tc.progress {
            report_epoch(&stats);
        }
        if best.as_ref().is_none_or(|(loss, _, _)| dev_loss < *loss) {
            best = Some((dev_loss, epoch, model.named_weights()?));
        }
        history.push(stats);
        let best_epoch = best.as_ref().map_or(epoch, |b| b.1);
        if out_of_budget(tc, steps, started) || epoch - best_epoch >= tc.patience {
            break;
        }
    }
    let (_, best_epoch, weights) = match best {
        Some(b) => b,
        None => (0.0, 0, model.named_weights()?),
    };
    Ok(TrainOutcome {
        weights,
        best_epoch,
        history,
        total_steps: steps,
    })
}

/// The model to train (with the fitted n-gram branch frozen in, when there is one) and the
/// optimiser over the variables that train.
fn model_and_optimizer(
    cfg: &ArchConfig,
    tc: &TrainConfig,
    ngram_branch: Option<&NgramFit>,
) -> Result<(CharCnn, AdamW), TrainError> {
    let model = CharCnn::new(cfg, tc.seed)?;
    let (model, trainable) = match ngram_branch {
        Some(fit) => {
            let model = model.with_ngram_branch(&fit.weights, fit.bias)?;
            let vars = model.cnn_vars();
            (model, vars)
        }
        None => {
            let vars = model.vars();
            (model, vars)
        }
    };
    let params = ParamsAdamW {
        lr: tc.learning_rate,
        weight_decay: tc.weight_decay,
        ..Default::default()
    };
    let optimizer = AdamW::new(trainable, params)?;
    Ok((model, optimizer))
}

/// What one pass over the training rows needs besides the optimiser and the step count.
struct EpochPass<'a> {
    model: &'a CharCnn,
    train_set: &'a EncodedSet,
    weights: &'a Tensor,
    tc: &'a TrainConfig,
    planned_steps: usize,
    started: Instant,
}

impl EpochPass<'_> {
    /// One epoch of optimiser steps over `rows` in batches (stopping early when the step or
    /// time budget runs out); returns the mean training loss.
    fn run(
        &self,
        optimizer: &mut AdamW,
        rows: &[usize],
        epoch: usize,
        steps: &mut usize,
    ) -> Result<f64, TrainError> {
        let tc = self.tc;
        let batches: Vec<&[usize]> = rows.chunks(tc.batch_size).collect();
        let bar = progress_bar(tc.progress, batches.len(), epoch);
        let mut loss_sum = 0.0;
        let mut loss_count = 0usize;
        for batch in batches {
            if out_of_budget(tc, *steps, self.started) {
                break;
            }
            let progress = schedule_progress(tc, *steps, self.planned_steps, self.started);
            optimizer.set_learning_rate(tc.learning_rate * lr_factor(progress));
            let loss = batch_loss(self.model, self.train_set, batch, self.weights)?;
            optimizer.backward_step(&loss)?;
            let loss = loss.to_scalar::<f32>()? as f64;
            loss_sum += loss;
            loss_count += 1;
            *steps += 1;
            bar.set_message(format!("loss {:.4}", loss_sum / loss_count as f64));
            bar.inc(1);
        }
        bar.finish();
        Ok(loss_sum / loss_count.max(1) as f64)
    }
}

/// One line per epoch on stderr: loss, mean dev accuracy and the worst corpus.
fn report_epoch(stats: &EpochStats) {
    let worst = stats
        .dev
        .iter()
        .min_by(|a, b| a.accuracy.total_cmp(&b.accuracy));
    eprintln!(
        "epoch {} ({} steps, {:.0} s): train loss {:.4}, dev loss {:.4}, mean dev accuracy {:.2}%{}",
        stats.epoch,
        stats.steps,
        stats.seconds,
        stats.train_loss,
        stats.dev_loss,
        100.0 * stats.dev_score,
        worst.map_or(String::new(), |w| format!(
            ", lowest {} {:.2}% (recall {:.2}%, ham FPR {:.2}%)",
            w.corpus,
            100.0 * w.accuracy,
            100.0 * w.spam_recall,
            100.0 * w.ham_fpr
        ))
    );
}

/// Share of the run spent warming the learning rate up from a tenth, which keeps AdamW's
/// first, poorly estimated steps from knocking the fresh embedding about.
const WARMUP_SHARE: f64 = 0.03;
/// The cosine decay ends at this fraction of the peak learning rate.
const FINAL_LR_FACTOR: f64 = 0.02;

/// Learning-rate multiplier at `progress` (0 to 1) through the run: linear warm-up, then a
/// cosine decay, so the last epochs (those the time budget will cut short) fine-tune.
pub fn lr_factor(progress: f64) -> f64 {
    let p = progress.clamp(0.0, 1.0);
    if p < WARMUP_SHARE {
        return 0.1 + 0.9 * p / WARMUP_SHARE;
    }
    let decay = (p - WARMUP_SHARE) / (1.0 - WARMUP_SHARE);
    FINAL_LR_FACTOR + (1.0 - FINAL_LR_FACTOR) * 0.5 * (1.0 + (std::f64::consts::PI * decay).cos())
}

/// Fraction of the run done, for the learning-rate schedule: by steps, or by the time budget when
/// that will end the run first.
fn schedule_progress(tc: &TrainConfig, steps: usize, planned: usize, started: Instant) -> f64 {
    let by_steps = steps as f64 / planned as f64;
    let by_time = tc
        .max_minutes
        .map_or(0.0, |m| started.elapsed().as_secs_f64() / (m * 60.0));
    by_steps.max(by_time)
}

fn out_of_budget(tc: &TrainConfig, steps: usize, started: Instant) -> bool {
    tc.max_steps.is_some_and(|m| steps >= m)
        || tc
            .max_minutes
            .is_some_and(|m| started.elapsed().as_secs_f64() >= m * 60.0)
}

/// Shuffled row indices of one epoch, each source capped at `max_per_source`.
fn epoch_rows(set: &EncodedSet, tc: &TrainConfig, rng: &mut SplitMix64) -> Vec<usize> {
    let mut by_source = vec![Vec::new(); set.source_names.len().max(1)];
    for (row, &source) in set.sources.iter().enumerate() {
        by_source[source].push(row);
    }
    let mut rows = Vec::with_capacity(set.len());
    for mut source_rows in by_source {
        if let Some(cap) = tc.max_per_source.filter(|&c| source_rows.len() > c) {
            rng.shuffle(&mut source_rows);
            source_rows.truncate(cap);
        }
        rows.extend(source_rows);
    }
    rng.shuffle(&mut rows);
    rows
}

fn progress_bar(visible: bool, len: usize, epoch: usize) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    let style = ProgressStyle::with_template(
        "epoch {prefix} [{elapsed_precise}] {bar:30} {pos}/{len} {msg} (eta {eta})",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_prefix(epoch.to_string());
    bar
}

fn batch_loss(
    model: &CharCnn,
    set: &EncodedSet,
    rows: &[usize],
    class_weights: &Tensor,
) -> candle_core::Result<Tensor> {
    let input = set.batch(rows)?;
    let targets: Vec<u32> = rows.iter().map(|&r| set.labels[r]).collect();
    let targets = Tensor::from_vec(targets, rows.len(), &Device::Cpu)?;
    weighted_cross_entropy(&model.forward(&input)?, &targets, class_weights)
}

/// Cross-entropy where each example counts with the weight of its true class:
/// `sum_i w[y_i] * -log p_i(y_i) / sum_i w[y_i]`.
pub fn weighted_cross_entropy(
    logits: &Tensor,
    targets: &Tensor,
    class_weights: &Tensor,
) -> candle_core::Result<Tensor> {
    let log_probs = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    let picked = log_probs.gather(&targets.unsqueeze(1)?, 1)?.squeeze(1)?;
    let w = class_weights.index_select(targets, 0)?;
    (picked * &w)?.sum_all()?.neg()? / w.sum_all()?.to_scalar::<f32>()? as f64
}

/// Class-weighted cross-entropy of `model` over the whole set (no gradient step).
pub fn mean_loss(
    model: &CharCnn,
    set: &EncodedSet,
    class_weights: &[f32],
) -> Result<f64, TrainError> {
    if set.is_empty() {
        return Err(TrainError::EmptySet("loss"));
    }
    let weights = Tensor::new(class_weights, &Device::Cpu)?;
    let rows: Vec<usize> = (0..set.len()).collect();
    let (mut weighted, mut total_weight) = (0.0, 0.0);
    for chunk in rows.chunks(512) {
        let batch_weight: f64 = chunk
            .iter()
            .map(|&r| f64::from(class_weights[set.labels[r] as usize]))
            .sum();
        let loss = batch_loss(model, set, chunk, &weights)?.to_scalar::<f32>()?;
        weighted += f64::from(loss) * batch_weight;
        total_weight += batch_weight;
    }
    Ok(weighted / total_weight)
}

/// Predictions for every row: arg-max label and spam score `1 - p(ham)`.
pub fn predict(model: &CharCnn, set: &EncodedSet) -> candle_core::Result<Vec<Observation>> {
    let rows: Vec<usize> = (0..set.len()).collect();
    let mut observations = Vec::with_capacity(set.len());
    for chunk in rows.chunks(512) {
        let logits = model.forward(&set.batch(chunk)?)?;
        observations.extend(observations_of(&logits, set, chunk)?);
    }
    Ok(observations)
}

/// [`predict`] plus the class-weighted cross-entropy of the whole set, from one forward pass.
pub fn predict_with_loss(
    model: &CharCnn,
    set: &EncodedSet,
    class_weights: &[f32],
) -> Result<(Vec<Observation>, f64), TrainError> {
    if set.is_empty() {
        return Err(TrainError::EmptySet("dev"));
    }
    let weights = Tensor::new(class_weights, &Device::Cpu)?;
    let rows: Vec<usize> = (0..set.len()).collect();
    let mut observations = Vec::with_capacity(set.len());
    let (mut weighted, mut total_weight) = (0.0, 0.0);
    for chunk in rows.chunks(512) {
        let logits = model.forward(&set.batch(chunk)?)?;
        let targets: Vec<u32> = chunk.iter().map(|&r| set.labels[r]).collect();
        let batch_weight: f64 = targets
            .iter()
            .map(|&t| f64::from(class_weights[t as usize]))
            .sum();
        let targets = Tensor::from_vec(targets, chunk.len(), &Device::Cpu)?;
        let loss = weighted_cross_entropy(&logits, &targets, &weights)?.to_scalar::<f32>()?;
        weighted += f64::from(loss) * batch_weight;
        total_weight += batch_weight;
        observations.extend(observations_of(&logits, set, chunk)?);
    }
    Ok((observations, weighted / total_weight))
}

fn observations_of(
    logits: &Tensor,
    set: &EncodedSet,
    rows: &[usize],
) -> candle_core::Result<Vec<Observation>> {
    let probs = candle_nn::ops::softmax(&logits.to_dtype(DType::F32)?, D::Minus1)?;
    Ok(rows
        .iter()
        .zip(probs.to_vec2::<f32>()?)
        .map(|(row, p)| Observation {
            truth: set.labels[*row] as usize,
            predicted: argmax(&p),
            spam_score: 1.0 - p[metrics::HAM],
        })
        .collect())
}

fn argmax(values: &[f32]) -> usize {
    values
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i)
}

/// Binary dev metrics per corpus of `set`.
pub fn evaluate_by_corpus(
    model: &CharCnn,
    set: &EncodedSet,
) -> candle_core::Result<Vec<CorpusMetrics>> {
    let observations = predict(model, set)?;
    Ok(metrics_by_corpus(&observations, set))
}

pub fn metrics_by_corpus(observations: &[Observation], set: &EncodedSet) -> Vec<CorpusMetrics> {
    set.source_names
        .iter()
        .enumerate()
        .filter_map(|(source, name)| {
            let obs = observations_of_source(observations, set, source);
            (!obs.is_empty()).then(|| corpus_metrics(name, &obs))
        })
        .collect()
}

/// Binary figures per corpus of `set` when flagging at `threshold`.
pub fn threshold_metrics_by_corpus(
    observations: &[Observation],
    set: &EncodedSet,
    threshold: f32,
) -> Vec<(String, metrics::ThresholdMetrics)> {
    set.source_names
        .iter()
        .enumerate()
        .map(|(source, name)| {
            let obs = observations_of_source(observations, set, source);
            (name.clone(), metrics::at_threshold(&obs, threshold))
        })
        .collect()
}

/// The observations of the messages of `set` that came from corpus number `source`.
fn observations_of_source(
    observations: &[Observation],
    set: &EncodedSet,
    source: usize,
) -> Vec<Observation> {
    observations
        .iter()
        .zip(&set.sources)
        .filter(|(_, &s)| s == source)
        .map(|(o, _)| *o)
        .collect()
}

fn corpus_metrics(name: &str, obs: &[Observation]) -> CorpusMetrics {
    let at_half = metrics::at_threshold(obs, 0.5);
    let correct = obs
        .iter()
        .filter(|o| o.is_spam() == (o.spam_score >= 0.5))
        .count();
    let label_correct = obs.iter().filter(|o| o.truth == o.predicted).count();
    CorpusMetrics {
        corpus: name.to_string(),
        n: obs.len(),
        accuracy: correct as f64 / obs.len() as f64,
        spam_recall: at_half.spam_recall,
        ham_fpr: at_half.ham_fpr,
        label_accuracy: label_correct as f64 / obs.len() as f64,
    }
}

fn mean_accuracy(metrics: &[CorpusMetrics]) -> f64 {
    if metrics.is_empty() {
        return 0.0;
    }
    metrics.iter().map(|m| m.accuracy).sum::<f64>() / metrics.len() as f64
}

/// Spam-score thresholds picked on dev ham of all corpora, with what they give on dev.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    pub fpr_0_5: metrics::ThresholdMetrics,
    pub fpr_0_1: metrics::ThresholdMetrics,
}

pub fn pick_thresholds(observations: &[Observation]) -> Thresholds {
    let (ham, _) = metrics::split_scores(observations);
    let at = |fpr| metrics::at_threshold(observations, metrics::threshold_for_fpr(&ham, fpr));
    Thresholds {
        fpr_0_5: at(0.005),
        fpr_0_1: at(0.001),
    }
}

/// Convenience: class weights of a dataset as a Vec (see [`data::class_weights`]).
pub fn class_weights_of(data: &Dataset) -> Vec<f32> {
    data::class_weights(data).to_vec()
}
