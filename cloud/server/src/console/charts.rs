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

/// Series colours (CSS classes `s0` .. `s5`); more series reuse them.
const PALETTE: usize = 6;
const LEGEND_WIDTH: f64 = 110.0;

/// One line per `(name, values)` (values oldest first, all of one length), on a shared scale
/// whose peak is written on the axis, with a legend.
pub fn lines(title: &str, series: &[(String, Vec<f64>)], unit: &str) -> String {
    let base = LINE_HEIGHT - 20.0;
    let mut svg = format!(
        r#"<svg class="chart" role="img" aria-label="{}" viewBox="0 0 {WIDTH} {LINE_HEIGHT}" width="{WIDTH}" height="{LINE_HEIGHT}"><line class="axis-line" x1="40" y1="{base}" x2="{right}" y2="{base}"/>"#,
        escape(title),
        right = WIDTH - LEGEND_WIDTH,
    );
    let points = series.first().map_or(0, |(_, values)| values.len());
    if points < 2 {
        svg.push_str(
            r#"<text x="50" y="60" class="axis">collecting: a point every 10 s</text></svg>"#,
        );
        return svg;
    }
    let peak = series
        .iter()
        .flat_map(|(_, values)| values.iter().copied())
        .fold(0.0f64, f64::max)
        .max(1e-9);
    let step = (WIDTH - LEGEND_WIDTH - 50.0) / (points - 1) as f64;
    let plot_height = LINE_HEIGHT - 40.0;
    for (index, (name, values)) in series.iter().enumerate() {
        let coordinates: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let x = 45.0 + step * i as f64;
                let y = base - v / peak * plot_height;
                format!("{x:.1},{y:.1}")
            })
            .collect();
        let colour = index % PALETTE;
        let _ = write!(
            svg,
            r#"<polyline class="series s{colour}" points="{}"/><text x="{x}" y="{y}" class="legend s{colour}">{}</text>"#,
            coordinates.join(" "),
            escape(name),
            x = WIDTH - LEGEND_WIDTH + 10.0,
            y = 20.0 + 16.0 * index as f64,
        );
    }
    let _ = write!(
        svg,
        r#"<text x="2" y="24" class="axis">{peak:.1}</text><text x="2" y="{y}" class="axis">0 {unit}</text></svg>"#,
        y = base - 2.0,
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
    fn lines_need_two_points_and_draw_one_line_per_series() {
        assert!(lines("t", &[("all".into(), vec![1.0])], "/s").contains("collecting"));
        let svg = lines(
            "t",
            &[
                ("all".into(), vec![1.0, 2.0]),
                ("<spam>".into(), vec![0.0, 1.0]),
            ],
            "/s",
        );
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("&lt;spam&gt;"));
    }
}
