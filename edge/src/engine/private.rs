//! Private mode (`privacy = "private"`): the cloud adds its view without reading the message.
//!
//! Instead of `Classify` (text, sender, fingerprint, device id) the engine sends only a BFV
//! ciphertext of the message's n-gram features, encrypted under a secret key this engine draws
//! when it opens and never sends (`smsguard_private::PrivateClient`), to `PrivateClassify`, and
//! decrypts the K class scores the cloud computed on it. The call runs beside the local model
//! under the same deadline as `Classify`; without an answer in time (or with a malformed one) the
//! local verdict stands, marked degraded (fail open), and the message is queued for a private
//! re-check (`private_recheck`: `PrivateClassify` and `PrivateSimilarity` again, never `Classify`)
//! when the failure was retryable. Reports stay on the phone, since they would show the cloud the
//! fingerprint. Before anything goes out, the parameters the cloud publishes must be this phone's
//! (`private_params`).
//!
//! The fusion ([`fuse_private`]) follows the head the cloud publishes with the private model
//! (`smsguard_private::head`, carried in every answer): per market, a monotone logistic model of
//! the local spam score and the private margin with tag and quarantine thresholds fitted on dev
//! so that no dev corpus loses accuracy against the edge alone. It only raises a verdict (never
//! past a quarantine) and never lowers or releases what the local model decided.

use std::time::Instant;

use serde::{Deserialize, Serialize};
use smsguard_core::{Action, Label, Market};
use smsguard_private::head::HeadDecision;
use smsguard_private::params::PARAMETER_SET;
use smsguard_private::similarity::{band_prefixes, match_locally};
use smsguard_private::{PrivateClient, PrivateEvidence, PrivateHead, PrivateShape};
use smsguard_proto::v1::{PrivateClassifyResponse, PrivateSimilarityResponse};

use super::classify::{Message, Outcome};
use super::link::{Pending, Remote};
use super::private_params::PublishedParams;
use super::private_similarity::{bucket_entries, describe, raise_by_similarity, PrefixBits};
use super::{micros, Engine, EngineError, Timings};
use crate::cloud_link::CloudLinkError;
use crate::store::{Source, StoredVerdict};
use smsguard_private::similarity::LocalMatch;
use smsguard_signing::VerifyingKey;

/// The phone's half of private mode: its BFV secret key and the shape it featurises for.
#[derive(Debug)]
pub(crate) struct PrivateMode {
    pub(super) client: PrivateClient,
    /// The similarity lookup's prefix length (see `private_similarity`).
    pub(super) prefix_bits: PrefixBits,
    /// What the cloud publishes (see `private_params`).
    pub(super) params: PublishedParams,
    /// The pinned model signing key: when set, a fusion head is used only if it verifies.
    pinned_key: Option<VerifyingKey>,
}

impl PrivateMode {
    /// A fresh secret key for the cloud's private model shape (one class per label of the
    /// taxonomy, as many buckets as pack into one polynomial), and the fetch of what the cloud
    /// publishes for private mode, started now.
    pub(crate) fn new(
        remote: &Remote,
        pinned_key: Option<VerifyingKey>,
    ) -> Result<PrivateMode, EngineError> {
        let shape = PrivateShape::for_classes(Label::ALL.len());
        let client = PrivateClient::new(shape)
            .map_err(|e| EngineError::Config(format!("private mode: {e}")))?;
        Ok(PrivateMode {
            client,
            prefix_bits: PrefixBits::default(),
            params: PublishedParams::fetch(remote),
            pinned_key,
        })
    }

    /// Whether the cloud publishes parameters this phone supports (`Err(reason)` if not).
    pub(super) fn check_params(&self, remote: &Remote, deadline: Instant) -> Result<(), String> {
        self.params
            .check(remote, self.client.shape(), &self.prefix_bits, deadline)
    }

    /// The decrypted scores of an answer, checked against the shape that was encrypted.
    pub(super) fn open(
        &self,
        answer: &PrivateClassifyResponse,
    ) -> Result<(PrivateScores, PrivateHead), String> {
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
        let head = published_head(answer, &labels, self.pinned_key.as_ref())?;
        let scores = self
            .client
            .decrypt_scores(&answer.scores)
            .map_err(|e| format!("the private answer does not decrypt: {e}"))?;
        let scores = PrivateScores {
            model_version: answer.model_version.clone(),
            head_version: head.version.clone(),
            labels,
            scores,
        };
        Ok((scores, head))
    }
}

