//! Evaluation metrics for the spam classifiers: pure functions over (true label, predicted label,
//! spam score) observations, shared by the trainer (threshold picking on dev) and the evaluation
//! report. Labels are indices into a label list whose index 0 is `ham`; every other label counts
//! as spam in the binary metrics.
//!
//! Conventions: a message is flagged when `spam_score >= threshold`; a ratio with an empty
//! denominator is 0 (as scikit-learn's `zero_division=0`), except ROC-AUC, which is `None` when
//! one of the two classes is absent.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Index of `ham` in every label list.
pub const HAM: usize = 0;

/// One classified message.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// Index of the true label.
    pub truth: usize,
    /// Index of the predicted label (arg-max of the model).
    pub predicted: usize,
    /// Spam score, `1 - p(ham)`.
    pub spam_score: f32,
}

impl Observation {
    pub fn is_spam(&self) -> bool {
        self.truth != HAM
    }
}

#[derive(Debug, Error, PartialEq)]
pub enum MetricsError {
    #[error("label list is empty")]
    NoLabels,
    #[error("observation {index} uses label index {label} but only {count} labels exist")]
    LabelOutOfRange {
        index: usize,
        label: usize,
        count: usize,
    },
}

/// Precision, recall and F1 of one class (one-vs-rest on the predicted labels).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    pub label: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Number of observations whose true label is this class.
    pub support: usize,
}

/// Counts of observations by true label (rows) and predicted label (columns).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Confusion {
    pub labels: Vec<String>,
    /// `counts[truth][predicted]`.
    pub counts: Vec<Vec<usize>>,
}

/// Binary spam-vs-ham figures when flagging every message scoring at least `threshold`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ThresholdMetrics {
    pub threshold: f32,
    pub spam_recall: f64,
    pub spam_precision: f64,
    pub ham_fpr: f64,
}

/// One point of the spam precision-recall curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PrPoint {
    pub threshold: f32,
    pub precision: f64,
    pub recall: f64,
}

/// Everything computed from one set of observations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsReport {
    pub n: usize,
    pub accuracy: f64,
    pub macro_f1: f64,
    /// Binary precision of "predicted label != ham" for "true label != ham".
    pub spam_precision: f64,
    pub spam_recall: f64,
    /// Share of true ham predicted as any spam label.
    pub ham_fpr: f64,
    pub roc_auc: Option<f64>,
    /// The operating point picked on these observations themselves: the highest spam recall any
    /// threshold gives here with a ham FPR of at most 0.5 % (`None` without both ham and spam).
    /// A stored threshold says what a deployed model does on new data; this says how well the
    /// scores rank this data, whatever its own ham looks like.
    #[serde(default)]
    pub best_at_fpr_0_5: Option<ThresholdMetrics>,
    /// As `best_at_fpr_0_5`, at a ham FPR of at most 0.1 %.
    #[serde(default)]
    pub best_at_fpr_0_1: Option<ThresholdMetrics>,
    pub per_class: Vec<ClassMetrics>,
    pub confusion: Confusion,
}

/// Computes the report for `observations` over `labels` (`labels[0]` is ham).
pub fn evaluate(
    labels: &[String],
    observations: &[Observation],
) -> Result<MetricsReport, MetricsError> {
    let confusion = confusion(labels, observations)?;
    let per_class = per_class(&confusion);
    let n = observations.len();
    let correct = (0..labels.len())
        .map(|i| confusion.counts[i][i])
        .sum::<usize>();
    let (ham_scores, spam_scores) = split_scores(observations);
    Ok(MetricsReport {
        n,
        accuracy: ratio(correct, n),
        macro_f1: macro_f1(&per_class),
        spam_precision: binary_precision(&confusion),
        spam_recall: binary_recall(&confusion),
        ham_fpr: ham_fpr(&confusion),
        roc_auc: roc_auc(&ham_scores, &spam_scores),
        best_at_fpr_0_5: best_at_fpr(observations, 0.005),
        best_at_fpr_0_1: best_at_fpr(observations, 0.001),
        per_class,
        confusion,
    })
}

