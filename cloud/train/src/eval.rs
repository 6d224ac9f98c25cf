//! `smsguard-train eval`: runs an edge model through `smsguard_model` (ONNX Runtime, the path the
//! phone runs) over labelled TSV files and reports accuracy, per-class and binary metrics, the
//! recall at the model's stored thresholds, ROC-AUC, the confusion matrix and per-message latency.
//!
//! Truth labels are mapped onto the model's labels by name; a spam-like label the model lacks
//! counts as its `spam` output if it has one, otherwise the message is skipped and reported.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use smsguard_core::knowledge::{offline_rule, KnowledgeBase};
use smsguard_core::{normalize, ActionThresholds, Label, Market};
use smsguard_eval::metrics::{self, MetricsReport, Observation};
use smsguard_eval::report::{optional_figure, EvalDataArgs, OperatingPoint, PlotInput};
use smsguard_eval::{
    evaluate_files, AtDeployed, CorpusFigures, Evaluation, Scored, Scorer, Skipped,
    ThresholdMetrics, Timing,
};
use smsguard_model::{EdgeModel, ModelInfo};

#[derive(Debug, Clone, clap::Args)]
pub struct EvalArgs {
    /// ONNX model to evaluate (default: the int8 model embedded in smsguard-model). Needs --vocab.
    #[arg(long, requires = "vocab")]
    pub model: Option<PathBuf>,
    /// Vocabulary JSON of --model.
    #[arg(long, requires = "model")]
    pub vocab: Option<PathBuf>,
    #[command(flatten)]
    pub report: EvalDataArgs,
}

/// The evaluation report. `metrics` is flattened, so `n`, `accuracy`, `macro_f1`,
/// `spam_precision`, `spam_recall`, `ham_fpr`, `roc_auc`, `per_class` and `confusion` are
/// top-level JSON keys.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub model: ModelSummary,
    pub data: Vec<String>,
    #[serde(flatten)]
    pub metrics: MetricsReport,
    /// Each message flagged at its deployed tag and quarantine thresholds: its market's
    /// (market by dominant script), else the pooled ones.
    #[serde(flatten)]
    pub at_deployed: AtDeployed,
    /// What the phone does offline: flagged at the tag threshold, or tagged by the knowledge
    /// base beside the model ([`offline_rule`]: the knowledge base and disguises) when the model allows.
    pub with_knowledge: ThresholdMetrics,
    /// Per-message latency of normalise + encode + inference, single thread.
    #[serde(flatten)]
    pub timing: Timing,
    pub per_corpus: Vec<CorpusSummary>,
    pub skipped: Skipped,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelSummary {
    /// File path, or "embedded".
    pub source: String,
    pub precision: String,
    pub labels: Vec<String>,
    pub seq_len: usize,
    pub threshold_fpr_0_5: f32,
    pub threshold_fpr_0_1: f32,
    /// Per-market thresholds each message is judged at by its dominant script (empty: every
    /// message at the pooled ones).
    pub market_thresholds: BTreeMap<Market, ActionThresholds>,
    pub load_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CorpusSummary {
    pub name: String,
    pub n: usize,
    pub accuracy: f64,
    pub spam_recall: f64,
    pub ham_fpr: f64,
    pub recall_at_fpr_0_5: f64,
    pub ham_fpr_at_fpr_0_5: f64,
    /// Spam recall at the best threshold for ham FPR <= 0.5 % picked on this corpus itself.
    pub best_recall_at_fpr_0_5: Option<f64>,
    /// Spam recall and ham FPR of what the phone does offline (see [`EvalReport::with_knowledge`]).
    pub recall_with_knowledge: f64,
    pub ham_fpr_with_knowledge: f64,
}

pub fn run(args: EvalArgs) -> Result<()> {
    let (model, source, load_ms) = load_model(&args)?;
    // As the engine does at start: one-time table builds and ONNX Runtime's first run would
    // otherwise land in the first message's latency.
    model.warm_up();
    let scorer = EdgeScorer(&model);
    let evaluation = evaluate_files(&scorer, &args.report.data, args.report.limit)?;
    if evaluation.observations.is_empty() {
        bail!("no message could be evaluated (see the skipped counts above)");
    }
    let report = scorer.report(&evaluation, source, load_ms, &args.report.data)?;
    println!("{}", summary_text(&report));
    write_outputs(&args, &report, &evaluation.observations)?;
    Ok(())
}

fn load_model(args: &EvalArgs) -> Result<(EdgeModel, String, f64)> {
    let started = Instant::now();
    let (model, source) = match (&args.model, &args.vocab) {
        (Some(model), Some(vocab)) => {
            let bytes =
                std::fs::read(model).with_context(|| format!("reading {}", model.display()))?;
            let vocab_json = std::fs::read_to_string(vocab)
                .with_context(|| format!("reading {}", vocab.display()))?;
            let loaded = EdgeModel::from_bytes(&bytes, &vocab_json)
                .with_context(|| format!("loading {}", model.display()))?;
            (loaded, model.display().to_string())
        }
        _ => (
            EdgeModel::embedded().context("loading the embedded edge model")?,
            "embedded".to_string(),
        ),
    };
    Ok((model, source, started.elapsed().as_secs_f64() * 1e3))
}

/// The edge model as the evaluation loop's scorer: normalise, encode, infer and, for what the
/// model allows, the offline rule are measured (the phone's whole offline path); each message
/// keeps the operating point it was judged at (its market's, else the pooled one) and whether
/// the offline rule tags it.
struct EdgeScorer<'m>(&'m EdgeModel);

