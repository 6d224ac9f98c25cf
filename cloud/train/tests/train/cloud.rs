//! `train-cloud` end to end on two tiny hand-written corpora: the model files, the per-corpus
//! figures of the manifest and the dumped fusion rows; `loco` on the same corpora.

use std::path::Path;

use smsguard_train::cloud_models::{self, CloudTrainArgs};
use smsguard_train::data;

const HAM: [&str; 4] = [
    "are we still on for lunch tomorrow?",
    "thanks for the help today, see you on monday",
    "running late, save me a seat",
    "can you call me when you get home",
];

const SPAM: [&str; 4] = [
    "win a free prize now! claim at http://win.example",
    "urgent: your account is locked, verify now",
    "congratulations you won cash, call 07700900123",
    "free entry! text win to claim your prize",
];

fn write_corpus(root: &Path, name: &str, dev_ham: &str, dev_spam: &str) {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let rows = |texts: &[(&str, &str)]| -> String {
        texts.iter().map(|(l, t)| format!("{l}\t{t}\n")).collect()
    };
    let train: Vec<(&str, &str)> = HAM
        .iter()
        .map(|t| ("ham", *t))
        .chain(SPAM.iter().map(|t| ("spam", *t)))
        .collect();
    std::fs::write(dir.join("train.tsv"), rows(&train)).unwrap();
    std::fs::write(
        dir.join("dev.tsv"),
        rows(&[("ham", dev_ham), ("spam", dev_spam)]),
    )
    .unwrap();
}

/// Two corpora, "first" and "second", sharing their training texts.
fn two_corpora() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    write_corpus(
        root.path(),
        "first",
        "see you at lunch tomorrow",
        "claim your free prize now",
    );
    write_corpus(
        root.path(),
        "second",
        "call me when you get home",
        "your account is locked, verify",
    );
    root
}

