//! Operating points per market: each market's tag and quarantine thresholds picked on that
//! market's own dev ham (≤ 0.5 % and ≤ 0.1 % ham FPR), the market of a message being its
//! dominant script ([`Market::of_text`], as the phone decides it). `train` picks them on its fp32
//! dev scores like the pooled thresholds; `smsguard-train market-thresholds` picks them again on
//! the shipped int8 model's scores through ONNX Runtime (what phones run) and writes them into
//! the model files' metadata and the manifest.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use onnx_protobuf::{ModelProto, StringStringEntryProto};
use protobuf::Message;
use serde::{Deserialize, Serialize};
use smsguard_core::{model_meta, ActionThresholds, Market};
use smsguard_eval::metrics::{self, Observation, ThresholdMetrics};
use smsguard_model::model::{arg_max, softmax};
use smsguard_model::{init_runtime, EdgeModel};

use crate::data::{self, Dataset, Split};
use crate::manifest::Manifest;
use crate::requantize::read;

/// Fewer dev ham than this and a market keeps the pooled thresholds: with 200 ham, 0.5 % is one
/// message, so fewer cannot express the FPR target at all.
pub const MIN_MARKET_HAM: usize = 200;
const MODEL_FILES: [&str; 2] = ["edge-fp32.onnx", "edge-int8.onnx"];
const VOCAB_FILE: &str = "vocab.json";
const MANIFEST_FILE: &str = "manifest.json";
/// Messages per ONNX Runtime call.
const BATCH: usize = 256;

/// One market's thresholds and what they do on that market's dev split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarketPick {
    pub thresholds: ActionThresholds,
    pub ham: usize,
    pub spam: usize,
    /// Figures on the market's dev messages at its tag threshold.
    pub at_tag: ThresholdMetrics,
}

/// Picks the thresholds of every market with at least [`MIN_MARKET_HAM`] dev ham;
/// `markets[i]` is the market of `observations[i]`.
pub fn pick(observations: &[Observation], markets: &[Market]) -> BTreeMap<Market, MarketPick> {
    let mut picks = BTreeMap::new();
    for market in Market::ALL {
        let own: Vec<Observation> = observations
            .iter()
            .zip(markets)
            .filter(|(_, m)| **m == market)
            .map(|(o, _)| *o)
            .collect();
        let (ham, spam) = metrics::split_scores(&own);
        if ham.len() < MIN_MARKET_HAM {
            continue;
        }
        let thresholds = ActionThresholds {
            tag: metrics::threshold_for_fpr(&ham, 0.005),
            quarantine: metrics::threshold_for_fpr(&ham, 0.001),
        };
        picks.insert(
            market,
            MarketPick {
                thresholds,
                ham: ham.len(),
                spam: spam.len(),
                at_tag: metrics::at_threshold(&own, thresholds.tag),
            },
        );
    }
    picks
}

/// The metadata value of [`model_meta::MARKET_THRESHOLDS`] for `picks`.
pub fn metadata_value(picks: &BTreeMap<Market, MarketPick>) -> Result<String> {
    let thresholds: BTreeMap<Market, ActionThresholds> =
        picks.iter().map(|(m, p)| (*m, p.thresholds)).collect();
    Ok(serde_json::to_string(&thresholds)?)
}

/// The market of every example (their text is already normalised).
pub fn markets_of(data: &Dataset) -> Vec<Market> {
    data.examples
        .iter()
        .map(|e| Market::of_text(&e.text))
        .collect()
}

#[derive(Debug, Args)]
pub struct MarketThresholdArgs {
    /// Model folder: scores dev with edge-int8.onnx + vocab.json; rewrites both ONNX files'
    /// metadata and their manifest entries.
    #[arg(long, default_value = "edge/models")]
    pub model_dir: PathBuf,
    /// Corpus folders (or folders of corpora) whose dev.tsv files are scored (default: every
    /// corpus of the datasets folder).
    #[arg(long = "data")]
    pub data: Vec<PathBuf>,
}

pub fn run(args: MarketThresholdArgs) -> Result<()> {
    let dir = &args.model_dir;
    init_runtime().context("loading ONNX Runtime")?;
    let vocab = std::fs::read_to_string(dir.join(VOCAB_FILE)).context("reading vocab.json")?;
    let int8 = read(dir, MODEL_FILES[1])?;
    let model = EdgeModel::from_bytes(&int8, &vocab).context("loading the int8 model")?;
    let dev = data::load(&data::split_files(&args.data, Split::Dev)?, false)?;
    let observations = score(&model, &dev)?;
    let picks = pick(&observations, &markets_of(&dev));
    print_picks(&picks, &observations, model.metadata().threshold_fpr_0_5);
    let value = metadata_value(&picks)?;

    let manifest_path = dir.join(MANIFEST_FILE);
    let mut manifest = Manifest::read(&manifest_path)?;
    for name in MODEL_FILES {
        let bytes = with_metadata(&read(dir, name)?, model_meta::MARKET_THRESHOLDS, &value)?;
        std::fs::write(dir.join(name), &bytes).with_context(|| format!("writing {name}"))?;
        manifest.set_file(name, &bytes)?;
    }
    manifest.market_thresholds = picks;
    manifest.write(&manifest_path)?;
    eprintln!("wrote {} = {value}", model_meta::MARKET_THRESHOLDS);
    Ok(())
}

/// Every dev message's observation under the int8 model (arg-max and spam score).
fn score(model: &EdgeModel, dev: &Dataset) -> Result<Vec<Observation>> {
    let labels = model.metadata().labels.len();
    let mut observations = Vec::with_capacity(dev.examples.len());
    for chunk in dev.examples.chunks(BATCH) {
        let inputs: Vec<_> = chunk.iter().map(|e| model.encode(&e.text)).collect();
        let logits = model.logits(&inputs)?;
        for (example, row) in chunk.iter().zip(logits.chunks(labels)) {
            let probabilities = softmax(row);
            let predicted = arg_max(&probabilities);
            observations.push(Observation {
                truth: example.label,
                predicted,
                spam_score: (1.0 - probabilities[0]).clamp(0.0, 1.0),
            });
        }
    }
    Ok(observations)
}

fn print_picks(picks: &BTreeMap<Market, MarketPick>, all: &[Observation], pooled_tag: f32) {
    let pooled = metrics::at_threshold(all, pooled_tag);
    eprintln!(
        "pooled: tag {pooled_tag:.4}: spam recall {:.2} %, ham FPR {:.2} %",
        100.0 * pooled.spam_recall,
        100.0 * pooled.ham_fpr
    );
    for (market, pick) in picks {
        eprintln!(
            "{market}: {} ham, {} spam; tag {:.4}, quarantine {:.4}; at tag: spam recall {:.2} %, ham FPR {:.2} %",
            pick.ham,
            pick.spam,
            pick.thresholds.tag,
            pick.thresholds.quarantine,
            100.0 * pick.at_tag.spam_recall,
            100.0 * pick.at_tag.ham_fpr
        );
    }
}

/// `model` with its metadata entry `key` set to `value` (added or replaced).
pub fn with_metadata(model: &[u8], key: &str, value: &str) -> Result<Vec<u8>> {
    let mut proto = ModelProto::parse_from_bytes(model).context("parsing the ONNX model")?;
    proto.metadata_props.retain(|entry| entry.key != key);
    let mut entry = StringStringEntryProto::new();
    entry.key = key.to_string();
    entry.value = value.to_string();
    proto.metadata_props.push(entry);
    Ok(proto.write_to_bytes()?)
}
