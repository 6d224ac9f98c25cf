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
