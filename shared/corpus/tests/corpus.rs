//! The reader keeps every usable line and names every other one with file:line.

use std::path::Path;

use smsguard_core::Label;
use smsguard_corpus::{parse_tsv, read_tsv, split_files, ProblemKind};

#[test]
fn good_lines_become_records_with_mapped_labels() {
    let corpus = parse_tsv(
        Path::new("mem.tsv"),
        "ham\tsee you at 5\nspam\tWIN a prize now\r\nfraud:phishing_bank\t您的银行卡已冻结\n"
            .as_bytes(),
    );
    assert!(corpus.problems.is_empty(), "{:?}", corpus.problems);
    let labels: Vec<Label> = corpus.records.iter().map(|r| r.label).collect();
    assert_eq!(labels, vec![Label::Ham, Label::Spam, Label::Fraud]);
    assert_eq!(
        corpus.records[1].text, "WIN a prize now",
        "CR of CRLF is stripped"
    );
    assert_eq!(corpus.records[2].line, 3);
    assert_eq!(corpus.records[2].fine_label, "fraud:phishing_bank");
}

#[test]
fn bad_lines_are_reported_with_line_numbers_not_skipped() {
    let mut bytes = b"ham\tok\nno tab here\nham\t   \nnot_a_label\thello\nspam\t".to_vec();
    bytes.extend_from_slice(b"\xff\xfe bad\nham\tlast\n");
    let corpus = parse_tsv(Path::new("bad.tsv"), &bytes);
    assert_eq!(corpus.records.len(), 2);
    let found: Vec<(usize, ProblemKind)> = corpus
        .problems
        .iter()
        .map(|p| (p.line, p.kind.clone()))
        .collect();
    assert_eq!(
        found,
        vec![
            (2, ProblemKind::MissingTab),
            (3, ProblemKind::EmptyText),
            (4, ProblemKind::UnknownLabel("not_a_label".into())),
            (5, ProblemKind::InvalidUtf8),
        ]
    );
    let shown = corpus.problems[0].to_string();
    assert!(shown.starts_with("bad.tsv:2:"), "{shown}");
    assert!(
        !shown.contains("no tab here"),
        "problems never quote message text"
    );
}

#[test]
fn empty_file_has_no_records_and_no_problems() {
    let corpus = parse_tsv(Path::new("empty.tsv"), b"");
    assert!(corpus.records.is_empty() && corpus.problems.is_empty());
}

#[test]
fn missing_file_is_an_error_naming_it() {
    let err = read_tsv("/nonexistent/smsguard/x.tsv").unwrap_err();
    assert!(err.to_string().contains("/nonexistent/smsguard/x.tsv"));
}

#[test]
fn committed_fixture_parses_cleanly_and_split_files_finds_it() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/fixtures");
    let corpus = read_tsv(fixtures.join("mixed/dev.tsv")).unwrap();
    assert!(corpus.problems.is_empty(), "{:?}", corpus.problems);
    assert!(corpus.records.iter().any(|r| r.label == Label::Ham));
    assert!(corpus.records.iter().any(|r| r.label.is_spam()));
    assert_eq!(corpus.name(), "mixed");
    let files = split_files(&fixtures, "dev").unwrap();
    assert!(files.iter().any(|f| f.ends_with("mixed/dev.tsv")));
}

/// The typology set (issue 16): every type file parses cleanly and holds at least 10 messages of
/// one spam label; the look-alike files hold only ham and promotions (`ad`), at least as many as
/// the type files of their language hold fraud.
#[test]
fn the_typology_fixtures_parse_and_keep_their_shape() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/fixtures/typology");
    let mut spam_rows = std::collections::BTreeMap::<String, usize>::new();
    let mut legit_rows = std::collections::BTreeMap::<String, usize>::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "tsv") {
            continue;
        }
        let corpus = read_tsv(&path).unwrap();
        assert!(
            corpus.problems.is_empty(),
            "{path:?}: {:?}",
            corpus.problems
        );
        let name = corpus.name();
        let language = name[..2].to_owned();
        if name.ends_with("-legit") {
            assert!(corpus
                .records
                .iter()
                .all(|r| matches!(r.label, Label::Ham | Label::Ad)));
            *legit_rows.entry(language).or_default() += corpus.records.len();
        } else {
            let label = corpus.records[0].label;
            assert!(label.is_spam(), "{name}");
            assert!(corpus.records.iter().all(|r| r.label == label), "{name}");
            assert!(
                corpus.records.len() >= 10,
                "{name}: {}",
                corpus.records.len()
            );
            *spam_rows.entry(language).or_default() += corpus.records.len();
        }
    }
    assert_eq!(spam_rows.keys().collect::<Vec<_>>(), ["en", "zh"]);
    for (language, spam) in &spam_rows {
        assert!(
            legit_rows[language] >= *spam,
            "{language}: {legit_rows:?} {spam}"
        );
    }
}

/// datasets/manifest.json pins every corpus file by sha256; a changed or missing corpus is caught
/// here rather than as a silent shift in model figures.
#[test]
fn manifest_matches_the_corpora_on_disk() {
    use sha2::{Digest, Sha256};
    let manifest_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/manifest.json");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(manifest_path).unwrap()).unwrap();
    let dir = smsguard_corpus::datasets_dir().expect("corpora are needed by the test suite");
    let corpora = manifest["corpora"].as_array().unwrap();
    assert!(corpora.len() >= 10);
    for corpus in corpora {
        let name = corpus["name"].as_str().unwrap();
        for (file, entry) in corpus["files"].as_object().unwrap() {
            let bytes = std::fs::read(dir.join(name).join(file)).unwrap();
            let digest = hex::encode(Sha256::digest(&bytes));
            assert_eq!(
                digest,
                entry["sha256"].as_str().unwrap(),
                "{name}/{file} changed"
            );
        }
    }
}

#[test]
fn every_label_in_the_corpora_is_in_the_label_map() {
    let dir = smsguard_corpus::datasets_dir().unwrap();
    for split in ["train", "dev"] {
        for file in split_files(&dir, split).unwrap() {
            let corpus = read_tsv(&file).unwrap();
            let unknown: Vec<String> = corpus
                .problems
                .iter()
                .filter(|p| matches!(p.kind, ProblemKind::UnknownLabel(_)))
                .map(ToString::to_string)
                .collect();
            assert!(unknown.is_empty(), "{unknown:?}");
            assert!(
                !corpus.records.is_empty(),
                "{} has no records",
                file.display()
            );
        }
    }
}
