//! The edge char-CNN behind ONNX Runtime: loading from memory, metadata checks, inference and
//! the local verdict.

use std::sync::Mutex;

use ort::logging::LogLevel;
use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};
use ort::session::Session;
use ort::value::{TensorElementType, TensorRef, ValueType};
use smsguard_container::ContainerKey;
use smsguard_core::features::FeatureEncoder;
use smsguard_core::ngrams::{hash_ngrams, pad_batch, NgramFeatures};
use smsguard_core::{normalize, Label, Market, Normalized};

use crate::embedded::{self, EMBEDDED};
use crate::error::ModelError;
use crate::metadata::{Judged, ModelInfo};
use crate::runtime;

mod windows;

pub use windows::{WindowPlan, MAX_WINDOWS};

/// Name of the model input of char ids (`int64 [N, L]`).
pub const INPUT_NAME: &str = "ids";
/// Name of the model input of n-gram bucket ids (`int64 [N, K]`, 0 = padding).
pub const NGRAM_IDS_NAME: &str = "ngram_ids";
/// Name of the model input of n-gram weights (`f32 [N, K]`, 0 on padding).
pub const NGRAM_WEIGHTS_NAME: &str = "ngram_weights";
/// Name of the model output (`f32 [N, C]`).
pub const OUTPUT_NAME: &str = "logits";

/// The local action, defined once in the core (re-exported so `model::Action` keeps its path).
pub use smsguard_core::Action;

/// The local model's verdict on one message.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// Arg-max label of the model (its `labels[label_index]`).
    pub label: Label,
    pub label_index: usize,
    /// `1 - p(ham)`.
    pub spam_score: f32,
    /// Softmax over the model's labels, in `ModelInfo::labels` order.
    pub probabilities: Vec<f32>,
    pub action: Action,
    /// The market and thresholds `action` was decided at.
    pub judged: Judged,
    /// Windows the text was scored in (1 unless it is longer than the model reads at once; see
    /// [`WindowPlan`]); the prediction is the worst window's.
    pub windows: usize,
}

/// What the model reads of one message: `seq_len` char ids and the hashed n-grams.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInput {
    pub ids: Vec<i64>,
    pub ngrams: NgramFeatures,
}

/// A loaded, validated edge model with its feature encoder. Safe to share between threads;
/// inference calls are serialised (the model runs on one intra-op thread anyway).
#[derive(Debug)]
pub struct EdgeModel {
    session: Mutex<Session>,
    encoder: FeatureEncoder,
    info: ModelInfo,
    labels: Vec<Label>,
}

impl EdgeModel {
    /// Loads a model from its ONNX bytes and the vocabulary JSON it was trained with. Refuses a
    /// model for another pipeline version, another vocabulary or with the wrong signature.
    pub fn from_bytes(model: &[u8], vocab_json: &str) -> Result<EdgeModel, ModelError> {
        let session = build_session(model)?;
        check_signature(&session)?;
        let info = read_info(&session)?;
        let encoder = FeatureEncoder::from_json(vocab_json, info.seq_len)?;
        info.check_vocab(encoder.sha256())?;
        let labels = info
            .labels
            .iter()
            .map(|name| {
                name.parse()
                    .map_err(|_| ModelError::UnknownLabel(name.clone()))
            })
            .collect::<Result<_, _>>()?;
        Ok(EdgeModel {
            session: Mutex::new(session),
            encoder,
            info,
            labels,
        })
    }

    /// Opens a sealed model (a `smsguard-container`) into memory, loads it and zeroises the
    /// plaintext as soon as ONNX Runtime has built its session: the model never lies in the clear
    /// on disk, and not longer than the load in memory.
    pub fn from_container(
        container: &[u8],
        key: &ContainerKey,
        vocab_json: &str,
    ) -> Result<EdgeModel, ModelError> {
        let plaintext = smsguard_container::open(key, container)?;
        EdgeModel::from_bytes(&plaintext, vocab_json)
        // `plaintext` is dropped (and zeroised) here, after the session is built.
    }

    /// The shipped int8 model (`edge/models/edge-int8.onnx` + `vocab.json`), compiled in sealed
    /// (see `embedded`).
    pub fn embedded() -> Result<EdgeModel, ModelError> {
        let shipped = EMBEDDED.ok_or(ModelError::NoEmbeddedModel)?;
        EdgeModel::from_container(
            shipped.container,
            &embedded::container_key(),
            shipped.vocab_json,
        )
    }

    /// The key the library seals its own model with (rebuilt from its halves; see `embedded`),
    /// for sealing a model at rest where the host gives no key of its own. Obfuscation only.
    pub fn library_key() -> ContainerKey {
        embedded::container_key()
    }

