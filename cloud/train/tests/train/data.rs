//! Corpus loading: split discovery, normalisation, label mapping, de-duplication, weights.

use std::fs;

use smsguard_train::data::{self, DataError, Split, EDGE_LABELS};

fn corpus_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, train, dev) in [
        (
            "a",
            "ham\tSee you at lunch\nspam\tWIN a PRIZE now\n",
            "ham\tok\n",
        ),
        (
            "b",
            "ham\tSee you at lunch\nfraud:phishing_bank\tVerify your bank\n",
            "spam\tfree\n",
        ),
    ] {
        fs::create_dir(dir.path().join(name)).unwrap();
        fs::write(dir.path().join(name).join("train.tsv"), train).unwrap();
        fs::write(dir.path().join(name).join("dev.tsv"), dev).unwrap();
        fs::write(dir.path().join(name).join("test.tsv"), "ham\tsecret\n").unwrap();
    }
    dir
}

#[test]
fn finds_train_and_dev_files_but_never_test_files() {
    let dir = corpus_dir();
    let inputs = vec![dir.path().to_path_buf()];
    let train = data::split_files(&inputs, Split::Train).unwrap();
    assert_eq!(train.len(), 2);
    assert!(train.iter().all(|p| p.ends_with("train.tsv")));
    let dev = data::split_files(&inputs, Split::Dev).unwrap();
    assert!(dev.iter().all(|p| p.ends_with("dev.tsv")));
    let test_file = vec![dir.path().join("a/test.tsv")];
    assert!(matches!(
        data::split_files(&test_file, Split::Train),
        Err(DataError::TestSplit(_))
    ));
}

#[test]
fn loads_normalised_deduplicated_examples_with_edge_labels() {
    let dir = corpus_dir();
    let files = data::split_files(&[dir.path().to_path_buf()], Split::Train).unwrap();
    let loaded = data::load(&files, true).unwrap();
    assert_eq!(loaded.sources, vec!["a", "b"]);
    assert_eq!(loaded.duplicates_removed, 1);
    assert_eq!(loaded.examples.len(), 3);
    let fraud = EDGE_LABELS.iter().position(|l| *l == "fraud").unwrap();
    assert_eq!(loaded.examples[2].label, fraud);
    assert_eq!(loaded.examples[2].source, 1);
    // Normalisation folds case.
    assert!(loaded.examples[1].text.contains("win a prize"));
    let kept = data::load(&files, false).unwrap();
    assert_eq!(kept.examples.len(), 4);
}

#[test]
fn class_weights_favour_rare_classes_and_average_one() {
    let dir = corpus_dir();
    let files = data::split_files(&[dir.path().to_path_buf()], Split::Train).unwrap();
    let loaded = data::load(&files, false).unwrap();
    let w = data::class_weights(&loaded);
    let counts = loaded.label_counts();
    assert!(
        w[0] < w[2],
        "ham (2 examples) must weigh less than fraud (1)"
    );
    assert_eq!(w[1], 0.0, "absent class gets no weight");
    let mean: f32 = counts
        .iter()
        .zip(&w)
        .map(|(&n, &x)| n as f32 * x)
        .sum::<f32>()
        / counts.iter().sum::<usize>() as f32;
    assert!((mean - 1.0).abs() < 1e-5);
}

#[test]
fn edge_labels_follow_the_taxonomy_order() {
    let names: Vec<&str> = smsguard_core::Label::ALL
        .iter()
        .map(|l| l.as_str())
        .collect();
    assert_eq!(names, EDGE_LABELS);
}

#[test]
fn hand_written_rows_join_training_as_one_source_repeated() {
    let dir = corpus_dir();
    let mut train = data::load(
        &data::split_files(&[dir.path().to_path_buf()], Split::Train).unwrap(),
        true,
    )
    .unwrap();
    let before = train.examples.len();
    let fixtures = tempfile::tempdir().unwrap();
    fs::write(
        fixtures.path().join("types.tsv"),
        "fraud\t我是民警，你的账户涉嫌洗钱\nham\t明天开会\nfraud\t我是民警，你的账户涉嫌洗钱\n",
    )
    .unwrap();
    fs::write(fixtures.path().join("README.md"), "not data\n").unwrap();
    fs::create_dir(fixtures.path().join("sub")).unwrap();
    fs::write(fixtures.path().join("sub/skipped.tsv"), "ham\tnot read\n").unwrap();
    let added = data::add_handwritten(&mut train, &[fixtures.path().to_path_buf()], 3).unwrap();
    // The duplicate row counts once; only the folder's own .tsv files are read.
    assert_eq!(added, 2);
    assert_eq!(train.examples.len(), before + 2 * 3);
    assert_eq!(train.sources.last().unwrap(), data::HANDWRITTEN);
    let source = train.sources.len() - 1;
    let fraud = EDGE_LABELS.iter().position(|l| *l == "fraud").unwrap();
    let added_rows: Vec<_> = train
        .examples
        .iter()
        .filter(|e| e.source == source)
        .collect();
    assert_eq!(added_rows.iter().filter(|e| e.label == fraud).count(), 3);
    // Nothing asked, nothing added.
    let mut untouched = train.clone();
    assert_eq!(data::add_handwritten(&mut untouched, &[], 3).unwrap(), 0);
    assert_eq!(
        data::add_handwritten(&mut untouched, &[fixtures.path().to_path_buf()], 0).unwrap(),
        0
    );
    assert_eq!(untouched.examples.len(), train.examples.len());
    assert!(matches!(
        data::add_handwritten(&mut untouched, &[fixtures.path().join("missing.tsv")], 1),
        Err(DataError::Corpus(_))
    ));
}
