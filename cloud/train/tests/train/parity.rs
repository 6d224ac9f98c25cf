//! Parity of the exported ONNX models (run by ONNX Runtime) with the plain-Rust reference forward
//! pass, int8 vs fp32 agreement, metadata round trip and the int8 file size budget.

use std::path::PathBuf;
use std::sync::OnceLock;

use candle_core::{Device, Tensor as CandleTensor};
use ort::session::Session;
use ort::value::Tensor;
use smsguard_core::model_meta;
use smsguard_core::ngrams::{pad_batch, NgramConfig, NgramFeatures, PaddedNgrams};
use smsguard_train::config::{ArchConfig, ConvKind, HeadKind};
use smsguard_train::model::{BatchInput, CharCnn};
use smsguard_train::onnx_export::{
    export_fp32, ExportError, ReferenceCnn, INPUT_NAME, NGRAM_IDS_NAME, NGRAM_WEIGHTS_NAME,
    OUTPUT_NAME,
};
use smsguard_train::quantize::{export_int8, export_int8_calibrated, synthetic_ids};

type Weights = Vec<(String, Vec<usize>, Vec<f32>)>;

/// ONNX Runtime library: `ORT_DYLIB_PATH`, else the copy provisioned into the repository.
fn ort_library() -> PathBuf {
    let path = std::env::var_os("ORT_DYLIB_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.ort/libonnxruntime.so")
        });
    assert!(
        path.is_file(),
        "ONNX Runtime library not found at {}: run edge/provision-onnxruntime.sh or set ORT_DYLIB_PATH",
        path.display()
    );
    path
}

/// One ONNX Runtime environment per process (ort allows no second one).
fn environment() -> &'static ort::environment::Environment {
    static ENV: OnceLock<ort::environment::Environment> = OnceLock::new();
    ENV.get_or_init(|| {
        ort::init_from(ort_library())
            .expect("loading the ONNX Runtime library")
            .with_name("smsguard-train-parity")
            .build()
            .expect("creating the ONNX Runtime environment")
    })
}

pub(super) fn session(model: &[u8]) -> Session {
    Session::builder(environment())
        .expect("session builder")
        .with_intra_threads(1)
        .expect("intra-op threads")
        .commit_from_memory(model)
        .expect("ONNX Runtime rejected the exported model")
}

/// One message as the model reads it.
#[derive(Debug, Clone)]
pub(super) struct Input {
    pub(super) ids: Vec<i64>,
    pub(super) ngrams: NgramFeatures,
}

/// The n-gram columns of a batch, as the edge pads them.
pub(super) fn padded_ngrams(batch: &[Input]) -> PaddedNgrams {
    let grams: Vec<&NgramFeatures> = batch.iter().map(|i| &i.ngrams).collect();
    pad_batch(&grams)
}

/// Runs one batch through ONNX Runtime and returns one logits row per message.
pub(super) fn run_batch(session: &mut Session, batch: &[Input], labels: usize) -> Vec<Vec<f32>> {
    let seq_len = batch[0].ids.len();
    let flat: Vec<i64> = batch.iter().flat_map(|i| i.ids.iter().copied()).collect();
    let input = Tensor::from_array(([batch.len(), seq_len], flat)).expect("input tensor");
    let padded = padded_ngrams(batch);
    let shape = [batch.len(), padded.width];
    let ngram_ids = Tensor::from_array((shape, padded.ids)).expect("n-gram ids");
    let ngram_weights = Tensor::from_array((shape, padded.weights)).expect("n-gram weights");
    let outputs = session
        .run(ort::inputs![
            INPUT_NAME => input,
            NGRAM_IDS_NAME => ngram_ids,
            NGRAM_WEIGHTS_NAME => ngram_weights,
        ])
        .expect("inference");
    let (shape, logits) = outputs[OUTPUT_NAME]
        .try_extract_tensor::<f32>()
        .expect("float logits");
    assert_eq!(&shape[..], &[batch.len() as i64, labels as i64]);
    logits.chunks(labels).map(<[f32]>::to_vec).collect()
}

/// Deterministic uniform numbers in `[-1, 1)` for weight initialisation.
struct Uniform(u64);

impl Uniform {
    fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    fn tensor(
        &mut self,
        name: &str,
        shape: &[usize],
        scale: f32,
    ) -> (String, Vec<usize>, Vec<f32>) {
        let len = shape.iter().product();
        let values = (0..len).map(|_| self.next() * scale).collect();
        (name.to_string(), shape.to_vec(), values)
    }
}

