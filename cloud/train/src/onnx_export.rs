//! ONNX export (fp32) of the edge char-CNN described in [`crate::config`], plus a plain-Rust
//! reference forward pass of the same network. The reference is the ground truth the exported
//! graphs are tested against, and the int8 exporter ([`crate::quantize`]) runs it to calibrate
//! activation ranges.
//!
//! The graph is written directly with the `onnx-protobuf` message types; initializers are stored
//! as little-endian `raw_data` bytes, which keeps the files compact and fast to parse.

use onnx_protobuf::{
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto, type_proto,
    AttributeProto, GraphProto, Message, ModelProto, NodeProto, OperatorSetIdProto,
    StringStringEntryProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};
use protobuf::{EnumOrUnknown, MessageField};
use smsguard_core::model_meta;
use smsguard_core::ngrams::NgramFeatures;

use crate::config::{ArchConfig, ConvKind, HeadKind};

/// Default-domain opset of the exported graphs: ONNX Runtime 1.31 implements every operator used
/// here at this version, and `ReduceMax` still takes `axes` as an attribute.
pub const OPSET_VERSION: i64 = 17;
/// IR version that goes with opset 17.
pub const IR_VERSION: i64 = 8;
/// Name of the graph input: token ids `[N, L]` int64.
pub const INPUT_NAME: &str = "ids";
/// Name of the graph input: n-gram bucket ids `[N, K]` int64 (0 = padding).
pub const NGRAM_IDS_NAME: &str = "ngram_ids";
/// Name of the graph input: n-gram weights `[N, K]` float (0 on padding).
pub const NGRAM_WEIGHTS_NAME: &str = "ngram_weights";
/// Name of the graph output: logits `[N, C]` float.
pub const OUTPUT_NAME: &str = "logits";
/// The one float initializer of an exported graph that is not a weight: the exporter's own
/// `[C]` mask of the labels the n-gram evidence moves.
pub const SPAM_MASK_NAME: &str = "spam_mask";
/// Name of the CNN part's logits inside the graph, before the n-gram evidence is added.
pub(crate) const CNN_LOGITS: &str = "cnn_logits";
/// Symbolic name of the dynamic batch dimension.
const BATCH_DIM: &str = "batch";
/// Symbolic name of the dynamic n-gram count.
const NGRAM_DIM: &str = "ngrams";

/// Why a model could not be exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("invalid architecture config: {0}")]
    InvalidConfig(String),
    #[error("weight tensor `{0}` is missing")]
    MissingTensor(String),
    #[error("weight tensor `{0}` is not part of the architecture")]
    UnexpectedTensor(String),
    #[error("weight tensor `{name}` has shape {actual:?}, expected {expected:?}")]
    WrongShape {
        name: String,
        expected: Vec<usize>,
        actual: Vec<usize>,
    },
    #[error("weight tensor `{name}` holds {actual} values, its shape needs {expected}")]
    WrongLength {
        name: String,
        expected: usize,
        actual: usize,
    },
    #[error("weight tensor `{0}` contains a non-finite value")]
    NonFinite(String),
    #[error("input has {actual} ids, the model takes {expected}")]
    WrongSequenceLength { expected: usize, actual: usize },
    #[error("id {id} is outside the vocabulary of {vocab_size}")]
    IdOutOfRange { id: i64, vocab_size: usize },
    #[error("n-gram bucket {id} is outside the {buckets} buckets")]
    NgramOutOfRange { id: i64, buckets: usize },
    #[error("{ids} n-gram ids but {weights} weights")]
    NgramLengthMismatch { ids: usize, weights: usize },
    #[error("serialising the ONNX model failed: {0}")]
    Serialize(#[from] protobuf::Error),
}

/// Exports the trained weights as an fp32 ONNX model and returns the serialised file.
///
/// `weights` are `(name, shape, values)` with the names and shapes fixed by [`crate::config`];
/// `metadata` becomes the model's `metadata_props`, plus `smsguard.precision = fp32`.
pub fn export_fp32(
    cfg: &ArchConfig,
    weights: &[(String, Vec<usize>, Vec<f32>)],
    metadata: &[(String, String)],
) -> Result<Vec<u8>, ExportError> {
    let cnn = ReferenceCnn::from_named(cfg, weights)?;
    let graph = fp32_graph(&cnn);
    serialize_model(graph, metadata, "fp32")
}

