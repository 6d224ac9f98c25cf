//! `manifest.json` next to the shipped model files: what each file is (size, SHA-256) and how the
//! model was made (architecture, seed, command line, wall time, dev metrics, thresholds).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use smsguard_core::Market;
use smsguard_eval::metrics::ThresholdMetrics;

use crate::config::ArchConfig;
use crate::market_thresholds::MarketPick;
use crate::ngram_fit::NgramFit;
use crate::trainer::{CorpusMetrics, EpochStats, Thresholds, TrainConfig};

/// One artefact file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    pub name: String,
    pub bytes: usize,
    pub sha256: String,
}

impl FileEntry {
    pub fn of(name: &str, contents: &[u8]) -> Self {
        Self {
            name: name.to_string(),
            bytes: contents.len(),
            sha256: hex::encode(Sha256::digest(contents)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub pipeline_version: u32,
    pub files: Vec<FileEntry>,
    pub arch: ArchConfig,
    pub training: TrainConfig,
    pub parameter_count: usize,
    pub vocab_sha256: String,
    pub hash_buckets: usize,
    pub known_chars: usize,
    /// Binary dev figures per corpus of the shipped (best) weights.
    pub dev_metrics: Vec<CorpusMetrics>,
    pub thresholds: Thresholds,
    /// Per corpus: dev figures when flagging at the ham-FPR-0.5 % threshold.
    pub dev_at_threshold_fpr_0_5: Vec<(String, ThresholdMetrics)>,
    /// The n-gram branch's fit before the CNN trained (absent when trained jointly).
    #[serde(default)]
    pub ngram_fit: Option<NgramFit>,
    pub best_epoch: usize,
    pub history: Vec<EpochStats>,
    pub train_sources: Vec<SourceCount>,
    pub duplicates_removed: usize,
    pub command_line: String,
    pub wall_seconds: f64,
    /// Tag and quarantine thresholds per market, picked on each market's dev ham (absent in
    /// manifests from before market profiles).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub market_thresholds: BTreeMap<Market, MarketPick>,
}

/// How many (deduplicated) training examples each corpus contributed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceCount {
    pub corpus: String,
    pub examples: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read manifest: {0}")]
    Read(#[from] std::io::Error),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error("the manifest lists no file called {0}")]
    UnknownFile(String),
}

impl Manifest {
    pub fn to_json(&self) -> Result<String, ManifestError> {
        Ok(serde_json::to_string_pretty(self)? + "\n")
    }

    pub fn write(&self, path: &Path) -> Result<(), ManifestError> {
        std::fs::write(path, self.to_json()?).map_err(|source| ManifestError::Write {
            path: path.display().to_string(),
            source,
        })
    }

    pub fn read(path: &Path) -> Result<Self, ManifestError> {
        Ok(serde_json::from_str(&std::fs::read_to_string(path)?)?)
    }

    /// Records `contents` as the file called `name` (size and digest), which the manifest must
    /// already list.
    pub fn set_file(&mut self, name: &str, contents: &[u8]) -> Result<(), ManifestError> {
        let entry = self
            .files
            .iter_mut()
            .find(|f| f.name == name)
            .ok_or_else(|| ManifestError::UnknownFile(name.to_string()))?;
        *entry = FileEntry::of(name, contents);
        Ok(())
    }

    /// The entry of the file called `name`.
    pub fn file(&self, name: &str) -> Option<&FileEntry> {
        self.files.iter().find(|f| f.name == name)
    }
}
