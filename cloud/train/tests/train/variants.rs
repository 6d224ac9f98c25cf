//! The compression ablation's architecture variants: full convolutions instead of depthwise-
//! separable ones, and a fully connected (dense) head instead of global max pooling. Each must
//! export ONNX files that ONNX Runtime runs with the candle model's and the reference's logits,
//! quantise under the same int8 rule as the shipped form, and train; old manifests (without the
//! switches) must still read as the shipped form.

use candle_core::{Device, Tensor as CandleTensor};
use onnx_protobuf::{tensor_proto::DataType, ModelProto};
use protobuf::Message;
use smsguard_train::config::{ArchConfig, ConvKind, HeadKind};
use smsguard_train::manifest::Manifest;
use smsguard_train::model::{expected_shapes, BatchInput, CharCnn};
use smsguard_train::onnx_export::{export_fp32, ExportError, ReferenceCnn};
use smsguard_train::quantize::{export_int8_calibrated, synthetic_ids, CONV_WEIGHT_LIMIT};
use smsguard_train::trainer::{self, TrainConfig};

use super::parity::{
    argmax, edge_case_inputs, max_abs_diff, mid_config, padded_ngrams, random_weights, run_batch,
    session, small_config, synthetic_inputs, Input,
};
use crate::fixture;

type Weights = Vec<(String, Vec<usize>, Vec<f32>)>;

/// The three forms that differ from the shipped one.
const VARIANTS: [(ConvKind, HeadKind); 3] = [
    (ConvKind::Full, HeadKind::Pooled),
    (ConvKind::Separable, HeadKind::Dense),
    (ConvKind::Full, HeadKind::Dense),
];

fn variant(base: ArchConfig, conv: ConvKind, head: HeadKind) -> ArchConfig {
    ArchConfig { conv, head, ..base }
}

/// Seeded weights for any form, from the model's own shape list: uniform, scaled by fan-in so
/// activations stay O(1); biases and n-gram weights non-zero so that they are tested too.
pub(super) fn variant_weights(cfg: &ArchConfig, seed: u64) -> Weights {
    let mut state = seed;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    };
    expected_shapes(cfg)
        .into_iter()
        .map(|(name, shape)| {
            let scale = if name.ends_with(".bias") {
                0.1
            } else if name == "embedding.weight" || name == "ngram.weight" {
                1.0
            } else {
                let fan_in: usize = shape[1..].iter().product();
                // The head reads ReLU outputs (half of them zero): twice the plain fan-in scale.
                let gain = if name == "head.weight" { 2.0 } else { 1.0 };
                gain / (fan_in as f32).sqrt()
            };
            let values = (0..shape.iter().product())
                .map(|_| next() * scale)
                .collect();
            (name, shape, values)
        })
        .collect()
}

fn candle_logits(cfg: &ArchConfig, weights: &Weights, inputs: &[Input]) -> Vec<Vec<f32>> {
    let model = CharCnn::from_weights(cfg, weights).expect("candle model from weights");
    let flat: Vec<i64> = inputs.iter().flat_map(|i| i.ids.iter().copied()).collect();
    let padded = padded_ngrams(inputs);
    let (n, width) = (inputs.len(), padded.width);
    let batch = BatchInput {
        ids: CandleTensor::from_vec(flat, (n, cfg.seq_len), &Device::Cpu).unwrap(),
        ngram_ids: CandleTensor::from_vec(padded.ids, (n, width), &Device::Cpu).unwrap(),
        ngram_weights: CandleTensor::from_vec(padded.weights, (n, width), &Device::Cpu).unwrap(),
    };
    model.forward(&batch).unwrap().to_vec2().unwrap()
}

#[test]
fn variant_weights_of_the_shipped_form_have_the_hand_written_contract_shapes() {
    // Guards the generic generator: for the shipped form it names and shapes what parity's
    // hand-written generator does.
    let cfg = mid_config();
    let shapes = |w: &Weights| w.iter().map(|(n, s, _)| (n.clone(), s.clone())).collect();
    let ours: Vec<(String, Vec<usize>)> = shapes(&variant_weights(&cfg, 1));
    let hand_written: Vec<(String, Vec<usize>)> = shapes(&random_weights(&cfg, 1));
    assert_eq!(ours, hand_written);
}

