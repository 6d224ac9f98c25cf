//! Private mode (`privacy = "private"`): the cloud adds its view without reading the message.
//!
//! Instead of `Classify` (text, sender, fingerprint, device id) the engine sends only a BFV
//! ciphertext of the message's n-gram features, encrypted under a secret key this engine draws
//! when it opens and never sends (`smsguard_private::PrivateClient`), to `PrivateClassify`, and
//! decrypts the K class scores the cloud computed on it. The call runs beside the local model
//! under the same deadline as `Classify`; without an answer in time (or with a malformed one) the
//! local verdict stands, marked degraded (fail open). Nothing is queued for a re-check in this
//! mode and reports stay on the phone, since both would show the cloud the message.
//!
//! The fusion rule ([`fuse_private`]) lets the private scores only raise a verdict, and only as
//! far as a tag: the private linear model is much weaker than the edge model (ham versus rest
//! 89.8 % on the pooled dev split, README), so it may warn but never hide a message, and it never
//! lowers or releases what the local model quarantined.

use std::time::Instant;

use serde::{Deserialize, Serialize};
use smsguard_core::Label;
use smsguard_model::Action;
use smsguard_private::params::PARAMETER_SET;
use smsguard_private::{PrivateClient, PrivateShape};
use smsguard_proto::v1::PrivateClassifyResponse;

use super::classify::{Message, Outcome};
use super::link::Remote;
use super::{micros, Engine, EngineError, Timings};
use crate::store::{Source, StoredVerdict};

/// The phone's half of private mode: its BFV secret key and the shape it featurises for.
#[derive(Debug)]
pub(crate) struct PrivateMode {
    client: PrivateClient,
}

impl PrivateMode {
    /// A fresh secret key for the cloud's private model shape: one class per label of the
    /// taxonomy, as many buckets as pack into one polynomial.
    pub(crate) fn new() -> Result<PrivateMode, EngineError> {
        let shape = PrivateShape::for_classes(Label::ALL.len());
        let client = PrivateClient::new(shape)
            .map_err(|e| EngineError::Config(format!("private mode: {e}")))?;
        Ok(PrivateMode { client })
    }

    /// The decrypted scores of an answer, checked against the shape that was encrypted.
    fn open(&self, answer: &PrivateClassifyResponse) -> Result<PrivateScores, String> {
        let shape = self.client.shape();
        if answer.parameter_set != PARAMETER_SET
            || answer.classes as usize != shape.classes
            || answer.buckets as usize != shape.buckets
        {
            return Err(format!(
                "the private answer is for another model ({}, {} x {})",
                answer.parameter_set, answer.classes, answer.buckets
            ));
        }
        let labels = answer
            .labels
            .iter()
            .map(|name| name.parse::<Label>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| "the private answer names an unknown label".to_string())?;
        if labels.len() != shape.classes {
            return Err("the private answer names the wrong number of labels".into());
        }
        let scores = self
            .client
            .decrypt_scores(&answer.scores)
            .map_err(|e| format!("the private answer does not decrypt: {e}"))?;
        Ok(PrivateScores {
            model_version: answer.model_version.clone(),
            labels,
            scores,
        })
    }
}

/// The class scores the cloud computed under encryption, decrypted on the phone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivateScores {
    /// The cloud's private model that scored.
    pub model_version: String,
    pub labels: Vec<Label>,
    /// One integer score per label (higher is likelier).
    pub scores: Vec<i64>,
}

impl PrivateScores {
    /// The label with the highest score (the first on ties).
    pub fn label(&self) -> Label {
        let mut best = 0;
        for (i, score) in self.scores.iter().enumerate() {
            if *score > self.scores[best] {
                best = i;
            }
        }
        self.labels.get(best).copied().unwrap_or(Label::Ham)
    }
}