/// The fusion head an answer carries, checked: signed by the pinned model key (when one is
/// pinned), valid, fitted for the model that scored, and naming a ham class among the labels.
fn published_head(
    answer: &PrivateClassifyResponse,
    labels: &[Label],
    pinned_key: Option<&VerifyingKey>,
) -> Result<PrivateHead, String> {
    if let Some(key) = pinned_key {
        key.verify_private_head(answer.fusion_head.as_bytes(), &answer.fusion_head_signature)
            .map_err(|e| format!("the private answer's fusion head is not the operator's: {e}"))?;
    }
    let head: PrivateHead = serde_json::from_str(&answer.fusion_head)
        .map_err(|_| "the private answer carries no readable fusion head".to_string())?;
    head.validate().map_err(|e| e.to_string())?;
    if head.model_version != answer.model_version {
        return Err(format!(
            "the fusion head {} is for private model {}, not {}",
            head.version, head.model_version, answer.model_version
        ));
    }
    if !labels.iter().any(|l| l.as_str() == head.ham_label) {
        return Err("the fusion head's ham class is not among the labels".into());
    }
    Ok(head)
}

/// The class scores the cloud computed under encryption, decrypted on the phone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivateScores {
    /// The cloud's private model that scored.
    pub model_version: String,
    /// The fusion head the verdict was fused with (published with that model).
    #[serde(default)]
    pub head_version: String,
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

impl PrivateScores {
    /// What the scores say about spam (`None` without a ham class and another).
    pub fn evidence(&self) -> Option<PrivateEvidence> {
        let ham = self.labels.iter().position(|&l| l == Label::Ham)?;
        PrivateEvidence::of(&self.scores, ham)
    }
}

