//! Training a private-mode model: multinomial logistic regression on the quantised features
//! (the very integers the phone will encrypt), then one global scale that maps the float weights
//! onto `-MAX_WEIGHT..=MAX_WEIGHT` (one scale for all classes, so the argmax survives).

use smsguard_private::params::MAX_WEIGHT;
use smsguard_private::{PrivateError, PrivateModel, PrivateShape};

/// One training example: sparse features `(bucket, value)` and its class.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainExample {
    pub features: Vec<(usize, i64)>,
    pub class: usize,
    /// Loss weight (e.g. to balance rare classes).
    pub weight: f32,
}

impl TrainExample {
    /// The sparse form of a dense feature vector.
    pub fn from_dense(features: &[i64], class: usize, weight: f32) -> Self {
        Self {
            features: features
                .iter()
                .enumerate()
                .filter(|(_, &v)| v != 0)
                .map(|(i, &v)| (i, v))
                .collect(),
            class,
            weight,
        }
    }
}

/// Optimiser settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainConfig {
    pub epochs: usize,
    pub learning_rate: f32,
    /// L2 penalty per step.
    pub l2: f32,
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 8,
            learning_rate: 0.05,
            l2: 1e-6,
            seed: 20261207,
        }
    }
}

/// Float weights, class-major like [`PrivateModel::weights`].
#[derive(Debug, Clone, PartialEq)]
pub struct FloatModel {
    pub shape: PrivateShape,
    pub weights: Vec<f32>,
}

impl FloatModel {
    pub fn scores(&self, features: &[(usize, i64)]) -> Vec<f32> {
        let d = self.shape.buckets;
        (0..self.shape.classes)
            .map(|k| {
                features
                    .iter()
                    .map(|&(i, v)| self.weights[k * d + i] * v as f32)
                    .sum()
            })
            .collect()
    }

    /// The integer model: every weight times one global scale (the largest |w| maps to
    /// `MAX_WEIGHT`), rounded. Clipping at a quantile instead was worse: the largest weights
    /// (biases and the strongest n-grams) are the ones that decide.
    pub fn quantise(&self, labels: Vec<String>) -> Result<PrivateModel, PrivateError> {
        let largest = self.weights.iter().fold(0f32, |m, w| m.max(w.abs()));
        let scale = if largest > 0.0 {
            MAX_WEIGHT as f32 / largest
        } else {
            0.0
        };
        let model = PrivateModel {
            shape: self.shape,
            labels,
            weights: self
                .weights
                .iter()
                .map(|w| ((w * scale).round() as i64).clamp(-MAX_WEIGHT, MAX_WEIGHT))
                .collect(),
        };
        model.validate()?;
        Ok(model)
    }
}

/// Plain SGD on the softmax cross-entropy, examples visited in a seeded shuffled order.
pub fn train(shape: PrivateShape, examples: &[TrainExample], config: &TrainConfig) -> FloatModel {
    let d = shape.buckets;
    let mut model = FloatModel {
        shape,
        weights: vec![0.0; shape.classes * d],
    };
    let mut order: Vec<usize> = (0..examples.len()).collect();
    let mut state = config.seed | 1;
    for epoch in 0..config.epochs {
        shuffle(&mut order, &mut state);
        let rate = config.learning_rate / (1.0 + epoch as f32);
        for &index in &order {
            let example = &examples[index];
            if example.class >= shape.classes {
                continue;
            }
            let probabilities = softmax(&model.scores(&example.features));
            for (k, p) in probabilities.iter().enumerate() {
                let target = if k == example.class { 1.0 } else { 0.0 };
                let step = rate * example.weight * (p - target);
                for &(i, v) in &example.features {
                    let w = &mut model.weights[k * d + i];
                    *w -= step * v as f32 + rate * config.l2 * *w;
                }
            }
        }
    }
    model
}

fn softmax(scores: &[f32]) -> Vec<f32> {
    let top = scores.iter().fold(f32::NEG_INFINITY, |m, &s| m.max(s));
    let exps: Vec<f32> = scores.iter().map(|s| (s - top).exp()).collect();
    let total: f32 = exps.iter().sum();
    exps.iter().map(|e| e / total).collect()
}

/// Fisher-Yates with xorshift64 (no dependency; the order only needs to be reproducible).
fn shuffle(order: &mut [usize], state: &mut u64) {
    for i in (1..order.len()).rev() {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        order.swap(i, (*state % (i as u64 + 1)) as usize);
    }
}

/// Index of the largest score (the first on ties).
pub fn argmax<T: PartialOrd + Copy>(scores: &[T]) -> usize {
    let mut best = 0;
    for (i, &s) in scores.iter().enumerate() {
        if s > scores[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_a_separable_toy_problem_and_keeps_it_after_quantisation() {
        let shape = PrivateShape {
            classes: 2,
            buckets: 8,
            max_n: 3,
            max_chars: 64,
        };
        let examples: Vec<TrainExample> = (0..40)
            .map(|i| {
                let class = i % 2;
                TrainExample {
                    features: vec![(0, 1), (1 + class, 3), (3 + i % 3, 1)],
                    class,
                    weight: 1.0,
                }
            })
            .collect();
        let float = train(shape, &examples, &TrainConfig::default());
        let int = float.quantise(vec!["a".into(), "b".into()]).unwrap();
        for example in &examples {
            assert_eq!(argmax(&float.scores(&example.features)), example.class);
            let mut dense = vec![0; 8];
            for &(i, v) in &example.features {
                dense[i] = v;
            }
            assert_eq!(argmax(&int.plain_scores(&dense).unwrap()), example.class);
        }
        assert!(int.weights.iter().any(|w| w.abs() == MAX_WEIGHT));
    }
}
