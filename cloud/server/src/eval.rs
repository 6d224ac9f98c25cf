//! `smsguard-cloud eval`: scores labelled TSV files with the fused cloud verdict, in process, on
//! the embedded models and default rules, and writes the same report keys as the edge's
//! `smsguard-train eval` (`n`, `accuracy`, `macro_f1`, `spam_precision`, `spam_recall`,
//! `ham_fpr`, `recall_at_fpr_0_5`, `recall_at_fpr_0_1`, `per_class`, `latency_us_p50`, ...).
//!
//! The predicted label is the verdict's label (ham when the action is Allow, so the arg-max
//! figures sit at the TAG threshold, 0.5 % ham FPR on its market's dev ham); every message is
//! judged at its own market's thresholds (its dominant script), as the service judges it:
//! `recall_at_fpr_0_5` and `recall_at_fpr_0_1` are the recall at each message's market TAG and
//! QUARANTINE thresholds. Every message gets its
//! own synthetic sender (corpora have none), so the sender scorer sees no bursts.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use smsguard_core::metrics::{self, MetricsReport, Observation, ThresholdMetrics};
use smsguard_core::Label;
use smsguard_corpus::ProblemKind;
use smsguard_model::perf::{peak_rss_kib, LatencySummary};
use smsguard_model::EdgeModel;
use smsguard_report::{optional_figure, EvalDataArgs, OperatingPoint, PlotInput};
use smsguard_scoring::fusion::Thresholds;
use smsguard_scoring::{CloudScorer, EdgeInput, EmbeddedOptions, PreparedMessage};

#[derive(Debug, Clone, clap::Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub report: EvalDataArgs,
    /// Folder of the similarity store (default: a temporary folder removed afterwards).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Folder of the corpora whose train.tsv spam seeds an empty similarity store (default: the
    /// datasets folder, when found).
    #[arg(long)]
    pub datasets: Option<PathBuf>,
    /// Do not seed the similarity store from the training corpora.
    #[arg(long)]
    pub no_seed: bool,
    /// Score without the edge's verdict. By default every message carries the verdict of the
    /// embedded edge model, as it does when a phone asks; this shows the cloud's scorers alone.
    #[arg(long)]
    pub without_edge: bool,
}

/// The evaluation report; `metrics` is flattened into top-level keys.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub model: ModelSummary,
    pub data: Vec<String>,
    #[serde(flatten)]
    pub metrics: MetricsReport,
    /// Spam recall at each message's market TAG threshold (0.5 % of its market's dev ham).
    pub recall_at_fpr_0_5: f64,
    /// Spam recall at each message's market QUARANTINE threshold (0.1 % of its dev ham).
    pub recall_at_fpr_0_1: f64,
    /// At each message's market TAG, QUARANTINE and BLOCK (above every dev ham) thresholds.
    pub at_threshold_fpr_0_5: ThresholdMetrics,
    pub at_threshold_fpr_0_1: ThresholdMetrics,
    pub at_threshold_block: ThresholdMetrics,
    /// Per-message latency of normalise + fingerprint + all scorers + fusion, single thread.
    pub latency_us_p50: f64,
    pub latency_us_p99: f64,
    pub latency: LatencySummary,
    pub peak_rss_kib: Option<u64>,
    /// Verdicts per action.
    pub actions: BTreeMap<String, usize>,
    /// Verdicts with a degraded (failed or missing) scorer.
    pub degraded: usize,
    pub per_corpus: Vec<CorpusSummary>,
    pub skipped: Skipped,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelSummary {
    pub source: String,
    pub scorers: Vec<String>,
    pub with_edge: bool,
    pub labels: Vec<String>,
    pub thresholds: Thresholds,
    pub similarity_store: String,
    pub load_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CorpusSummary {
    pub name: String,
    pub n: usize,
    pub accuracy: f64,
    pub macro_f1: f64,
    pub spam_recall: f64,
    pub ham_fpr: f64,
    pub roc_auc: Option<f64>,
    pub recall_at_fpr_0_5: f64,
    pub ham_fpr_at_fpr_0_5: f64,
    /// Spam recall at the best threshold for ham FPR <= 0.5 % picked on this corpus itself.
    pub best_recall_at_fpr_0_5: Option<f64>,
}

/// Lines left out of the metrics, by reason (label names, never texts).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Skipped {
    pub unknown_labels: BTreeMap<String, usize>,
    pub invalid_lines: usize,
}