    /// Lowercase hex SHA-256 of the plaintext model `embedded` loads, for naming its version
    /// without decrypting it; `None` in a build without a shipped model.
    pub fn embedded_sha256() -> Option<&'static str> {
        EMBEDDED.map(|shipped| shipped.model_sha256)
    }

    /// The model's metadata.
    pub fn metadata(&self) -> &ModelInfo {
        &self.info
    }

    pub fn encoder(&self) -> &FeatureEncoder {
        &self.encoder
    }

    /// The model input of an already normalised text.
    pub fn encode(&self, normalized_text: &str) -> ModelInput {
        ModelInput {
            ids: self.encoder.encode(normalized_text),
            ngrams: hash_ngrams(normalized_text, &self.info.ngram),
        }
    }

    /// Raw logits of a batch of inputs, row-major, `batch.len() * labels` values.
    pub fn logits(&self, batch: &[ModelInput]) -> Result<Vec<f32>, ModelError> {
        let seq_len = self.info.seq_len;
        if let Some(bad) = batch.iter().find(|row| row.ids.len() != seq_len) {
            return Err(ModelError::BatchShape {
                ids: bad.ids.len(),
                seq_len,
            });
        }
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let rows = batch.len();
        let ids: Vec<i64> = batch
            .iter()
            .flat_map(|row| row.ids.iter().copied())
            .collect();
        let grams: Vec<&NgramFeatures> = batch.iter().map(|row| &row.ngrams).collect();
        let padded = pad_batch(&grams);
        let width = padded.width;
        let ids = TensorRef::from_array_view(([rows, seq_len], ids.as_slice()))
            .map_err(ModelError::ort("wrap the input ids"))?;
        let ngram_ids = TensorRef::from_array_view(([rows, width], padded.ids.as_slice()))
            .map_err(ModelError::ort("wrap the n-gram ids"))?;
        let ngram_weights = TensorRef::from_array_view(([rows, width], padded.weights.as_slice()))
            .map_err(ModelError::ort("wrap the n-gram weights"))?;
        let mut session = self.session.lock().map_err(|_| ModelError::Poisoned)?;
        let outputs = session
            .run(ort::inputs![
                INPUT_NAME => ids,
                NGRAM_IDS_NAME => ngram_ids,
                NGRAM_WEIGHTS_NAME => ngram_weights,
            ])
            .map_err(ModelError::ort("run the model"))?;
        let output = outputs
            .get(OUTPUT_NAME)
            .ok_or_else(|| ModelError::Signature(format!("no {OUTPUT_NAME:?} output")))?;
        let (_, logits) = output
            .try_extract_tensor::<f32>()
            .map_err(ModelError::ort("read the logits"))?;
        let expected = rows * self.info.labels.len();
        if logits.len() != expected {
            return Err(ModelError::OutputShape {
                got: logits.len(),
                expected,
            });
        }
        Ok(logits.to_vec())
    }

    /// Normalises, encodes and classifies one message.
    pub fn classify(&self, text: &str) -> Result<Prediction, ModelError> {
        self.classify_normalized(&normalize(text))
    }

    /// Runs one message through normalisation and the model, so that the tables normalisation
    /// builds on first use and ONNX Runtime's first-run allocations are paid now (at engine
    /// open, 11–16 ms in a release build) rather than by the first SMS. The result is discarded.
    pub fn warm_up(&self) {
        let _ = self.classify(smsguard_core::normalize::WARM_UP_TEXT);
    }

    /// Classifies an already normalised message (the edge normalises once and reuses the result
    /// for fingerprints and rules). A text longer than the model reads at once is scored in
    /// windows (see [`WindowPlan`]) and judged by the one with the highest spam score; a text
    /// that fits is one window, exactly the single pass.
    pub fn classify_normalized(&self, normalized: &Normalized) -> Result<Prediction, ModelError> {
        self.classify_in_market(normalized, None)
    }

    /// Classifies an already normalised message at the thresholds of `market` (the device's
    /// configured market; `None`: the message's dominant script decides), in windows as
    /// [`EdgeModel::classify_normalized`] says.
    pub fn classify_in_market(
        &self,
        normalized: &Normalized,
        market: Option<Market>,
    ) -> Result<Prediction, ModelError> {
        let text = normalized.text.as_str();
        if text.trim().is_empty() {
            return Err(ModelError::EmptyText);
        }
        let market = market.unwrap_or_else(|| Market::of_text(text));
        let batch: Vec<ModelInput> = self
            .window_plan()
            .starts(text)
            .into_iter()
            .map(|start| self.encode(&text[start..]))
            .collect();
        let logits = self.logits(&batch)?;
        let worst = logits
            .chunks_exact(self.labels.len())
            .map(|row| self.prediction(row, market))
            .reduce(|worst, next| {
                if next.spam_score > worst.spam_score {
                    next
                } else {
                    worst
                }
            })
            .ok_or(ModelError::OutputShape {
                got: 0,
                expected: self.labels.len(),
            })?;
        Ok(Prediction {
            windows: batch.len(),
            ..worst
        })
    }

    /// How this model's reach splits a long text into windows.
    pub fn window_plan(&self) -> WindowPlan {
        WindowPlan::new(self.info.seq_len, self.info.ngram.max_chars)
    }

    /// Turns one row of logits into a verdict at `market`'s thresholds.
    fn prediction(&self, logits: &[f32], market: Market) -> Prediction {
        let probabilities = softmax(logits);
        let label_index = arg_max(&probabilities);
        let spam_score = (1.0 - probabilities[0]).clamp(0.0, 1.0);
        let judged = self.info.operating_point(market);
        Prediction {
            label: self.labels[label_index],
            label_index,
            spam_score,
            action: Action::for_score(spam_score, &judged.point),
            probabilities,
            judged,
            windows: 1,
        }
    }
}

