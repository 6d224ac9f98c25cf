//! Charts drawn on the server as inline SVG: no script and no third-party library reaches the
//! browser, and the page works with JavaScript off.

use std::fmt::Write;

use super::pages::escape;

const WIDTH: f64 = 640.0;
const BAR_HEIGHT: f64 = 22.0;
const LABEL_WIDTH: f64 = 180.0;
const LINE_HEIGHT: f64 = 160.0;

/// Horizontal bars, one per `(name, count)`, scaled to the largest count.
pub fn bars(title: &str, items: &[(String, u64)]) -> String {
    let height = BAR_HEIGHT * items.len().max(1) as f64 + 8.0;
    let mut svg = format!(
        r#"<svg class="chart" role="img" aria-label="{}" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}">"#,
        escape(title)
    );
    let largest = items.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1) as f64;
    let room = WIDTH - LABEL_WIDTH - 70.0;
    for (row, (name, count)) in items.iter().enumerate() {
        let y = 4.0 + BAR_HEIGHT * row as f64;
        let length = (*count as f64 / largest * room).max(1.0);
        let _ = write!(
            svg,
            r#"<text x="{x}" y="{ty}" text-anchor="end" class="axis">{name}</text><rect class="bar" x="{LABEL_WIDTH}" y="{y}" width="{length:.1}" height="{h}"/><text x="{tx:.1}" y="{ty}" class="value">{count}</text>"#,
            x = LABEL_WIDTH - 6.0,
            ty = y + BAR_HEIGHT * 0.65,
            name = escape(name),
            h = BAR_HEIGHT - 6.0,
            tx = LABEL_WIDTH + length + 6.0,
        );
    }
    if items.is_empty() {
        let _ = write!(
            svg,
            r#"<text x="{LABEL_WIDTH}" y="18" class="axis">no verdicts yet</text>"#
        );
    }
    svg.push_str("</svg>");
    svg
}

/// A line of `values` (oldest first) with its peak written on the axis.
pub fn line(title: &str, values: &[f64], unit: &str) -> String {
    let mut svg = format!(
        r#"<svg class="chart" role="img" aria-label="{}" viewBox="0 0 {WIDTH} {LINE_HEIGHT}" width="{WIDTH}" height="{LINE_HEIGHT}"><line class="axis-line" x1="40" y1="{base}" x2="{WIDTH}" y2="{base}"/>"#,
        escape(title),
        base = LINE_HEIGHT - 20.0,
    );
    if values.len() < 2 {
        svg.push_str(
            r#"<text x="50" y="60" class="axis">collecting: a point every 10 s</text></svg>"#,
        );
        return svg;
    }
    let peak = values.iter().copied().fold(0.0f64, f64::max).max(1e-9);
    let step = (WIDTH - 50.0) / (values.len() - 1) as f64;
    let plot_height = LINE_HEIGHT - 40.0;
    let points: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let x = 45.0 + step * i as f64;
            let y = LINE_HEIGHT - 20.0 - v / peak * plot_height;
            format!("{x:.1},{y:.1}")
        })
        .collect();
    let _ = write!(
        svg,
        r#"<polyline class="series" points="{}"/><text x="2" y="24" class="axis">{peak:.1}</text><text x="2" y="{base}" class="axis">0 {unit}</text></svg>"#,
        points.join(" "),
        base = LINE_HEIGHT - 22.0,
        unit = escape(unit),
    );
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_and_escape_names() {
        let svg = bars("t", &[("spam <b>".into(), 10), ("ham".into(), 5)]);
        assert!(svg.contains("spam &lt;b&gt;"));
        assert!(!svg.contains("<b>"));
        assert!(svg.matches("<rect").count() == 2);
    }

    #[test]
    fn line_needs_two_points() {
        assert!(line("t", &[1.0], "/s").contains("collecting"));
        assert!(line("t", &[1.0, 2.0], "/s").contains("<polyline"));
    }
}
