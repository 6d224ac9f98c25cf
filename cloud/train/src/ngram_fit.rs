//! Fits the edge model's n-gram branch on its own before the CNN trains: an L2-regularised
//! logistic regression of "any spam label" vs ham over the hashed n-grams, by AdaGrad on sparse
//! features (a few seconds for all corpora). The L2 strength is picked by the dev loss.
//!
//! Why first and alone: the branch is the model's TF-IDF-like linear part, and a linear model
//! over sparse n-grams wants many cheap passes and explicit regularisation, not the few Adam
//! epochs the CNN can afford on a 2-core machine (Adam moves every rare n-gram's weight by a
//! full step, which overfits). The CNN then trains with these weights frozen and learns what
//! the linear part misses, plus the category among the spam labels.

use serde::{Deserialize, Serialize};

use crate::model::SplitMix64;
use crate::trainer::EncodedSet;

/// Settings of the n-gram fit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NgramFitConfig {
    pub epochs: usize,
    /// AdaGrad step size.
    pub learning_rate: f32,
    /// Candidate L2 strengths; the one with the lowest dev loss wins.
    pub l2_candidates: Vec<f32>,
    /// Weigh ham and spam examples so that both classes count equally in total (instead of the
    /// caller's class weights).
    #[serde(default)]
    pub balanced: bool,
    pub seed: u64,
}

impl Default for NgramFitConfig {
    fn default() -> Self {
        Self {
            epochs: 8,
            learning_rate: 0.2,
            l2_candidates: vec![1e-6, 3e-6, 1e-5, 3e-5],
            balanced: false,
            seed: 20240617,
        }
    }
}

/// The fitted branch: a weight per bucket, the bias, and how each L2 candidate did on dev.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NgramFit {
    #[serde(skip)]
    pub weights: Vec<f32>,
    pub bias: f32,
    pub l2: f32,
    /// `(l2, weighted dev log-loss, dev accuracy at p = 0.5)` per candidate.
    pub candidates: Vec<(f32, f64, f64)>,
}

impl NgramFit {
    /// The fitted branch's spam probability of row `row` of `set`.
    pub fn probability(&self, set: &EncodedSet, row: usize) -> f32 {
        sigmoid(score(set, row, &self.weights, self.bias))
    }
}

/// Fits one model per L2 candidate and keeps the best by weighted dev log-loss. Examples weigh
/// `class_weights[label]`, as in the CNN's loss. `buckets` is the size of the weight table.
pub fn fit(
    train: &EncodedSet,
    dev: &EncodedSet,
    class_weights: &[f32],
    buckets: usize,
    config: &NgramFitConfig,
) -> NgramFit {
    let balanced;
    let class_weights = if config.balanced {
        balanced = binary_balanced_weights(train, class_weights.len());
        &balanced[..]
    } else {
        class_weights
    };
    let mut best = NgramFit {
        weights: vec![0.0; buckets],
        bias: 0.0,
        l2: 0.0,
        candidates: Vec::new(),
    };
    let mut best_loss = f64::INFINITY;
    for &l2 in &config.l2_candidates {
        let (weights, bias) = fit_one(train, class_weights, buckets, l2, config);
        let (loss, accuracy) = dev_loss(dev, class_weights, &weights, bias);
        best.candidates.push((l2, loss, accuracy));
        if loss < best_loss {
            (best_loss, best.weights, best.bias, best.l2) = (loss, weights, bias, l2);
        }
    }
    best
}

/// Per-label weights under which all ham and all spam examples of `train` weigh the same.
fn binary_balanced_weights(train: &EncodedSet, labels: usize) -> Vec<f32> {
    let ham = train.labels.iter().filter(|&&l| l == 0).count().max(1) as f32;
    let spam = (train.len() as f32 - ham).max(1.0);
    let n = train.len() as f32;
    (0..labels)
        .map(|l| {
            if l == 0 {
                n / (2.0 * ham)
            } else {
                n / (2.0 * spam)
            }
        })
        .collect()
}

fn is_spam(label: u32) -> f32 {
    if label == 0 {
        0.0
    } else {
        1.0
    }
}

fn score(set: &EncodedSet, row: usize, weights: &[f32], bias: f32) -> f32 {
    let features = &set.ngrams[row];
    bias + features
        .ids
        .iter()
        .zip(&features.weights)
        .map(|(&id, &w)| weights[id as usize] * w)
        .sum::<f32>()
}

fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

/// AdaGrad on the weighted logistic loss with L2 applied to the weights a step touches.
fn fit_one(
    train: &EncodedSet,
    class_weights: &[f32],
    buckets: usize,
    l2: f32,
    config: &NgramFitConfig,
) -> (Vec<f32>, f32) {
    let mut weights = vec![0f32; buckets];
    let mut squared = vec![1e-8f32; buckets];
    let (mut bias, mut bias_squared) = (0f32, 1e-8f32);
    let mut rng = SplitMix64::new(config.seed);
    let mut rows: Vec<usize> = (0..train.len()).collect();
    for _ in 0..config.epochs {
        rng.shuffle(&mut rows);
        for &row in &rows {
            let label = train.labels[row];
            let sample_weight = class_weights[label as usize];
            let error =
                (sigmoid(score(train, row, &weights, bias)) - is_spam(label)) * sample_weight;
            let features = &train.ngrams[row];
            for (&id, &x) in features.ids.iter().zip(&features.weights) {
                let i = id as usize;
                if i == 0 {
                    continue;
                }
                let gradient = error * x + l2 * weights[i];
                squared[i] += gradient * gradient;
                weights[i] -= config.learning_rate * gradient / squared[i].sqrt();
            }
            bias_squared += error * error;
            bias -= config.learning_rate * error / bias_squared.sqrt();
        }
    }
    (weights, bias)
}

/// Weighted log-loss and accuracy (at p = 0.5) on `dev`.
fn dev_loss(dev: &EncodedSet, class_weights: &[f32], weights: &[f32], bias: f32) -> (f64, f64) {
    let (mut loss, mut total, mut correct) = (0f64, 0f64, 0usize);
    for row in 0..dev.len() {
        let label = dev.labels[row];
        let w = f64::from(class_weights[label as usize]);
        let p = f64::from(sigmoid(score(dev, row, weights, bias))).clamp(1e-7, 1.0 - 1e-7);
        let y = f64::from(is_spam(label));
        loss -= w * (y * p.ln() + (1.0 - y) * (1.0 - p).ln());
        total += w;
        correct += usize::from((p >= 0.5) == (y == 1.0));
    }
    (
        loss / total.max(1e-12),
        correct as f64 / dev.len().max(1) as f64,
    )
}

/// Binary dev accuracy (p >= 0.5) of the fitted branch alone, per corpus of `dev`.
pub fn accuracy_by_corpus(dev: &EncodedSet, fit: &NgramFit) -> Vec<(String, f64)> {
    let mut correct = vec![0usize; dev.source_names.len()];
    let mut total = vec![0usize; dev.source_names.len()];
    for row in 0..dev.len() {
        let source = dev.sources[row];
        let spam = fit.probability(dev, row) >= 0.5;
        correct[source] += usize::from(spam == (dev.labels[row] != 0));
        total[source] += 1;
    }
    dev.source_names
        .iter()
        .zip(correct.iter().zip(&total))
        .filter(|(_, (_, &n))| n > 0)
        .map(|(name, (&c, &n))| (name.clone(), c as f64 / n as f64))
        .collect()
}
