//! The one evaluation loop. Both eval commands read labelled TSV files, score every message,
//! time the scoring, remember which corpus each message came from and count what they had to
//! leave out; they differ only in how a message is scored and what the report shows. The loop
//! is here once; each command is a [`Scorer`] plus its report.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;
use smsguard_core::Label;
use smsguard_corpus::{CorpusError, ProblemKind};

use crate::metrics::{self, MetricsError, MetricsReport, Observation, ThresholdMetrics};
use crate::perf::{peak_rss_kib, LatencySummary};

/// How one classifier scores one message, for [`evaluate_files`].
pub trait Scorer {
    /// What the eval keeps of each scored message beyond its observation (e.g. the thresholds
    /// it was judged at, the action taken).
    type Kept;
    /// Work the deployment does before the measured step, e.g. the phone's own verdict before
    /// it asks the cloud; not part of the latency.
    type Prepared;

    /// The scorer's label index for a true label; `None` leaves the message out (counted in
    /// [`Skipped::unmapped_labels`]).
    fn truth_index(&self, truth: Label) -> Option<usize>;

    /// The untimed step before [`Scorer::score`]. `index` counts the messages scored so far,
    /// over all files.
    fn prepare(&self, index: usize, text: &str) -> Self::Prepared;

    /// The measured step; `None` when the classifier refuses the message (counted in
    /// [`Skipped::unclassifiable`]).
    fn score(
        &self,
        index: usize,
        text: &str,
        prepared: Self::Prepared,
    ) -> Option<Scored<Self::Kept>>;
}

/// A scorer's answer for one message.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored<K> {
    /// Index of the predicted label in the scorer's label list.
    pub predicted: usize,
    /// Spam score, `1 - p(ham)`.
    pub spam_score: f32,
    pub kept: K,
}

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error(transparent)]
    Corpus(#[from] CorpusError),
    #[error(transparent)]
    Metrics(#[from] MetricsError),
}

/// Lines and messages left out of the metrics, by reason (label names, never texts).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Skipped {
    /// Fine labels missing from `datasets/label-map.tsv`, with counts.
    pub unknown_labels: BTreeMap<String, usize>,
    /// Taxonomy labels the scorer cannot output, with counts.
    pub unmapped_labels: BTreeMap<String, usize>,
    pub invalid_lines: usize,
    /// Messages the scorer refused (e.g. empty after normalisation).
    pub unclassifiable: usize,
}

/// Everything the loop collected: one observation, kept value and latency per scored message,
/// in file order.
#[derive(Debug, Clone)]
pub struct Evaluation<K> {
    pub observations: Vec<Observation>,
    pub kept: Vec<K>,
    pub latencies: Vec<Duration>,
    /// (corpus name, range of `observations`), one per file.
    pub corpora: Vec<(String, Range<usize>)>,
    pub skipped: Skipped,
}

/// Scores the records of every file (at most `limit` per file) with `scorer`.
pub fn evaluate_files<S: Scorer>(
    scorer: &S,
    files: &[PathBuf],
    limit: Option<usize>,
) -> Result<Evaluation<S::Kept>, EvalError> {
    let mut evaluation = Evaluation {
        observations: Vec::new(),
        kept: Vec::new(),
        latencies: Vec::new(),
        corpora: Vec::new(),
        skipped: Skipped::default(),
    };
    for path in files {
        evaluation.add_file(scorer, path, limit)?;
    }
    Ok(evaluation)
}

impl<K> Evaluation<K> {
    fn add_file<S: Scorer<Kept = K>>(
        &mut self,
        scorer: &S,
        path: &std::path::Path,
        limit: Option<usize>,
    ) -> Result<(), EvalError> {
        let corpus = smsguard_corpus::read_tsv(path)?;
        for problem in &corpus.problems {
            match &problem.kind {
                ProblemKind::UnknownLabel(label) => {
                    *self
                        .skipped
                        .unknown_labels
                        .entry(label.clone())
                        .or_default() += 1
                }
                _ => self.skipped.invalid_lines += 1,
            }
        }
        let start = self.observations.len();
        for record in corpus.records.iter().take(limit.unwrap_or(usize::MAX)) {
            self.add_message(scorer, record.label, &record.text);
        }
        self.corpora
            .push((corpus.name(), start..self.observations.len()));
        Ok(())
    }

