//! Report files land where asked, parent folders are created, and the plots are real PNGs.

use smsguard_eval::metrics::{self, Observation};
use smsguard_eval::report::{optional_figure, write, OperatingPoint, Outputs, PlotInput};

fn observations() -> Vec<Observation> {
    let mut out = Vec::new();
    for i in 0..40 {
        let spam = i % 3 == 0;
        let score = if spam {
            0.6 + (i as f32) / 200.0
        } else {
            (i as f32) / 100.0
        };
        out.push(Observation {
            truth: usize::from(spam),
            predicted: usize::from(score >= 0.5),
            spam_score: score,
        });
    }
    out
}

/// The ham/spam report of `obs`.
fn evaluate(obs: &[Observation]) -> metrics::MetricsReport {
    let labels = vec!["ham".to_string(), "spam".to_string()];
    metrics::evaluate(&labels, obs).unwrap()
}

#[test]
fn writes_json_markdown_and_png_plots_into_new_folders() {
    let dir = tempfile::tempdir().unwrap();
    let obs = observations();
    let report = evaluate(&obs);
    let at = metrics::at_threshold(&obs, 0.5);
    let marks = [OperatingPoint {
        name: "t=0.5".into(),
        metrics: at,
    }];
    let json = dir.path().join("a/b/report.json");
    let md = dir.path().join("c/report.md");
    let plots = dir.path().join("plots");
    let outputs = Outputs {
        json: Some(&json),
        markdown: Some(&md),
        plots: Some(&plots),
    };
    let input = PlotInput {
        title: "test",
        observations: &obs,
        marks: &marks,
        confusion: &report.confusion,
    };
    write(outputs, &report, || "# hello\n".to_string(), input).unwrap();

    let value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(value["n"], 40);
    assert_eq!(std::fs::read_to_string(&md).unwrap(), "# hello\n");
    for png in ["pr-curve.png", "confusion.png"] {
        let bytes = std::fs::read(plots.join(png)).unwrap();
        assert!(bytes.len() > 1000, "{png} is too small to hold a plot");
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{png} is not a PNG");
    }
}

#[test]
fn nothing_is_written_when_nothing_is_asked_and_markdown_is_not_rendered() {
    let obs = observations();
    let report = evaluate(&obs);
    let input = PlotInput {
        title: "t",
        observations: &obs,
        marks: &[],
        confusion: &report.confusion,
    };
    write(
        Outputs::default(),
        &report,
        || panic!("markdown rendered for nobody"),
        input,
    )
    .unwrap();
}

#[test]
fn unwritable_path_is_an_error_naming_it() {
    let obs = observations();
    let report = evaluate(&obs);
    let input = PlotInput {
        title: "t",
        observations: &obs,
        marks: &[],
        confusion: &report.confusion,
    };
    let bad = std::path::Path::new("/proc/smsguard-no/report.json");
    let outputs = Outputs {
        json: Some(bad),
        ..Outputs::default()
    };
    let err = write(outputs, &report, String::new, input).unwrap_err();
    assert!(err.to_string().contains("/proc/smsguard-no"), "{err}");
}

#[test]
fn optional_figures_print_four_decimals_or_n_a() {
    assert_eq!(optional_figure(None), "n/a");
    assert_eq!(optional_figure(Some(0.5)), "0.5000");
}

#[test]
fn missing_report_keys_names_exactly_the_absent_ones() {
    let mut report = serde_json::to_value(evaluate(&observations())).unwrap();
    // A bare metrics report has the metric keys but none of an eval's latency or corpus keys.
    assert_eq!(
        smsguard_eval::report::missing_report_keys(&report),
        vec![
            "recall_at_fpr_0_5",
            "recall_at_fpr_0_1",
            "latency_us_p50",
            "latency_us_p99",
            "per_corpus"
        ]
    );
    for key in [
        "recall_at_fpr_0_5",
        "recall_at_fpr_0_1",
        "latency_us_p50",
        "latency_us_p99",
        "per_corpus",
    ] {
        report[key] = serde_json::Value::Null;
    }
    assert!(smsguard_eval::report::missing_report_keys(&report).is_empty());
}