/// Weights shaped by the config contract, scaled like a fan-in initialisation so that
/// activations stay O(1) through the network.
pub(super) fn random_weights(cfg: &ArchConfig, seed: u64) -> Weights {
    let mut rng = Uniform(seed);
    let (d, f, c) = (cfg.embed_dim, cfg.filters, cfg.num_labels());
    let mut weights = vec![rng.tensor("embedding.weight", &[cfg.vocab_size, d], 1.0)];
    for (i, &k) in cfg.kernel_widths.iter().enumerate() {
        let dw_scale = 1.0 / (k as f32).sqrt();
        let pw_scale = 1.0 / (d as f32).sqrt();
        weights.push(rng.tensor(&format!("convs.{i}.dw.weight"), &[d, 1, k], dw_scale));
        weights.push(rng.tensor(&format!("convs.{i}.dw.bias"), &[d], 0.1));
        weights.push(rng.tensor(&format!("convs.{i}.pw.weight"), &[f, d, 1], pw_scale));
        weights.push(rng.tensor(&format!("convs.{i}.pw.bias"), &[f], 0.1));
    }
    let head_scale = 2.0 / (cfg.pooled_width() as f32).sqrt();
    weights.push(rng.tensor("head.weight", &[c, cfg.pooled_width()], head_scale));
    weights.push(rng.tensor("head.bias", &[c], 0.1));
    weights.push(rng.tensor("ngram.weight", &[cfg.ngram.buckets], 1.0));
    weights
}

/// Seeded n-gram features for each id row: 0 to 12 distinct buckets (the first row none), unit
/// L2 weights, like `smsguard_core::ngrams::hash_ngrams` output.
fn with_ngrams(cfg: &ArchConfig, rows: Vec<Vec<i64>>, seed: u64) -> Vec<Input> {
    let mut rng = Uniform(seed);
    let buckets = cfg.ngram.buckets as f32 - 1.0;
    rows.into_iter()
        .enumerate()
        .map(|(r, ids)| {
            let count = if r == 0 {
                0
            } else {
                (rng.next().abs() * 13.0) as usize
            };
            let mut grams: Vec<i64> = (0..count)
                .map(|_| 1 + (rng.next().abs() * buckets) as i64 % buckets as i64)
                .collect();
            grams.sort_unstable();
            grams.dedup();
            let raw: Vec<f32> = grams.iter().map(|_| 0.2 + rng.next().abs()).collect();
            let norm = raw.iter().map(|w| w * w).sum::<f32>().sqrt().max(1e-6);
            let ngrams = NgramFeatures {
                ids: grams,
                weights: raw.iter().map(|w| w / norm).collect(),
            };
            Input { ids, ngrams }
        })
        .collect()
}

pub(super) fn synthetic_inputs(cfg: &ArchConfig, count: usize, seed: u64) -> Vec<Input> {
    with_ngrams(cfg, synthetic_ids(cfg, count, seed), seed ^ 0xA5A5)
}

fn ngram_config(buckets: usize) -> NgramConfig {
    NgramConfig {
        buckets,
        ..NgramConfig::default()
    }
}

fn labels(count: usize) -> Vec<String> {
    std::iter::once("ham".to_string())
        .chain((1..count).map(|i| format!("class{i}")))
        .collect()
}

pub(super) fn small_config() -> ArchConfig {
    ArchConfig {
        vocab_size: 61,
        embed_dim: 8,
        filters: 6,
        kernel_widths: vec![3, 5],
        seq_len: 24,
        labels: labels(3),
        ngram: ngram_config(32),
        conv: ConvKind::Separable,
        head: HeadKind::Pooled,
    }
}

pub(super) fn mid_config() -> ArchConfig {
    ArchConfig {
        vocab_size: 400,
        embed_dim: 16,
        filters: 32,
        kernel_widths: vec![3, 5, 7],
        seq_len: 64,
        labels: labels(5),
        ngram: ngram_config(500),
        conv: ConvKind::Separable,
        head: HeadKind::Pooled,
    }
}

fn default_config() -> ArchConfig {
    ArchConfig {
        vocab_size: 3064,
        embed_dim: 32,
        filters: 96,
        kernel_widths: vec![3, 5, 7],
        seq_len: 128,
        labels: labels(5),
        ngram: NgramConfig::default(),
        conv: ConvKind::Separable,
        head: HeadKind::Pooled,
    }
}

