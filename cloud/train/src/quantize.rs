//! int8 ONNX export of the edge char-CNN, in the operator form ONNX Runtime runs fastest on CPU:
//! `QLinearConv` with per-output-channel symmetric int8 weights on uint8 activations.
//!
//! ```text
//! ids -> Gather(embedding uint8 [V, D], one affine range) -> Transpose -> Concat (one copy per branch)
//!     -> QLinearConv depthwise, all branches at once (group = B*D, kernels centred in the widest)
//!     -> QLinearConv pointwise, group = B (output zero point 0 = ReLU)
//!     -> MaxPool over the whole sequence (uint8) -> DequantizeLinear -> Flatten
//!     -> Gemm(B = DequantizeLinear(int8 head weight, per row)) -> cnn logits
//! ngram_ids -> Gather(ngram weight int8 [G], one symmetric scale) -> DequantizeLinear
//!     -> times ngram_weights, summed -> added to every spam label -> logits
//! ```
//! Variants of [`crate::config`]: full convs run one `QLinearConv` per branch (group 1, its own
//! width, the same 7-bit weights and one shared output range) whose uint8 outputs are
//! concatenated; the dense head dequantises every position instead of max-pooling.
//!
//! Activation ranges of the conv outputs come from running the reference forward pass
//! ([`ReferenceCnn`]) over calibration inputs; pass real samples via [`export_int8_calibrated`].

use onnx_protobuf::AttributeProto;

use crate::config::{ArchConfig, HeadKind};
use crate::onnx_export::{
    add_ngram_evidence, attr_int, attr_ints, depthwise_attrs, same_length_attrs, serialize_model,
    BranchConv, ExportError, GraphBuilder, ReferenceCnn, CNN_LOGITS, INPUT_NAME, NGRAM_IDS_NAME,
};

/// Number of synthetic sequences [`export_int8`] calibrates on when given no real samples.
pub const DEFAULT_CALIBRATION_SAMPLES: usize = 256;
const DEFAULT_CALIBRATION_SEED: u64 = 0x5EED_CA11;

/// Exports an int8 model calibrated on synthetic ids (uniform ids, random lengths). Prefer
/// [`export_int8_calibrated`] with real dev samples: synthetic text over-states rare ids.
pub fn export_int8(
    cfg: &ArchConfig,
    weights: &[(String, Vec<usize>, Vec<f32>)],
    metadata: &[(String, String)],
) -> Result<Vec<u8>, ExportError> {
    let ids = synthetic_ids(cfg, DEFAULT_CALIBRATION_SAMPLES, DEFAULT_CALIBRATION_SEED);
    export_int8_calibrated(cfg, weights, metadata, &ids)
}

/// Exports an int8 model whose activation ranges are measured on `calibration_ids` (each a
/// right-padded sequence of exactly `seq_len` ids, e.g. encoded dev messages).
pub fn export_int8_calibrated(
    cfg: &ArchConfig,
    weights: &[(String, Vec<usize>, Vec<f32>)],
    metadata: &[(String, String)],
    calibration_ids: &[Vec<i64>],
) -> Result<Vec<u8>, ExportError> {
    let cnn = ReferenceCnn::from_named(cfg, weights)?;
    let ranges = calibrate(&cnn, calibration_ids)?;
    let graph = int8_graph(&cnn, &ranges);
    serialize_model(graph, metadata, "int8")
}

/// Deterministic pseudo-random right-padded id sequences: lengths uniform in `1..=seq_len`, ids
/// uniform over the non-padding vocabulary.
pub fn synthetic_ids(cfg: &ArchConfig, count: usize, seed: u64) -> Vec<Vec<i64>> {
    let mut rng = SplitMix64(seed);
    let real_ids = cfg.vocab_size.saturating_sub(1).max(1) as u64;
    (0..count)
        .map(|_| {
            let len = 1 + rng.below(cfg.seq_len as u64) as usize;
            let mut ids = vec![0i64; cfg.seq_len];
            for id in &mut ids[..len] {
                *id = (1 + rng.below(real_ids)).min(cfg.vocab_size as u64 - 1) as i64;
            }
            ids
        })
        .collect()
}