/// One conv branch of width `kernel`, followed by ReLU (and max pooling for the pooled head).
#[derive(Debug, Clone)]
pub(crate) struct Branch {
    pub(crate) kernel: usize,
    pub(crate) conv: BranchConv,
}

/// A branch's weights, by [`ConvKind`].
#[derive(Debug, Clone)]
pub(crate) enum BranchConv {
    /// Depthwise conv then pointwise conv.
    Separable {
        /// `[D, 1, k]`
        dw_weight: Vec<f32>,
        /// `[D]`
        dw_bias: Vec<f32>,
        /// `[F, D, 1]`
        pw_weight: Vec<f32>,
        /// `[F]`
        pw_bias: Vec<f32>,
    },
    /// One full conv `D -> F`.
    Full {
        /// `[F, D, k]`
        weight: Vec<f32>,
        /// `[F]`
        bias: Vec<f32>,
    },
}

/// The char-CNN's weights, validated against an [`ArchConfig`], with a reference forward pass.
#[derive(Debug, Clone)]
pub struct ReferenceCnn {
    pub(crate) cfg: ArchConfig,
    /// `[V, D]`
    pub(crate) embedding: Vec<f32>,
    pub(crate) branches: Vec<Branch>,
    /// `[C, W]`, W = [`ArchConfig::head_width`]
    pub(crate) head_weight: Vec<f32>,
    /// `[C]`
    pub(crate) head_bias: Vec<f32>,
    /// `[G]`
    pub(crate) ngram_weight: Vec<f32>,
}

/// Every intermediate of one forward pass, channel-major (`[channels, L]`) like the ONNX graph.
#[derive(Debug, Clone)]
pub struct Activations {
    /// Embedded ids, `[D, L]`.
    pub embedded: Vec<f32>,
    /// Depthwise conv output per branch, `[D, L]` (empty for full convs).
    pub depthwise: Vec<Vec<f32>>,
    /// Output per branch of its last conv (pointwise, or the full conv) before ReLU, `[F, L]`.
    pub pointwise: Vec<Vec<f32>>,
    /// What the head reads: the concatenated max-pooled features `[B*F]`, or for the dense
    /// head every branch's ReLU output flattened, `[B*F*L]`.
    pub features: Vec<f32>,
    /// Logits of the CNN part, `[C]` (without the n-gram evidence).
    pub logits: Vec<f32>,
}

/// Takes the named tensors out of a weight list, checking shapes and rejecting unknown names.
struct TensorTable<'w> {
    weights: &'w [(String, Vec<usize>, Vec<f32>)],
    used: Vec<bool>,
}

impl<'w> TensorTable<'w> {
    fn new(weights: &'w [(String, Vec<usize>, Vec<f32>)]) -> Self {
        Self {
            weights,
            used: vec![false; weights.len()],
        }
    }

    fn take(&mut self, name: &str, expected: &[usize]) -> Result<Vec<f32>, ExportError> {
        let index = self
            .weights
            .iter()
            .position(|(n, _, _)| n == name)
            .ok_or_else(|| ExportError::MissingTensor(name.to_string()))?;
        let (_, shape, values) = &self.weights[index];
        if shape != expected {
            return Err(ExportError::WrongShape {
                name: name.to_string(),
                expected: expected.to_vec(),
                actual: shape.clone(),
            });
        }
        let len: usize = expected.iter().product();
        if values.len() != len {
            return Err(ExportError::WrongLength {
                name: name.to_string(),
                expected: len,
                actual: values.len(),
            });
        }
        if values.iter().any(|v| !v.is_finite()) {
            return Err(ExportError::NonFinite(name.to_string()));
        }
        self.used[index] = true;
        Ok(values.clone())
    }

    fn reject_leftovers(&self) -> Result<(), ExportError> {
        match self.used.iter().position(|used| !used) {
            Some(index) => Err(ExportError::UnexpectedTensor(self.weights[index].0.clone())),
            None => Ok(()),
        }
    }
}

