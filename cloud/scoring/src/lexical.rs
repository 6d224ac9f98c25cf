//! The lexical scorer: one pooled linear model over TF-IDF character n-grams, calibrated to a
//! probability. It is the reference the issue measures every model against (a linear SVM on char
//! 1–5-grams), promoted to a scorer so fusion starts from it instead of competing with it.
//!
//! # Features
//! For each view of the message the model reads ([`Views`]): the character 1..=5-grams of
//! [`smsguard_core::ngrams::hash_ngrams`] (inside space-padded words; sublinear tf, unit norm).
//! The normalised view reads `normalize(..).text` (obfuscation folded, URLs and numbers masked);
//! the raw view reads the message's surface form (as written, lower-cased, with zero-width
//! characters and full-width letters folded: [`surface_form`]), whose grams are moved to other buckets by
//! [`raw_bucket`] so the two views do not share weights. Each view is scaled by
//! `1 / sqrt(views)`, then every bucket by its idf, and the row is scaled to unit L2 norm.
//!
//! # Score
//! `margin = w · x + bias` (trained as a squared-hinge SVM by the trainer), `p = sigmoid(a ·
//! margin + b)` with `a`, `b` fitted by Platt scaling on messages the SVM did not train on.
//!
//! # Model file (`lexical.bin`, little endian)
//! `b"SGLX"`, format `u32`, pipeline version `u32`, bucket bits `u32`, views `u32` (bit 0
//! normalised, bit 1 raw), max n `u32`, then `f32`s: weight scale, bias, Platt `a`, Platt `b`,
//! idf minimum, idf step; then `2^bits` idf codes `u8` (`idf = min + step · code`) and `2^bits`
//! weights `i16` (`w = scale · q`).

use smsguard_core::fingerprint::splitmix64;
use smsguard_core::ngrams::{hash_ngrams, NgramConfig};
use smsguard_core::normalize::surface_form;
use smsguard_core::PIPELINE_VERSION;

pub use crate::calibration::Platt;
use crate::{MessageContext, ModelScore, Scorer, ScoringError};

/// Name of the scorer (and of its fusion input).
pub const NAME: &str = "lexical";
/// File name under `cloud/models`.
pub const FILE_NAME: &str = "lexical.bin";
/// Version of the binary layout and of the raw view's text: 2 reads the surface form
/// ([`surface_form`]), 1 read the lower-cased original (its weights do not fit the new view).
pub const FORMAT_VERSION: u32 = 2;
/// Default number of hash bits: 2^20 buckets, 3 MB of file.
pub const DEFAULT_BUCKET_BITS: u32 = 20;
/// Longest character n-gram.
pub const MAX_N: usize = 5;
/// Characters of a message that are read (all of any SMS).
const MAX_CHARS: usize = 4096;
const MAGIC: &[u8; 4] = b"SGLX";
const HEADER_LEN: usize = 4 + 5 * 4 + 6 * 4;
/// Mixed into the raw view's bucket ids so they land apart from the normalised view's.
const RAW_SALT: u64 = 0x5241_575f_5649_4557;

#[cfg(smsguard_embedded_lexical)]
const EMBEDDED: Option<&[u8]> = Some(include_bytes!("../../models/lexical.bin"));
#[cfg(not(smsguard_embedded_lexical))]
const EMBEDDED: Option<&[u8]> = None;

/// Errors of loading a model file. None quotes message text.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LexicalError {
    #[error("no lexical model was embedded at build time (cloud/models/lexical.bin missing)")]
    NoEmbeddedModel,
    #[error("not a lexical model file ({0})")]
    BadFile(String),
    #[error("model was built for pipeline version {found}, this code is version {expected}")]
    PipelineVersion { found: u32, expected: u32 },
}

/// Which texts the features are read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Views {
    pub normalized: bool,
    pub raw: bool,
}

