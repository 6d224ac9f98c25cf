//! Turning the local model's prediction and the cloud's verdict into one stored verdict whose
//! label agrees with its action.

use smsguard_core::Label;
use smsguard_model::{Action, Prediction};
use smsguard_proto::v1;

use crate::store::{Source, StoredVerdict};

/// The local verdict. The label follows the action: `ham` when the message is allowed, else the
/// most likely spam class (the arg-max label may be `ham` for a tagged message whose spam mass
/// is spread over several classes).
pub fn local_verdict(prediction: &Prediction, labels: &[Label]) -> StoredVerdict {
    let label = if prediction.action == Action::Allow {
        Label::Ham
    } else {
        most_likely_spam_class(&prediction.probabilities, labels)
    };
    StoredVerdict {
        label,
        spam_score: prediction.spam_score,
        action: prediction.action,
        source: Source::Local,
    }
}

fn most_likely_spam_class(probabilities: &[f32], labels: &[Label]) -> Label {
    labels
        .iter()
        .zip(probabilities)
        .filter(|(label, _)| label.is_spam())
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(Label::Spam, |(label, _)| *label)
}

/// The cloud's verdict. An unspecified action falls back to the label (allow for ham, else
/// quarantine); an unspecified label follows the action.
pub fn cloud_verdict(verdict: &v1::Verdict) -> StoredVerdict {
    let label = v1::Label::try_from(verdict.label)
        .ok()
        .and_then(smsguard_proto::core_label);
    let action = v1::Action::try_from(verdict.action)
        .ok()
        .and_then(smsguard_proto::core_action);
    let (label, action) = match (label, action) {
        (Some(label), Some(action)) => (label, action),
        (Some(label), None) => (label, default_action(label)),
        (None, Some(action)) => (default_label(action), action),
        (None, None) => (Label::Ham, Action::Allow),
    };
    StoredVerdict {
        label,
        spam_score: verdict.spam_score.clamp(0.0, 1.0),
        action,
        source: Source::Cloud,
    }
}

/// How many contributions the reason of a cloud verdict names.
const NAMED_CONTRIBUTIONS: usize = 3;
/// Longest scorer reason quoted per contribution, in characters (reasons never quote the
/// message; this keeps the line readable).
const REASON_CHARS: usize = 100;

/// Why the cloud decided, in words: score, action and class, the policy's note when it changed
/// the action, and the top contributions ranked by weight × score (the protocol carries no
/// fusion term, so this ranks by the scorer's own score at its weight), each with its reason.
pub fn cloud_reason(verdict: &v1::Verdict, stored: &StoredVerdict) -> String {
    let mut reason = format!(
        "cloud verdict: spam score {:.4} -> {} ({})",
        stored.spam_score,
        stored.action.as_str(),
        stored.label
    );
    let live = || verdict.contributions.iter().filter(|c| !c.degraded);
    if let Some(policy) = live().find(|c| c.model == "policy") {
        reason.push_str("; policy: ");
        reason.push_str(&policy.reason);
    }
    let mut top: Vec<&v1::Contribution> = live()
        .filter(|c| c.model != "policy" && c.weight * c.score > 0.0)
        .collect();
    top.sort_by(|a, b| (b.weight * b.score).total_cmp(&(a.weight * a.score)));
    for (i, c) in top.iter().take(NAMED_CONTRIBUTIONS).enumerate() {
        let short: String = c.reason.chars().take(REASON_CHARS).collect();
        let more = if short.len() < c.reason.len() {
            "…"
        } else {
            ""
        };
        let sep = if i == 0 { "; top: " } else { ", " };
        reason.push_str(&format!(
            "{sep}{} {:.2} ×{:.2} [{short}{more}]",
            c.model, c.score, c.weight
        ));
    }
    reason
}

fn default_action(label: Label) -> Action {
    if label.is_spam() {
        Action::Quarantine
    } else {
        Action::Allow
    }
}

fn default_label(action: Action) -> Label {
    match action {
        Action::Allow => Label::Ham,
        Action::Tag | Action::Quarantine | Action::Block => Label::Spam,
    }
}

/// True when a cloud verdict on a delivered message means it should not have been delivered.
pub fn calls_fraud(verdict: &StoredVerdict) -> bool {
    verdict.label == Label::Fraud || matches!(verdict.action, Action::Quarantine | Action::Block)
}