#[test]
fn every_variant_exports_fp32_that_matches_reference_and_candle() {
    for (conv, head) in VARIANTS {
        for base in [small_config(), mid_config()] {
            let cfg = variant(base, conv, head);
            let weights = variant_weights(&cfg, 21);
            let reference = ReferenceCnn::from_named(&cfg, &weights).expect("valid weights");
            let model = export_fp32(&cfg, &weights, &[]).expect("fp32 export");
            let inputs = edge_case_inputs(&cfg);
            let onnx = run_batch(&mut session(&model), &inputs, cfg.num_labels());
            let candle = candle_logits(&cfg, &weights, &inputs);
            for ((input, onnx), candle) in inputs.iter().zip(&onnx).zip(&candle) {
                let expected = reference.forward(&input.ids, &input.ngrams).unwrap();
                let what = format!("{conv:?}/{head:?} L={}", cfg.seq_len);
                assert!(
                    max_abs_diff(&expected, onnx) <= 1e-4,
                    "{what}: reference {expected:?} vs ONNX {onnx:?}"
                );
                assert!(
                    max_abs_diff(&expected, candle) <= 1e-4,
                    "{what}: reference {expected:?} vs candle {candle:?}"
                );
            }
            // The logits depend on the input (a parity of constants would prove nothing).
            assert!(max_abs_diff(&onnx[1], &onnx[2]) > 1e-3);
        }
    }
}

#[test]
fn the_dense_head_has_a_weight_per_position_and_reads_the_order() {
    // The same tokens in reverse order give other logits, and the head's width grows with L
    // (what makes the dense head's size depend on seq_len).
    let cfg = variant(small_config(), ConvKind::Separable, HeadKind::Dense);
    let reference = ReferenceCnn::from_named(&cfg, &variant_weights(&cfg, 5)).unwrap();
    let forward: Vec<i64> = (0..cfg.seq_len as i64).map(|t| 1 + t % 50).collect();
    let backward: Vec<i64> = forward.iter().rev().copied().collect();
    let none = Default::default();
    let a = reference.forward(&forward, &none).unwrap();
    let b = reference.forward(&backward, &none).unwrap();
    assert!(max_abs_diff(&a, &b) > 1e-3, "{a:?} vs {b:?}");
    let head = expected_shapes(&cfg)
        .into_iter()
        .find(|(n, _)| n == "head.weight")
        .unwrap();
    assert_eq!(
        head.1,
        vec![
            cfg.num_labels(),
            cfg.filters * cfg.kernel_widths.len() * cfg.seq_len
        ]
    );
}

#[test]
fn int8_variants_agree_with_fp32_under_the_parity_rule() {
    for (conv, head) in VARIANTS {
        let cfg = variant(mid_config(), conv, head);
        let weights = variant_weights(&cfg, 3);
        let calibration = synthetic_ids(&cfg, 128, 100);
        let fp32 = export_fp32(&cfg, &weights, &[]).unwrap();
        let int8 = export_int8_calibrated(&cfg, &weights, &[], &calibration).unwrap();
        let inputs = synthetic_inputs(&cfg, 300, 200);
        let a = run_batch(&mut session(&fp32), &inputs, cfg.num_labels());
        let b = run_batch(&mut session(&int8), &inputs, cfg.num_labels());
        let agree = a
            .iter()
            .zip(&b)
            .filter(|(x, y)| argmax(x) == argmax(y))
            .count();
        let max_diff = a
            .iter()
            .zip(&b)
            .map(|(x, y)| max_abs_diff(x, y))
            .fold(0.0, f32::max);
        let spread = a.iter().flatten().fold(0.0f32, |m, v| m.max(v.abs()));
        println!(
            "{conv:?}/{head:?} int8 vs fp32: agreement {agree}/300, max |diff| {max_diff:.4} (max |logit| {spread:.3})"
        );
        assert!(
            agree * 100 >= inputs.len() * 99,
            "{conv:?}/{head:?}: {agree}/300"
        );
        assert!(
            max_diff <= 0.05 * spread,
            "{conv:?}/{head:?}: {max_diff} vs {spread}"
        );
    }
}