impl Views {
    pub const BOTH: Views = Views {
        normalized: true,
        raw: true,
    };
    /// The shipped choice: the multiclass model already reads the normalised text, and on dev
    /// the fusion caught more spam at every market's TAG threshold with a raw-only lexical model
    /// (UCI 90.6 % against 85.9 % with both views; `train-cloud --lexical-both-views`).
    pub const RAW: Views = Views {
        normalized: false,
        raw: true,
    };

    fn bits(self) -> u32 {
        u32::from(self.normalized) | (u32::from(self.raw) << 1)
    }

    fn from_bits(bits: u32) -> Option<Self> {
        let views = Views {
            normalized: bits & 1 != 0,
            raw: bits & 2 != 0,
        };
        (bits & !3 == 0 && views.count() > 0).then_some(views)
    }

    fn count(self) -> usize {
        usize::from(self.normalized) + usize::from(self.raw)
    }
}

/// One sparse row: increasing bucket ids and their values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SparseRow {
    pub ids: Vec<u32>,
    pub values: Vec<f32>,
}

impl SparseRow {
    pub fn squared_norm(&self) -> f64 {
        self.values.iter().map(|&v| f64::from(v).powi(2)).sum()
    }
}

/// The bucket a raw-view gram with normalised-view bucket `id` goes to (never 0, the padding).
pub fn raw_bucket(id: u32, buckets: u32) -> u32 {
    1 + (splitmix64(u64::from(id) ^ RAW_SALT) % u64::from(buckets - 1)) as u32
}

/// The tf part of a row (before idf): the views' n-gram weights, merged by bucket.
pub fn term_frequencies(normalized: &str, original: &str, views: Views, bits: u32) -> SparseRow {
    let buckets = 1u32 << bits;
    let config = NgramConfig {
        buckets: buckets as usize,
        max_n: MAX_N,
        max_chars: MAX_CHARS,
    };
    let scale = 1.0 / (views.count() as f32).sqrt();
    let mut pairs: Vec<(u32, f32)> = Vec::new();
    if views.normalized {
        let grams = hash_ngrams(normalized, &config);
        pairs.extend(
            grams
                .ids
                .iter()
                .zip(&grams.weights)
                .map(|(&id, &w)| (id as u32, w * scale)),
        );
    }
    if views.raw {
        let grams = hash_ngrams(&surface_form(original), &config);
        pairs.extend(
            grams
                .ids
                .iter()
                .zip(&grams.weights)
                .map(|(&id, &w)| (raw_bucket(id as u32, buckets), w * scale)),
        );
    }
    pairs.sort_unstable_by_key(|&(id, _)| id);
    let mut row = SparseRow::default();
    for (id, value) in pairs {
        if row.ids.last() == Some(&id) {
            *row.values.last_mut().unwrap_or(&mut 0.0) += value;
        } else {
            row.ids.push(id);
            row.values.push(value);
        }
    }
    row
}

/// Scales a tf row by idf and to unit L2 norm, in place.
pub fn apply_idf(row: &mut SparseRow, idf: impl Fn(u32) -> f32) {
    for (value, &id) in row.values.iter_mut().zip(&row.ids) {
        *value *= idf(id);
    }
    let norm = row.squared_norm().sqrt() as f32;
    if norm > 0.0 {
        row.values.iter_mut().for_each(|v| *v /= norm);
    }
}

/// The shipped (quantised) model; the `lexical` [`Scorer`].
#[derive(Debug, Clone, PartialEq)]
pub struct LexicalModel {
    bits: u32,
    views: Views,
    weight_scale: f32,
    bias: f32,
    platt: Platt,
    idf_min: f32,
    idf_step: f32,
    idf: Vec<u8>,
    weights: Vec<i16>,
}

impl LexicalModel {
    /// The model compiled in from `cloud/models/lexical.bin`.
    pub fn embedded() -> Result<Self, LexicalError> {
        Self::from_bytes(EMBEDDED.ok_or(LexicalError::NoEmbeddedModel)?)
    }