fn validate_config(cfg: &ArchConfig) -> Result<(), ExportError> {
    let problem = if cfg.vocab_size == 0 || cfg.embed_dim == 0 || cfg.filters == 0 {
        Some("vocab_size, embed_dim and filters must be positive")
    } else if cfg.seq_len == 0 {
        Some("seq_len must be positive")
    } else if cfg.kernel_widths.is_empty() {
        Some("at least one conv branch is needed")
    } else if cfg.kernel_widths.iter().any(|k| k % 2 == 0) {
        Some("kernel widths must be odd so that padding k/2 keeps the length")
    } else if cfg.labels.is_empty() {
        Some("at least one label is needed")
    } else if cfg.ngram.validate().is_err() {
        Some("the n-gram config is invalid (buckets >= 2, 1 <= max_n <= 16, max_chars >= 1)")
    } else {
        None
    };
    match problem {
        Some(p) => Err(ExportError::InvalidConfig(p.to_string())),
        None => Ok(()),
    }
}

impl ReferenceCnn {
    /// Checks `weights` against `cfg` (every tensor present, right shape, finite, none extra).
    pub fn from_named(
        cfg: &ArchConfig,
        weights: &[(String, Vec<usize>, Vec<f32>)],
    ) -> Result<Self, ExportError> {
        validate_config(cfg)?;
        let (v, d, f, c) = (cfg.vocab_size, cfg.embed_dim, cfg.filters, cfg.num_labels());
        let mut table = TensorTable::new(weights);
        let embedding = table.take("embedding.weight", &[v, d])?;
        let mut branches = Vec::with_capacity(cfg.kernel_widths.len());
        for (i, &k) in cfg.kernel_widths.iter().enumerate() {
            let conv = match cfg.conv {
                ConvKind::Separable => BranchConv::Separable {
                    dw_weight: table.take(&format!("convs.{i}.dw.weight"), &[d, 1, k])?,
                    dw_bias: table.take(&format!("convs.{i}.dw.bias"), &[d])?,
                    pw_weight: table.take(&format!("convs.{i}.pw.weight"), &[f, d, 1])?,
                    pw_bias: table.take(&format!("convs.{i}.pw.bias"), &[f])?,
                },
                ConvKind::Full => BranchConv::Full {
                    weight: table.take(&format!("convs.{i}.conv.weight"), &[f, d, k])?,
                    bias: table.take(&format!("convs.{i}.conv.bias"), &[f])?,
                },
            };
            branches.push(Branch { kernel: k, conv });
        }
        let head_weight = table.take("head.weight", &[c, cfg.head_width()])?;
        let head_bias = table.take("head.bias", &[c])?;
        let ngram_weight = table.take("ngram.weight", &[cfg.ngram.buckets])?;
        table.reject_leftovers()?;
        Ok(Self {
            cfg: cfg.clone(),
            embedding,
            branches,
            head_weight,
            head_bias,
            ngram_weight,
        })
    }

    pub fn config(&self) -> &ArchConfig {
        &self.cfg
    }

    /// Logits `[C]` for one right-padded sequence of exactly `seq_len` ids and the message's
    /// n-grams: the CNN's logits plus the n-gram evidence on every label but ham.
    pub fn forward(&self, ids: &[i64], ngrams: &NgramFeatures) -> Result<Vec<f32>, ExportError> {
        let mut logits = self.forward_activations(ids)?.logits;
        let evidence = self.ngram_evidence(ngrams)?;
        logits.iter_mut().skip(1).for_each(|l| *l += evidence);
        Ok(logits)
    }

    /// The linear branch: `sum_k ngram.weight[id_k] * weight_k`.
    pub fn ngram_evidence(&self, ngrams: &NgramFeatures) -> Result<f32, ExportError> {
        if ngrams.ids.len() != ngrams.weights.len() {
            return Err(ExportError::NgramLengthMismatch {
                ids: ngrams.ids.len(),
                weights: ngrams.weights.len(),
            });
        }
        let buckets = self.ngram_weight.len();
        ngrams
            .ids
            .iter()
            .zip(&ngrams.weights)
            .try_fold(0.0f32, |sum, (&id, &w)| {
                let bucket = usize::try_from(id)
                    .ok()
                    .filter(|&b| b < buckets)
                    .ok_or(ExportError::NgramOutOfRange { id, buckets })?;
                Ok(sum + self.ngram_weight[bucket] * w)
            })
    }