#[test]
fn full_conv_int8_runs_group_one_convs_with_seven_bit_weights() {
    let cfg = variant(mid_config(), ConvKind::Full, HeadKind::Pooled);
    let weights = variant_weights(&cfg, 4);
    let int8 = export_int8_calibrated(&cfg, &weights, &[], &synthetic_ids(&cfg, 16, 1)).unwrap();
    let model = ModelProto::parse_from_bytes(&int8).unwrap();
    let graph = model.graph.as_ref().unwrap();
    let convs: Vec<_> = graph
        .node
        .iter()
        .filter(|n| n.op_type == "QLinearConv")
        .collect();
    assert_eq!(convs.len(), cfg.kernel_widths.len(), "one conv per branch");
    for (conv, &k) in convs.iter().zip(&cfg.kernel_widths) {
        let group = conv.attribute.iter().find(|a| a.name == "group");
        assert!(group.is_none_or(|g| g.i == 1), "full convs have one group");
        let weight = graph
            .initializer
            .iter()
            .find(|t| t.name == conv.input[3])
            .expect("conv weight initializer");
        assert_eq!(weight.data_type, DataType::INT8 as i32);
        assert_eq!(
            weight.dims,
            [cfg.filters as i64, cfg.embed_dim as i64, k as i64]
        );
        let codes = weight.raw_data.iter().map(|&b| b as i8);
        // The AVX2 pair-sum bound (see quantize::CONV_WEIGHT_LIMIT), and the full range used.
        assert_eq!(
            codes.clone().map(i8::unsigned_abs).max(),
            Some(CONV_WEIGHT_LIMIT as u8)
        );
        assert!(codes.clone().all(|c| c.abs() <= CONV_WEIGHT_LIMIT));
    }
}

#[test]
fn a_full_conv_model_refuses_separable_weights() {
    let cfg = variant(small_config(), ConvKind::Full, HeadKind::Pooled);
    let separable = random_weights(&small_config(), 2);
    assert!(matches!(
        export_fp32(&cfg, &separable, &[]),
        Err(ExportError::MissingTensor(name)) if name == "convs.0.conv.weight"
    ));
    assert!(CharCnn::from_weights(&cfg, &separable).is_err());
}

#[test]
fn every_variant_trains_on_the_fixture() {
    let (_, _, base, set) = fixture::prepared();
    let class_weights = vec![1.0; base.num_labels()];
    let tc = TrainConfig {
        epochs: 20,
        batch_size: 4,
        learning_rate: 1e-2,
        weight_decay: 0.0,
        patience: usize::MAX,
        seed: 9,
        max_per_source: None,
        max_minutes: None,
        max_steps: Some(20),
        progress: false,
    };
    for (conv, head) in VARIANTS {
        let cfg = variant(base.clone(), conv, head);
        let before = CharCnn::new(&cfg, tc.seed).unwrap();
        let before = trainer::mean_loss(&before, &set, &class_weights).unwrap();
        let outcome = trainer::train(&cfg, &set, &set, &class_weights, &tc, None).unwrap();
        let after = CharCnn::from_weights(&cfg, &outcome.weights).unwrap();
        let after = trainer::mean_loss(&after, &set, &class_weights).unwrap();
        assert!(
            after < 0.7 * before,
            "{conv:?}/{head:?}: loss {before} -> {after}"
        );
    }
}

#[test]
fn a_manifest_without_the_switches_reads_as_the_shipped_form() {
    // The shipped manifest predates the switches and must keep parsing (and printing back
    // unchanged: the requantize test checks the bytes).
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../edge/models/manifest.json");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("\"conv\"") && !text.contains("\"head\""));
    let manifest = Manifest::read(&path).unwrap();
    assert_eq!(manifest.arch.conv, ConvKind::Separable);
    assert_eq!(manifest.arch.head, HeadKind::Pooled);

    // A variant's arch names both switches and reads back as written.
    let cfg = variant(small_config(), ConvKind::Full, HeadKind::Dense);
    let json = serde_json::to_value(&cfg).unwrap();
    assert_eq!(json["conv"], "full");
    assert_eq!(json["head"], "dense");
    assert_eq!(serde_json::from_value::<ArchConfig>(json).unwrap(), cfg);
    let mut unknown = serde_json::to_value(&cfg).unwrap();
    unknown["conv"] = "grouped".into();
    assert!(serde_json::from_value::<ArchConfig>(unknown).is_err());
}