    /// Quantises a trained model: idf to 8 bits over its range, weights to 16 bits (max |w|
    /// maps to 32767).
    pub fn quantize(
        bits: u32,
        views: Views,
        idf: &[f32],
        weights: &[f64],
        bias: f64,
        platt: Platt,
    ) -> Self {
        let idf_min = idf.iter().copied().fold(f32::INFINITY, f32::min).min(1.0);
        let idf_max = idf.iter().copied().fold(idf_min, f32::max);
        let idf_step = ((idf_max - idf_min) / 255.0).max(1e-6);
        let max_abs = weights.iter().fold(0f64, |m, w| m.max(w.abs()));
        let weight_scale = if max_abs > 0.0 {
            max_abs / 32767.0
        } else {
            1.0
        };
        LexicalModel {
            bits,
            views,
            weight_scale: weight_scale as f32,
            bias: bias as f32,
            platt,
            idf_min,
            idf_step,
            idf: idf
                .iter()
                .map(|&v| ((v - idf_min) / idf_step).round().clamp(0.0, 255.0) as u8)
                .collect(),
            weights: weights
                .iter()
                .map(|&w| (w / weight_scale).round().clamp(-32767.0, 32767.0) as i16)
                .collect(),
        }
    }

    /// The same model with another calibration.
    pub fn with_platt(mut self, platt: Platt) -> Self {
        self.platt = platt;
        self
    }

    pub fn bucket_bits(&self) -> u32 {
        self.bits
    }

    pub fn views(&self) -> Views {
        self.views
    }

    pub fn platt(&self) -> Platt {
        self.platt
    }

    /// The model's TF-IDF row of a message (its normalised text and its original).
    pub fn row(&self, normalized: &str, original: &str) -> SparseRow {
        let mut row = term_frequencies(normalized, original, self.views, self.bits);
        apply_idf(&mut row, |id| {
            self.idf_min + self.idf_step * f32::from(self.idf[id as usize])
        });
        row
    }

    /// The uncalibrated linear margin (positive: spam side of the SVM).
    pub fn margin(&self, normalized: &str, original: &str) -> f32 {
        let row = self.row(normalized, original);
        let dot: f32 = row
            .ids
            .iter()
            .zip(&row.values)
            .map(|(&id, &v)| f32::from(self.weights[id as usize]) * v)
            .sum();
        dot * self.weight_scale + self.bias
    }

    /// The calibrated spam probability.
    pub fn probability(&self, normalized: &str, original: &str) -> f32 {
        self.platt.probability(self.margin(normalized, original))
    }