/// True when a cloud verdict on a quarantined message means it may go to the inbox.
pub fn calls_ham(verdict: &StoredVerdict) -> bool {
    matches!(verdict.action, Action::Allow | Action::Tag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use smsguard_core::{ActionThresholds, Market};
    use smsguard_model::Judged;

    fn prediction(probabilities: [f32; 5], action: Action) -> Prediction {
        Prediction {
            label: Label::Ham,
            label_index: 0,
            spam_score: 1.0 - probabilities[0],
            probabilities: probabilities.to_vec(),
            action,
            judged: Judged {
                market: Market::En,
                point: ActionThresholds {
                    tag: 0.5,
                    quarantine: 0.9,
                },
                market_specific: false,
            },
            windows: 1,
        }
    }

    #[test]
    fn local_label_agrees_with_action() {
        let table = [
            ([0.9, 0.02, 0.05, 0.01, 0.02], Action::Allow, Label::Ham),
            // Arg-max is ham, yet the spam mass earns a tag: the label must not say ham.
            ([0.45, 0.1, 0.3, 0.05, 0.1], Action::Tag, Label::Fraud),
            ([0.01, 0.9, 0.03, 0.03, 0.03], Action::Quarantine, Label::Ad),
        ];
        for (probabilities, action, expected) in table {
            let verdict = local_verdict(&prediction(probabilities, action), &Label::ALL);
            assert_eq!((verdict.label, verdict.action), (expected, action));
            assert_eq!(verdict.source, Source::Local);
        }
    }

    #[test]
    fn cloud_verdict_fills_unspecified_fields() {
        let table = [
            (
                v1::Label::Fraud,
                v1::Action::Block,
                Label::Fraud,
                Action::Block,
            ),
            (
                v1::Label::Ham,
                v1::Action::Unspecified,
                Label::Ham,
                Action::Allow,
            ),
            (
                v1::Label::Ad,
                v1::Action::Unspecified,
                Label::Ad,
                Action::Quarantine,
            ),
            (
                v1::Label::Unspecified,
                v1::Action::Tag,
                Label::Spam,
                Action::Tag,
            ),
            (
                v1::Label::Unspecified,
                v1::Action::Unspecified,
                Label::Ham,
                Action::Allow,
            ),
        ];
        for (label, action, want_label, want_action) in table {
            let verdict = cloud_verdict(&v1::Verdict {
                label: label as i32,
                action: action as i32,
                spam_score: 1.7,
                ..Default::default()
            });
            assert_eq!((verdict.label, verdict.action), (want_label, want_action));
            assert_eq!(verdict.spam_score, 1.0);
        }
    }
}

#[cfg(test)]
mod reason_tests {
    use super::*;

    fn contribution(model: &str, score: f32, weight: f32, reason: &str) -> v1::Contribution {
        v1::Contribution {
            model: model.into(),
            score,
            weight,
            reason: reason.into(),
            degraded: false,
        }
    }

    #[test]
    fn the_reason_of_a_cloud_verdict_names_its_top_contributions_and_the_policy() {
        let mut verdict = v1::Verdict {
            label: v1::Label::Ad as i32,
            action: v1::Action::Tag as i32,
            spam_score: 0.958,
            contributions: vec![
                contribution("multiclass", 0.98, 1.2, "top class ad (p = 0.970)"),
                contribution("variant", 0.1, 0.5, "little obfuscation"),
                contribution("rules", 0.35, 3.0, &format!("rules matched: zh-opt-out; {}", "x".repeat(200))),
                contribution("edge", 0.9, 0.6, "edge verdict ad (0.900)"),
                contribution("similarity", 0.0, 2.0, "no near-duplicate"),
                contribution(
                    "policy",
                    0.0,
                    0.0,
                    "promotion: an advertisement with an opt-out (zh-opt-out) and no fraud or illegal evidence -> tag, not block",
                ),
            ],
            ..Default::default()
        };
        verdict.contributions.push(v1::Contribution {
            degraded: true,
            ..contribution("sender", 1.0, 9.0, "scorer failed")
        });
        let reason = cloud_reason(&verdict, &cloud_verdict(&verdict));
        assert!(
            reason.starts_with("cloud verdict: spam score 0.9580 -> tag (ad); policy: promotion:"),
            "{reason}"
        );
        let top = reason.split("; top: ").nth(1).unwrap();
        let models: Vec<&str> = top
            .split("], ")
            .map(|part| part.split(' ').next().unwrap())
            .collect();
        assert_eq!(models, ["multiclass", "rules", "edge"], "{reason}");
        assert!(
            top.contains("multiclass 0.98 ×1.20 [top class ad (p = 0.970)]"),
            "{reason}"
        );
        assert!(top.contains("…]"), "a long reason is cut: {reason}");
        assert!(!reason.contains("sender"), "degraded inputs are not named");
    }
}