/// Edge cases of the input space plus a few ordinary right-padded sequences, with n-grams.
pub(super) fn edge_case_inputs(cfg: &ArchConfig) -> Vec<Input> {
    with_ngrams(cfg, edge_case_ids(cfg), 77)
}

fn edge_case_ids(cfg: &ArchConfig) -> Vec<Vec<i64>> {
    let l = cfg.seq_len;
    let last_id = cfg.vocab_size as i64 - 1;
    let mut inputs = vec![
        vec![0; l],                                             // all padding
        (0..l).map(|t| 1 + (t as i64 * 7) % last_id).collect(), // full length
        vec![last_id; l],                                       // highest id everywhere
    ];
    let mut single = vec![0; l];
    single[0] = 5;
    inputs.push(single); // one token: conv padding on both sides matters
    inputs.extend(synthetic_ids(cfg, 6, 11));
    inputs
}

pub(super) fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

pub(super) fn argmax(values: &[f32]) -> usize {
    values
        .iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
            if v > best.1 {
                (i, v)
            } else {
                best
            }
        })
        .0
}

#[test]
fn fp32_export_matches_reference_forward() {
    for cfg in [small_config(), mid_config()] {
        let weights = random_weights(&cfg, 1);
        let reference = ReferenceCnn::from_named(&cfg, &weights).expect("valid weights");
        let model = export_fp32(&cfg, &weights, &[]).expect("fp32 export");
        let mut session = session(&model);
        let inputs = edge_case_inputs(&cfg);
        // Whole batch at once (dynamic N) and one at a time must both agree.
        let batched = run_batch(&mut session, &inputs, cfg.num_labels());
        for (input, onnx) in inputs.iter().zip(&batched) {
            let expected = reference
                .forward(&input.ids, &input.ngrams)
                .expect("reference forward");
            let single = run_batch(&mut session, std::slice::from_ref(input), cfg.num_labels());
            assert!(
                max_abs_diff(&expected, onnx) <= 1e-4,
                "{expected:?} vs {onnx:?}"
            );
            assert!(max_abs_diff(&expected, &single[0]) <= 1e-4);
        }
    }
}

#[test]
fn fp32_export_matches_candle_model() {
    let cfg = mid_config();
    let weights = random_weights(&cfg, 10);
    let candle = CharCnn::from_weights(&cfg, &weights).expect("candle model from weights");
    let model = export_fp32(&cfg, &weights, &[]).expect("fp32 export");
    let inputs = edge_case_inputs(&cfg);
    let onnx = run_batch(&mut session(&model), &inputs, cfg.num_labels());
    let flat: Vec<i64> = inputs.iter().flat_map(|i| i.ids.iter().copied()).collect();
    let padded = padded_ngrams(&inputs);
    let (n, width) = (inputs.len(), padded.width);
    let batch = BatchInput {
        ids: CandleTensor::from_vec(flat, (n, cfg.seq_len), &Device::Cpu).unwrap(),
        ngram_ids: CandleTensor::from_vec(padded.ids, (n, width), &Device::Cpu).unwrap(),
        ngram_weights: CandleTensor::from_vec(padded.weights, (n, width), &Device::Cpu).unwrap(),
    };
    let logits: Vec<Vec<f32>> = candle.forward(&batch).unwrap().to_vec2().unwrap();
    for (expected, actual) in logits.iter().zip(&onnx) {
        assert!(
            max_abs_diff(expected, actual) <= 1e-4,
            "{expected:?} vs {actual:?}"
        );
    }
}

#[test]
fn reference_forward_depends_on_every_part_of_the_input() {
    // Guards against a parity test that passes because the model ignores its input.
    let cfg = small_config();
    let reference =
        ReferenceCnn::from_named(&cfg, &random_weights(&cfg, 2)).expect("valid weights");
    let inputs = edge_case_inputs(&cfg);
    let logits: Vec<Vec<f32>> = inputs
        .iter()
        .map(|input| reference.forward(&input.ids, &input.ngrams).unwrap())
        .collect();
    for (i, a) in logits.iter().enumerate() {
        for b in &logits[i + 1..] {
            assert!(max_abs_diff(a, b) > 1e-3);
        }
    }
}