/// What the evaluation keeps of one message.
#[derive(Debug, Clone, Copy)]
struct Judged {
    point: ActionThresholds,
    /// The offline rule ([`offline_rule`]: the knowledge base, then a disguise) tags it; it runs
    /// only when the model allows the message.
    knowledge_tags: bool,
}

impl Judged {
    /// The threshold that decides whether the phone flags it offline: the tag threshold, or
    /// none at all when the offline rule tags it.
    fn offline_threshold(&self) -> f32 {
        if self.knowledge_tags {
            f32::NEG_INFINITY
        } else {
            self.point.tag
        }
    }
}

impl Scorer for EdgeScorer<'_> {
    type Kept = Judged;
    type Prepared = ();

    fn truth_index(&self, truth: Label) -> Option<usize> {
        model_index(&self.0.metadata().labels, truth)
    }

    fn prepare(&self, _index: usize, _text: &str) {}

    fn score(&self, _index: usize, text: &str, _: ()) -> Option<Scored<Judged>> {
        let normalized = normalize(text);
        let prediction = self.0.classify_normalized(&normalized).ok()?;
        let point = prediction.judged.point;
        // As on the phone, the offline rule runs only on what the model allows.
        let allowed = prediction.spam_score < point.tag;
        let knowledge_tags = allowed
            && offline_rule(KnowledgeBase::builtin(), &normalized, prediction.spam_score).is_some();
        Some(Scored {
            predicted: prediction.label_index,
            spam_score: prediction.spam_score,
            kept: Judged {
                point,
                knowledge_tags,
            },
        })
    }
}

impl EdgeScorer<'_> {
    fn report(
        &self,
        evaluation: &Evaluation<Judged>,
        source: String,
        load_ms: f64,
        data: &[PathBuf],
    ) -> Result<EvalReport> {
        let info = self.0.metadata();
        Ok(EvalReport {
            model: model_summary(info, source, load_ms),
            data: data.iter().map(|p| p.display().to_string()).collect(),
            metrics: metrics::evaluate(&info.labels, &evaluation.observations)?,
            at_deployed: evaluation.at_deployed(|j| j.point.tag, |j| j.point.quarantine),
            with_knowledge: evaluation.at_own(evaluation.all(), Judged::offline_threshold),
            timing: evaluation.timing(),
            per_corpus: evaluation
                .per_corpus(&info.labels, |j| j.point.tag)?
                .into_iter()
                .zip(evaluation.corpora.iter())
                .map(|(figures, (_, range))| {
                    let offline = evaluation.at_own(range.clone(), Judged::offline_threshold);
                    CorpusSummary::new(figures, offline)
                })
                .collect(),
            skipped: evaluation.skipped.clone(),
        })
    }
}

impl CorpusSummary {
    fn new(figures: CorpusFigures, offline: ThresholdMetrics) -> Self {
        let m = figures.metrics;
        CorpusSummary {
            recall_with_knowledge: offline.spam_recall,
            ham_fpr_with_knowledge: offline.ham_fpr,
            name: figures.name,
            n: m.n,
            accuracy: m.accuracy,
            spam_recall: m.spam_recall,
            ham_fpr: m.ham_fpr,
            recall_at_fpr_0_5: figures.at_tag.spam_recall,
            ham_fpr_at_fpr_0_5: figures.at_tag.ham_fpr,
            best_recall_at_fpr_0_5: m.best_at_fpr_0_5.map(|b| b.spam_recall),
        }
    }
}