/// Builds the confusion matrix, checking every label index.
pub fn confusion(
    labels: &[String],
    observations: &[Observation],
) -> Result<Confusion, MetricsError> {
    if labels.is_empty() {
        return Err(MetricsError::NoLabels);
    }
    let count = labels.len();
    let mut counts = vec![vec![0; count]; count];
    for (index, obs) in observations.iter().enumerate() {
        let label = obs.truth.max(obs.predicted);
        if label >= count {
            return Err(MetricsError::LabelOutOfRange {
                index,
                label,
                count,
            });
        }
        counts[obs.truth][obs.predicted] += 1;
    }
    Ok(Confusion {
        labels: labels.to_vec(),
        counts,
    })
}

fn per_class(confusion: &Confusion) -> Vec<ClassMetrics> {
    let counts = &confusion.counts;
    (0..counts.len())
        .map(|class| {
            let true_positive = counts[class][class];
            let support: usize = counts[class].iter().sum();
            let predicted: usize = counts.iter().map(|row| row[class]).sum();
            let precision = ratio(true_positive, predicted);
            let recall = ratio(true_positive, support);
            ClassMetrics {
                label: confusion.labels[class].clone(),
                precision,
                recall,
                f1: harmonic_mean(precision, recall),
                support,
            }
        })
        .collect()
}

/// Mean F1 over the classes that occur in the truth. A label with no true example has F1 0
/// whenever it is predicted at all (no true positive can exist), so counting it would score a
/// spam-only corpus by its missing ham: a `ham` prediction there is already paid for by the
/// recall of the spam class it should have been.
fn macro_f1(per_class: &[ClassMetrics]) -> f64 {
    let present: Vec<f64> = per_class
        .iter()
        .filter(|metrics| metrics.support > 0)
        .map(|metrics| metrics.f1)
        .collect();
    if present.is_empty() {
        0.0
    } else {
        present.iter().sum::<f64>() / present.len() as f64
    }
}

/// Sums of the confusion matrix collapsed to ham/spam: (truth spam & predicted spam, predicted
/// spam, truth spam, truth ham & predicted spam, truth ham).
fn binary_counts(confusion: &Confusion) -> [usize; 5] {
    let mut sums = [0; 5];
    for (truth, row) in confusion.counts.iter().enumerate() {
        for (predicted, &count) in row.iter().enumerate() {
            let (truth_spam, predicted_spam) = (truth != HAM, predicted != HAM);
            if truth_spam && predicted_spam {
                sums[0] += count;
            }
            if predicted_spam {
                sums[1] += count;
            }
            if truth_spam {
                sums[2] += count;
            } else {
                sums[4] += count;
                if predicted_spam {
                    sums[3] += count;
                }
            }
        }
    }
    sums
}

/// Share of messages put on the right side of ham vs spam (every non-ham label counts as spam).
pub fn binary_accuracy(confusion: &Confusion) -> f64 {
    let [hit, _, spam, false_alarm, ham] = binary_counts(confusion);
    ratio(hit + ham - false_alarm, spam + ham)
}

fn binary_precision(confusion: &Confusion) -> f64 {
    let [hit, flagged, ..] = binary_counts(confusion);
    ratio(hit, flagged)
}

fn binary_recall(confusion: &Confusion) -> f64 {
    let [hit, _, spam, ..] = binary_counts(confusion);
    ratio(hit, spam)
}

fn ham_fpr(confusion: &Confusion) -> f64 {
    let [.., false_alarm, ham] = binary_counts(confusion);
    ratio(false_alarm, ham)
}

/// Splits spam scores by the true class: (ham scores, spam scores).
pub fn split_scores(observations: &[Observation]) -> (Vec<f32>, Vec<f32>) {
    let (spam, ham): (Vec<&Observation>, Vec<&Observation>) =
        observations.iter().partition(|o| o.is_spam());
    let scores = |side: Vec<&Observation>| side.iter().map(|o| o.spam_score).collect();
    (scores(ham), scores(spam))
}