/// Small, dependency-free PRNG; quality is ample for calibration and test inputs.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }
}

/// Largest weight code of the tensors that integer kernels multiply with uint8 activations
/// (the two `QLinearConv`s): 7-bit weights. x86 CPUs without VNNI (AVX2's `vpmaddubsw`) add
/// two u8×s8 products in a saturating int16: 2 × 255 × 127 = 64,770 overflows 32,767, so full
/// int8 weights give other sums there than on AVX-512 VNNI or ARM, which accumulate in int32.
/// 2 × 255 × 63 = 32,130 cannot overflow, so every kernel computes the same exact sums and one
/// message gets one verdict on every CPU.
pub const CONV_WEIGHT_LIMIT: i8 = 63;
/// Weight code limit of tensors that are only dequantised to float (head, n-gram weights): no
/// integer kernel ever multiplies them, so they keep the full int8 range.
pub const DEQUANTISED_WEIGHT_LIMIT: i8 = 127;

/// Symmetric int8 quantisation with one scale per row (output channel): `x ≈ q * scale`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PerRowInt8 {
    pub(crate) values: Vec<i8>,
    pub(crate) scales: Vec<f32>,
}

/// Quantises each of `rows` rows to codes in `-limit..=limit`, one scale per row.
pub(crate) fn quantize_rows(data: &[f32], rows: usize, limit: i8) -> PerRowInt8 {
    let limit = f32::from(limit);
    let width = data.len() / rows.max(1);
    let mut values = Vec::with_capacity(data.len());
    let mut scales = Vec::with_capacity(rows);
    for row in data.chunks(width.max(1)) {
        let max_abs = row.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        // An all-zero row quantises to zeros under any scale; 1 avoids dividing by zero.
        let scale = if max_abs > 0.0 { max_abs / limit } else { 1.0 };
        values.extend(
            row.iter()
                .map(|x| (x / scale).round().clamp(-limit, limit) as i8),
        );
        scales.push(scale);
    }
    PerRowInt8 { values, scales }
}

/// Asymmetric uint8 activation quantisation: `x ≈ (q - zero_point) * scale`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct AffineU8 {
    pub(crate) scale: f32,
    pub(crate) zero_point: u8,
}

impl AffineU8 {
    /// Covers `[min, max]` widened to include 0, so that 0 (padding, ReLU floor) is exact.
    pub(crate) fn covering(min: f32, max: f32) -> Self {
        let (lo, hi) = (min.min(0.0), max.max(0.0));
        if hi - lo <= f32::EPSILON {
            return Self {
                scale: 1.0,
                zero_point: 0,
            };
        }
        let scale = (hi - lo) / 255.0;
        let zero_point = (-lo / scale).round().clamp(0.0, 255.0) as u8;
        Self { scale, zero_point }
    }

    pub(crate) fn quantize(&self, values: &[f32]) -> Vec<u8> {
        let zero_point = f32::from(self.zero_point);
        values
            .iter()
            .map(|x| (x / self.scale + zero_point).round().clamp(0.0, 255.0) as u8)
            .collect()
    }
}

/// Activation quantisers measured by [`calibrate`]; one per tensor of the merged graph.
#[derive(Debug, Clone)]
pub(crate) struct Calibration {
    /// Output of the depthwise convs of all branches (none with full convs).
    depthwise: Option<AffineU8>,
    /// Output of each branch's last conv, pointwise or full (ReLU folded in: range `[0, max]`).
    pointwise: AffineU8,
}

#[derive(Debug, Clone, Copy)]
struct Range {
    min: f32,
    max: f32,
}

impl Range {
    const EMPTY: Range = Range {
        min: f32::INFINITY,
        max: f32::NEG_INFINITY,
    };