#[test]
fn ngram_evidence_moves_every_spam_logit_alike_and_leaves_ham() {
    let cfg = mid_config();
    let weights = random_weights(&cfg, 12);
    let model = export_fp32(&cfg, &weights, &[]).expect("fp32 export");
    let mut session = session(&model);
    let with = synthetic_inputs(&cfg, 8, 13);
    let without: Vec<Input> = with
        .iter()
        .map(|i| Input {
            ids: i.ids.clone(),
            ngrams: NgramFeatures::default(),
        })
        .collect();
    let a = run_batch(&mut session, &with, cfg.num_labels());
    let b = run_batch(&mut session, &without, cfg.num_labels());
    let mut moved = 0;
    for (input, (x, y)) in with.iter().zip(a.iter().zip(&b)) {
        assert!((x[0] - y[0]).abs() < 1e-5, "ham logit changed");
        let shift = x[1] - y[1];
        assert!(x[1..]
            .iter()
            .zip(&y[1..])
            .all(|(p, q)| (p - q - shift).abs() < 1e-4));
        if !input.ngrams.is_empty() {
            moved += usize::from(shift.abs() > 1e-3);
        }
    }
    assert!(moved > 0, "n-grams never changed a logit");
}

#[test]
fn int8_export_agrees_with_fp32() {
    let cfg = mid_config();
    let weights = random_weights(&cfg, 3);
    let calibration = synthetic_ids(&cfg, 128, 100);
    let fp32 = export_fp32(&cfg, &weights, &[]).expect("fp32 export");
    let int8 = export_int8_calibrated(&cfg, &weights, &[], &calibration).expect("int8 export");
    let inputs = synthetic_inputs(&cfg, 300, 200);
    let fp32_logits = run_batch(&mut session(&fp32), &inputs, cfg.num_labels());
    let int8_logits = run_batch(&mut session(&int8), &inputs, cfg.num_labels());
    let agree = fp32_logits
        .iter()
        .zip(&int8_logits)
        .filter(|(a, b)| argmax(a) == argmax(b))
        .count();
    let max_diff = fp32_logits
        .iter()
        .zip(&int8_logits)
        .map(|(a, b)| max_abs_diff(a, b))
        .fold(0.0, f32::max);
    let spread = fp32_logits
        .iter()
        .flatten()
        .fold(0.0f32, |m, v| m.max(v.abs()));
    println!(
        "int8 vs fp32: argmax agreement {agree}/{}, max |logit diff| {max_diff:.4} (max |logit| {spread:.3})",
        inputs.len()
    );
    assert!(
        agree * 100 >= inputs.len() * 99,
        "argmax agreement {agree}/{}",
        inputs.len()
    );
    assert!(
        max_diff <= 0.05 * spread,
        "max |diff| {max_diff} vs max |logit| {spread}"
    );
}

#[test]
fn default_int8_export_without_real_calibration_still_loads_and_tracks_fp32() {
    let cfg = small_config();
    let weights = random_weights(&cfg, 4);
    let reference = ReferenceCnn::from_named(&cfg, &weights).expect("valid weights");
    let int8 = export_int8(&cfg, &weights, &[]).expect("int8 export");
    let inputs = edge_case_inputs(&cfg);
    let logits = run_batch(&mut session(&int8), &inputs, cfg.num_labels());
    for (input, onnx) in inputs.iter().zip(&logits) {
        let expected = reference.forward(&input.ids, &input.ngrams).unwrap();
        assert!(
            max_abs_diff(&expected, onnx) <= 0.1,
            "{expected:?} vs {onnx:?}"
        );
    }
}

