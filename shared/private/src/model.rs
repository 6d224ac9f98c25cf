//! The private-mode linear model: K classes over D hashed n-gram buckets, small integer weights,
//! and its plaintext scoring (the reference the encrypted scores must equal).

use serde::{Deserialize, Serialize};
use smsguard_core::ngrams::{hash_ngrams, NgramConfig};

use crate::params::{DEGREE, MAX_FEATURE, MAX_WEIGHT};
use crate::PrivateError;

/// Bucket 0 is never produced by the n-gram hash (it is padding), so private mode uses it as the
/// bias: its feature is always 1 and its weight is the class bias.
pub const BIAS_BUCKET: usize = 0;

/// Shape of the features: what the phone needs to featurise (no weights).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivateShape {
    /// Number of classes K.
    pub classes: usize,
    /// Number of buckets D (bucket 0 is the bias).
    pub buckets: usize,
    /// Longest character n-gram.
    pub max_n: usize,
    /// Characters of the normalised text that are read.
    pub max_chars: usize,
}

impl PrivateShape {
    /// The widest shape that packs into one polynomial: `K * D <= N`.
    pub fn for_classes(classes: usize) -> Self {
        Self {
            classes,
            buckets: DEGREE / classes.max(1),
            max_n: 4,
            max_chars: 256,
        }
    }

    /// Checks that every class fits its own block of one polynomial.
    pub fn validate(&self) -> Result<(), PrivateError> {
        if self.classes == 0 || self.buckets < 2 || self.classes * self.buckets > DEGREE {
            return Err(PrivateError::InvalidModel(format!(
                "{} classes x {} buckets do not pack into one polynomial of degree {DEGREE}",
                self.classes, self.buckets
            )));
        }
        self.ngram_config()
            .validate()
            .map_err(|e| PrivateError::InvalidModel(e.to_string()))
    }

    fn ngram_config(&self) -> NgramConfig {
        NgramConfig {
            buckets: self.buckets,
            max_n: self.max_n,
            max_chars: self.max_chars,
        }
    }

    /// Small integer features of a normalised text: the shared core's hashed character n-grams
    /// (sublinear tf, unit L2 norm) quantised to `0..=MAX_FEATURE`, with at least 1 for every
    /// bucket present, and the bias bucket at 1.
    pub fn features(&self, normalized_text: &str) -> Vec<i64> {
        let mut features = vec![0; self.buckets];
        let grams = hash_ngrams(normalized_text, &self.ngram_config());
        for (&id, &weight) in grams.ids.iter().zip(&grams.weights) {
            let quantised = (f64::from(weight) * MAX_FEATURE as f64).round() as i64;
            if let Some(slot) = usize::try_from(id).ok().and_then(|i| features.get_mut(i)) {
                *slot = quantised.clamp(1, MAX_FEATURE);
            }
        }
        features[BIAS_BUCKET] = 1;
        features
    }
}

/// A private-mode model: class-major integer weights (`weights[class * buckets + bucket]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivateModel {
    pub shape: PrivateShape,
    /// Class names, in score order.
    pub labels: Vec<String>,
    pub weights: Vec<i64>,
}

impl PrivateModel {
    /// Checks shape, label count, weight count and weight range.
    pub fn validate(&self) -> Result<(), PrivateError> {
        self.shape.validate()?;
        let expected = self.shape.classes * self.shape.buckets;
        if self.weights.len() != expected || self.labels.len() != self.shape.classes {
            return Err(PrivateError::InvalidModel(format!(
                "{} weights and {} labels for {} classes x {} buckets",
                self.weights.len(),
                self.labels.len(),
                self.shape.classes,
                self.shape.buckets
            )));
        }
        if let Some(w) = self.weights.iter().find(|w| w.abs() > MAX_WEIGHT) {
            return Err(PrivateError::InvalidModel(format!(
                "weight {w} outside +-{MAX_WEIGHT}"
            )));
        }
        Ok(())
    }

    /// Weights of one class.
    pub fn class_weights(&self, class: usize) -> &[i64] {
        let d = self.shape.buckets;
        &self.weights[class * d..(class + 1) * d]
    }

    /// The plaintext integer scores: what the encrypted computation must reproduce exactly.
    pub fn plain_scores(&self, features: &[i64]) -> Result<Vec<i64>, PrivateError> {
        check_features(&self.shape, features)?;
        Ok((0..self.shape.classes)
            .map(|k| {
                self.class_weights(k)
                    .iter()
                    .zip(features)
                    .map(|(w, f)| w * f)
                    .sum()
            })
            .collect())
    }
}

/// Refuses a feature vector of the wrong length or with values outside `0..=MAX_FEATURE`
/// (either could make a score wrap modulo t).
pub(crate) fn check_features(shape: &PrivateShape, features: &[i64]) -> Result<(), PrivateError> {
    if features.len() != shape.buckets {
        return Err(PrivateError::FeatureShape {
            expected: shape.buckets,
            actual: features.len(),
        });
    }
    if let Some(f) = features.iter().find(|f| !(0..=MAX_FEATURE).contains(*f)) {
        return Err(PrivateError::InvalidModel(format!(
            "feature value {f} outside 0..={MAX_FEATURE}"
        )));
    }
    Ok(())
}
