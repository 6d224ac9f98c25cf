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
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use smsguard_core::Label;
use smsguard_eval::metrics::{self, MetricsReport, Observation, ThresholdMetrics};
use smsguard_eval::report::{optional_figure, EvalDataArgs, OperatingPoint, PlotInput};
use smsguard_eval::{
    evaluate_files, AtDeployed, CorpusFigures, Evaluation, Scored, Scorer, Timing,
};
use smsguard_model::EdgeModel;
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
    /// Write one TSV row per scored message here: corpus, row (n-th scored message of its
    /// file), truth, verdict label, action, spam score, market and the three largest fusion
    /// terms. No message text, so the file can be shared.
    #[arg(long)]
    pub verdicts: Option<PathBuf>,
}

/// The evaluation report; `metrics` is flattened into top-level keys.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub model: ModelSummary,
    pub data: Vec<String>,
    #[serde(flatten)]
    pub metrics: MetricsReport,
    /// At each message's market TAG and QUARANTINE thresholds.
    #[serde(flatten)]
    pub at_deployed: AtDeployed,
    /// At each message's market BLOCK threshold (above every dev ham).
    pub at_threshold_block: ThresholdMetrics,
    /// Per-message latency of normalise + fingerprint + all scorers + fusion, single thread.
    #[serde(flatten)]
    pub timing: Timing,
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
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
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
    let scorer = FusedCloud {
        cloud: &cloud,
        edge: edge.as_ref(),
    };
    let evaluation = evaluate_files(&scorer, &args.report.data, args.report.limit)?;
    if evaluation.observations.is_empty() {
        bail!("no message could be evaluated");
    }
    let report = scorer.report(&evaluation, &args, &data_dir, load_ms)?;
    println!("{}", summary_text(&report));
    if let Some(path) = &args.verdicts {
        std::fs::write(path, verdict_rows(&evaluation))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    write_outputs(&args, &report, &evaluation.observations)
}

/// The `n` largest fusion terms as `model=term`, largest first.
fn top_terms(contributions: &[smsguard_scoring::fusion::Contribution], n: usize) -> String {
    let mut terms: Vec<(&str, f32)> = contributions
        .iter()
        .map(|c| (c.model.as_str(), c.term))
        .collect();
    terms.sort_by(|a, b| b.1.total_cmp(&a.1));
    terms
        .iter()
        .take(n)
        .map(|(model, term)| format!("{model}={term:.3}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// `--verdicts`: one row per scored message, without its text.
fn verdict_rows(evaluation: &Evaluation<Judged>) -> String {
    let labels = label_names();
    let mut out =
        String::from("corpus\trow\ttruth\tlabel\taction\tspam_score\tmarket\ttop_terms\n");
    for (name, range) in &evaluation.corpora {
        for (row, i) in range.clone().enumerate() {
            let (o, j) = (&evaluation.observations[i], &evaluation.kept[i]);
            let _ = writeln!(
                out,
                "{name}\t{}\t{}\t{}\t{}\t{:.4}\t{}\t{}",
                row + 1,
                labels[o.truth],
                labels[o.predicted],
                j.action,
                o.spam_score,
                j.market,
                j.top_terms
            );
        }
    }
    out
}

/// The fused cloud verdict as the evaluation loop's scorer, with the edge's verdict when asked.
struct FusedCloud<'a> {
    cloud: &'a CloudScorer,
    edge: Option<&'a EdgeModel>,
}

/// What the report keeps of each verdict.
struct Judged {
    /// The thresholds the message was judged at (its market's).
    thresholds: Thresholds,
    action: &'static str,
    degraded: bool,
    market: String,
    /// The largest fusion terms, `model=term`, largest first.
    top_terms: String,
}

impl Scorer for FusedCloud<'_> {
    type Kept = Judged;
    type Prepared = Option<EdgeInput>;

    fn truth_index(&self, truth: Label) -> Option<usize> {
        Some(label_index(truth))
    }

    /// The phone classifies before asking the cloud: not part of the cloud's latency.
    fn prepare(&self, _index: usize, text: &str) -> Option<EdgeInput> {
        self.edge.and_then(|model| {
            let prediction = model.classify(text).ok()?;
            Some(EdgeInput {
                spam_score: prediction.spam_score,
                label: prediction.label,
            })
        })
    }

    /// Every message gets its own synthetic sender (corpora have none).
    fn score(&self, index: usize, text: &str, edge: Option<EdgeInput>) -> Option<Scored<Judged>> {
        let sender = format!("eval-sender-{index}");
        let prepared = PreparedMessage::new(&sender, text, index as i64 * 1000, "eval-device");
        let verdict = self.cloud.score(&prepared.context(), edge);
        Some(Scored {
            predicted: label_index(verdict.label),
            spam_score: verdict.spam_score,
            kept: Judged {
                thresholds: verdict.thresholds,
                action: verdict.action.as_str(),
                degraded: verdict.degraded,
                market: verdict.market.to_string(),
                top_terms: top_terms(&verdict.contributions, 3),
            },
        })
    }
}

impl FusedCloud<'_> {
    fn report(
        &self,
        evaluation: &Evaluation<Judged>,
        args: &EvalArgs,
        data_dir: &Path,
        load_ms: f64,
    ) -> Result<EvalReport> {
        let thresholds = self.cloud.fusion().head(self.edge.is_some()).thresholds;
        let labels = label_names();
        let mut actions = BTreeMap::new();
        for judged in &evaluation.kept {
            *actions.entry(judged.action.to_owned()).or_default() += 1;
        }
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
                labels: labels.clone(),
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
            metrics: metrics::evaluate(&labels, &evaluation.observations)?,
            at_deployed: evaluation.at_deployed(|j| j.thresholds.tag, |j| j.thresholds.quarantine),
            at_threshold_block: evaluation.at_own(evaluation.all(), |j| j.thresholds.block),
            timing: evaluation.timing(),
            actions,
            degraded: evaluation.kept.iter().filter(|j| j.degraded).count(),
            per_corpus: evaluation
                .per_corpus(&labels, |j| j.thresholds.tag)?
                .into_iter()
                .map(CorpusSummary::from)
                .collect(),
            skipped: Skipped::from(&evaluation.skipped),
        })
    }
}

