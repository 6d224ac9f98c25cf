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
//!
//! Two switches replace parts of this network, for the README's compression ablation (the
//! shipped model uses neither; a manifest without them reads as the shipped form):
//! - [`ConvKind::Full`]: each branch is one full conv, `convs.{i}.conv.weight [F, D, k]`,
//!   `convs.{i}.conv.bias [F]` (pad k/2), instead of depthwise + pointwise.
//! - [`HeadKind::Dense`]: no pooling; the ReLU output of every branch, channel-major
//!   `[B*F, L]` flattened to `[B*F*L]` (index `(branch*F + filter)*L + position`), feeds
//!   `head.weight [C, B*F*L]`: a fully connected layer over all positions.

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
    /// Convolution of each branch; absent (older manifests) = depthwise-separable.
    #[serde(default, skip_serializing_if = "ConvKind::is_separable")]
    pub conv: ConvKind,
    /// What feeds the output layer; absent (older manifests) = global max pooling.
    #[serde(default, skip_serializing_if = "HeadKind::is_pooled")]
    pub head: HeadKind,
}

/// How a branch convolves the embedded sequence.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ConvKind {
    /// Depthwise conv (one k-tap filter per embedding channel) then a pointwise 1x1 conv:
    /// `D*k + F*D` weights per branch. The shipped form.
    #[default]
    Separable,
    /// One full 1-D conv `D -> F` of width k: `F*D*k` weights per branch.
    Full,
}

impl ConvKind {
    pub fn is_separable(&self) -> bool {
        *self == Self::Separable
    }
}

/// What the output layer reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum HeadKind {
    /// Global max pooling over positions, then a linear layer over `B*F` features. The shipped
    /// form.
    #[default]
    Pooled,
    /// A linear layer over every position's features (`B*F*L` inputs): the fully connected
    /// alternative to pooling; its size grows with `seq_len`.
    Dense,
}

impl HeadKind {
    pub fn is_pooled(&self) -> bool {
        *self == Self::Pooled
    }
}

impl ArchConfig {
    pub fn num_labels(&self) -> usize {
        self.labels.len()
    }

    /// Channels of all branches together (`B*F`), each pooled to one feature by the pooled head.
    pub fn pooled_width(&self) -> usize {
        self.filters * self.kernel_widths.len()
    }

    /// Width of the feature vector fed to the head: `B*F` pooled, `B*F*L` dense.
    pub fn head_width(&self) -> usize {
        match self.head {
            HeadKind::Pooled => self.pooled_width(),
            HeadKind::Dense => self.pooled_width() * self.seq_len,
        }
    }
}