    fn widen(&mut self, values: &[f32]) {
        for &v in values {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
    }
}

fn calibrate(cnn: &ReferenceCnn, calibration_ids: &[Vec<i64>]) -> Result<Calibration, ExportError> {
    if calibration_ids.is_empty() {
        return Err(ExportError::InvalidConfig(
            "int8 export needs at least one calibration sequence".to_string(),
        ));
    }
    let (mut depthwise, mut pointwise) = (Range::EMPTY, Range::EMPTY);
    for ids in calibration_ids {
        let acts = cnn.forward_activations(ids)?;
        acts.depthwise.iter().for_each(|dw| depthwise.widen(dw));
        acts.pointwise.iter().for_each(|pw| pointwise.widen(pw));
    }
    let separable = cnn.cfg.conv.is_separable();
    Ok(Calibration {
        depthwise: separable.then(|| AffineU8::covering(depthwise.min, depthwise.max)),
        // Below zero ReLU clips anyway, so the pointwise quantiser spends all codes on [0, max].
        pointwise: AffineU8::covering(0.0, pointwise.max),
    })
}

/// Bias of a `QLinearConv`, in units of `input_scale * weight_scale[c]`.
fn quantize_bias(bias: &[f32], input_scale: f32, weight_scales: &[f32]) -> Vec<i32> {
    bias.iter()
        .zip(weight_scales)
        .map(|(&b, &ws)| {
            let q = (f64::from(b) / (f64::from(input_scale) * f64::from(ws))).round();
            q.clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32
        })
        .collect()
}

fn int8_graph(cnn: &ReferenceCnn, calibration: &Calibration) -> onnx_protobuf::GraphProto {
    let mut g = GraphBuilder::new("smsguard_char_cnn_int8", &cnn.cfg);
    let embedded = add_embedding(&mut g, cnn);
    if let Some(depthwise) = calibration.depthwise {
        add_activation_quant(&mut g, "depthwise", depthwise);
    }
    add_activation_quant(&mut g, "pointwise", calibration.pointwise);
    match calibration.depthwise {
        Some(depthwise) => add_separable_branches(&mut g, cnn, embedded.scale, depthwise.scale),
        None => add_full_branches(&mut g, cnn, embedded.scale, calibration.pointwise),
    }
    add_features(&mut g, cnn);
    add_head(&mut g, cnn);
    add_ngram_branch(&mut g, cnn);
    g.finish()
}

/// The n-gram weights as int8 with one symmetric scale (zero stays exactly zero, so padding
/// adds nothing); only the gathered weights of a message are dequantised.
fn add_ngram_branch(g: &mut GraphBuilder, cnn: &ReferenceCnn) {
    let buckets = cnn.ngram_weight.len();
    let weight = quantize_rows(&cnn.ngram_weight, 1, DEQUANTISED_WEIGHT_LIMIT);
    g.init_i8("ngram.weight_q", &[buckets], &weight.values);
    g.init_f32("ngram.weight_scale", &[], &weight.scales);
    g.init_i8("ngram.weight_zero_point", &[], &[0]);
    g.node(
        "Gather",
        &["ngram.weight_q", NGRAM_IDS_NAME],
        &["ngram_bucket_weights_q"],
        vec![attr_int("axis", 0)],
    );
    g.node(
        "DequantizeLinear",
        &[
            "ngram_bucket_weights_q",
            "ngram.weight_scale",
            "ngram.weight_zero_point",
        ],
        &["ngram_bucket_weights"],
        vec![],
    );
    add_ngram_evidence(g, "ngram_bucket_weights");
}

/// uint8 embedding table with one affine range over the whole table: it is exactly the uint8
/// input the first `QLinearConv` needs, so the lookup feeds it without any conversion. (A per-row
/// int8 table would be re-quantised to this per-tensor range before the conv anyway, adding a
/// second rounding, four nodes and a `[V]` scale table.) Returns the quantiser.
fn add_embedding(g: &mut GraphBuilder, cnn: &ReferenceCnn) -> AffineU8 {
    let (v, d) = (cnn.cfg.vocab_size, cnn.cfg.embed_dim);
    let mut range = Range::EMPTY;
    range.widen(&cnn.embedding);
    let quant = AffineU8::covering(range.min, range.max);
    g.init_u8(
        "embedding.weight_q",
        &[v, d],
        &quant.quantize(&cnn.embedding),
    );
    add_activation_quant(g, "embedded", quant);
    g.node(
        "Gather",
        &["embedding.weight_q", INPUT_NAME],
        &["embedded_u8"],
        vec![attr_int("axis", 0)],
    );
    g.node(
        "Transpose",
        &["embedded_u8"],
        &["embedded_t_u8"],
        vec![attr_ints("perm", &[0, 2, 1])],
    );
    quant
}

/// All branches as one depthwise `QLinearConv` (kernels zero-padded to the widest, centred, which
/// computes the same sums) and one pointwise `QLinearConv` with a group per branch: two conv
/// nodes instead of two per branch. Output zero point 0 of the pointwise conv is the ReLU.
/// Writes `pointwise_u8` `[N, B*F, L]`.
fn add_separable_branches(
    g: &mut GraphBuilder,
    cnn: &ReferenceCnn,
    input_scale: f32,
    depthwise_scale: f32,
) {
    let (d, f, b) = (cnn.cfg.embed_dim, cnn.cfg.filters, cnn.branches.len());
    // Every branch reads its own copy, so the branches run as one grouped conv each step.
    let copies = vec!["embedded_t_u8"; b];
    g.node(
        "Concat",
        &copies,
        &["branch_inputs_u8"],
        vec![attr_int("axis", 1)],
    );
    let widest = cnn.branches.iter().map(|br| br.kernel).max().unwrap_or(1);
    let (mut dw_weight, mut dw_bias, mut pw_weight, mut pw_bias) = (vec![], vec![], vec![], vec![]);
    for branch in &cnn.branches {
        if let BranchConv::Separable {
            dw_weight: dw,
            dw_bias: dwb,
            pw_weight: pw,
            pw_bias: pwb,
        } = &branch.conv
        {
            dw_weight.extend(centred_taps(dw, branch.kernel, d, widest));
            dw_bias.extend_from_slice(dwb);
            pw_weight.extend_from_slice(pw);
            pw_bias.extend_from_slice(pwb);
        }
    }
    let depthwise = QConv {
        name: "depthwise",
        shape: [b * d, 1, widest],
        weight: &dw_weight,
        bias: &dw_bias,
        input: ("branch_inputs_u8", "embedded", input_scale),
    };
    add_qlinear_conv(g, &depthwise, depthwise_attrs(b * d, widest));
    let pointwise = QConv {
        name: "pointwise",
        shape: [b * f, d, 1],
        weight: &pw_weight,
        bias: &pw_bias,
        input: ("depthwise_u8", "depthwise", depthwise_scale),
    };
    let attrs = vec![attr_int("group", b as i64), attr_ints("kernel_shape", &[1])];
    add_qlinear_conv(g, &pointwise, attrs);
}

/// One full `QLinearConv` per branch (group 1, its own width: no zero taps), all with the
/// pointwise output range (zero point 0 = ReLU), concatenated into `pointwise_u8` `[N, B*F, L]`.
fn add_full_branches(g: &mut GraphBuilder, cnn: &ReferenceCnn, input_scale: f32, out: AffineU8) {
    let (d, f) = (cnn.cfg.embed_dim, cnn.cfg.filters);
    let mut outputs = Vec::with_capacity(cnn.branches.len());
    for (i, branch) in cnn.branches.iter().enumerate() {
        let BranchConv::Full { weight, bias } = &branch.conv else {
            continue;
        };
        let name = format!("convs.{i}.conv");
        add_activation_quant(g, &name, out);
        let conv = QConv {
            name: &name,
            shape: [f, d, branch.kernel],
            weight,
            bias,
            input: ("embedded_t_u8", "embedded", input_scale),
        };
        add_qlinear_conv(g, &conv, same_length_attrs(branch.kernel));
        outputs.push(format!("{name}_u8"));
    }
    let outputs: Vec<&str> = outputs.iter().map(String::as_str).collect();
    g.node(
        "Concat",
        &outputs,
        &["pointwise_u8"],
        vec![attr_int("axis", 1)],
    );
}

/// From `pointwise_u8` `[N, B*F, L]` to the head's float input `features`.
fn add_features(g: &mut GraphBuilder, cnn: &ReferenceCnn) {
    let dequantised = match cnn.cfg.head {
        HeadKind::Pooled => {
            // Max pooling commutes with the monotone dequantisation, so pool on the uint8 codes.
            // MaxPool rather than ReduceMax: ONNX Runtime has a vectorised uint8 MaxPool, 3x
            // faster here.
            let window = vec![attr_ints("kernel_shape", &[cnn.cfg.seq_len as i64])];
            g.node("MaxPool", &["pointwise_u8"], &["pooled_u8"], window);
            "pooled_u8"
        }
        // Every position's ReLU output (zero point 0), channel-major like the contract.
        HeadKind::Dense => "pointwise_u8",
    };
    g.node(
        "DequantizeLinear",
        &[dequantised, "pointwise.scale", "pointwise.zero_point"],
        &["pooled"],
        vec![],
    );
    g.node(
        "Flatten",
        &["pooled"],
        &["features"],
        vec![attr_int("axis", 1)],
    );
}

/// Depthwise taps `[D, 1, k]` zero-padded on both sides to `[D, 1, widest]`.
fn centred_taps(dw_weight: &[f32], k: usize, d: usize, widest: usize) -> Vec<f32> {
    let offset = (widest - k) / 2;
    let mut taps = vec![0.0; d * widest];
    for (row, source) in taps.chunks_mut(widest).zip(dw_weight.chunks(k)) {
        row[offset..offset + k].copy_from_slice(source);
    }
    taps
}

fn add_activation_quant(g: &mut GraphBuilder, name: &str, quant: AffineU8) {
    g.init_f32(&format!("{name}.scale"), &[], &[quant.scale]);
    g.init_u8(&format!("{name}.zero_point"), &[], &[quant.zero_point]);
}

/// One `QLinearConv` named `name`, writing `{name}_u8` quantised by `{name}.scale/.zero_point`.
struct QConv<'a> {
    name: &'a str,
    shape: [usize; 3],
    weight: &'a [f32],
    bias: &'a [f32],
    /// Input tensor, prefix of its `.scale/.zero_point` initializers, and that scale.
    input: (&'a str, &'a str, f32),
}

