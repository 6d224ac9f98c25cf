//! `smsguard-train requantize`: exports the int8 model again from a model folder's fp32 ONNX
//! file, without training. The fp32 file holds every float weight under the names the exporter
//! reads (`embedding.weight`, `convs.{i}.dw.weight`, ...) and the metadata the int8 file carries
//! (thresholds, vocabulary hash, pipeline version), so a change of the int8 format (e.g. the
//! 7-bit conv weights every CPU executes alike) reaches the shipped model without a new training
//! run that would change the float weights and every figure measured on them.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use onnx_protobuf::{tensor_proto::DataType, ModelProto, TensorProto};
use protobuf::Message;
use smsguard_core::features::FeatureEncoder;

use crate::data::{self, Split};
use crate::manifest::Manifest;
use crate::model::SplitMix64;
use crate::onnx_export::SPAM_MASK_NAME;
use crate::quantize;
use crate::trainer::EncodedSet;

const FP32_FILE: &str = "edge-fp32.onnx";
const INT8_FILE: &str = "edge-int8.onnx";
const VOCAB_FILE: &str = "vocab.json";
const MANIFEST_FILE: &str = "manifest.json";

#[derive(Debug, Args)]
pub struct RequantizeArgs {
    /// Model folder: reads edge-fp32.onnx, vocab.json and manifest.json; rewrites edge-int8.onnx
    /// and the manifest's entry for it.
    #[arg(long, default_value = "edge/models")]
    pub model_dir: PathBuf,
    /// Corpus folders (or folders of corpora) whose dev.tsv files calibrate the activation
    /// ranges (default: every corpus of the datasets folder), as `train` does.
    #[arg(long = "data")]
    pub data: Vec<PathBuf>,
    /// Dev messages used to calibrate (training's default).
    #[arg(long, default_value_t = 1024)]
    pub calibration_samples: usize,
    /// Seed of the calibration sample (default: the manifest's training seed, as `train` uses).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Magnitude pruning before quantising (the README's ablation): in every weight tensor of
    /// two or more dimensions, this fraction of its smallest-magnitude weights is set to zero.
    /// No fine-tuning after it; biases are kept. 0 leaves the weights as they are.
    #[arg(long, default_value_t = 0.0)]
    pub prune: f32,
}

pub fn run(args: RequantizeArgs) -> Result<()> {
    let dir = &args.model_dir;
    let manifest_path = dir.join(MANIFEST_FILE);
    let mut manifest = Manifest::read(&manifest_path)
        .with_context(|| format!("reading {}", manifest_path.display()))?;
    let fp32 = read(dir, FP32_FILE)?;
    let vocab = String::from_utf8(read(dir, VOCAB_FILE)?).context("vocab.json is not UTF-8")?;
    let model = ModelProto::parse_from_bytes(&fp32).context("parsing the fp32 ONNX model")?;
    let mut weights = float_initializers(&model)?;
    if !(0.0..1.0).contains(&args.prune) {
        bail!("--prune must be in [0, 1), got {}", args.prune);
    }
    if args.prune > 0.0 {
        let zeroed = prune_by_magnitude(&mut weights, args.prune);
        eprintln!(
            "pruned {zeroed} weights ({:.0} % of each weight tensor)",
            args.prune * 100.0
        );
    }
    let metadata: Vec<(String, String)> = model
        .metadata_props
        .iter()
        .map(|e| (e.key.clone(), e.value.clone()))
        .collect();

    let encoder = FeatureEncoder::from_json(&vocab, manifest.arch.seq_len)?;
    let dev = data::load(&data::split_files(&args.data, Split::Dev)?, false)?;
    let dev_set = EncodedSet::encode(&dev, &encoder, &manifest.arch.ngram);
    let seed = args.seed.unwrap_or(manifest.training.seed);
    let calibration = calibration_ids(&dev_set, args.calibration_samples, seed);
    let int8 = quantize::export_int8_calibrated(&manifest.arch, &weights, &metadata, &calibration)?;

    std::fs::write(dir.join(INT8_FILE), &int8)
        .with_context(|| format!("writing {}", dir.join(INT8_FILE).display()))?;
    // serde_json's float_roundtrip keeps every other figure of the manifest byte for byte.
    manifest.set_file(INT8_FILE, &int8)?;
    manifest.write(&manifest_path)?;
    eprintln!(
        "wrote {} ({} B) from {} calibrated on {} of {} dev messages (seed {seed})",
        dir.join(INT8_FILE).display(),
        int8.len(),
        FP32_FILE,
        calibration.len(),
        dev_set.len()
    );
    Ok(())
}