pub fn run(args: EvalArgs) -> Result<()> {
    let temp;
    let data_dir = match &args.data_dir {
        Some(dir) => dir.clone(),
        None => {
            temp = tempfile::tempdir().context("creating a temporary similarity store")?;
            temp.path().to_path_buf()
        }
    };
    let started = Instant::now();
    let options = EmbeddedOptions {
        seed_from_corpora: !args.no_seed,
        datasets_dir: args.datasets.clone(),
        rules_path: None,
    };
    let cloud = CloudScorer::embedded_with(&data_dir, &options)
        .context("building the cloud scorer from the embedded models")?;
    let edge = if !args.without_edge {
        Some(EdgeModel::embedded().context("loading the embedded edge model")?)
    } else {
        None
    };
    let load_ms = started.elapsed().as_secs_f64() * 1e3;
    let mut evaluation = Evaluation::new(&cloud, edge.as_ref());
    for path in &args.report.data {
        evaluation.add_file(path, args.report.limit)?;
    }
    if evaluation.observations.is_empty() {
        bail!("no message could be evaluated");
    }
    let report = evaluation.report(&args, &data_dir, load_ms)?;
    println!("{}", summary_text(&report));
    write_outputs(&args, &report, &evaluation.observations)
}

struct Evaluation<'a> {
    cloud: &'a CloudScorer,
    edge: Option<&'a EdgeModel>,
    observations: Vec<Observation>,
    /// The thresholds each message was judged at (its market's).
    thresholds: Vec<Thresholds>,
    latencies: Vec<Duration>,
    corpora: Vec<(String, std::ops::Range<usize>)>,
    actions: BTreeMap<String, usize>,
    degraded: usize,
    skipped: Skipped,
}

impl<'a> Evaluation<'a> {
    fn new(cloud: &'a CloudScorer, edge: Option<&'a EdgeModel>) -> Self {
        Evaluation {
            cloud,
            edge,
            observations: Vec::new(),
            thresholds: Vec::new(),
            latencies: Vec::new(),
            corpora: Vec::new(),
            actions: BTreeMap::new(),
            degraded: 0,
            skipped: Skipped::default(),
        }
    }