    /// The model file bytes (layout in the module docs).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + 3 * self.idf.len());
        out.extend_from_slice(MAGIC);
        for v in [
            FORMAT_VERSION,
            PIPELINE_VERSION,
            self.bits,
            self.views.bits(),
            MAX_N as u32,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for v in [
            self.weight_scale,
            self.bias,
            self.platt.a,
            self.platt.b,
            self.idf_min,
            self.idf_step,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&self.idf);
        for w in &self.weights {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out
    }

    /// Parses and checks a model file.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, LexicalError> {
        let bad = |why: &str| LexicalError::BadFile(why.to_owned());
        if bytes.len() < HEADER_LEN || &bytes[..4] != MAGIC {
            return Err(bad("missing SGLX header"));
        }
        let word = |i: usize| {
            let at = 4 + 4 * i;
            [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]
        };
        let (format, pipeline) = (u32::from_le_bytes(word(0)), u32::from_le_bytes(word(1)));
        if format != FORMAT_VERSION {
            return Err(bad(&format!("format {format}, expected {FORMAT_VERSION}")));
        }
        if pipeline != PIPELINE_VERSION {
            return Err(LexicalError::PipelineVersion {
                found: pipeline,
                expected: PIPELINE_VERSION,
            });
        }
        let bits = u32::from_le_bytes(word(2));
        let views = Views::from_bits(u32::from_le_bytes(word(3))).ok_or(bad("unknown views"))?;
        if u32::from_le_bytes(word(4)) != MAX_N as u32 {
            return Err(bad("another n-gram length"));
        }
        if !(2..=26).contains(&bits) {
            return Err(bad(&format!("{bits} bucket bits")));
        }
        let float = |i: usize| f32::from_le_bytes(word(5 + i));
        let buckets = 1usize << bits;
        let body = &bytes[HEADER_LEN..];
        if body.len() != 3 * buckets {
            return Err(bad(&format!(
                "{} body bytes, expected {}",
                body.len(),
                3 * buckets
            )));
        }
        let (idf, weights) = body.split_at(buckets);
        let model = LexicalModel {
            bits,
            views,
            weight_scale: float(0),
            bias: float(1),
            platt: Platt {
                a: float(2),
                b: float(3),
            },
            idf_min: float(4),
            idf_step: float(5),
            idf: idf.to_vec(),
            weights: weights
                .chunks_exact(2)
                .map(|p| i16::from_le_bytes([p[0], p[1]]))
                .collect(),
        };
        let floats = [
            model.weight_scale,
            model.bias,
            model.platt.a,
            model.platt.b,
            model.idf_min,
            model.idf_step,
        ];
        if floats.iter().any(|f| !f.is_finite()) {
            return Err(bad("a non-finite parameter"));
        }
        Ok(model)
    }
}

impl Scorer for LexicalModel {
    fn name(&self) -> &'static str {
        NAME
    }

    fn score(&self, msg: &MessageContext<'_>) -> Result<ModelScore, ScoringError> {
        let normalized = msg.normalized;
        let margin = self.margin(&normalized.text, &normalized.original);
        let p = self.platt.probability(margin);
        Ok(ModelScore::new(
            NAME,
            p,
            format!("char n-gram linear model: margin {margin:.2}, calibrated {p:.3}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_merge_views_and_have_unit_norm() {
        // 2^20 buckets: no two of these grams collide, so the two views' halves add up to 1.
        let row = term_frequencies("free prize", "FREE prize", Views::BOTH, 20);
        assert!(row.ids.windows(2).all(|w| w[0] < w[1]));
        assert!(
            (row.squared_norm() - 1.0).abs() < 1e-3,
            "two unit views / sqrt 2"
        );
        let normalized_only = Views {
            normalized: true,
            raw: false,
        };
        let one = term_frequencies("free prize", "FREE prize", normalized_only, 20);
        assert!(
            one.ids.len() < row.ids.len(),
            "the raw view adds its own buckets"
        );
        let mut weighted = row.clone();
        apply_idf(&mut weighted, |id| if id % 2 == 0 { 3.0 } else { 1.0 });
        assert!((weighted.squared_norm() - 1.0).abs() < 1e-5);
    }

    #[test]
    fn file_round_trips_and_refuses_damage() {
        let bits = 8;
        let idf: Vec<f32> = (0..256).map(|i| 1.0 + i as f32 / 64.0).collect();
        let weights: Vec<f64> = (0..256).map(|i| (i as f64 - 128.0) / 100.0).collect();
        let platt = Platt { a: 2.0, b: -0.5 };
        let model = LexicalModel::quantize(bits, Views::BOTH, &idf, &weights, 0.25, platt);
        let bytes = model.to_bytes();
        assert_eq!(bytes.len(), HEADER_LEN + 3 * 256);
        assert_eq!(LexicalModel::from_bytes(&bytes), Ok(model.clone()));
        let p = model.probability("free prize", "free prize");
        assert!((0.0..=1.0).contains(&p));
        assert!(LexicalModel::from_bytes(&bytes[..bytes.len() - 1]).is_err());
        let mut wrong = bytes.clone();
        wrong[0] = b'X';
        assert!(LexicalModel::from_bytes(&wrong).is_err());
    }
}