#[test]
fn metadata_round_trips_and_precision_is_set() {
    let cfg = small_config();
    let weights = random_weights(&cfg, 5);
    let metadata = vec![
        (model_meta::SEQ_LEN.to_string(), cfg.seq_len.to_string()),
        (
            model_meta::LABELS.to_string(),
            r#"["ham","class1","class2"]"#.to_string(),
        ),
        // A stale precision from the caller must be replaced, not duplicated.
        (model_meta::PRECISION.to_string(), "fp16".to_string()),
    ];
    let fp32 = export_fp32(&cfg, &weights, &metadata).unwrap();
    let int8 = export_int8(&cfg, &weights, &metadata).unwrap();
    for (model, precision) in [(fp32, "fp32"), (int8, "int8")] {
        let session = session(&model);
        let meta = session.metadata().expect("model metadata");
        assert_eq!(
            meta.custom(model_meta::PRECISION).as_deref(),
            Some(precision)
        );
        assert_eq!(meta.custom(model_meta::SEQ_LEN).as_deref(), Some("24"));
        assert_eq!(
            meta.custom(model_meta::LABELS).as_deref(),
            Some(r#"["ham","class1","class2"]"#)
        );
        assert_eq!(meta.custom(model_meta::VOCAB_SHA256), None);
    }
}

#[test]
fn default_size_int8_model_fits_the_budget() {
    let cfg = default_config();
    let weights = random_weights(&cfg, 6);
    let calibration = synthetic_ids(&cfg, 16, 7);
    let int8 = export_int8_calibrated(&cfg, &weights, &[], &calibration).unwrap();
    let fp32 = export_fp32(&cfg, &weights, &[]).unwrap();
    println!(
        "default config: int8 model {} bytes, fp32 model {} bytes",
        int8.len(),
        fp32.len()
    );
    assert!(
        int8.len() <= 200 * 1024,
        "int8 model is {} bytes",
        int8.len()
    );
    // Raw little-endian initializers: fp32 is ~4 bytes per parameter, not a varint list.
    let params: usize = weights.iter().map(|(_, _, v)| v.len()).sum();
    assert!(fp32.len() < params * 4 + 16 * 1024);
    // Both files load and run in ONNX Runtime.
    let inputs = synthetic_inputs(&cfg, 2, 8);
    assert_eq!(
        run_batch(&mut session(&int8), &inputs, cfg.num_labels()).len(),
        2
    );
}

#[test]
fn export_rejects_weights_that_break_the_contract() {
    let cfg = small_config();
    let weights = random_weights(&cfg, 7);

    let missing: Weights = weights
        .iter()
        .filter(|(n, _, _)| n != "head.bias")
        .cloned()
        .collect();
    assert!(matches!(
        export_fp32(&cfg, &missing, &[]),
        Err(ExportError::MissingTensor(name)) if name == "head.bias"
    ));

    let mut wrong_shape = weights.clone();
    wrong_shape[1].1 = vec![cfg.embed_dim, 1, 7];
    assert!(matches!(
        export_int8(&cfg, &wrong_shape, &[]),
        Err(ExportError::WrongShape { name, .. }) if name == "convs.0.dw.weight"
    ));

    let mut extra = weights.clone();
    extra.push(("convs.9.dw.weight".to_string(), vec![1], vec![0.0]));
    assert!(matches!(
        export_fp32(&cfg, &extra, &[]),
        Err(ExportError::UnexpectedTensor(name)) if name == "convs.9.dw.weight"
    ));

    let mut short = weights.clone();
    short[0].2.pop();
    assert!(matches!(
        export_fp32(&cfg, &short, &[]),
        Err(ExportError::WrongLength { .. })
    ));

    let mut nan = weights;
    nan[2].2[0] = f32::NAN;
    assert!(matches!(
        export_fp32(&cfg, &nan, &[]),
        Err(ExportError::NonFinite(_))
    ));

    let even = ArchConfig {
        kernel_widths: vec![4],
        ..small_config()
    };
    assert!(matches!(
        export_fp32(&even, &random_weights(&even, 8), &[]),
        Err(ExportError::InvalidConfig(_))
    ));
}

#[test]
fn reference_forward_rejects_malformed_ids() {
    let cfg = small_config();
    let reference = ReferenceCnn::from_named(&cfg, &random_weights(&cfg, 9)).unwrap();
    let none = NgramFeatures::default();
    assert!(matches!(
        reference.forward(&[1, 2, 3], &none),
        Err(ExportError::WrongSequenceLength { .. })
    ));
    let mut ids = vec![0; cfg.seq_len];
    ids[3] = cfg.vocab_size as i64;
    assert!(matches!(
        reference.forward(&ids, &none),
        Err(ExportError::IdOutOfRange { .. })
    ));
    ids[3] = -1;
    assert!(matches!(
        reference.forward(&ids, &none),
        Err(ExportError::IdOutOfRange { .. })
    ));
    ids[3] = 0;
    let outside = NgramFeatures {
        ids: vec![cfg.ngram.buckets as i64],
        weights: vec![1.0],
    };
    assert!(matches!(
        reference.forward(&ids, &outside),
        Err(ExportError::NgramOutOfRange { .. })
    ));
    let uneven = NgramFeatures {
        ids: vec![1, 2],
        weights: vec![1.0],
    };
    assert!(matches!(
        reference.forward(&ids, &uneven),
        Err(ExportError::NgramLengthMismatch { .. })
    ));
}
