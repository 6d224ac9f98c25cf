//! int8 ONNX export of the edge char-CNN, in the operator form ONNX Runtime runs fastest on CPU:
//! `QLinearConv` with per-output-channel symmetric int8 weights on uint8 activations.
//!
//! ```text
//! ids -> Gather(embedding int8 [V, D]) -> Cast -> Mul(Gather(row scales [V, 1]))   per-row dequant
//!     -> Transpose -> QuantizeLinear (uint8, range of the whole table)
//!     -> per branch: QLinearConv depthwise -> QLinearConv pointwise (output zero point 0 = ReLU)
//!                    -> ReduceMax over time (uint8) -> DequantizeLinear
//!     -> Concat -> Gemm(B = DequantizeLinear(int8 head weight, per row)) -> logits
//! ```
//! Activation ranges of the conv outputs come from running the reference forward pass
//! ([`CharCnn`]) over calibration inputs; pass real samples via [`export_int8_calibrated`].

use crate::config::ArchConfig;
use crate::onnx_export::{
    attr_int, attr_ints, depthwise_attrs, max_over_time_attrs, serialize_model, Branch, CharCnn,
    ExportError, GraphBuilder, INPUT_NAME, OUTPUT_NAME,
};

/// Number of synthetic sequences [`export_int8`] calibrates on when given no real samples.
pub const DEFAULT_CALIBRATION_SAMPLES: usize = 256;
const DEFAULT_CALIBRATION_SEED: u64 = 0x5EED_CA11;
/// ONNX `TensorProto.DataType.FLOAT`, the target of the embedding `Cast`.
const ONNX_FLOAT: i64 = 1;

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
    let cnn = CharCnn::from_named(cfg, weights)?;
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

/// Symmetric int8 quantisation with one scale per row (output channel): `x ≈ q * scale`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PerRowInt8 {
    pub(crate) values: Vec<i8>,
    pub(crate) scales: Vec<f32>,
}

pub(crate) fn quantize_rows(data: &[f32], rows: usize) -> PerRowInt8 {
    let width = data.len() / rows.max(1);
    let mut values = Vec::with_capacity(data.len());
    let mut scales = Vec::with_capacity(rows);
    for row in data.chunks(width.max(1)) {
        let max_abs = row.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        // An all-zero row quantises to zeros under any scale; 1 avoids dividing by zero.
        let scale = if max_abs > 0.0 { max_abs / 127.0 } else { 1.0 };
        values.extend(row.iter().map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8));
        scales.push(scale);
    }
    PerRowInt8 { values, scales }
}

impl PerRowInt8 {
    fn dequantized(&self) -> impl Iterator<Item = f32> + '_ {
        let width = self.values.len() / self.scales.len().max(1);
        self.values
            .chunks(width.max(1))
            .zip(&self.scales)
            .flat_map(|(row, &s)| row.iter().map(move |&q| f32::from(q) * s))
    }
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
}

