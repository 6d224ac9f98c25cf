//! The architecture of the edge char-CNN, shared by the candle model (training), the ONNX
//! exporter and the manifest. Tensor names below are the contract between them.
//!
//! ```text
//! ids [N, L] int64
//!  -> embedding.weight [V, D]                      gather        -> [N, L, D] -> transpose -> [N, D, L]
//!  -> for each branch i with kernel width k = kernel_widths[i]:
//!       convs.{i}.dw.weight [D, 1, k], convs.{i}.dw.bias [D]   depthwise conv1d (groups = D, pad k/2)
//!       convs.{i}.pw.weight [F, D, 1], convs.{i}.pw.bias [F]   pointwise conv1d
//!       ReLU, global max pool over L                           -> [N, F]
//!  -> concat branches                                          -> [N, B*F]
//!  -> head.weight [C, B*F], head.bias [C]                      linear -> cnn logits [N, C]
//!
//! ngram_ids [N, K] int64, ngram_weights [N, K] f32             (smsguard_core::ngrams)
//!  -> ngram.weight [G]                                         gather -> [N, K]
//!  -> times ngram_weights, sum over K                          -> spam evidence s [N, 1]
//!  -> logits = cnn logits + s on every label but ham           -> logits [N, C]
//! ```
//! The n-gram branch is a linear model over hashed character n-grams (what a TF-IDF linear
//! classifier sees); adding its score to every spam label's logit moves only the ham-vs-spam
//! odds and leaves the choice among spam labels to the CNN. Bucket 0 is padding (weight 0 input).
//! Output name: `logits`; input names: `ids`, `ngram_ids`, `ngram_weights`. Metadata keys: `smsguard_core::model_meta`. `C` = number of labels (first label is `ham`).

use serde::{Deserialize, Serialize};
use smsguard_core::ngrams::NgramConfig;

/// Hyper-parameters that fix the shapes of every tensor of the edge model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchConfig {
    /// Vocabulary size V, including padding, placeholders, known characters and hash buckets.
    pub vocab_size: usize,
    /// Embedding width D (<= 32).
    pub embed_dim: usize,
    /// Filters F per branch (pointwise conv output channels).
    pub filters: usize,
    /// Kernel width of each branch (odd numbers).
    pub kernel_widths: Vec<usize>,
    /// Sequence length L the ids are padded/truncated to.
    pub seq_len: usize,
    /// Label names in output order; `labels[0] == "ham"`.
    pub labels: Vec<String>,
    /// Hashed n-gram input of the linear branch (G = `ngram.buckets`).
    pub ngram: NgramConfig,
}

impl ArchConfig {
    pub fn num_labels(&self) -> usize {
        self.labels.len()
    }

    /// Width of the concatenated pooled features fed to the head.
    pub fn pooled_width(&self) -> usize {
        self.filters * self.kernel_widths.len()
    }
}