    fn add_message<S: Scorer<Kept = K>>(&mut self, scorer: &S, truth: Label, text: &str) {
        let Some(truth_index) = scorer.truth_index(truth) else {
            *self
                .skipped
                .unmapped_labels
                .entry(truth.to_string())
                .or_default() += 1;
            return;
        };
        let index = self.observations.len();
        let prepared = scorer.prepare(index, text);
        let started = Instant::now();
        let scored = scorer.score(index, text, prepared);
        let elapsed = started.elapsed();
        let Some(scored) = scored else {
            self.skipped.unclassifiable += 1;
            return;
        };
        self.latencies.push(elapsed);
        self.observations.push(Observation {
            truth: truth_index,
            predicted: scored.predicted,
            spam_score: scored.spam_score,
        });
        self.kept.push(scored.kept);
    }

    /// All scored messages.
    pub fn all(&self) -> Range<usize> {
        0..self.observations.len()
    }

    /// Figures of `range` with each message flagged at its own threshold, `threshold(kept)`.
    pub fn at_own(&self, range: Range<usize>, threshold: impl Fn(&K) -> f32) -> ThresholdMetrics {
        let own: Vec<f32> = self.kept[range.clone()].iter().map(threshold).collect();
        metrics::at_own_thresholds(&self.observations[range], &own)
    }

    /// The recall and figures of all messages at their deployed tag and quarantine thresholds.
    pub fn at_deployed(
        &self,
        tag: impl Fn(&K) -> f32,
        quarantine: impl Fn(&K) -> f32,
    ) -> AtDeployed {
        let at_tag = self.at_own(self.all(), tag);
        let at_quarantine = self.at_own(self.all(), quarantine);
        AtDeployed {
            recall_at_fpr_0_5: at_tag.spam_recall,
            recall_at_fpr_0_1: at_quarantine.spam_recall,
            at_threshold_fpr_0_5: at_tag,
            at_threshold_fpr_0_1: at_quarantine,
        }
    }

    /// Latency of the measured step and this process's peak memory so far.
    pub fn timing(&self) -> Timing {
        let latency = LatencySummary::from_durations(&self.latencies);
        Timing {
            latency_us_p50: latency.p50_us,
            latency_us_p99: latency.p99_us,
            latency,
            peak_rss_kib: peak_rss_kib(),
        }
    }

    /// The metrics of each file, and its figures at each message's own tag threshold.
    pub fn per_corpus(
        &self,
        labels: &[String],
        tag: impl Fn(&K) -> f32,
    ) -> Result<Vec<CorpusFigures>, MetricsError> {
        self.corpora
            .iter()
            .map(|(name, range)| {
                Ok(CorpusFigures {
                    name: name.clone(),
                    metrics: metrics::evaluate(labels, &self.observations[range.clone()])?,
                    at_tag: self.at_own(range.clone(), &tag),
                })
            })
            .collect()
    }
}

/// Spam recall and figures with each message flagged at its deployed thresholds (its market's,
/// which differ by message): serialised as top-level report keys.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AtDeployed {
    /// Spam recall at each message's tag threshold (0.5 % of its market's dev ham).
    pub recall_at_fpr_0_5: f64,
    /// Spam recall at each message's quarantine threshold (0.1 % of its market's dev ham).
    pub recall_at_fpr_0_1: f64,
    /// Ham FPR actually observed on this data at those thresholds, with recall and precision
    /// (`threshold` is null when the messages' markets had different ones).
    pub at_threshold_fpr_0_5: ThresholdMetrics,
    pub at_threshold_fpr_0_1: ThresholdMetrics,
}

/// The measured step's latency and the peak memory: serialised as top-level report keys.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Timing {
    pub latency_us_p50: f64,
    pub latency_us_p99: f64,
    pub latency: LatencySummary,
    pub peak_rss_kib: Option<u64>,
}

/// One file's figures, for the reports' per-corpus tables.
#[derive(Debug, Clone, PartialEq)]
pub struct CorpusFigures {
    pub name: String,
    pub metrics: MetricsReport,
    /// With each message flagged at its own tag threshold.
    pub at_tag: ThresholdMetrics,
}