impl From<CorpusFigures> for CorpusSummary {
    fn from(figures: CorpusFigures) -> Self {
        let m = figures.metrics;
        CorpusSummary {
            name: figures.name,
            n: m.n,
            accuracy: m.accuracy,
            macro_f1: m.macro_f1,
            spam_recall: m.spam_recall,
            ham_fpr: m.ham_fpr,
            roc_auc: m.roc_auc,
            recall_at_fpr_0_5: figures.at_tag.spam_recall,
            ham_fpr_at_fpr_0_5: figures.at_tag.ham_fpr,
            best_recall_at_fpr_0_5: m.best_at_fpr_0_5.map(|b| b.spam_recall),
        }
    }
}

impl From<&smsguard_eval::Skipped> for Skipped {
    /// Every message maps to a label and gets a verdict: only lines can be skipped.
    fn from(skipped: &smsguard_eval::Skipped) -> Self {
        Skipped {
            unknown_labels: skipped.unknown_labels.clone(),
            invalid_lines: skipped.invalid_lines,
        }
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
        mark("TAG (FPR 0.5 %)", report.at_deployed.at_threshold_fpr_0_5),
        mark(
            "QUARANTINE (FPR 0.1 %)",
            report.at_deployed.at_threshold_fpr_0_1,
        ),
        mark("BLOCK", report.at_threshold_block),
    ];
    let plots = PlotInput {
        title: &title,
        observations,
        marks: &marks,
        confusion: &report.metrics.confusion,
    };
    smsguard_eval::report::write(outputs, report, || markdown(report), plots)?;
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
    smsguard_eval::report::write_headline(&mut text, m, "verdict label");
    for (name, at) in [
        ("TAG", &report.at_deployed.at_threshold_fpr_0_5),
        ("QUARANTINE", &report.at_deployed.at_threshold_fpr_0_1),
        ("BLOCK", &report.at_threshold_block),
    ] {
        let _ = writeln!(
            text,
            "{name:<10} threshold {:.4}: spam recall {:.4}, precision {:.4}, ham FPR {:.4}",
            at.threshold, at.spam_recall, at.spam_precision, at.ham_fpr
        );
    }
    smsguard_eval::report::write_per_class(&mut text, m);
    let _ = write!(
        text,
        "latency p50 {:.1} us  p99 {:.1} us (normalise + fingerprint + scorers + fusion); load {:.0} ms; {} degraded",
        report.timing.latency_us_p50, report.timing.latency_us_p99, report.model.load_ms, report.degraded
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
            format!("{:.4}", report.at_deployed.recall_at_fpr_0_5),
        ),
        (
            "recall @ BLOCK (0.1 %)",
            format!("{:.4}", report.at_deployed.recall_at_fpr_0_1),
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
                report.timing.latency_us_p50, report.timing.latency_us_p99
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
