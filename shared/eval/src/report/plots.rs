//! PNG figures of an evaluation: the spam precision-recall curve with the model's operating
//! points, and the confusion matrix. Text is rendered with system fonts (plotters `ttf`:
//! font-kit + fontconfig; CI needs `fonts-dejavu-core` and `libfontconfig1`).

use std::path::Path;

use crate::metrics::{Confusion, PrPoint, ThresholdMetrics};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

const FONT: &str = "sans-serif";

#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("cannot draw {path}: {reason}")]
    Draw { path: String, reason: String },
}

/// Wraps a plotters error with the file it was drawing.
fn draw_error<E: std::fmt::Display>(path: &Path) -> impl Fn(E) -> PlotError + '_ {
    move |e| PlotError::Draw {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// An operating point to mark on the PR curve.
#[derive(Debug, Clone)]
pub struct OperatingPoint {
    pub name: String,
    pub metrics: ThresholdMetrics,
}

/// Draws the spam precision-recall curve (recall on x) and marks the operating points.
pub fn pr_curve(
    path: &Path,
    title: &str,
    points: &[PrPoint],
    marks: &[OperatingPoint],
) -> Result<(), PlotError> {
    let fail = draw_error(path);
    let root = BitMapBackend::new(path, (800, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(&fail)?;
    let min_precision = points.iter().map(|p| p.precision).fold(1.0_f64, f64::min);
    // Zoom into the interesting band but always show at least 0.5..1.
    let y_low = (min_precision - 0.05).clamp(0.0, 0.5);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 24))
        .margin(20)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..1.0_f64, y_low..1.0_f64)
        .map_err(&fail)?;
    chart
        .configure_mesh()
        .x_desc("spam recall")
        .y_desc("spam precision")
        .axis_desc_style((FONT, 18))
        .draw()
        .map_err(&fail)?;
    let curve = points.iter().map(|p| (p.recall, p.precision));
    chart
        .draw_series(LineSeries::new(curve, BLUE.stroke_width(2)))
        .map_err(&fail)?
        .label("precision-recall")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
    for (mark, color) in marks.iter().zip([RED, GREEN, MAGENTA, CYAN].iter().cycle()) {
        let at = (
            mark.metrics.spam_recall,
            mark.metrics.spam_precision.max(y_low),
        );
        // A NaN threshold: each message was flagged at its own market's threshold.
        let threshold = match mark.metrics.threshold {
            t if t.is_nan() => "per market".to_string(),
            t => format!("{t:.4}"),
        };
        let label = format!(
            "{} (t={threshold}, recall {:.3}, ham FPR {:.4})",
            mark.name, mark.metrics.spam_recall, mark.metrics.ham_fpr
        );
        chart
            .draw_series(std::iter::once(Circle::new(at, 6, color.filled())))
            .map_err(&fail)?
            .label(label)
            .legend(move |(x, y)| Circle::new((x + 10, y), 5, color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .label_font((FONT, 16))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(&fail)?;
    root.present().map_err(&fail)?;
    Ok(())
}

/// Draws the confusion matrix: rows are true labels, columns predictions; each cell shows the
/// count, shaded by the share of its row (per-class recall on the diagonal).
pub fn confusion_matrix(path: &Path, title: &str, confusion: &Confusion) -> Result<(), PlotError> {
    let fail = draw_error(path);
    let classes = confusion.labels.len().max(1);
    let cell = (560 / classes as u32).clamp(60, 140);
    let (left, top) = (130_u32, 110_u32);
    let size = (
        left + cell * classes as u32 + 40,
        top + cell * classes as u32 + 40,
    );
    let root = BitMapBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(&fail)?;
    let centered =
        |px: i32| TextStyle::from((FONT, px).into_font()).pos(Pos::new(HPos::Center, VPos::Center));
    root.draw_text(title, &centered(24), (size.0 as i32 / 2, 25))
        .map_err(&fail)?;
    let (left, top, cell) = (left as i32, top as i32, cell as i32);
    root.draw_text(
        "predicted",
        &centered(18),
        (left + cell * classes as i32 / 2, top - 60),
    )
    .map_err(&fail)?;
    root.draw_text("true", &centered(18), (left / 2, top - 25))
        .map_err(&fail)?;
    for (i, label) in confusion.labels.iter().enumerate() {
        let offset = i as i32 * cell + cell / 2;
        root.draw_text(label, &centered(16), (left + offset, top - 25))
            .map_err(&fail)?;
        root.draw_text(label, &centered(16), (left / 2, top + offset))
            .map_err(&fail)?;
    }
    for (row, counts) in confusion.counts.iter().enumerate() {
        let row_total: usize = counts.iter().sum();
        for (col, &count) in counts.iter().enumerate() {
            let share = if row_total == 0 {
                0.0
            } else {
                count as f64 / row_total as f64
            };
            let (x, y) = (left + col as i32 * cell, top + row as i32 * cell);
            root.draw(&Rectangle::new(
                [(x, y), (x + cell, y + cell)],
                shade(share).filled(),
            ))
            .map_err(&fail)?;
            root.draw(&Rectangle::new(
                [(x, y), (x + cell, y + cell)],
                BLACK.mix(0.3),
            ))
            .map_err(&fail)?;
            let ink = if share > 0.5 { WHITE } else { BLACK };
            let style = centered(18).color(&ink);
            root.draw_text(&count.to_string(), &style, (x + cell / 2, y + cell / 2))
                .map_err(&fail)?;
        }
    }
    root.present().map_err(&fail)?;
    Ok(())
}

/// White (0) to dark blue (1).
fn shade(share: f64) -> RGBColor {
    let s = share.clamp(0.0, 1.0);
    let channel = |full: f64, dark: f64| (full + (dark - full) * s).round() as u8;
    RGBColor(
        channel(255.0, 8.0),
        channel(255.0, 48.0),
        channel(255.0, 107.0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_both_pngs() {
        let dir = tempfile::tempdir().unwrap();
        let points = vec![
            PrPoint {
                threshold: 0.9,
                precision: 1.0,
                recall: 0.4,
            },
            PrPoint {
                threshold: 0.5,
                precision: 0.9,
                recall: 0.8,
            },
            PrPoint {
                threshold: 0.1,
                precision: 0.6,
                recall: 1.0,
            },
        ];
        let mark = OperatingPoint {
            name: "FPR 0.5 %".to_string(),
            metrics: ThresholdMetrics {
                threshold: 0.5,
                spam_recall: 0.8,
                spam_precision: 0.9,
                ham_fpr: 0.004,
            },
        };
        let pr = dir.path().join("pr.png");
        pr_curve(&pr, "test", &points, &[mark]).unwrap();
        let confusion = Confusion {
            labels: vec!["ham".into(), "spam".into()],
            counts: vec![vec![9, 1], vec![2, 8]],
        };
        let cm = dir.path().join("cm.png");
        confusion_matrix(&cm, "test", &confusion).unwrap();
        for file in [pr, cm] {
            let bytes = std::fs::read(&file).unwrap();
            assert!(
                bytes.starts_with(b"\x89PNG"),
                "{} is not a PNG",
                file.display()
            );
        }
    }

    #[test]
    fn shade_runs_from_white_to_dark() {
        assert_eq!(shade(0.0), RGBColor(255, 255, 255));
        assert_eq!(shade(1.0), RGBColor(8, 48, 107));
    }
}
