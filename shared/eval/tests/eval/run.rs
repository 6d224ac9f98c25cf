//! The evaluation loop over real TSV files with a small keyword scorer: what it counts, skips,
//! times and keeps, and the figures at each message's own threshold.

use std::cell::RefCell;
use std::path::PathBuf;

use smsguard_core::Label;
use smsguard_eval::{evaluate_files, Scored, Scorer};

/// Spam when the text says "win"; ham/spam labels only; refuses texts saying "refuse". Keeps the
/// threshold each message is judged at: 0.5, or 0.95 for texts saying "strict".
#[derive(Default)]
struct KeywordScorer {
    /// (index, text length) of every prepared message, in order.
    prepared: RefCell<Vec<(usize, usize)>>,
}

impl Scorer for KeywordScorer {
    type Kept = f32;
    type Prepared = usize;

    fn truth_index(&self, truth: Label) -> Option<usize> {
        match truth {
            Label::Ham => Some(0),
            Label::Spam => Some(1),
            _ => None,
        }
    }

    fn prepare(&self, index: usize, text: &str) -> usize {
        self.prepared.borrow_mut().push((index, text.len()));
        index
    }

    fn score(&self, index: usize, text: &str, prepared: usize) -> Option<Scored<f32>> {
        assert_eq!(index, prepared, "score sees the index prepare saw");
        if text.contains("refuse") {
            return None;
        }
        let spam = text.contains("win");
        Some(Scored {
            predicted: usize::from(spam),
            spam_score: if spam { 0.9 } else { 0.1 },
            kept: if text.contains("strict") { 0.95 } else { 0.5 },
        })
    }
}

fn write_file(dir: &std::path::Path, corpus: &str, lines: &[&str]) -> PathBuf {
    let folder = dir.join(corpus);
    std::fs::create_dir_all(&folder).unwrap();
    let path = folder.join("dev.tsv");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

#[test]
fn scores_counts_and_skips_over_several_files() {
    let dir = tempfile::tempdir().unwrap();
    let first = write_file(
        dir.path(),
        "alpha",
        &[
            "ham\thello there",
            "spam\twin a prize",
            "spam\twin strict prize",
            "no-such-label\tanything",
            "promo\tan ad the scorer cannot say",
            "ham\tplease refuse me",
            "missing tab",
        ],
    );
    let second = write_file(
        dir.path(),
        "beta",
        &["spam\tno keyword", "ham\twin-win talk"],
    );
    let scorer = KeywordScorer::default();
    let evaluation = evaluate_files(&scorer, &[first, second], None).unwrap();

    assert_eq!(evaluation.observations.len(), 5);
    assert_eq!(evaluation.kept, vec![0.5, 0.5, 0.95, 0.5, 0.5]);
    assert_eq!(evaluation.latencies.len(), 5);
    let names: Vec<_> = evaluation
        .corpora
        .iter()
        .map(|(n, r)| (n.as_str(), r.clone()))
        .collect();
    assert_eq!(names, vec![("alpha", 0..3), ("beta", 3..5)]);
    let skipped = &evaluation.skipped;
    assert_eq!(skipped.unknown_labels.get("no-such-label"), Some(&1));
    assert_eq!(skipped.unmapped_labels.get("ad"), Some(&1));
    assert_eq!(skipped.invalid_lines, 1);
    assert_eq!(skipped.unclassifiable, 1);
    // The refused message was prepared at index 3 and did not take it: the next one did.
    let indices: Vec<usize> = scorer.prepared.borrow().iter().map(|(i, _)| *i).collect();
    assert_eq!(indices, vec![0, 1, 2, 3, 3, 4]);

    // At their own thresholds: of three spam only "win a prize" is caught (the strict one scores
    // 0.9 < 0.95), and the ham saying "win" is flagged.
    let deployed = evaluation.at_deployed(|t| *t, |_| 0.99);
    assert!((deployed.recall_at_fpr_0_5 - 1.0 / 3.0).abs() < 1e-9);
    assert!((deployed.at_threshold_fpr_0_5.ham_fpr - 0.5).abs() < 1e-9);
    assert_eq!(deployed.recall_at_fpr_0_1, 0.0);
    assert!(deployed.at_threshold_fpr_0_5.threshold.is_nan());

    let labels = vec!["ham".to_string(), "spam".to_string()];
    let per_corpus = evaluation.per_corpus(&labels, |t| *t).unwrap();
    assert_eq!(per_corpus.len(), 2);
    assert_eq!(per_corpus[0].metrics.n, 3);
    assert!((per_corpus[0].at_tag.spam_recall - 0.5).abs() < 1e-9);
    assert_eq!(per_corpus[1].metrics.accuracy, 0.0);
    assert_eq!(evaluation.timing().latency.n, 5);
}

#[test]
fn a_limit_applies_per_file_and_a_missing_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let a = write_file(dir.path(), "a", &["ham\tone", "ham\ttwo", "spam\twin"]);
    let b = write_file(dir.path(), "b", &["spam\twin", "ham\ttwo"]);
    let evaluation = evaluate_files(&KeywordScorer::default(), &[a.clone(), b], Some(1)).unwrap();
    assert_eq!(evaluation.observations.len(), 2);
    let missing = dir.path().join("none.tsv");
    assert!(evaluate_files(&KeywordScorer::default(), &[a, missing], None).is_err());
}