    /// The forward pass with every intermediate kept (used for calibration and debugging).
    pub fn forward_activations(&self, ids: &[i64]) -> Result<Activations, ExportError> {
        let embedded = self.embed(ids)?;
        let (d, f, l) = (self.cfg.embed_dim, self.cfg.filters, self.cfg.seq_len);
        let mut depthwise = Vec::with_capacity(self.branches.len());
        let mut pointwise = Vec::with_capacity(self.branches.len());
        let mut features = Vec::with_capacity(self.cfg.head_width());
        for branch in &self.branches {
            let k = branch.kernel;
            let out = match &branch.conv {
                BranchConv::Separable {
                    dw_weight,
                    dw_bias,
                    pw_weight,
                    pw_bias,
                } => {
                    let dw = conv1d(&embedded, d, l, k, dw_weight, dw_bias, 1);
                    let pw = conv1d(&dw, d, l, 1, pw_weight, pw_bias, d);
                    depthwise.push(dw);
                    pw
                }
                BranchConv::Full { weight, bias } => conv1d(&embedded, d, l, k, weight, bias, d),
            };
            debug_assert_eq!(out.len(), f * l);
            match self.cfg.head {
                // ReLU then max over time equals max over time clamped at 0 (max is monotone).
                HeadKind::Pooled => features.extend(
                    out.chunks(l)
                        .map(|row| row.iter().fold(0.0f32, |m, &x| m.max(x))),
                ),
                HeadKind::Dense => features.extend(out.iter().map(|&x| x.max(0.0))),
            }
            pointwise.push(out);
        }
        let logits = linear(&features, &self.head_weight, &self.head_bias);
        Ok(Activations {
            embedded,
            depthwise,
            pointwise,
            features,
            logits,
        })
    }

    /// Embedding lookup, returned channel-major `[D, L]`.
    fn embed(&self, ids: &[i64]) -> Result<Vec<f32>, ExportError> {
        let (v, d, l) = (self.cfg.vocab_size, self.cfg.embed_dim, self.cfg.seq_len);
        if ids.len() != l {
            return Err(ExportError::WrongSequenceLength {
                expected: l,
                actual: ids.len(),
            });
        }
        let mut out = vec![0.0f32; d * l];
        for (t, &id) in ids.iter().enumerate() {
            let row = usize::try_from(id)
                .ok()
                .filter(|&r| r < v)
                .ok_or(ExportError::IdOutOfRange { id, vocab_size: v })?;
            for (c, &value) in self.embedding[row * d..(row + 1) * d].iter().enumerate() {
                out[c * l + t] = value;
            }
        }
        Ok(out)
    }
}

/// 1-D cross-correlation of `x [channels, L]` with zero padding `k/2` on both sides (ONNX and
/// candle `Conv`), `weight [out, in_per_out, k]`, `bias [out]`, in `channels / in_per_out`
/// groups: each output channel reads the `in_per_out` input channels of its group. Covers the
/// three convs of the contract: depthwise (`in_per_out` 1), pointwise (`k` 1, one group) and
/// full (one group).
fn conv1d(
    x: &[f32],
    channels: usize,
    l: usize,
    k: usize,
    weight: &[f32],
    bias: &[f32],
    in_per_out: usize,
) -> Vec<f32> {
    let half = k / 2;
    let groups = channels / in_per_out;
    let outputs_per_group = bias.len() / groups;
    let mut out = vec![0.0f32; bias.len() * l];
    for (o, row) in out.chunks_mut(l).enumerate() {
        row.fill(bias[o]);
        let first_input = (o / outputs_per_group) * in_per_out;
        for i in 0..in_per_out {
            let input = &x[(first_input + i) * l..(first_input + i + 1) * l];
            let taps = &weight[(o * in_per_out + i) * k..(o * in_per_out + i + 1) * k];
            for (t, slot) in row.iter_mut().enumerate() {
                for (j, &w) in taps.iter().enumerate() {
                    // Input position t + j - half, skipped where it falls into the padding.
                    if let Some(pos) = (t + j).checked_sub(half).filter(|&p| p < l) {
                        *slot += w * input[pos];
                    }
                }
            }
        }
    }
    out
}

/// `weight [out, in] · x + bias`.
fn linear(x: &[f32], weight: &[f32], bias: &[f32]) -> Vec<f32> {
    bias.iter()
        .zip(weight.chunks(x.len()))
        .map(|(&b, row)| b + row.iter().zip(x).map(|(w, v)| w * v).sum::<f32>())
        .collect()
}

