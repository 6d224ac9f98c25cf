//! `smsguard-train baseline` end to end: a corpus folder in, binary figures out (Markdown and
//! JSON), any further TSV scored with the pooled model.

use std::path::Path;
use std::process::Command;

const HAM: [&str; 6] = [
    "are we still on for lunch tomorrow?",
    "mum says dinner is at 7, bring the charger",
    "thanks for the help today, see you on monday",
    "running late, save me a seat",
    "can you call me when you get home",
    "happy birthday! have a lovely day",
];

const SPAM: [&str; 6] = [
    "win a free prize now! claim at www.prize.example",
    "urgent: your account is locked, verify now",
    "congratulations you won cash, call 09061701461",
    "free entry! text win to 87121 to claim",
    "your parcel is held, pay the fee today",
    "cheap loans approved today, reply yes",
];

fn write_tsv(path: &Path, rows: &[(&str, &str)]) {
    let text: String = rows.iter().map(|(l, t)| format!("{l}\t{t}\n")).collect();
    std::fs::write(path, text).unwrap();
}

fn corpus(dir: &Path) {
    let labelled = |label, texts: &[&'static str]| -> Vec<(&'static str, &'static str)> {
        texts.iter().map(|t| (label, *t)).collect()
    };
    let mut train = labelled("ham", &HAM[..4]);
    train.extend(labelled("spam", &SPAM[..4]));
    let mut dev = labelled("ham", &HAM[4..]);
    dev.extend(labelled("spam", &SPAM[4..]));
    std::fs::create_dir_all(dir).unwrap();
    write_tsv(&dir.join("train.tsv"), &train);
    write_tsv(&dir.join("dev.tsv"), &dev);
}

fn baseline(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_smsguard-train"))
        .arg("baseline")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn pooled_and_per_corpus_runs_report_every_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("toy_corpus");
    corpus(&dir);
    let extra = tmp.path().join("mine.tsv");
    write_tsv(
        &extra,
        &[
            ("spam", "claim your free prize now"),
            ("ham", "see you at lunch"),
        ],
    );
    let json = tmp.path().join("figures.json");
    let dir_arg = dir.to_str().unwrap();
    let output = baseline(&[
        "--data",
        dir_arg,
        "--score",
        extra.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["corpus"], "toy_corpus");
    assert_eq!(rows[0]["n"], 4);
    assert_eq!(rows[1]["n"], 2);
    for row in &rows {
        let accuracy = row["accuracy"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&accuracy));
        assert_eq!(row["model"], "pooled");
    }
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(table.contains("| toy_corpus | pooled |"), "{table}");

    let output = baseline(&["--data", dir_arg, "--per-corpus", "--raw", "--c", "1"]);
    assert!(output.status.success());
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(table.contains("Raw text") && table.contains("| toy_corpus | per corpus | 1 | 4 |"));
}

#[test]
fn bad_arguments_are_refused_with_a_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("toy_corpus");
    corpus(&dir);
    let output = baseline(&["--data", dir.to_str().unwrap(), "--c", "0"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--c needs positive values"));
    let lone = tmp.path().join("lone.tsv");
    write_tsv(&lone, &[("ham", "hello")]);
    let output = baseline(&["--data", lone.to_str().unwrap()]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("give corpus folders"));
}