#[test]
fn writes_models_per_corpus_figures_and_text_free_fusion_rows() {
    let root = two_corpora();
    let out = root.path().join("models");
    let rows = root.path().join("rows.tsv");
    let handwritten = root.path().join("handwritten.tsv");
    std::fs::write(
        &handwritten,
        "fraud\tThis is your boss, buy four gift cards and send me the codes\nham\tLunch at noon?\n",
    )
    .unwrap();
    cloud_models::run(CloudTrainArgs {
        data: vec![root.path().join("first"), root.path().join("second")],
        out: out.clone(),
        bucket_bits: 12,
        epochs: 3,
        lr: 0.2,
        l2: 1e-6,
        seed: 7,
        corpus_cap: 8000,
        no_edge: true,
        subword_vocab: 0,
        subword_min_frequency: 2,
        lexical_bits: 10,
        lexical_c: 1.0,
        lexical_both_views: true,
        folds: 2,
        dump_rows: Some(rows.clone()),
        handwritten: data::HandwrittenArgs {
            handwritten: vec![handwritten],
            handwritten_repeat: 2,
        },
    })
    .unwrap();
    let manifest = std::fs::read_to_string(out.join("manifest.json")).unwrap();
    assert!(
        manifest.contains("\"handwritten\""),
        "the hand-written source is named among the training sources"
    );

    for file in [
        "multiclass.bin",
        "lexical.bin",
        "fusion.json",
        "manifest.json",
    ] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    let figures = manifest["multiclass"]["dev_metrics"].as_array().unwrap();
    let corpora: Vec<&str> = figures
        .iter()
        .map(|f| f["corpus"].as_str().unwrap())
        .collect();
    assert_eq!(corpora, ["all", "first", "second"]);
    for f in figures {
        let binary = f["binary_accuracy"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&binary), "{f}");
        // Binary accuracy counts every spam class as one, so it is never below label accuracy.
        assert!(binary >= f["accuracy"].as_f64().unwrap(), "{f}");
    }

    let dumped = std::fs::read_to_string(&rows).unwrap();
    let lines: Vec<&str> = dumped.lines().collect();
    assert!(lines[0].starts_with("corpus\tline\tlabel\tmulticlass\t"));
    assert!(lines[0].ends_with("\tp_spam"));
    assert_eq!(lines.len(), 1 + 4, "a header and one row per dev message");
    let columns = lines[0].split('\t').count();
    assert!(lines.iter().all(|l| l.split('\t').count() == columns));
    assert_eq!(&lines[1][..8], "first\t1\t");
    assert!(lines[4].starts_with("second\t2\t"));
    // Scores only: no word of any dev message appears in the file.
    for word in ["lunch", "prize", "home", "locked"] {
        assert!(!dumped.contains(word), "{word} leaked into the rows");
    }

    let fusion = smsguard_scoring::FusionModel::from_json(
        &std::fs::read_to_string(out.join("fusion.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(fusion.inputs[1].model, "lexical");
    let lexical = smsguard_scoring::LexicalModel::from_bytes(
        &std::fs::read(out.join("lexical.bin")).unwrap(),
    )
    .unwrap();
    assert_eq!(lexical.bucket_bits(), 10);
    assert!(lexical.platt().a > 0.0, "calibration keeps the ranking");
    // Trained on both corpora's spam: a training spam scores above a training ham.
    let p = |t: &str| lexical.probability(&smsguard_core::normalize(t).text, t);
    assert!(p(SPAM[0]) > p(HAM[0]), "{} vs {}", p(SPAM[0]), p(HAM[0]));
}

#[test]
fn leave_one_corpus_out_scores_each_held_out_corpus_with_models_fitted_without_it() {
    let root = two_corpora();
    let json = root.path().join("loco.json");
    smsguard_train::loco::run(smsguard_train::loco::LocoArgs {
        data: vec![root.path().to_path_buf()],
        hold_out: Vec::new(),
        max_train: 6,
        no_svm: false,
        // One ONNX Runtime environment per process: the parity tests own it.
        no_edge: true,
        fold_edge_steps: 0,
        in_corpus: false,
        json: Some(json.clone()),
    })
    .unwrap();
    let rows: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let rows = rows.as_array().unwrap();
    let held: Vec<&str> = rows
        .iter()
        .map(|r| r["held_out"].as_str().unwrap())
        .collect();
    assert_eq!(held, ["first", "second"]);
    for row in rows {
        assert!(row["edge"].is_null(), "no edge asked for: {row}");
        assert_eq!(row["n"], 2);
        // The corpora share their training texts: both are dropped from the other's fold
        // only when they occur in the held-out dev split, which they do not; 6 of 8 are kept.
        assert_eq!(row["train_messages"], 6, "{row}");
        for model in ["cloud", "cloud_policy", "svm"] {
            let accuracy = row[model]["accuracy"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&accuracy), "{row}");
        }
        // The category policy only ever adds flags to fusion's: never less recall or FPR.
        for figure in ["spam_recall", "ham_fpr"] {
            let fused = row["cloud"][figure].as_f64();
            let acted = row["cloud_policy"][figure].as_f64();
            assert_eq!(fused.is_some(), acted.is_some(), "{row}");
            assert!(acted >= fused, "{figure}: {row}");
        }
    }
    // A TSV file whose split the name does not say is refused, not trained on and scored.
    let loose = root.path().join("loose.tsv");
    std::fs::write(&loose, "ham\thello there\nspam\twin a prize\n").unwrap();
    let refused = smsguard_train::loco::run(smsguard_train::loco::LocoArgs {
        data: vec![loose],
        hold_out: Vec::new(),
        max_train: 0,
        no_svm: true,
        no_edge: true,
        fold_edge_steps: 0,
        in_corpus: false,
        json: None,
    })
    .unwrap_err();
    assert!(
        refused.to_string().contains("train.tsv or dev.tsv"),
        "{refused}"
    );
}

#[test]
fn loco_trains_an_edge_per_fold_when_asked() {
    let root = two_corpora();
    let json = root.path().join("loco.json");
    smsguard_train::loco::run(smsguard_train::loco::LocoArgs {
        data: vec![root.path().to_path_buf()],
        hold_out: vec!["second".to_owned()],
        max_train: 0,
        no_svm: true,
        no_edge: false,
        fold_edge_steps: 3,
        in_corpus: false,
        json: Some(json.clone()),
    })
    .unwrap();
    let rows: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let row = &rows.as_array().unwrap()[0];
    assert_eq!(row["held_out"], "second");
    assert_eq!(row["edge_source"], "fold-trained, 3 CNN steps at most");
    let accuracy = row["edge"]["accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&accuracy), "{row}");
    assert!(row["edge"]["spam_recall"].is_number(), "{row}");
}