fn fp32_graph(cnn: &ReferenceCnn) -> GraphProto {
    let cfg = &cnn.cfg;
    let d = cfg.embed_dim;
    let mut g = GraphBuilder::new("smsguard_char_cnn_fp32", cfg);
    g.init_f32("embedding.weight", &[cfg.vocab_size, d], &cnn.embedding);
    g.node(
        "Gather",
        &["embedding.weight", INPUT_NAME],
        &["embedded"],
        vec![attr_int("axis", 0)],
    );
    g.node(
        "Transpose",
        &["embedded"],
        &["embedded_t"],
        vec![attr_ints("perm", &[0, 2, 1])],
    );
    let mut outputs = Vec::new();
    for (i, branch) in cnn.branches.iter().enumerate() {
        let p = format!("convs.{i}");
        let conv_out = add_fp32_branch(&mut g, cfg, &p, branch);
        g.node("Relu", &[&conv_out], &[&format!("{p}.relu")], vec![]);
        match cfg.head {
            HeadKind::Pooled => {
                g.node(
                    "ReduceMax",
                    &[&format!("{p}.relu")],
                    &[&format!("{p}.pooled")],
                    max_over_time_attrs(),
                );
                outputs.push(format!("{p}.pooled"));
            }
            HeadKind::Dense => outputs.push(format!("{p}.relu")),
        }
    }
    let outputs: Vec<&str> = outputs.iter().map(String::as_str).collect();
    match cfg.head {
        HeadKind::Pooled => g.node("Concat", &outputs, &["features"], vec![attr_int("axis", 1)]),
        HeadKind::Dense => {
            // [N, B*F, L] flattened channel-major, the order of the contract's head weight.
            g.node(
                "Concat",
                &outputs,
                &["all_positions"],
                vec![attr_int("axis", 1)],
            );
            g.node(
                "Flatten",
                &["all_positions"],
                &["features"],
                vec![attr_int("axis", 1)],
            );
        }
    }
    g.init_f32(
        "head.weight",
        &[cfg.num_labels(), cfg.head_width()],
        &cnn.head_weight,
    );
    g.init_f32("head.bias", &[cfg.num_labels()], &cnn.head_bias);
    g.node(
        "Gemm",
        &["features", "head.weight", "head.bias"],
        &[CNN_LOGITS],
        vec![attr_int("transB", 1)],
    );
    g.init_f32("ngram.weight", &[cfg.ngram.buckets], &cnn.ngram_weight);
    g.node(
        "Gather",
        &["ngram.weight", NGRAM_IDS_NAME],
        &["ngram_bucket_weights"],
        vec![attr_int("axis", 0)],
    );
    add_ngram_evidence(&mut g, "ngram_bucket_weights");
    g.finish()
}

/// The conv nodes of one fp32 branch named `p`, reading `embedded_t`; returns the output name
/// (`[N, F, L]`, before ReLU).
fn add_fp32_branch(g: &mut GraphBuilder, cfg: &ArchConfig, p: &str, branch: &Branch) -> String {
    let (d, f, k) = (cfg.embed_dim, cfg.filters, branch.kernel);
    match &branch.conv {
        BranchConv::Separable {
            dw_weight,
            dw_bias,
            pw_weight,
            pw_bias,
        } => {
            g.init_f32(&format!("{p}.dw.weight"), &[d, 1, k], dw_weight);
            g.init_f32(&format!("{p}.dw.bias"), &[d], dw_bias);
            g.init_f32(&format!("{p}.pw.weight"), &[f, d, 1], pw_weight);
            g.init_f32(&format!("{p}.pw.bias"), &[f], pw_bias);
            g.node(
                "Conv",
                &[
                    "embedded_t",
                    &format!("{p}.dw.weight"),
                    &format!("{p}.dw.bias"),
                ],
                &[&format!("{p}.dw")],
                depthwise_attrs(d, k),
            );
            g.node(
                "Conv",
                &[
                    &format!("{p}.dw"),
                    &format!("{p}.pw.weight"),
                    &format!("{p}.pw.bias"),
                ],
                &[&format!("{p}.pw")],
                vec![attr_ints("kernel_shape", &[1])],
            );
            format!("{p}.pw")
        }
        BranchConv::Full { weight, bias } => {
            g.init_f32(&format!("{p}.conv.weight"), &[f, d, k], weight);
            g.init_f32(&format!("{p}.conv.bias"), &[f], bias);
            g.node(
                "Conv",
                &[
                    "embedded_t",
                    &format!("{p}.conv.weight"),
                    &format!("{p}.conv.bias"),
                ],
                &[&format!("{p}.conv")],
                same_length_attrs(k),
            );
            format!("{p}.conv")
        }
    }
}