/// The model output index for a true label: same name, else `spam` for any spam-like label.
fn model_index(model_labels: &[String], truth: Label) -> Option<usize> {
    let by_name = |name: &str| model_labels.iter().position(|l| l == name);
    by_name(truth.as_str()).or_else(|| {
        truth
            .is_spam()
            .then(|| by_name(Label::Spam.as_str()))
            .flatten()
    })
}

fn model_summary(info: &ModelInfo, source: String, load_ms: f64) -> ModelSummary {
    ModelSummary {
        source,
        precision: info.precision.clone(),
        labels: info.labels.clone(),
        seq_len: info.seq_len,
        threshold_fpr_0_5: info.threshold_fpr_0_5,
        threshold_fpr_0_1: info.threshold_fpr_0_1,
        market_thresholds: info.market_thresholds.clone(),
        load_ms,
    }
}

fn write_outputs(args: &EvalArgs, report: &EvalReport, observations: &[Observation]) -> Result<()> {
    let outputs = args.report.outputs();
    let title = format!(
        "{} model, {} messages",
        report.model.precision, report.metrics.n
    );
    let marks = [
        OperatingPoint {
            name: "FPR 0.5 % threshold".to_string(),
            metrics: report.at_deployed.at_threshold_fpr_0_5,
        },
        OperatingPoint {
            name: "FPR 0.1 % threshold".to_string(),
            metrics: report.at_deployed.at_threshold_fpr_0_1,
        },
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
        "model {} ({}), {} messages",
        report.model.source, report.model.precision, m.n
    );
    smsguard_eval::report::write_headline(&mut text, m, "arg-max");
    for (name, at) in [
        ("0.5 %", &report.at_deployed.at_threshold_fpr_0_5),
        ("0.1 %", &report.at_deployed.at_threshold_fpr_0_1),
    ] {
        let _ = writeln!(
            text,
            "at FPR {name} threshold {:.4}: spam recall {:.4}, precision {:.4}, observed ham FPR {:.4}",
            at.threshold, at.spam_recall, at.spam_precision, at.ham_fpr
        );
    }
    let offline = &report.with_knowledge;
    let _ = writeln!(
        text,
        "offline, with the knowledge base: spam recall {:.4}, precision {:.4}, observed ham FPR {:.4}",
        offline.spam_recall, offline.spam_precision, offline.ham_fpr
    );
    smsguard_eval::report::write_per_class(&mut text, m);
    let _ = writeln!(
        text,
        "latency p50 {:.1} us  p99 {:.1} us (normalise + encode + inference, 1 thread); model load {:.1} ms",
        report.timing.latency_us_p50, report.timing.latency_us_p99, report.model.load_ms
    );
    let s = &report.skipped;
    let _ = write!(
        text,
        "skipped: {} invalid lines, {} unknown-label lines, {} unmapped, {} unclassifiable",
        s.invalid_lines,
        s.unknown_labels.values().sum::<usize>(),
        s.unmapped_labels.values().sum::<usize>(),
        s.unclassifiable
    );
    text
}