/// The private-mode verdict: the local verdict, raised to the action the published head asks
/// for at the device's market when that is stronger (a raised ham takes the best non-ham class's
/// label). Nothing is lowered; the local spam score is kept. The source is `private` whenever the
/// scores took part. Also returns the head's decision (for the reason).
pub fn fuse_private(
    local: StoredVerdict,
    scores: &PrivateScores,
    head: &PrivateHead,
    market: Market,
) -> (StoredVerdict, Option<HeadDecision>) {
    let private = StoredVerdict {
        source: Source::Private,
        ..local
    };
    let Some(evidence) = scores.evidence() else {
        return (private, None);
    };
    let decision = head.decide(market, local.spam_score, evidence.margin);
    if decision.action <= local.action {
        return (private, Some(decision));
    }
    let label = match local.label {
        Label::Ham => scores
            .labels
            .get(evidence.best_spam_class)
            .copied()
            .unwrap_or(Label::Spam),
        label => label,
    };
    let raised = StoredVerdict {
        label,
        action: decision.action,
        ..private
    };
    (raised, Some(decision))
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
        if let Err(reason) = private.check_params(remote, started + remote.deadline) {
            return self.refuse_private(model.as_deref(), message, &reason, timings, started);
        }
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
        let bits = private.prefix_bits.get();
        let similar = remote.start(
            remote
                .link
                .private_similarity(bits, band_prefixes(&message.fingerprint.minhash, bits)),
        );
        let local = self.local_outcome(model.as_deref(), message);
        timings.local = micros(started.elapsed());
        let waited = Instant::now();
        // Whether a failure is worth a re-check later (a timeout, an unreachable cloud).
        let mut retryable = false;
        let answer = pending.and_then(|pending| {
            let answer = pending.wait_until(started + remote.deadline).map_err(|e| {
                self.note_refusal(&e);
                private.params.note_failure(&e);
                retryable = e.is_retryable();
                if !retryable {
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
            Ok((scores, head)) => {
                let market = self
                    .config
                    .market
                    .unwrap_or_else(|| Market::of_text(&message.normalized.text));
                let (verdict, decision) = fuse_private(outcome.verdict, &scores, &head, market);
                outcome.verdict = verdict;
                outcome.reason = format!(
                    "{}; private scores (model {}, head {}, market {market}): p = {:.3} -> {}",
                    outcome.reason,
                    scores.model_version,
                    scores.head_version,
                    decision.map_or(0.0, |d| d.probability),
                    outcome.verdict.action.as_str()
                );
                outcome.private = Some(scores);
            }
            Err(reason) => {
                outcome.reason = format!("{}; private: {reason}", outcome.reason);
                outcome.degraded = true;
                // Asked again by `drain` through PrivateClassify (never Classify). A local
                // quarantine or block is already as far as the head can raise.
                outcome.queue = retryable && outcome.verdict.action < Action::Quarantine;
            }
        }
        self.apply_similarity(
            private,
            similar,
            started + remote.deadline,
            message,
            &mut outcome,
        );
        timings.cloud_wait = micros(waited.elapsed());
        outcome
    }

    /// Private mode refused (the cloud publishes parameters this phone does not support): the
    /// local verdict, degraded, with the reason; nothing goes to the cloud, nothing is queued.
    fn refuse_private(
        &self,
        model: Option<&super::LocalModel>,
        message: &Message,
        reason: &str,
        timings: &mut Timings,
        started: Instant,
    ) -> Outcome {
        let local = self.local_outcome(model, message);
        timings.local = micros(started.elapsed());
        let mut outcome = local.unwrap_or_else(|reason| self.fail_open(reason));
        outcome.reason = format!("{}; private mode refused: {reason}", outcome.reason);
        outcome.degraded = true;
        outcome
    }

    /// The similarity lookup's answer, if in time, matched locally and applied to `outcome`: a
    /// spam match raises one step (never past quarantine). Without an answer the verdict stands;
    /// after a retryable failure the message is queued for a private re-check, which asks again.
    fn apply_similarity(
        &self,
        private: &PrivateMode,
        similar: Pending<PrivateSimilarityResponse>,
        deadline: Instant,
        message: &Message,
        outcome: &mut Outcome,
    ) {
        let bits = private.prefix_bits.get();
        match self.similarity_match(private, similar, deadline, &message.fingerprint.minhash) {
            Ok(found) => {
                outcome.verdict = raise_by_similarity(outcome.verdict, found);
                outcome.queue = outcome.queue && outcome.verdict.action < Action::Quarantine;
                outcome.reason = format!("{}; {}", outcome.reason, describe(found, bits));
            }
            Err(e) => {
                outcome.reason = format!("{}; private similarity: {e}", outcome.reason);
                if e.is_retryable() && outcome.verdict.action < Action::Quarantine {
                    outcome.degraded = true;
                    outcome.queue = true;
                }
            }
        }
    }

    /// Waits for a similarity answer until `deadline`, learns its suggested prefix length and
    /// matches the message's full band keys against its entries.
    pub(super) fn similarity_match(
        &self,
        private: &PrivateMode,
        similar: Pending<PrivateSimilarityResponse>,
        deadline: Instant,
        minhash: &[u32; smsguard_core::fingerprint::NUM_HASHES],
    ) -> Result<LocalMatch, CloudLinkError> {
        let answer = similar
            .wait_until(deadline)
            .inspect_err(|e| self.note_refusal(e))?;
        private.prefix_bits.learn(&answer);
        Ok(match_locally(minhash, bucket_entries(&answer)))
    }
}

#[cfg(test)]
mod tests {
    use smsguard_private::head::MarketHead;

    use super::*;

    fn scores(values: [i64; 5]) -> PrivateScores {
        PrivateScores {
            model_version: "m".into(),
            head_version: "h".into(),
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

    /// p = sigmoid(margin / 100 - 1): a margin of 100 gives 0.5 at a local score of 0.5.
    fn head() -> PrivateHead {
        let market = MarketHead {
            local_weight: 1.0,
            margin_weight: 1.0,
            bias: -1.0,
            tag: Some(0.5),
            quarantine: Some(0.95),
        };
        let mut markets: std::collections::BTreeMap<_, _> =
            Market::ALL.iter().map(|&m| (m, market)).collect();
        markets.get_mut(&Market::Zh).unwrap().tag = None;
        markets.get_mut(&Market::Zh).unwrap().quarantine = None;
        PrivateHead {
            version: "h".into(),
            model_version: "m".into(),
            ham_label: "ham".into(),
            margin_scale: 100.0,
            markets,
        }
    }

    #[test]
    fn the_top_score_names_the_label_and_ties_go_to_the_first() {
        assert_eq!(scores([1, 9, 3, 9, 0]).label(), Label::ALL[1]);
        assert_eq!(scores([5, 5, 5, 5, 5]).label(), Label::ALL[0]);
    }

    #[test]
    fn the_head_raises_an_allowed_message_only_past_its_threshold() {
        let ham = Label::ALL.iter().position(|&l| l == Label::Ham).unwrap();
        let with_margin = |margin: i64| {
            let mut values = [0; 5];
            values[ham] = -margin;
            values[(ham + 2) % 5] = 0;
            scores(values)
        };
        let (kept, decision) = fuse_private(
            local(Label::Ham, Action::Allow),
            &with_margin(99),
            &head(),
            Market::En,
        );
        assert_eq!(
            (kept.label, kept.action, kept.source),
            (Label::Ham, Action::Allow, Source::Private)
        );
        assert!(decision.unwrap().probability < 0.5);
        let (raised, _) = fuse_private(
            local(Label::Ham, Action::Allow),
            &with_margin(100),
            &head(),
            Market::En,
        );
        assert_eq!((raised.action, raised.spam_score), (Action::Tag, 0.5));
        assert_ne!(raised.label, Label::Ham, "a raised ham takes a spam label");
        let (held, _) = fuse_private(
            local(Label::Fraud, Action::Tag),
            &with_margin(500),
            &head(),
            Market::En,
        );
        assert_eq!(
            (held.label, held.action),
            (Label::Fraud, Action::Quarantine)
        );
        // The zh head has no thresholds: nothing is raised there.
        let (zh, _) = fuse_private(
            local(Label::Ham, Action::Allow),
            &with_margin(5000),
            &head(),
            Market::Zh,
        );
        assert_eq!(zh.action, Action::Allow);
    }

    #[test]
    fn the_head_lowers_nothing() {
        let hammy = scores([10_000, 0, 0, 0, 0]);
        for action in [Action::Tag, Action::Quarantine, Action::Block] {
            let (fused, _) = fuse_private(local(Label::Spam, action), &hammy, &head(), Market::En);
            assert_eq!(
                (fused.label, fused.action, fused.source),
                (Label::Spam, action, Source::Private)
            );
        }
    }
}
