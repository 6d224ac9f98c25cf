//! Fits the cloud's multiclass model ([`smsguard_scoring::multiclass`]): softmax regression over
//! its hashed features with AdaGrad and lazy L2, then quantised to the int8 model it serves.
//! The scoring crate only loads and scores; this is the fitting half.

use smsguard_core::fingerprint::splitmix64;
use smsguard_scoring::multiclass::{
    softmax, Features, MulticlassModel, CLASSES, DEFAULT_BUCKET_BITS,
};

/// Hyper-parameters of [`train`].
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TrainConfig {
    pub bucket_bits: u32,
    pub epochs: usize,
    /// AdaGrad step size.
    pub learning_rate: f32,
    /// L2 strength, applied to the weights an example touches (lazy L2).
    pub l2: f32,
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            bucket_bits: DEFAULT_BUCKET_BITS,
            epochs: 6,
            learning_rate: 0.2,
            l2: 1e-6,
            seed: 20240617,
        }
    }
}

/// One training example.
#[derive(Debug, Clone)]
pub struct Example {
    pub features: Features,
    /// Index into [`smsguard_core::Label::ALL`].
    pub label: usize,
    pub weight: f32,
}

/// Float weights during training.
#[derive(Debug, Clone)]
pub struct FloatModel {
    pub bucket_bits: u32,
    pub weights: Vec<f32>,
    pub bias: [f32; CLASSES],
}

impl FloatModel {
    fn logits(&self, features: &Features) -> [f32; CLASSES] {
        let mut logits = self.bias;
        for &bucket in &features.buckets {
            let row = &self.weights[bucket as usize * CLASSES..][..CLASSES];
            for (l, w) in logits.iter_mut().zip(row) {
                *l += w * features.value;
            }
        }
        logits
    }

    pub fn quantize(&self) -> MulticlassModel {
        MulticlassModel::quantize(self.bucket_bits, &self.weights, self.bias)
    }
}

/// Trains softmax regression with AdaGrad and lazy L2, visiting examples in an order shuffled by
/// `config.seed` each epoch: the same inputs and config give the same weights.
pub fn train(examples: &[Example], config: &TrainConfig) -> FloatModel {
    let size = (1usize << config.bucket_bits) * CLASSES;
    let mut model = FloatModel {
        bucket_bits: config.bucket_bits,
        weights: vec![0.0; size],
        bias: [0.0; CLASSES],
    };
    let mut accum = vec![1e-8f32; size];
    let mut bias_accum = [1e-8f32; CLASSES];
    let mut order: Vec<usize> = (0..examples.len()).collect();
    let mut rng = config.seed;
    for _ in 0..config.epochs {
        shuffle(&mut order, &mut rng);
        for &i in &order {
            let example = &examples[i];
            let probs = softmax(&model.logits(&example.features));
            let grads: [f32; CLASSES] = std::array::from_fn(|c| {
                example.weight * (probs[c] - f32::from(u8::from(c == example.label)))
            });
            step(
                &mut model,
                &mut accum,
                &mut bias_accum,
                example,
                &grads,
                config,
            );
        }
    }
    model
}

fn step(
    model: &mut FloatModel,
    accum: &mut [f32],
    bias_accum: &mut [f32; CLASSES],
    example: &Example,
    grads: &[f32; CLASSES],
    config: &TrainConfig,
) {
    let value = example.features.value;
    for &bucket in &example.features.buckets {
        let at = bucket as usize * CLASSES;
        for c in 0..CLASSES {
            let w = &mut model.weights[at + c];
            let g = grads[c] * value + config.l2 * *w;
            accum[at + c] += g * g;
            *w -= config.learning_rate * g / accum[at + c].sqrt();
        }
    }
    for c in 0..CLASSES {
        bias_accum[c] += grads[c] * grads[c];
        model.bias[c] -= config.learning_rate * grads[c] / bias_accum[c].sqrt();
    }
}

/// Fisher-Yates with a SplitMix64 stream.
fn shuffle(items: &mut [usize], state: &mut u64) {
    for i in (1..items.len()).rev() {
        *state = state.wrapping_add(1);
        let j = (splitmix64(*state) % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}