    fn add_file(&mut self, path: &Path, limit: Option<usize>) -> Result<()> {
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
            self.add_message(record.label, &record.text);
        }
        self.corpora
            .push((corpus.name(), start..self.observations.len()));
        Ok(())
    }

    fn add_message(&mut self, truth: Label, text: &str) {
        let index = self.observations.len();
        let sender = format!("eval-sender-{index}");
        // The phone classifies before asking the cloud: not part of the cloud's latency.
        let edge = self.edge.and_then(|model| {
            let prediction = model.classify(text).ok()?;
            Some(EdgeInput {
                spam_score: prediction.spam_score,
                label: prediction.label,
            })
        });
        let started = Instant::now();
        let prepared = PreparedMessage::new(&sender, text, index as i64 * 1000, "eval-device");
        let verdict = self.cloud.score(&prepared.context(), edge);
        self.latencies.push(started.elapsed());
        *self
            .actions
            .entry(verdict.action.as_str().to_owned())
            .or_default() += 1;
        self.degraded += usize::from(verdict.degraded);
        self.thresholds.push(verdict.thresholds);
        self.observations.push(Observation {
            truth: label_index(truth),
            predicted: label_index(verdict.label),
            spam_score: verdict.spam_score,
        });
    }

    fn report(&self, args: &EvalArgs, data_dir: &Path, load_ms: f64) -> Result<EvalReport> {
        let thresholds = self.cloud.fusion().head(self.edge.is_some()).thresholds;
        let labels = label_names();
        let metrics = metrics::evaluate(&labels, &self.observations)?;
        let at = |pick: fn(&Thresholds) -> f32| {
            let own: Vec<f32> = self.thresholds.iter().map(pick).collect();
            metrics::at_own_thresholds(&self.observations, &own)
        };
        let latency = LatencySummary::from_durations(&self.latencies);
        Ok(EvalReport {
            model: ModelSummary {
                source: "embedded".to_owned(),
                scorers: self
                    .cloud
                    .scorer_names()
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
                with_edge: self.edge.is_some(),
                labels,
                thresholds,
                similarity_store: if args.data_dir.is_some() {
                    data_dir.display().to_string()
                } else {
                    "temporary".to_owned()
                },
                load_ms,
            },
            data: args
                .report
                .data
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
            metrics,
            recall_at_fpr_0_5: at(|t| t.tag).spam_recall,
            recall_at_fpr_0_1: at(|t| t.quarantine).spam_recall,
            at_threshold_fpr_0_5: at(|t| t.tag),
            at_threshold_fpr_0_1: at(|t| t.quarantine),
            at_threshold_block: at(|t| t.block),
            latency_us_p50: latency.p50_us,
            latency_us_p99: latency.p99_us,
            latency,
            peak_rss_kib: peak_rss_kib(),
            actions: self.actions.clone(),
            degraded: self.degraded,
            per_corpus: self.per_corpus()?,
            skipped: self.skipped.clone(),
        })
    }

    fn per_corpus(&self) -> Result<Vec<CorpusSummary>> {
        let labels = label_names();
        let mut out = Vec::new();
        for (name, range) in &self.corpora {
            let slice = &self.observations[range.clone()];
            let m = metrics::evaluate(&labels, slice)?;
            let tags: Vec<f32> = self.thresholds[range.clone()]
                .iter()
                .map(|t| t.tag)
                .collect();
            let at = metrics::at_own_thresholds(slice, &tags);
            out.push(CorpusSummary {
                name: name.clone(),
                n: m.n,
                accuracy: m.accuracy,
                macro_f1: m.macro_f1,
                spam_recall: m.spam_recall,
                ham_fpr: m.ham_fpr,
                roc_auc: m.roc_auc,
                recall_at_fpr_0_5: at.spam_recall,
                ham_fpr_at_fpr_0_5: at.ham_fpr,
                best_recall_at_fpr_0_5: m.best_at_fpr_0_5.map(|b| b.spam_recall),
            });
        }
        Ok(out)
    }
}

fn label_names() -> Vec<String> {
    Label::ALL.iter().map(|l| l.to_string()).collect()
}

fn label_index(label: Label) -> usize {
    Label::ALL.iter().position(|l| *l == label).unwrap_or(0)
}

fn write_outputs(args: &EvalArgs, report: &EvalReport, observations: &[Observation]) -> Result<()> {
    let outputs = args.report.outputs();
    let title = format!("cloud fusion, {} messages", report.metrics.n);
    let mark = |name: &str, metrics: ThresholdMetrics| OperatingPoint {
        name: name.to_owned(),
        metrics,
    };
    let marks = [
        mark("TAG (FPR 0.5 %)", report.at_threshold_fpr_0_5),
        mark("QUARANTINE (FPR 0.1 %)", report.at_threshold_fpr_0_1),
        mark("BLOCK", report.at_threshold_block),
    ];
    let plots = PlotInput {
        title: &title,
        observations,
        marks: &marks,
        confusion: &report.metrics.confusion,
    };
    smsguard_report::write(outputs, report, || markdown(report), plots)?;
    Ok(())
}

