//! Evaluation report output shared by `smsguard-train eval` (edge model) and
//! `smsguard-cloud eval` (fused cloud): where the files go, how they are written, and the PNG
//! plots. The evals decide what the report contains; this crate only writes it.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;
use smsguard_core::metrics::{self, Confusion, Observation};

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

/// `0.1234`, or `n/a` when the figure is undefined (e.g. ROC-AUC with one class only).
pub fn optional_figure(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".to_string(), |v| format!("{v:.4}"))
}