fn add_qlinear_conv(g: &mut GraphBuilder, conv: &QConv<'_>, attributes: Vec<AttributeProto>) {
    let channels = conv.shape[0];
    let weight = quantize_rows(conv.weight, channels, CONV_WEIGHT_LIMIT);
    let (input, input_quant, input_scale) = conv.input;
    let bias = quantize_bias(conv.bias, input_scale, &weight.scales);
    let p = conv.name;
    g.init_i8(&format!("{p}.weight_q"), &conv.shape, &weight.values);
    g.init_f32(&format!("{p}.weight_scale"), &[channels], &weight.scales);
    g.init_i8(
        &format!("{p}.weight_zero_point"),
        &[channels],
        &vec![0; channels],
    );
    g.init_i32(&format!("{p}.bias_q"), &[channels], &bias);
    g.node(
        "QLinearConv",
        &[
            input,
            &format!("{input_quant}.scale"),
            &format!("{input_quant}.zero_point"),
            &format!("{p}.weight_q"),
            &format!("{p}.weight_scale"),
            &format!("{p}.weight_zero_point"),
            &format!("{p}.scale"),
            &format!("{p}.zero_point"),
            &format!("{p}.bias_q"),
        ],
        &[&format!("{p}_u8")],
        attributes,
    );
}