/// Area under the ROC curve: the probability that a random spam scores above a random ham,
/// ties counting one half (Mann-Whitney U with average ranks). `None` if a class is empty.
pub fn roc_auc(ham_scores: &[f32], spam_scores: &[f32]) -> Option<f64> {
    if ham_scores.is_empty() || spam_scores.is_empty() {
        return None;
    }
    let mut all: Vec<(f32, bool)> = ham_scores
        .iter()
        .map(|&s| (s, false))
        .chain(spam_scores.iter().map(|&s| (s, true)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut spam_rank_sum = 0.0;
    let mut start = 0;
    while start < all.len() {
        let end = start
            + all[start..]
                .iter()
                .take_while(|(s, _)| s.total_cmp(&all[start].0).is_eq())
                .count();
        // Ranks are 1-based; tied scores share the mean of their ranks.
        let mean_rank = (start + 1 + end) as f64 / 2.0;
        let spam_in_tie = all[start..end].iter().filter(|(_, spam)| *spam).count();
        spam_rank_sum += mean_rank * spam_in_tie as f64;
        start = end;
    }
    let (n_spam, n_ham) = (spam_scores.len() as f64, ham_scores.len() as f64);
    let u = spam_rank_sum - n_spam * (n_spam + 1.0) / 2.0;
    Some(u / (n_spam * n_ham))
}

/// The lowest threshold whose ham false-positive rate (share of ham scoring `>= threshold`) is at
/// most `max_fpr`. With no ham every threshold qualifies and 0 is returned.
pub fn threshold_for_fpr(ham_scores: &[f32], max_fpr: f64) -> f32 {
    let mut sorted = ham_scores.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    // Up to `allowed` ham may be flagged; the threshold must then sit just above the next one.
    let allowed = (max_fpr.max(0.0) * sorted.len() as f64 + 1e-9).floor() as usize;
    match sorted.get(allowed) {
        Some(&first_kept_clear) => next_float_above(first_kept_clear),
        None => 0.0,
    }
}

/// The smallest f32 strictly greater than `x` (for finite `x`).
fn next_float_above(x: f32) -> f32 {
    if x.is_nan() || x == f32::INFINITY {
        return x;
    }
    if x == 0.0 {
        return f32::from_bits(1);
    }
    let bits = x.to_bits();
    if x > 0.0 {
        f32::from_bits(bits + 1)
    } else {
        f32::from_bits(bits - 1)
    }
}

/// Binary figures at the lowest threshold that keeps the ham FPR of `observations` at most
/// `max_fpr`: the best recall this data allows at that FPR. `None` unless both classes occur.
pub fn best_at_fpr(observations: &[Observation], max_fpr: f64) -> Option<ThresholdMetrics> {
    let (ham, spam) = split_scores(observations);
    if ham.is_empty() || spam.is_empty() {
        return None;
    }
    Some(at_threshold(observations, threshold_for_fpr(&ham, max_fpr)))
}

/// Binary figures when flagging messages scoring at least `threshold`.
pub fn at_threshold(observations: &[Observation], threshold: f32) -> ThresholdMetrics {
    let (ham, spam) = split_scores(observations);
    let flagged = |scores: &[f32]| scores.iter().filter(|&&s| s >= threshold).count();
    let (false_alarms, hits) = (flagged(&ham), flagged(&spam));
    ThresholdMetrics {
        threshold,
        spam_recall: ratio(hits, spam.len()),
        spam_precision: ratio(hits, hits + false_alarms),
        ham_fpr: ratio(false_alarms, ham.len()),
    }
}

/// Binary figures when each message is flagged at its own threshold (`thresholds[i]` for
/// `observations[i]`), as a deployment with per-market thresholds flags them. The `threshold`
/// reported is the common one when all are equal, else NaN (JSON `null`).
pub fn at_own_thresholds(observations: &[Observation], thresholds: &[f32]) -> ThresholdMetrics {
    assert_eq!(
        observations.len(),
        thresholds.len(),
        "one threshold per observation"
    );
    let (mut hits, mut spam, mut false_alarms, mut ham) = (0, 0, 0, 0);
    for (o, &threshold) in observations.iter().zip(thresholds) {
        let flagged = usize::from(o.spam_score >= threshold);
        if o.is_spam() {
            (hits, spam) = (hits + flagged, spam + 1);
        } else {
            (false_alarms, ham) = (false_alarms + flagged, ham + 1);
        }
    }
    let common = thresholds
        .first()
        .copied()
        .filter(|first| thresholds.iter().all(|t| t.to_bits() == first.to_bits()));
    ThresholdMetrics {
        threshold: common.unwrap_or(f32::NAN),
        spam_recall: ratio(hits, spam),
        spam_precision: ratio(hits, hits + false_alarms),
        ham_fpr: ratio(false_alarms, ham),
    }
}

/// Spam recall at `threshold` (share of true spam scoring at least `threshold`).
pub fn recall_at_threshold(observations: &[Observation], threshold: f32) -> f64 {
    at_threshold(observations, threshold).spam_recall
}

/// Precision-recall points, one per distinct score, from the highest threshold to the lowest.
pub fn pr_curve(observations: &[Observation]) -> Vec<PrPoint> {
    let total_spam = observations.iter().filter(|o| o.is_spam()).count();
    let mut sorted: Vec<&Observation> = observations.iter().collect();
    sorted.sort_by(|a, b| b.spam_score.total_cmp(&a.spam_score));
    let mut points = Vec::new();
    let (mut flagged, mut hits) = (0, 0);
    for (i, obs) in sorted.iter().enumerate() {
        flagged += 1;
        hits += usize::from(obs.is_spam());
        let last_of_tie = sorted
            .get(i + 1)
            .is_none_or(|next| next.spam_score != obs.spam_score);
        if last_of_tie {
            points.push(PrPoint {
                threshold: obs.spam_score,
                precision: ratio(hits, flagged),
                recall: ratio(hits, total_spam),
            });
        }
    }
    points
}

fn ratio(numerator: usize, denominator: usize) -> f64 {
    if denominator == 0 {
        0.0
    } else {
        numerator as f64 / denominator as f64
    }
}

fn harmonic_mean(a: f64, b: f64) -> f64 {
    if a + b == 0.0 {
        0.0
    } else {
        2.0 * a * b / (a + b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn obs(truth: usize, predicted: usize, spam_score: f32) -> Observation {
        Observation {
            truth,
            predicted,
            spam_score,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    /// 3 ham (1 flagged as spam), 2 spam (1 right, 1 called smishing), 1 smishing (missed).
    fn three_class_case() -> Vec<Observation> {
        vec![
            obs(0, 0, 0.1),
            obs(0, 0, 0.2),
            obs(0, 1, 0.7),
            obs(1, 1, 0.9),
            obs(1, 2, 0.8),
            obs(2, 0, 0.3),
        ]
    }

    #[test]
    fn own_thresholds_flag_each_message_at_its_market_point() {
        let observations = three_class_case();
        // One common threshold gives exactly `at_threshold`'s figures.
        let common = at_own_thresholds(&observations, &[0.5; 6]);
        assert_eq!(common, at_threshold(&observations, 0.5));
        // Per message: the flagged ham (0.7) now clears its 0.75, the missed smishing (0.3) is
        // caught at its 0.25, the spam at 0.8 is missed at its 0.85.
        let own = at_own_thresholds(&observations, &[0.5, 0.5, 0.75, 0.5, 0.85, 0.25]);
        assert!(own.threshold.is_nan());
        assert!(close(own.ham_fpr, 0.0), "{own:?}");
        assert!(close(own.spam_recall, 2.0 / 3.0), "{own:?}");
        assert!(close(own.spam_precision, 1.0), "{own:?}");
    }

    #[test]
    fn multi_class_report_matches_hand_computation() {
        let report = evaluate(&labels(&["ham", "spam", "smishing"]), &three_class_case()).unwrap();
        assert_eq!(report.n, 6);
        assert!(close(report.accuracy, 3.0 / 6.0));
        assert_eq!(
            report.confusion.counts,
            vec![vec![2, 1, 0], vec![0, 1, 1], vec![1, 0, 0]]
        );
        let ham = &report.per_class[0];
        assert!(
            close(ham.precision, 2.0 / 3.0) && close(ham.recall, 2.0 / 3.0) && ham.support == 3
        );
        let spam = &report.per_class[1];
        assert!(close(spam.precision, 0.5) && close(spam.recall, 0.5) && close(spam.f1, 0.5));
        let smishing = &report.per_class[2];
        assert!(close(smishing.f1, 0.0) && smishing.support == 1);
        assert!(close(report.macro_f1, (2.0 / 3.0 + 0.5 + 0.0) / 3.0));
        // Binary: spam truth = 3; flagged = 3 (0->1, 1->1, 1->2); hits = 2.
        assert!(close(report.spam_precision, 2.0 / 3.0));
        assert!(close(report.spam_recall, 2.0 / 3.0));
        assert!(close(report.ham_fpr, 1.0 / 3.0));
        // Right side of ham/spam: 2 ham kept, 2 spam flagged (spam called smishing counts).
        assert!(close(binary_accuracy(&report.confusion), 4.0 / 6.0));
    }

    #[test]
    fn macro_f1_averages_only_labels_present_in_the_truth() {
        // A spam-only corpus: one spam message called ham. `ham` has no true example, so its F1
        // (0, predicted once) is left out; spam (P 1, R 2/3) and fraud (1) are averaged.
        let report = evaluate(
            &labels(&["ham", "spam", "fraud"]),
            &[
                obs(1, 1, 0.9),
                obs(1, 1, 0.8),
                obs(1, 0, 0.2),
                obs(2, 2, 0.9),
            ],
        )
        .unwrap();
        assert!(close(report.per_class[0].f1, 0.0));
        assert!(
            close(report.macro_f1, (0.8 + 1.0) / 2.0),
            "{}",
            report.macro_f1
        );
        // A label predicted but never true does not count either.
        let report = evaluate(
            &labels(&["ham", "spam", "fraud"]),
            &[obs(0, 0, 0.1), obs(1, 2, 0.9), obs(1, 1, 0.9)],
        )
        .unwrap();
        assert!(close(report.macro_f1, (1.0 + 2.0 / 3.0) / 2.0));
    }

    #[test]
    fn macro_f1_ignores_labels_absent_from_truth_and_predictions() {
        let report = evaluate(
            &labels(&["ham", "spam", "fraud"]),
            &[obs(0, 0, 0.1), obs(1, 1, 0.9)],
        )
        .unwrap();
        assert!(close(report.macro_f1, 1.0));
        assert_eq!(report.per_class[2].support, 0);
    }

    #[test]
    fn out_of_range_label_is_an_error() {
        let err =
            evaluate(&labels(&["ham", "spam"]), &[obs(0, 0, 0.1), obs(0, 2, 0.9)]).unwrap_err();
        assert_eq!(
            err,
            MetricsError::LabelOutOfRange {
                index: 1,
                label: 2,
                count: 2
            }
        );
        assert_eq!(evaluate(&[], &[]).unwrap_err(), MetricsError::NoLabels);
    }

    #[test]
    fn empty_observations_give_zeros_not_nan() {
        let report = evaluate(&labels(&["ham", "spam"]), &[]).unwrap();
        assert_eq!(report.accuracy, 0.0);
        assert_eq!(report.macro_f1, 0.0);
        assert_eq!(report.roc_auc, None);
    }

    #[test]
    fn roc_auc_counts_pairs_and_half_ties() {
        // Pairs (spam > ham): spam 0.9 beats all 3 ham; spam 0.4 beats 0.1 and ties 0.4 -> 1.5.
        let auc = roc_auc(&[0.1, 0.4, 0.6], &[0.9, 0.4]).unwrap();
        assert!(close(auc, (3.0 + 1.5) / 6.0));
        assert!(close(roc_auc(&[0.1, 0.2], &[0.8, 0.9]).unwrap(), 1.0));
        assert!(close(roc_auc(&[0.8, 0.9], &[0.1, 0.2]).unwrap(), 0.0));
        assert_eq!(roc_auc(&[], &[0.5]), None);
    }

    #[test]
    fn threshold_for_fpr_allows_at_most_the_budget_of_ham() {
        let ham: Vec<f32> = (0..10).map(|i| i as f32 / 10.0).collect();
        // 10 % of 10 ham = 1 may be flagged: the threshold sits just above the second highest (0.8).
        let t = threshold_for_fpr(&ham, 0.1);
        assert!(t > 0.8 && t <= 0.9, "threshold {t}");
        assert_eq!(ham.iter().filter(|&&s| s >= t).count(), 1);
        // 0 % flags nothing: just above the maximum.
        let strict = threshold_for_fpr(&ham, 0.0);
        assert!(strict > 0.9);
        assert_eq!(ham.iter().filter(|&&s| s >= strict).count(), 0);
        // A budget covering every ham allows everything.
        assert_eq!(threshold_for_fpr(&ham, 1.0), 0.0);
        assert_eq!(threshold_for_fpr(&[], 0.01), 0.0);
    }

    #[test]
    fn threshold_for_fpr_handles_ties_conservatively() {
        // Two ham tie at 0.5; allowing one false positive must not flag both.
        let t = threshold_for_fpr(&[0.5, 0.5, 0.1, 0.2], 0.25);
        assert!(t > 0.5);
    }

    #[test]
    fn at_threshold_reports_recall_precision_and_fpr() {
        let m = at_threshold(&three_class_case(), 0.75);
        // Flagged: spam 0.9, spam 0.8 (hits 2 of 3 spam), no ham.
        assert!(close(m.spam_recall, 2.0 / 3.0));
        assert!(close(m.spam_precision, 1.0));
        assert!(close(m.ham_fpr, 0.0));
        assert!(close(recall_at_threshold(&three_class_case(), 0.0), 1.0));
    }

    #[test]
    fn best_at_fpr_picks_the_threshold_on_the_data_itself() {
        // 201 ham: 200 low scores and one at 0.95; spam at 0.1, 0.5 and 0.96.
        let mut data: Vec<Observation> = (0..200).map(|i| obs(0, 0, i as f32 / 1000.0)).collect();
        data.push(obs(0, 1, 0.95));
        data.extend([obs(1, 0, 0.1), obs(1, 1, 0.5), obs(1, 1, 0.96)]);
        // 0.5 % of 201 ham allows one false alarm: the 0.95 ham may be flagged, 0.199 may not.
        let loose = best_at_fpr(&data, 0.005).expect("both classes present");
        assert!(loose.threshold > 0.199 && loose.threshold <= 0.5);
        assert!(close(loose.spam_recall, 2.0 / 3.0));
        assert!(close(loose.ham_fpr, 1.0 / 201.0));
        // 0.1 % allows none: only the spam above the highest ham is caught.
        let strict = best_at_fpr(&data, 0.001).expect("both classes present");
        assert!(strict.threshold > 0.95 && strict.threshold <= 0.96);
        assert!(close(strict.spam_recall, 1.0 / 3.0));
        assert!(close(strict.ham_fpr, 0.0));
        let report = evaluate(&labels(&["ham", "spam"]), &data).expect("valid labels");
        assert_eq!(report.best_at_fpr_0_5, Some(loose));
        assert_eq!(report.best_at_fpr_0_1, Some(strict));
    }

    #[test]
    fn best_at_fpr_needs_both_classes() {
        assert_eq!(best_at_fpr(&[obs(0, 0, 0.2)], 0.005), None);
        assert_eq!(best_at_fpr(&[obs(1, 1, 0.9)], 0.005), None);
        assert_eq!(best_at_fpr(&[], 0.001), None);
    }

    #[test]
    fn pr_curve_walks_thresholds_downwards() {
        let points = pr_curve(&[
            obs(1, 1, 0.9),
            obs(0, 1, 0.8),
            obs(1, 1, 0.8),
            obs(0, 0, 0.1),
        ]);
        assert_eq!(points.len(), 3);
        assert_eq!(
            points[0],
            PrPoint {
                threshold: 0.9,
                precision: 1.0,
                recall: 0.5
            }
        );
        assert!(close(points[1].precision, 2.0 / 3.0) && close(points[1].recall, 1.0));
        assert!(close(points[2].precision, 0.5) && close(points[2].recall, 1.0));
    }

    #[test]
    fn report_serialises_to_json() {
        let report = evaluate(&labels(&["ham", "spam", "smishing"]), &three_class_case()).unwrap();
        let json = serde_json::to_value(&report).unwrap();
        for key in [
            "n",
            "accuracy",
            "macro_f1",
            "spam_precision",
            "spam_recall",
            "ham_fpr",
            "roc_auc",
            "per_class",
            "confusion",
        ] {
            assert!(json.get(key).is_some(), "missing {key}");
        }
    }
}