/// From the gathered per-bucket weights `[N, K]` to `logits = cnn_logits + s * spam_mask`,
/// where `s = sum_k bucket_weight * ngram_weight` and `spam_mask` is 0 for ham, 1 otherwise.
pub(crate) fn add_ngram_evidence(g: &mut GraphBuilder, bucket_weights: &str) {
    let labels = g.labels;
    let mask: Vec<f32> = (0..labels)
        .map(|c| if c == 0 { 0.0 } else { 1.0 })
        .collect();
    g.init_f32(SPAM_MASK_NAME, &[labels], &mask);
    g.init_i64("ngram_sum_axes", &[1], &[1]);
    g.node(
        "Mul",
        &[bucket_weights, NGRAM_WEIGHTS_NAME],
        &["ngram_terms"],
        vec![],
    );
    g.node(
        "ReduceSum",
        &["ngram_terms", "ngram_sum_axes"],
        &["ngram_evidence"],
        vec![attr_int("keepdims", 1)],
    );
    g.node(
        "Mul",
        &["ngram_evidence", SPAM_MASK_NAME],
        &["ngram_logits"],
        vec![],
    );
    g.node("Add", &[CNN_LOGITS, "ngram_logits"], &[OUTPUT_NAME], vec![]);
}

/// Attributes of a depthwise conv of width `k` over `d` channels that keeps the length.
pub(crate) fn depthwise_attrs(d: usize, k: usize) -> Vec<AttributeProto> {
    let mut attrs = vec![attr_int("group", d as i64)];
    attrs.extend(same_length_attrs(k));
    attrs
}

/// Attributes of a conv of width `k` (one group) that keeps the length: padding k/2 each side.
pub(crate) fn same_length_attrs(k: usize) -> Vec<AttributeProto> {
    let half = (k / 2) as i64;
    vec![
        attr_ints("kernel_shape", &[k as i64]),
        attr_ints("pads", &[half, half]),
    ]
}

/// `ReduceMax` over the time axis of `[N, C, L]`, giving `[N, C]`.
pub(crate) fn max_over_time_attrs() -> Vec<AttributeProto> {
    vec![attr_ints("axes", &[2]), attr_int("keepdims", 0)]
}

/// Accumulates nodes and initializers of one graph with the fixed `ids` -> `logits` signature.
#[derive(Debug)]
pub(crate) struct GraphBuilder {
    graph: GraphProto,
    labels: usize,
}

impl GraphBuilder {
    pub(crate) fn new(name: &str, cfg: &ArchConfig) -> Self {
        let mut graph = GraphProto::new();
        graph.name = name.to_string();
        graph.input.push(value_info(
            INPUT_NAME,
            DataType::INT64,
            &[Dim::Batch, Dim::Fixed(cfg.seq_len)],
        ));
        graph.input.push(value_info(
            NGRAM_IDS_NAME,
            DataType::INT64,
            &[Dim::Batch, Dim::Ngrams],
        ));
        graph.input.push(value_info(
            NGRAM_WEIGHTS_NAME,
            DataType::FLOAT,
            &[Dim::Batch, Dim::Ngrams],
        ));
        graph.output.push(value_info(
            OUTPUT_NAME,
            DataType::FLOAT,
            &[Dim::Batch, Dim::Fixed(cfg.num_labels())],
        ));
        Self {
            graph,
            labels: cfg.num_labels(),
        }
    }

    pub(crate) fn node(
        &mut self,
        op_type: &str,
        inputs: &[&str],
        outputs: &[&str],
        attributes: Vec<AttributeProto>,
    ) {
        let mut node = NodeProto::new();
        node.op_type = op_type.to_string();
        node.name = format!("{}_{}", op_type, self.graph.node.len());
        node.input = inputs.iter().map(|s| s.to_string()).collect();
        node.output = outputs.iter().map(|s| s.to_string()).collect();
        node.attribute = attributes;
        self.graph.node.push(node);
    }