/// The report as a Markdown document.
pub fn markdown(report: &EvalReport) -> String {
    let m = &report.metrics;
    let mut md = String::new();
    let _ = writeln!(md, "# Edge model evaluation\n");
    let _ = writeln!(
        md,
        "Model: `{}` ({}), labels {:?}.\n",
        report.model.source, report.model.precision, report.model.labels
    );
    let _ = writeln!(
        md,
        "Data: {}\n",
        report
            .data
            .iter()
            .map(|d| format!("`{d}`"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(md, "| metric | value |\n|---|---:|");
    let rows = [
        ("messages", m.n.to_string()),
        ("accuracy", format!("{:.4}", m.accuracy)),
        ("macro-F1", format!("{:.4}", m.macro_f1)),
        (
            "spam precision (arg-max)",
            format!("{:.4}", m.spam_precision),
        ),
        ("spam recall (arg-max)", format!("{:.4}", m.spam_recall)),
        ("ham FPR (arg-max)", format!("{:.4}", m.ham_fpr)),
        ("ROC-AUC", optional_figure(m.roc_auc)),
        (
            "latency p50 / p99 (µs)",
            format!(
                "{:.1} / {:.1}",
                report.timing.latency_us_p50, report.timing.latency_us_p99
            ),
        ),
    ];
    for (name, value) in rows {
        let _ = writeln!(md, "| {name} | {value} |");
    }
    let _ = writeln!(md, "\n| operating point | threshold | spam recall | spam precision | observed ham FPR |\n|---|---:|---:|---:|---:|");
    for (name, at) in [
        ("FPR 0.5 %", &report.at_deployed.at_threshold_fpr_0_5),
        ("FPR 0.1 %", &report.at_deployed.at_threshold_fpr_0_1),
    ] {
        let _ = writeln!(
            md,
            "| {name} | {:.4} | {:.4} | {:.4} | {:.4} |",
            at.threshold, at.spam_recall, at.spam_precision, at.ham_fpr
        );
    }
    for (budget, at) in smsguard_eval::report::best_points(m) {
        let _ = writeln!(
            md,
            "| best on this data, FPR ≤ {budget} | {:.4} | {:.4} | {:.4} | {:.4} |",
            at.threshold, at.spam_recall, at.spam_precision, at.ham_fpr
        );
    }
    let _ = writeln!(
        md,
        "\n| class | precision | recall | F1 | support |\n|---|---:|---:|---:|---:|"
    );
    for c in &m.per_class {
        let _ = writeln!(
            md,
            "| {} | {:.4} | {:.4} | {:.4} | {} |",
            c.label, c.precision, c.recall, c.f1, c.support
        );
    }
    if report.per_corpus.len() > 1 {
        let _ = writeln!(md, "\n| corpus | n | accuracy | spam recall | ham FPR | recall @0.5 % | ham FPR @0.5 % | + knowledge recall | + knowledge FPR | best recall @≤0.5 % |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for c in &report.per_corpus {
            let _ = writeln!(
                md,
                "| {} | {} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {} |",
                c.name,
                c.n,
                c.accuracy,
                c.spam_recall,
                c.ham_fpr,
                c.recall_at_fpr_0_5,
                c.ham_fpr_at_fpr_0_5,
                c.recall_with_knowledge,
                c.ham_fpr_with_knowledge,
                optional_figure(c.best_recall_at_fpr_0_5)
            );
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use smsguard_eval::perf::LatencySummary;

    use super::*;

    fn labels(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn truth_maps_by_name_then_to_spam() {
        let five = labels(&["ham", "ad", "fraud", "illegal", "spam"]);
        assert_eq!(model_index(&five, Label::Fraud), Some(2));
        let binary = labels(&["ham", "spam"]);
        assert_eq!(model_index(&binary, Label::Fraud), Some(1));
        assert_eq!(model_index(&binary, Label::Ham), Some(0));
        let no_spam = labels(&["ham", "fraud"]);
        assert_eq!(model_index(&no_spam, Label::Ad), None);
    }

    #[test]
    fn markdown_and_summary_show_the_key_figures() {
        let observations = vec![
            Observation {
                truth: 0,
                predicted: 0,
                spam_score: 0.1,
            },
            Observation {
                truth: 1,
                predicted: 1,
                spam_score: 0.9,
            },
        ];
        let info_labels = labels(&["ham", "spam"]);
        let metrics = metrics::evaluate(&info_labels, &observations).unwrap();
        let at = metrics::at_threshold(&observations, 0.5);
        let report = EvalReport {
            model: ModelSummary {
                source: "embedded".into(),
                precision: "int8".into(),
                labels: info_labels,
                seq_len: 8,
                threshold_fpr_0_5: 0.5,
                threshold_fpr_0_1: 0.5,
                market_thresholds: BTreeMap::new(),
                load_ms: 1.0,
            },
            data: vec!["dev.tsv".into()],
            metrics,
            at_deployed: AtDeployed {
                recall_at_fpr_0_5: at.spam_recall,
                recall_at_fpr_0_1: at.spam_recall,
                at_threshold_fpr_0_5: at,
                at_threshold_fpr_0_1: at,
            },
            with_knowledge: at,
            timing: Timing {
                latency_us_p50: 10.0,
                latency_us_p99: 20.0,
                latency: LatencySummary::from_durations(&[]),
                peak_rss_kib: None,
            },
            per_corpus: Vec::new(),
            skipped: Skipped::default(),
        };
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(
            smsguard_eval::report::missing_report_keys(&json),
            Vec::<&str>::new()
        );
        assert_eq!(json["accuracy"], 1.0);
        assert!(markdown(&report).contains("| accuracy | 1.0000 |"));
        assert!(summary_text(&report).contains("accuracy 1.0000"));
    }
}