/// The private-mode verdict: the local verdict, raised to a tag carrying the private label when
/// the local model allowed a message the private scores call non-ham. Nothing else changes: a
/// private "ham" lowers nothing, and a tag, quarantine or block keeps its action and label.
/// The source is `private` whenever the scores took part.
pub fn fuse_private(local: StoredVerdict, scores: &PrivateScores) -> StoredVerdict {
    let label = scores.label();
    let raised = local.action == Action::Allow && label != Label::Ham;
    StoredVerdict {
        label: if raised { label } else { local.label },
        action: if raised { Action::Tag } else { local.action },
        source: Source::Private,
        ..local
    }
}

impl Engine {
    /// Private mode's `judge`: the local model and `PrivateClassify` concurrently, fused by
    /// [`fuse_private`] when the answer arrives in time.
    pub(super) fn judge_private(
        &self,
        remote: &Remote,
        private: &PrivateMode,
        message: &Message,
        timings: &mut Timings,
    ) -> Outcome {
        let started = Instant::now();
        let model = self.local_model();
        let pending = private
            .client
            .encrypt_text(&message.normalized.text)
            .map(|features| {
                remote.start(
                    remote
                        .link
                        .private_classify(PARAMETER_SET.to_owned(), features),
                )
            })
            .map_err(|e| format!("cannot encrypt the features: {e}"));
        let local = self.local_outcome(model.as_deref(), message);
        timings.local = micros(started.elapsed());
        let waited = Instant::now();
        let answer = pending.and_then(|pending| {
            let answer = pending.wait_until(started + remote.deadline).map_err(|e| {
                self.note_refusal(&e);
                if !e.is_retryable() {
                    self.count_cloud_failure();
                }
                e.to_string()
            })?;
            private
                .open(&answer)
                .inspect_err(|_| self.count_cloud_failure())
        });
        timings.cloud_wait = micros(waited.elapsed());
        let mut outcome = local.unwrap_or_else(|reason| self.fail_open(reason));
        match answer {
            Ok(scores) => {
                outcome.verdict = fuse_private(outcome.verdict, &scores);
                outcome.reason = format!(
                    "{}; private scores (model {}): {} -> {}",
                    outcome.reason,
                    scores.model_version,
                    scores.label().as_str(),
                    outcome.verdict.action.as_str()
                );
                outcome.private = Some(scores);
            }
            Err(reason) => {
                outcome.reason = format!("{}; private: {reason}", outcome.reason);
                outcome.degraded = true;
            }
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores(values: [i64; 5]) -> PrivateScores {
        PrivateScores {
            model_version: "test".into(),
            labels: Label::ALL.to_vec(),
            scores: values.to_vec(),
        }
    }

    fn local(label: Label, action: Action) -> StoredVerdict {
        StoredVerdict {
            label,
            spam_score: 0.5,
            action,
            source: Source::Local,
        }
    }

    #[test]
    fn the_top_score_names_the_label_and_ties_go_to_the_first() {
        assert_eq!(scores([1, 9, 3, 9, 0]).label(), Label::ALL[1]);
        assert_eq!(scores([5, 5, 5, 5, 5]).label(), Label::ALL[0]);
    }

    #[test]
    fn private_scores_raise_an_allowed_message_to_a_tag_and_nothing_further() {
        let spammy = scores([0, 0, 0, 0, 10]);
        let raised = fuse_private(local(Label::Ham, Action::Allow), &spammy);
        assert_eq!(
            (raised.label, raised.action, raised.source),
            (Label::ALL[4], Action::Tag, Source::Private)
        );
        assert_eq!(raised.spam_score, 0.5, "the local score is kept");
        for action in [Action::Tag, Action::Quarantine, Action::Block] {
            let fused = fuse_private(local(Label::Fraud, action), &spammy);
            assert_eq!((fused.label, fused.action), (Label::Fraud, action));
        }
    }

    #[test]
    fn a_private_ham_lowers_nothing() {
        let hammy = scores([10, 0, 0, 0, 0]);
        for action in [
            Action::Allow,
            Action::Tag,
            Action::Quarantine,
            Action::Block,
        ] {
            let label = if action == Action::Allow {
                Label::Ham
            } else {
                Label::Spam
            };
            let fused = fuse_private(local(label, action), &hammy);
            assert_eq!(
                (fused.label, fused.action, fused.source),
                (label, action, Source::Private)
            );
        }
    }
}