/// The human-readable summary printed after an evaluation.
pub fn summary_text(report: &EvalReport) -> String {
    let m = &report.metrics;
    let mut text = String::new();
    let _ = writeln!(
        text,
        "cloud fusion ({}{}), {} messages",
        report.model.scorers.join(" + "),
        if report.model.with_edge {
            " + edge"
        } else {
            ""
        },
        m.n
    );
    smsguard_report::write_headline(&mut text, m, "verdict label");
    for (name, at) in [
        ("TAG", &report.at_threshold_fpr_0_5),
        ("QUARANTINE", &report.at_threshold_fpr_0_1),
        ("BLOCK", &report.at_threshold_block),
    ] {
        let _ = writeln!(
            text,
            "{name:<10} threshold {:.4}: spam recall {:.4}, precision {:.4}, ham FPR {:.4}",
            at.threshold, at.spam_recall, at.spam_precision, at.ham_fpr
        );
    }
    smsguard_report::write_per_class(&mut text, m);
    let _ = write!(
        text,
        "latency p50 {:.1} us  p99 {:.1} us (normalise + fingerprint + scorers + fusion); load {:.0} ms; {} degraded",
        report.latency_us_p50, report.latency_us_p99, report.model.load_ms, report.degraded
    );
    text
}

/// The report as a Markdown document.
pub fn markdown(report: &EvalReport) -> String {
    let m = &report.metrics;
    let mut md = String::from("# Cloud fusion evaluation\n\n");
    let _ = writeln!(
        md,
        "Scorers: {}{}. Data: {}\n",
        report.model.scorers.join(", "),
        if report.model.with_edge {
            ", edge verdict"
        } else {
            ""
        },
        report
            .data
            .iter()
            .map(|d| format!("`{d}`"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(md, "| metric | value |\n|---|---:|");
    let auc = optional_figure(m.roc_auc);
    for (name, value) in [
        ("messages", m.n.to_string()),
        ("accuracy", format!("{:.4}", m.accuracy)),
        ("macro-F1", format!("{:.4}", m.macro_f1)),
        ("spam precision", format!("{:.4}", m.spam_precision)),
        ("spam recall", format!("{:.4}", m.spam_recall)),
        ("ham FPR", format!("{:.4}", m.ham_fpr)),
        ("ROC-AUC", auc),
        (
            "recall @ QUARANTINE (0.5 %)",
            format!("{:.4}", report.recall_at_fpr_0_5),
        ),
        (
            "recall @ BLOCK (0.1 %)",
            format!("{:.4}", report.recall_at_fpr_0_1),
        ),
        (
            "best recall on this data @ ≤0.5 % / ≤0.1 % ham FPR",
            format!(
                "{} / {}",
                optional_figure(m.best_at_fpr_0_5.map(|b| b.spam_recall)),
                optional_figure(m.best_at_fpr_0_1.map(|b| b.spam_recall))
            ),
        ),
        (
            "latency p50 / p99 (µs)",
            format!(
                "{:.1} / {:.1}",
                report.latency_us_p50, report.latency_us_p99
            ),
        ),
    ] {
        let _ = writeln!(md, "| {name} | {value} |");
    }
    let _ = writeln!(
        md,
        "\n| corpus | n | accuracy | macro-F1 | spam recall | ham FPR | recall @0.5 % | ham FPR @0.5 % | best recall @≤0.5 % |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for c in &report.per_corpus {
        let _ = writeln!(
            md,
            "| {} | {} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {} |",
            c.name,
            c.n,
            c.accuracy,
            c.macro_f1,
            c.spam_recall,
            c.ham_fpr,
            c.recall_at_fpr_0_5,
            c.ham_fpr_at_fpr_0_5,
            optional_figure(c.best_recall_at_fpr_0_5)
        );
    }
    md
}
