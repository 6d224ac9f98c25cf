//! Evaluation report output shared by `smsguard-train eval` (edge model) and
//! `smsguard-cloud eval` (fused cloud): where the files go, how they are written, and the PNG
//! plots. The evals decide what the report contains; this module only writes it.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use crate::metrics::{self, Confusion, MetricsReport, Observation, ThresholdMetrics};
use serde::Serialize;

pub mod plots;

pub use plots::{OperatingPoint, PlotError};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot serialise the report: {0}")]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Plot(#[from] PlotError),
}

/// The command-line arguments every evaluation shares: which labelled files to score and where
/// the report goes. Flattened into the `eval` commands of `smsguard-train` and `smsguard-cloud`
/// so both accept the same flags.
#[derive(Debug, Clone, clap::Args)]
pub struct EvalDataArgs {
    /// Labelled `label<TAB>text` files (any corpus split); repeat for several.
    #[arg(long, required = true)]
    pub data: Vec<PathBuf>,
    /// Write the full report as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the report as Markdown here.
    #[arg(long)]
    pub markdown: Option<PathBuf>,
    /// Write pr-curve.png and confusion.png into this folder.
    #[arg(long)]
    pub plots: Option<PathBuf>,
    /// Evaluate at most this many messages per file (quick checks).
    #[arg(long)]
    pub limit: Option<usize>,
}

impl EvalDataArgs {
    /// The report outputs these arguments ask for.
    pub fn outputs(&self) -> Outputs<'_> {
        Outputs {
            json: self.json.as_deref(),
            markdown: self.markdown.as_deref(),
            plots: self.plots.as_deref(),
        }
    }
}

/// Where an evaluation writes its report; each output is optional.
#[derive(Debug, Clone, Copy, Default)]
pub struct Outputs<'a> {
    pub json: Option<&'a Path>,
    pub markdown: Option<&'a Path>,
    pub plots: Option<&'a Path>,
}

/// What the plots show: the observations behind the PR curve, the operating points marked on
/// it and the confusion matrix, under one title.
#[derive(Debug, Clone, Copy)]
pub struct PlotInput<'a> {
    pub title: &'a str,
    pub observations: &'a [Observation],
    pub marks: &'a [OperatingPoint],
    pub confusion: &'a Confusion,
}

/// Writes the requested outputs: pretty JSON of `report`, the Markdown produced by `markdown`
/// (only called when asked for), and `pr-curve.png` + `confusion.png` into the plots folder.
/// Missing parent folders are created.
pub fn write(
    outputs: Outputs<'_>,
    report: &impl Serialize,
    markdown: impl FnOnce() -> String,
    plots: PlotInput<'_>,
) -> Result<(), ReportError> {
    if let Some(path) = outputs.json {
        write_creating_dirs(path, serde_json::to_string_pretty(report)? + "\n")?;
    }
    if let Some(path) = outputs.markdown {
        write_creating_dirs(path, markdown())?;
    }
    if let Some(dir) = outputs.plots {
        create_dir(dir)?;
        draw(dir, plots)?;
    }
    Ok(())
}

fn draw(dir: &Path, input: PlotInput<'_>) -> Result<(), PlotError> {
    let curve = metrics::pr_curve(input.observations);
    plots::pr_curve(
        &dir.join("pr-curve.png"),
        &format!("Spam PR curve: {}", input.title),
        &curve,
        input.marks,
    )?;
    plots::confusion_matrix(
        &dir.join("confusion.png"),
        &format!("Confusion: {}", input.title),
        input.confusion,
    )
}

fn create_dir(dir: &Path) -> Result<(), ReportError> {
    fs::create_dir_all(dir).map_err(|source| ReportError::Write {
        path: dir.to_path_buf(),
        source,
    })
}

fn write_creating_dirs(path: &Path, contents: String) -> Result<(), ReportError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_dir(dir)?;
    }
    fs::write(path, contents).map_err(|source| ReportError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// The top-level keys of every evaluation report's JSON, whichever eval wrote it: what anyone
/// scoring their own data can rely on.
pub const REPORT_KEYS: [&str; 16] = [
    "n",
    "accuracy",
    "macro_f1",
    "spam_precision",
    "spam_recall",
    "ham_fpr",
    "roc_auc",
    "recall_at_fpr_0_5",
    "recall_at_fpr_0_1",
    "best_at_fpr_0_5",
    "best_at_fpr_0_1",
    "per_class",
    "confusion",
    "latency_us_p50",
    "latency_us_p99",
    "per_corpus",
];

/// The [`REPORT_KEYS`] a serialised report lacks.
pub fn missing_report_keys(report: &serde_json::Value) -> Vec<&'static str> {
    REPORT_KEYS
        .into_iter()
        .filter(|key| report.get(key).is_none())
        .collect()
}

/// `0.1234`, or `n/a` when the figure is undefined (e.g. ROC-AUC with one class only).
pub fn optional_figure(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".to_string(), |v| format!("{v:.4}"))
}

/// The two lines every evaluation summary starts with: overall accuracy, macro-F1 and ROC-AUC,
/// then the binary spam figures (`basis` says which decision they use, e.g. "arg-max").
/// Appended to `text`.
pub fn write_headline(text: &mut String, metrics: &MetricsReport, basis: &str) {
    let m = metrics;
    let _ = writeln!(
        text,
        "accuracy {:.4}  macro-F1 {:.4}  ROC-AUC {}",
        m.accuracy,
        m.macro_f1,
        optional_figure(m.roc_auc)
    );
    let _ = writeln!(
        text,
        "spam precision {:.4}  recall {:.4}  ham FPR {:.4} ({basis})",
        m.spam_precision, m.spam_recall, m.ham_fpr
    );
    for (budget, best) in best_points(m) {
        let _ = writeln!(
            text,
            "best threshold on this data for ham FPR <= {budget}: {:.4}: spam recall {:.4}, precision {:.4}, ham FPR {:.4}",
            best.threshold, best.spam_recall, best.spam_precision, best.ham_fpr
        );
    }
}

/// The operating points picked on the evaluated data itself, with their FPR budgets as text
/// ("0.5 %"), for reports; empty when the data lacks ham or spam.
pub fn best_points(metrics: &MetricsReport) -> Vec<(&'static str, ThresholdMetrics)> {
    [
        ("0.5 %", metrics.best_at_fpr_0_5),
        ("0.1 %", metrics.best_at_fpr_0_1),
    ]
    .into_iter()
    .filter_map(|(budget, best)| best.map(|b| (budget, b)))
    .collect()
}

/// One line per class: precision, recall, F1 and support. Appended to `text`.
pub fn write_per_class(text: &mut String, metrics: &MetricsReport) {
    for class in &metrics.per_class {
        let _ = writeln!(
            text,
            "  {:<8} P {:.4}  R {:.4}  F1 {:.4}  n {}",
            class.label, class.precision, class.recall, class.f1, class.support
        );
    }
}
