//! `smsguard-cloud eval` end to end on the hand-written fixtures.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/fixtures/mixed/dev.tsv")
}

/// `smsguard-cloud eval --no-seed` on `data` with `extra` flags, its store in `out/store` and its
/// JSON report at `json`; the run must succeed; returns the report.
fn run_eval(
    data: &Path,
    out: &Path,
    json: &Path,
    extra: impl IntoIterator<Item = impl AsRef<OsStr>>,
) -> serde_json::Value {
    let status = Command::new(env!("CARGO_BIN_EXE_smsguard-cloud"))
        .args(["eval", "--no-seed"])
        .args(extra)
        .arg("--data")
        .arg(data)
        .arg("--json")
        .arg(json)
        .arg("--data-dir")
        .arg(out.join("store"))
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "eval failed: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap()
}

#[test]
fn eval_writes_the_edge_report_keys_and_counts_every_message() {
    let out = tempfile::tempdir().unwrap();
    let json_path = out.path().join("report/eval.json");
    let md_path = out.path().join("eval.md");
    let report = run_eval(
        &fixtures(),
        out.path(),
        &json_path,
        [OsStr::new("--markdown"), md_path.as_os_str()],
    );
    assert_eq!(
        smsguard_eval::report::missing_report_keys(&report),
        Vec::<&str>::new()
    );
    assert!(report.get("actions").is_some(), "missing key actions");
    let lines = std::fs::read_to_string(fixtures()).unwrap().lines().count();
    assert_eq!(report["n"].as_u64(), Some(lines as u64));
    assert_eq!(report["per_class"].as_array().map(Vec::len), Some(5));
    let actions: u64 = report["actions"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(actions, lines as u64);
    assert_eq!(report["degraded"].as_u64(), Some(0));
    // As a phone would, every message carried the edge model's verdict.
    assert_eq!(report["model"]["with_edge"].as_bool(), Some(true));
    let md = std::fs::read_to_string(&md_path).unwrap();
    assert!(md.contains(&format!("| messages | {lines} |")));
    // The store was created where asked.
    assert!(out.path().join("store/similarity").is_dir());
}

#[test]
fn eval_without_edge_scores_the_cloud_alone() {
    let out = tempfile::tempdir().unwrap();
    let json_path = out.path().join("eval.json");
    let report = run_eval(&fixtures(), out.path(), &json_path, ["--without-edge"]);
    assert_eq!(report["model"]["with_edge"].as_bool(), Some(false));
}

#[test]
fn eval_verdict_rows_match_the_report_and_carry_no_text() {
    let out = tempfile::tempdir().unwrap();
    let json_path = out.path().join("eval.json");
    let rows_path = out.path().join("verdicts.tsv");
    let report = run_eval(
        &fixtures(),
        out.path(),
        &json_path,
        [OsStr::new("--verdicts"), rows_path.as_os_str()],
    );
    let rows = std::fs::read_to_string(&rows_path).unwrap();
    let mut lines = rows.lines();
    assert_eq!(
        lines.next(),
        Some("corpus\trow\ttruth\tlabel\taction\tspam_score\tmarket\ttop_terms")
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows.len() as u64, report["n"].as_u64().unwrap());
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row.len(), 8, "{row:?}");
        assert_eq!(row[1], (i + 1).to_string());
        let score: f64 = row[5].parse().unwrap();
        assert!((0.0..=1.0).contains(&score), "{row:?}");
    }
    // The per-action counts of the rows are the report's.
    for (action, count) in report["actions"].as_object().unwrap() {
        let in_rows = rows.iter().filter(|r| r[4] == action).count() as u64;
        assert_eq!(Some(in_rows), count.as_u64(), "{action}");
    }
    // No message text: no fixture text of more than two words appears in the file.
    let written = std::fs::read_to_string(&rows_path).unwrap();
    for line in std::fs::read_to_string(fixtures()).unwrap().lines() {
        let text = line.split_once('\t').unwrap().1;
        if text.split_whitespace().count() > 2 {
            assert!(!written.contains(text), "a message text was written");
        }
    }
}

#[test]
fn eval_of_a_missing_file_fails_with_its_path() {
    let output = Command::new(env!("CARGO_BIN_EXE_smsguard-cloud"))
        .args(["eval", "--no-seed", "--data", "/nonexistent/dev.tsv"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("/nonexistent/dev.tsv"));
}

/// The share of a report's messages the cloud did not allow (`actions`: tag, quarantine, block).
fn flagged_share(report: &serde_json::Value) -> f64 {
    let actions = report["actions"].as_object().expect("actions");
    let count = |action: &str| actions.get(action).and_then(|v| v.as_u64()).unwrap_or(0);
    let flagged = count("tag") + count("quarantine") + count("block");
    flagged as f64 / report["n"].as_u64().expect("n").max(1) as f64
}

fn eval_fixture(relative: &str) -> serde_json::Value {
    let out = tempfile::tempdir().unwrap();
    let data = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../datasets/fixtures")
        .join(relative);
    run_eval(
        &data,
        out.path(),
        &out.path().join("eval.json"),
        std::iter::empty::<&str>(),
    )
}

/// Quality floors on the hand-written sets, so a model or fusion regression fails a test and
/// not only a README figure: obfuscated spam stays caught, tricky legitimate messages stay
/// delivered. Shipped models, similarity memory empty; measured 82 of 87 (94.3 %) and 0 of 25,
/// as with a seeded memory in the README: the floors leave three messages of room.
#[test]
fn the_shipped_cloud_keeps_its_floor_on_the_hand_written_sets() {
    let obfuscated = eval_fixture("robustness.tsv");
    let caught = flagged_share(&obfuscated);
    eprintln!("robustness: {caught:.3} flagged");
    assert!(caught >= 0.9, "obfuscated spam flagged: {caught:.3}");
    let tricky = eval_fixture("challenge/tricky-ham.tsv");
    let false_alarms = flagged_share(&tricky) * tricky["n"].as_f64().unwrap();
    eprintln!("tricky ham: {false_alarms} flagged");
    assert!(false_alarms <= 1.0, "tricky ham flagged: {false_alarms}");
}