/// Head weight stored int8 per output row and dequantised for a float `Gemm` (tiny with the
/// pooled head; with the dense head it is most of the file).
fn add_head(g: &mut GraphBuilder, cnn: &ReferenceCnn) {
    let (c, width) = (cnn.cfg.num_labels(), cnn.cfg.head_width());
    let weight = quantize_rows(&cnn.head_weight, c, DEQUANTISED_WEIGHT_LIMIT);
    g.init_i8("head.weight_q", &[c, width], &weight.values);
    g.init_f32("head.weight_scale", &[c], &weight.scales);
    g.init_i8("head.weight_zero_point", &[c], &vec![0; c]);
    g.init_f32("head.bias", &[c], &cnn.head_bias);
    g.node(
        "DequantizeLinear",
        &[
            "head.weight_q",
            "head.weight_scale",
            "head.weight_zero_point",
        ],
        &["head.weight"],
        vec![attr_int("axis", 0)],
    );
    g.node(
        "Gemm",
        &["features", "head.weight", "head.bias"],
        &[CNN_LOGITS],
        vec![attr_int("transB", 1)],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_row_quantisation_uses_full_int8_range_per_row() {
        let q = quantize_rows(&[0.5, -1.0, 0.25, 0.0, 0.0, 0.0, 2.0, 1.0, -0.5], 3, 127);
        assert_eq!(q.values[..3], [64, -127, 32]);
        assert_eq!(q.values[3..6], [0, 0, 0]);
        assert_eq!(q.values[6..], [127, 64, -32]);
        assert!((q.scales[0] - 1.0 / 127.0).abs() < 1e-9);
        assert_eq!(q.scales[1], 1.0);
    }

    #[test]
    fn conv_weights_use_seven_bits_so_pair_sums_fit_int16() {
        let q = quantize_rows(&[6.3, -1.0, 0.0, 126.0, 20.0, -42.0], 2, CONV_WEIGHT_LIMIT);
        assert_eq!(q.values, [63, -10, 0, 63, 10, -21]);
        assert!((q.scales[0] - 0.1).abs() < 1e-6 && q.scales[1] == 2.0);
        // The worst pair of u8 x s8 products AVX2 adds before widening.
        let worst_pair = 2 * 255 * i32::from(CONV_WEIGHT_LIMIT);
        assert!(worst_pair <= i32::from(i16::MAX), "{worst_pair}");
        assert!(2 * 255 * i32::from(DEQUANTISED_WEIGHT_LIMIT) > i32::from(i16::MAX));
    }

    #[test]
    fn affine_range_keeps_zero_exact() {
        let q = AffineU8::covering(-1.0, 3.0);
        assert!((q.scale - 4.0 / 255.0).abs() < 1e-7);
        let lowest = -f32::from(q.zero_point) * q.scale;
        let highest = (255.0 - f32::from(q.zero_point)) * q.scale;
        assert!((lowest + 1.0).abs() <= q.scale / 2.0, "{lowest}");
        assert!((highest - 3.0).abs() <= q.scale / 2.0, "{highest}");
        assert_eq!(AffineU8::covering(0.0, 0.0).scale, 1.0);
        assert_eq!(AffineU8::covering(0.0, 2.0).zero_point, 0);
    }

    #[test]
    fn bias_is_expressed_in_accumulator_units() {
        assert_eq!(
            quantize_bias(&[1.0, -0.5], 0.5, &[0.1, 0.01]),
            vec![20, -100]
        );
    }

    #[test]
    fn synthetic_ids_are_right_padded_and_in_vocabulary() {
        let cfg = ArchConfig {
            vocab_size: 10,
            embed_dim: 2,
            filters: 2,
            kernel_widths: vec![3],
            seq_len: 16,
            labels: vec!["ham".into(), "spam".into()],
            ngram: smsguard_core::ngrams::NgramConfig::default(),
            conv: crate::config::ConvKind::Separable,
            head: HeadKind::Pooled,
        };
        for ids in synthetic_ids(&cfg, 50, 7) {
            assert_eq!(ids.len(), 16);
            let len = ids.iter().take_while(|&&id| id != 0).count();
            assert!(len >= 1);
            assert!(ids[len..].iter().all(|&id| id == 0));
            assert!(ids.iter().all(|&id| (0..10).contains(&id)));
        }
    }
}