/// Sets the `fraction` smallest-magnitude weights of every tensor of two or more dimensions to
/// zero (those strictly below the magnitude at that rank, so ties at the cut stay); returns how
/// many non-zero weights were zeroed. Only the int8 export sees it: the fp32 file is not rewritten.
pub fn prune_by_magnitude(weights: &mut NamedTensors, fraction: f32) -> usize {
    let mut zeroed = 0;
    for (_, shape, values) in weights.iter_mut() {
        if shape.len() < 2 || values.is_empty() {
            continue;
        }
        let cut_index = ((values.len() as f32 * fraction) as usize).min(values.len() - 1);
        let mut magnitudes: Vec<f32> = values.iter().map(|v| v.abs()).collect();
        let (_, cut, _) = magnitudes.select_nth_unstable_by(cut_index, f32::total_cmp);
        let cut = *cut;
        for value in values.iter_mut() {
            if value.abs() < cut && *value != 0.0 {
                *value = 0.0;
                zeroed += 1;
            }
        }
    }
    zeroed
}

/// A file of the model folder, its path named in the error.
pub(crate) fn read(dir: &Path, name: &str) -> Result<Vec<u8>> {
    let path = dir.join(name);
    std::fs::read(&path).with_context(|| format!("reading {}", path.display()))
}

/// A seeded sample of encoded dev messages for int8 activation calibration (what `train` uses).
pub fn calibration_ids(dev: &EncodedSet, count: usize, seed: u64) -> Vec<Vec<i64>> {
    let mut rows: Vec<usize> = (0..dev.len()).collect();
    SplitMix64::new(seed).shuffle(&mut rows);
    rows.truncate(count);
    rows.iter()
        .map(|&r| {
            dev.ids[r * dev.seq_len..(r + 1) * dev.seq_len]
                .iter()
                .map(|&id| i64::from(id))
                .collect()
        })
        .collect()
}

/// Weights as the exporter takes them: `(name, shape, values)`.
pub type NamedTensors = Vec<(String, Vec<usize>, Vec<f32>)>;

/// Every float initializer of the graph as `(name, shape, values)`, the exporter's weight list.
/// The exporter's own constants (the spam mask, integer axes) are skipped.
pub fn float_initializers(model: &ModelProto) -> Result<NamedTensors> {
    let graph = model
        .graph
        .as_ref()
        .context("the ONNX model has no graph")?;
    graph
        .initializer
        .iter()
        .filter(|t| t.data_type == DataType::FLOAT as i32 && t.name != SPAM_MASK_NAME)
        .map(|t| Ok((t.name.clone(), shape_of(t)?, floats_of(t)?)))
        .collect()
}

fn shape_of(tensor: &TensorProto) -> Result<Vec<usize>> {
    tensor
        .dims
        .iter()
        .map(|&d| usize::try_from(d).with_context(|| format!("{}: negative dim", tensor.name)))
        .collect()
}

fn floats_of(tensor: &TensorProto) -> Result<Vec<f32>> {
    if !tensor.float_data.is_empty() {
        return Ok(tensor.float_data.clone());
    }
    let raw = &tensor.raw_data;
    if !raw.len().is_multiple_of(4) {
        bail!(
            "{}: raw data of {} bytes is not f32s",
            tensor.name,
            raw.len()
        );
    }
    Ok(raw
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

#[cfg(test)]
mod prune_tests {
    use super::*;

    #[test]
    fn pruning_zeroes_the_smallest_weights_of_matrices_and_keeps_biases() {
        let mut weights: NamedTensors = vec![
            (
                "w".into(),
                vec![2, 4],
                vec![0.1, -0.8, 0.3, -0.05, 0.9, -0.2, 0.6, 0.4],
            ),
            ("b".into(), vec![4], vec![0.01, 0.02, 0.03, 0.04]),
        ];
        let zeroed = prune_by_magnitude(&mut weights, 0.5);
        assert_eq!(zeroed, 4);
        assert_eq!(weights[0].2, vec![0.0, -0.8, 0.0, 0.0, 0.9, 0.0, 0.6, 0.4]);
        assert_eq!(weights[1].2, vec![0.01, 0.02, 0.03, 0.04]);
        assert_eq!(prune_by_magnitude(&mut weights, 0.0), 0);
    }
}