/// Activation quantisers of every conv output, measured by [`calibrate`].
#[derive(Debug, Clone)]
pub(crate) struct Calibration {
    depthwise: Vec<AffineU8>,
    pointwise: Vec<AffineU8>,
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

fn calibrate(cnn: &CharCnn, calibration_ids: &[Vec<i64>]) -> Result<Calibration, ExportError> {
    if calibration_ids.is_empty() {
        return Err(ExportError::InvalidConfig(
            "int8 export needs at least one calibration sequence".to_string(),
        ));
    }
    let branches = cnn.branches.len();
    let mut depthwise = vec![Range::EMPTY; branches];
    let mut pointwise = vec![Range::EMPTY; branches];
    for ids in calibration_ids {
        let acts = cnn.forward_activations(ids)?;
        for b in 0..branches {
            depthwise[b].widen(&acts.depthwise[b]);
            pointwise[b].widen(&acts.pointwise[b]);
        }
    }
    Ok(Calibration {
        depthwise: depthwise
            .iter()
            .map(|r| AffineU8::covering(r.min, r.max))
            .collect(),
        // Below zero ReLU clips anyway, so the pointwise quantiser spends all codes on [0, max].
        pointwise: pointwise
            .iter()
            .map(|r| AffineU8::covering(0.0, r.max))
            .collect(),
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

fn int8_graph(cnn: &CharCnn, calibration: &Calibration) -> onnx_protobuf::GraphProto {
    let cfg = &cnn.cfg;
    let mut g = GraphBuilder::new("smsguard_char_cnn_int8", cfg);
    let embedded = add_embedding(&mut g, cnn);
    let mut pooled = Vec::with_capacity(cnn.branches.len());
    for (i, branch) in cnn.branches.iter().enumerate() {
        let branch_quant = BranchQuant {
            input: embedded,
            depthwise: calibration.depthwise[i],
            pointwise: calibration.pointwise[i],
        };
        pooled.push(add_branch(&mut g, cfg, i, branch, &branch_quant));
    }
    let pooled: Vec<&str> = pooled.iter().map(String::as_str).collect();
    g.node("Concat", &pooled, &["features"], vec![attr_int("axis", 1)]);
    add_head(&mut g, cnn);
    g.finish()
}

/// Int8 embedding with per-row scales, dequantised after the lookup and re-quantised to uint8
/// with one range covering the whole table (any id may occur). Returns the input quantiser.
fn add_embedding(g: &mut GraphBuilder, cnn: &CharCnn) -> AffineU8 {
    let (v, d) = (cnn.cfg.vocab_size, cnn.cfg.embed_dim);
    let table = quantize_rows(&cnn.embedding, v);
    let range = table.dequantized().fold(Range::EMPTY, |mut r, x| {
        r.widen(&[x]);
        r
    });
    let quant = AffineU8::covering(range.min, range.max);
    g.init_i8("embedding.weight_q", &[v, d], &table.values);
    g.init_f32("embedding.row_scale", &[v, 1], &table.scales);
    g.init_f32("embedded.scale", &[], &[quant.scale]);
    g.init_u8("embedded.zero_point", &[], &[quant.zero_point]);
    let axis0 = || vec![attr_int("axis", 0)];
    g.node("Gather", &["embedding.weight_q", INPUT_NAME], &["embedded_q8"], axis0());
    g.node("Gather", &["embedding.row_scale", INPUT_NAME], &["embedded_row_scale"], axis0());
    g.node("Cast", &["embedded_q8"], &["embedded_q8_f"], vec![attr_int("to", ONNX_FLOAT)]);
    g.node("Mul", &["embedded_q8_f", "embedded_row_scale"], &["embedded"], vec![]);
    g.node("Transpose", &["embedded"], &["embedded_t"], vec![attr_ints("perm", &[0, 2, 1])]);
    g.node(
        "QuantizeLinear",
        &["embedded_t", "embedded.scale", "embedded.zero_point"],
        &["embedded_t_u8"],
        vec![],
    );
    quant
}

struct BranchQuant {
    input: AffineU8,
    depthwise: AffineU8,
    pointwise: AffineU8,
}

/// Adds one branch on `embedded_t_u8`; returns the name of its float `[N, F]` pooled output.
fn add_branch(
    g: &mut GraphBuilder,
    cfg: &ArchConfig,
    index: usize,
    branch: &Branch,
    quant: &BranchQuant,
) -> String {
    let (d, f, k) = (cfg.embed_dim, cfg.filters, branch.kernel);
    let p = format!("convs.{index}");
    add_activation_quant(g, &format!("{p}.dw_out"), quant.depthwise);
    add_activation_quant(g, &format!("{p}.pw_out"), quant.pointwise);
    let dw = QConv {
        prefix: format!("{p}.dw"),
        shape: vec![d, 1, k],
        weight: &branch.dw_weight,
        bias: &branch.dw_bias,
        input_name: "embedded_t_u8".to_string(),
        input_quant: "embedded",
        input_scale: quant.input.scale,
        output_quant: format!("{p}.dw_out"),
    };
    add_qlinear_conv(g, &dw, depthwise_attrs(d, k));
    let pw = QConv {
        prefix: format!("{p}.pw"),
        shape: vec![f, d, 1],
        weight: &branch.pw_weight,
        bias: &branch.pw_bias,
        input_name: format!("{p}.dw_u8"),
        input_quant: &format!("{p}.dw_out"),
        input_scale: quant.depthwise.scale,
        output_quant: format!("{p}.pw_out"),
    };
    add_qlinear_conv(g, &pw, vec![attr_ints("kernel_shape", &[1])]);
    // Max pooling commutes with the monotone dequantisation, so pool on the uint8 codes.
    g.node(
        "ReduceMax",
        &[&format!("{p}.pw_u8")],
        &[&format!("{p}.pooled_u8")],
        max_over_time_attrs(),
    );
    let pooled = format!("{p}.pooled");
    g.node(
        "DequantizeLinear",
        &[
            &format!("{p}.pooled_u8"),
            &format!("{p}.pw_out.scale"),
            &format!("{p}.pw_out.zero_point"),
        ],
        &[&pooled],
        vec![],
    );
    pooled
}

fn add_activation_quant(g: &mut GraphBuilder, name: &str, quant: AffineU8) {
    g.init_f32(&format!("{name}.scale"), &[], &[quant.scale]);
    g.init_u8(&format!("{name}.zero_point"), &[], &[quant.zero_point]);
}

/// One `QLinearConv`: reads `input_name` quantised by `{input_quant}.scale/.zero_point`, writes
/// `{prefix}_u8` quantised by `{output_quant}.scale/.zero_point`.
struct QConv<'a> {
    prefix: String,
    shape: Vec<usize>,
    weight: &'a [f32],
    bias: &'a [f32],
    input_name: String,
    input_quant: &'a str,
    input_scale: f32,
    output_quant: String,
}

fn add_qlinear_conv(
    g: &mut GraphBuilder,
    conv: &QConv<'_>,
    attributes: Vec<onnx_protobuf::AttributeProto>,
) {
    let channels = conv.shape[0];
    let weight = quantize_rows(conv.weight, channels);
    let bias = quantize_bias(conv.bias, conv.input_scale, &weight.scales);
    let p = &conv.prefix;
    g.init_i8(&format!("{p}.weight_q"), &conv.shape, &weight.values);
    g.init_f32(&format!("{p}.weight_scale"), &[channels], &weight.scales);
    g.init_i8(&format!("{p}.weight_zero_point"), &[channels], &vec![0; channels]);
    g.init_i32(&format!("{p}.bias_q"), &[channels], &bias);
    let (iq, oq) = (conv.input_quant, &conv.output_quant);
    g.node(
        "QLinearConv",
        &[
            &conv.input_name,
            &format!("{iq}.scale"),
            &format!("{iq}.zero_point"),
            &format!("{p}.weight_q"),
            &format!("{p}.weight_scale"),
            &format!("{p}.weight_zero_point"),
            &format!("{oq}.scale"),
            &format!("{oq}.zero_point"),
            &format!("{p}.bias_q"),
        ],
        &[&format!("{p}_u8")],
        attributes,
    );
}

/// Head weight stored int8 per output row and dequantised for a float `Gemm` (it is tiny).
fn add_head(g: &mut GraphBuilder, cnn: &CharCnn) {
    let (c, width) = (cnn.cfg.num_labels(), cnn.cfg.pooled_width());
    let weight = quantize_rows(&cnn.head_weight, c);
    g.init_i8("head.weight_q", &[c, width], &weight.values);
    g.init_f32("head.weight_scale", &[c], &weight.scales);
    g.init_i8("head.weight_zero_point", &[c], &vec![0; c]);
    g.init_f32("head.bias", &[c], &cnn.head_bias);
    g.node(
        "DequantizeLinear",
        &["head.weight_q", "head.weight_scale", "head.weight_zero_point"],
        &["head.weight"],
        vec![attr_int("axis", 0)],
    );
    g.node(
        "Gemm",
        &["features", "head.weight", "head.bias"],
        &[OUTPUT_NAME],
        vec![attr_int("transB", 1)],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_row_quantisation_uses_full_int8_range_per_row() {
        let q = quantize_rows(&[0.5, -1.0, 0.25, 0.0, 0.0, 0.0, 2.0, 1.0, -0.5], 3);
        assert_eq!(q.values[..3], [64, -127, 32]);
        assert_eq!(q.values[3..6], [0, 0, 0]);
        assert_eq!(q.values[6..], [127, 64, -32]);
        assert!((q.scales[0] - 1.0 / 127.0).abs() < 1e-9);
        assert_eq!(q.scales[1], 1.0);
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
        assert_eq!(quantize_bias(&[1.0, -0.5], 0.5, &[0.1, 0.01]), vec![20, -100]);
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
