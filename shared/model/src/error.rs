//! The one error type of the model crate: loading ONNX Runtime, checking and running a model.
//! Messages name files, keys, sizes and hashes, never message text.

use std::path::PathBuf;

use smsguard_core::features::FeatureError;

/// Script that downloads the ONNX Runtime library; named in every "runtime missing" error.
pub const PROVISION_SCRIPT: &str = "edge/provision-onnxruntime.sh";

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(
        "ONNX Runtime library not found (looked at: {}); run {PROVISION_SCRIPT} or set ORT_DYLIB_PATH",
        display_paths(.searched)
    )]
    RuntimeMissing { searched: Vec<PathBuf> },
    #[error("cannot load ONNX Runtime from {path}: {reason}; run {PROVISION_SCRIPT} or set ORT_DYLIB_PATH")]
    RuntimeLoad { path: PathBuf, reason: String },
    #[error("ONNX Runtime failed to {action}: {source}")]
    Ort {
        action: &'static str,
        #[source]
        source: ort::Error,
    },
    #[error("this build has no embedded model: edge/models/edge-int8.onnx and vocab.json were missing at compile time")]
    NoEmbeddedModel,
    #[error("sealed model does not open: {0}")]
    Container(#[from] smsguard_container::ContainerError),
    #[error("model metadata key {key:?} is {problem}")]
    Metadata { key: &'static str, problem: String },
    #[error("model was built for pipeline version {model}, this build runs version {expected}")]
    PipelineVersion { model: u32, expected: u32 },
    #[error("vocabulary sha256 {vocab} does not match the model's {model}")]
    VocabMismatch { model: String, vocab: String },
    #[error("vocabulary is unusable: {0}")]
    Vocab(#[from] FeatureError),
    #[error("model signature is not (ids, ngram_ids, ngram_weights) -> logits: {0}")]
    Signature(String),
    #[error("model label {0:?} is not in the label taxonomy")]
    UnknownLabel(String),
    #[error("message is empty after normalisation")]
    EmptyText,
    #[error("an input row has {ids} char ids, the model takes {seq_len}")]
    BatchShape { ids: usize, seq_len: usize },
    #[error("model returned {got} logits, expected {expected}")]
    OutputShape { got: usize, expected: usize },
    #[error("the inference session was poisoned by a panic in another thread")]
    Poisoned,
}

impl ModelError {
    pub(crate) fn ort(action: &'static str) -> impl FnOnce(ort::Error) -> ModelError {
        move |source| ModelError::Ort { action, source }
    }
}

fn display_paths(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "nothing".to_string();
    }
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