fn build_session(model: &[u8]) -> Result<Session, ModelError> {
    let environment = runtime::environment()?;
    let configure = |e: ort::Error<SessionBuilder>| ModelError::Ort {
        action: "configure the session",
        source: e.into(),
    };
    let builder =
        Session::builder(environment).map_err(ModelError::ort("create a session builder"))?;
    let builder = builder
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .map_err(configure)?;
    // Failures come back as errors; ONNX Runtime's own stderr logging would only add noise.
    let builder = builder.with_log_level(LogLevel::Fatal).map_err(configure)?;
    // One thread per inference: the phone runs many small requests, not one big one.
    let builder = builder.with_intra_threads(1).map_err(configure)?;
    let mut builder = builder.with_inter_threads(1).map_err(configure)?;
    builder
        .commit_from_memory(model)
        .map_err(ModelError::ort("load the model"))
}

/// The model must take exactly `ids: int64`, `ngram_ids: int64`, `ngram_weights: f32` and
/// produce `logits: f32`.
fn check_signature(session: &Session) -> Result<(), ModelError> {
    let expected = [
        (INPUT_NAME, TensorElementType::Int64),
        (NGRAM_IDS_NAME, TensorElementType::Int64),
        (NGRAM_WEIGHTS_NAME, TensorElementType::Float32),
    ];
    let inputs = session.inputs();
    let inputs_ok = inputs.len() == expected.len()
        && expected.iter().all(|(name, ty)| {
            inputs
                .iter()
                .any(|i| i.name() == *name && is_tensor_of(i.dtype(), *ty))
        });
    if !inputs_ok {
        let names: Vec<&str> = inputs.iter().map(|i| i.name()).collect();
        return Err(ModelError::Signature(format!(
            "inputs are {names:?}, expected int64 {INPUT_NAME:?}, int64 {NGRAM_IDS_NAME:?} and \
             f32 {NGRAM_WEIGHTS_NAME:?}"
        )));
    }
    let output = session.outputs().iter().find(|o| o.name() == OUTPUT_NAME);
    if !output.is_some_and(|o| is_tensor_of(o.dtype(), TensorElementType::Float32)) {
        return Err(ModelError::Signature(format!(
            "no f32 output named {OUTPUT_NAME:?}"
        )));
    }
    Ok(())
}

fn is_tensor_of(dtype: &ValueType, expected: TensorElementType) -> bool {
    matches!(dtype, ValueType::Tensor { ty, .. } if *ty == expected)
}

fn read_info(session: &Session) -> Result<ModelInfo, ModelError> {
    let metadata = session
        .metadata()
        .map_err(ModelError::ort("read the model metadata"))?;
    ModelInfo::parse(|key| metadata.custom(key))
}

/// Numerically stable softmax.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|&l| (l - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.iter().map(|e| e / sum).collect()
}

/// Index of the largest value (the first on ties); 0 for an empty slice.
pub fn arg_max(values: &[f32]) -> usize {
    values
        .iter()
        .enumerate()
        .fold(0, |best, (i, &v)| if v > values[best] { i } else { best })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::tests::sample_props;

    #[test]
    fn softmax_is_stable_and_sums_to_one() {
        let p = softmax(&[1000.0, 1000.0, f32::NEG_INFINITY]);
        assert!((p[0] - 0.5).abs() < 1e-6 && (p[1] - 0.5).abs() < 1e-6 && p[2] == 0.0);
        let q = softmax(&[2.0, 0.0]);
        assert!((q.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(q[0] > q[1]);
    }

    #[test]
    fn arg_max_prefers_first_on_ties() {
        assert_eq!(arg_max(&[0.2, 0.5, 0.5]), 1);
        assert_eq!(arg_max(&[0.9, 0.1]), 0);
    }

    #[test]
    fn actions_follow_thresholds() {
        let props = sample_props();
        let info = ModelInfo::parse(|k| props.get(k).cloned()).unwrap();
        let pooled = info.pooled_point();
        assert_eq!(Action::for_score(0.1, &pooled), Action::Allow);
        assert_eq!(Action::for_score(0.6, &pooled), Action::Tag);
        assert_eq!(Action::for_score(0.95, &pooled), Action::Quarantine);
        assert_eq!(
            serde_json::to_string(&Action::Quarantine).unwrap(),
            "\"quarantine\""
        );
    }
}