    fn init_raw(&mut self, name: &str, dims: &[usize], data_type: DataType, raw: Vec<u8>) {
        let mut tensor = TensorProto::new();
        tensor.name = name.to_string();
        tensor.dims = dims.iter().map(|&d| d as i64).collect();
        tensor.data_type = data_type as i32;
        tensor.raw_data = raw;
        self.graph.initializer.push(tensor);
    }

    pub(crate) fn init_f32(&mut self, name: &str, dims: &[usize], values: &[f32]) {
        let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.init_raw(name, dims, DataType::FLOAT, raw);
    }

    pub(crate) fn init_i8(&mut self, name: &str, dims: &[usize], values: &[i8]) {
        let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.init_raw(name, dims, DataType::INT8, raw);
    }

    pub(crate) fn init_u8(&mut self, name: &str, dims: &[usize], values: &[u8]) {
        self.init_raw(name, dims, DataType::UINT8, values.to_vec());
    }

    pub(crate) fn init_i64(&mut self, name: &str, dims: &[usize], values: &[i64]) {
        let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.init_raw(name, dims, DataType::INT64, raw);
    }

    pub(crate) fn init_i32(&mut self, name: &str, dims: &[usize], values: &[i32]) {
        let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.init_raw(name, dims, DataType::INT32, raw);
    }

    pub(crate) fn finish(self) -> GraphProto {
        self.graph
    }
}

enum Dim {
    Batch,
    Ngrams,
    Fixed(usize),
}

fn value_info(name: &str, elem_type: DataType, dims: &[Dim]) -> ValueInfoProto {
    let mut shape = TensorShapeProto::new();
    for dim in dims {
        let mut proto = tensor_shape_proto::Dimension::new();
        match dim {
            Dim::Batch => proto.set_dim_param(BATCH_DIM.to_string()),
            Dim::Ngrams => proto.set_dim_param(NGRAM_DIM.to_string()),
            Dim::Fixed(n) => proto.set_dim_value(*n as i64),
        }
        shape.dim.push(proto);
    }
    let mut tensor = type_proto::Tensor::new();
    tensor.elem_type = elem_type as i32;
    tensor.shape = MessageField::some(shape);
    let mut type_ = TypeProto::new();
    type_.set_tensor_type(tensor);
    let mut info = ValueInfoProto::new();
    info.name = name.to_string();
    info.type_ = MessageField::some(type_);
    info
}

pub(crate) fn attr_int(name: &str, value: i64) -> AttributeProto {
    let mut attr = AttributeProto::new();
    attr.name = name.to_string();
    attr.type_ = EnumOrUnknown::new(AttributeType::INT);
    attr.i = value;
    attr
}

pub(crate) fn attr_ints(name: &str, values: &[i64]) -> AttributeProto {
    let mut attr = AttributeProto::new();
    attr.name = name.to_string();
    attr.type_ = EnumOrUnknown::new(AttributeType::INTS);
    attr.ints = values.to_vec();
    attr
}

/// Wraps `graph` in a model with the caller's metadata and `smsguard.precision = precision`
/// (a caller-supplied precision key is replaced, so the file always tells the truth).
pub(crate) fn serialize_model(
    graph: GraphProto,
    metadata: &[(String, String)],
    precision: &str,
) -> Result<Vec<u8>, ExportError> {
    let mut model = ModelProto::new();
    model.ir_version = IR_VERSION;
    model.producer_name = "smsguard-train".to_string();
    model.producer_version = env!("CARGO_PKG_VERSION").to_string();
    let mut opset = OperatorSetIdProto::new();
    opset.version = OPSET_VERSION;
    model.opset_import.push(opset);
    model.graph = MessageField::some(graph);
    let entries = metadata
        .iter()
        .filter(|(key, _)| key != model_meta::PRECISION)
        .map(|(key, value)| (key.as_str(), value.as_str()))
        .chain(std::iter::once((model_meta::PRECISION, precision)));
    for (key, value) in entries {
        let mut entry = StringStringEntryProto::new();
        entry.key = key.to_string();
        entry.value = value.to_string();
        model.metadata_props.push(entry);
    }
    Ok(model.write_to_bytes()?)
}
