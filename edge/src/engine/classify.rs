//! `Engine::classify`: rules, cache, local model and cloud under the deadline, then the record.

use std::sync::atomic::Ordering;
use std::time::Instant;

use smsguard_core::knowledge::{offline_rule, KnowledgeBase};
use smsguard_core::{normalize, Fingerprint, Label, Market, Normalized};
use smsguard_model::{Action, Judged, ModelError};
use smsguard_proto::v1::{LocalVerdict, SmsMessage};

use super::link::Pending;
use super::private::PrivateScores;
use super::verdict::{cloud_reason, cloud_verdict, local_verdict};
use super::{micros, now_ms, read, senders, Decision, Engine, Timings};
use crate::cloud_link::CloudLinkError;
use crate::store::{MessageRecord, MessageState, Source, Store, StoredVerdict};

/// Store counter of messages the cloud refused to judge (their local verdict stood).
pub const CLOUD_REFUSED_COUNTER: &str = "cloud.refused";

/// A verdict with its explanation, before it is stored.
#[derive(Debug)]
pub(super) struct Outcome {
    pub(super) verdict: StoredVerdict,
    pub(super) reason: String,
    pub(super) degraded: bool,
    /// Ask the cloud again later.
    pub(super) queue: bool,
    /// Private mode: the decrypted class scores that took part.
    pub(super) private: Option<PrivateScores>,
}

impl Outcome {
    fn new(verdict: StoredVerdict, reason: String) -> Outcome {
        Outcome {
            verdict,
            reason,
            degraded: false,
            queue: false,
            private: None,
        }
    }
}

/// What the message looks like to every step (computed once).
pub(super) struct Message<'a> {
    sender: &'a str,
    body: &'a str,
    received_at_ms: i64,
    pub(super) normalized: Normalized,
    pub(super) fingerprint: Fingerprint,
    fingerprint_hex: String,
}

impl Engine {
    /// Decides what to do with one message and records it. Never fails: when nothing can judge
    /// the message it is delivered, marked degraded, and the failure counted.
    pub fn classify(&self, sender: &str, body: &str, received_at_ms: i64) -> Decision {
        let started = Instant::now();
        let mut timings = Timings::default();
        let normalized = normalize(body);
        let fingerprint = self.hasher.fingerprint(&normalized.text);
        let message = Message {
            sender,
            body,
            received_at_ms,
            fingerprint_hex: fingerprint.to_hex(),
            normalized,
            fingerprint,
        };
        timings.normalize = micros(started.elapsed());
        let reserved = self.next_message_id();
        let outcome = self.decide(
            &message,
            reserved.as_ref().ok().copied().unwrap_or(0),
            &mut timings,
        );
        let stored_at = Instant::now();
        let (message_id, outcome) = self.record(&message, reserved, outcome);
        timings.store = micros(stored_at.elapsed());
        timings.total = micros(started.elapsed());
        Decision {
            message_id,
            label: outcome.verdict.label,
            spam_score: outcome.verdict.spam_score,
            action: outcome.verdict.action,
            source: outcome.verdict.source,
            state: MessageState::for_action(outcome.verdict.action),
            fingerprint: message.fingerprint_hex,
            degraded: outcome.degraded,
            queued: outcome.queue,
            timings_us: timings,
            reason: outcome.reason,
            private: outcome.private,
        }
    }

    /// A fresh id for the record, or why the store cannot take one.
    fn next_message_id(&self) -> Result<u64, String> {
        let store = self.store.as_ref().ok_or_else(|| {
            format!(
                "the store is unavailable: {}",
                self.store_error.as_deref().unwrap_or("not opened")
            )
        })?;
        store.next_id().map_err(|e| {
            self.count_store_failure();
            e.to_string()
        })
    }

    fn decide(&self, message: &Message, message_id: u64, timings: &mut Timings) -> Outcome {
        let step = Instant::now();
        let rule = self.sender_rule(message.sender);
        timings.rules = micros(step.elapsed());
        if let Some(outcome) = rule {
            return outcome;
        }
        let step = Instant::now();
        let cached = self.cached(message);
        timings.cache = micros(step.elapsed());
        if let Some(outcome) = cached {
            return outcome;
        }
        self.judge(message, message_id, timings)
    }

    /// User lists first (allow wins over everything), then synced sender rules.
    fn sender_rule(&self, sender: &str) -> Option<Outcome> {
        let listed = self.store.as_ref().and_then(|store| {
            store
                .sender_list(&senders::canonical_sender(sender))
                .unwrap_or_else(|_| {
                    self.count_store_failure();
                    None
                })
        });
        let (allowed, reason) = match listed {
            Some(allowed) => (allowed, "sender is on the user's"),
            None => (
                read(&self.rules).verdict(sender)?,
                "sender matches a synced",
            ),
        };
        let (verdict, list) = if allowed {
            (rule_verdict(Label::Ham, 0.0, Action::Allow), "allow")
        } else {
            (rule_verdict(Label::Spam, 1.0, Action::Block), "deny")
        };
        let reason = if listed.is_some() {
            format!("{reason} {list} list")
        } else {
            format!("{reason} {list} rule")
        };
        Some(Outcome::new(verdict, reason))
    }

    /// An earlier verdict for this fingerprint, else a near-duplicate of a hot spam fingerprint.
    fn cached(&self, message: &Message) -> Option<Outcome> {
        if let Some(store) = &self.store {
            match store.cache_get(&message.fingerprint_hex, now_ms()) {
                Ok(Some(entry)) => {
                    let verdict = StoredVerdict {
                        source: Source::Cache,
                        ..entry.verdict
                    };
                    let origin = match entry.verdict.source {
                        Source::Cloud => "cloud verdict",
                        Source::Cache => "user report",
                        Source::Local | Source::Rule | Source::Private => "verdict",
                    };
                    let reason = format!("cached {origin} for this fingerprint");
                    return Some(Outcome::new(verdict, reason));
                }
                Ok(None) => {}
                Err(_) => self.count_store_failure(),
            }
        }
        let hot = read(&self.hot).nearest(
            &message.fingerprint,
            &message.fingerprint_hex,
            self.config.near_duplicate_jaccard,
        )?;
        let verdict = StoredVerdict {
            label: if hot.entry.label.is_spam() {
                hot.entry.label
            } else {
                Label::Spam
            },
            spam_score: hot.jaccard,
            action: Action::Quarantine,
            source: Source::Cache,
        };
        let reason = format!(
            "copy of a known spam campaign (fingerprint {}, similarity {:.2})",
            hot.entry.fingerprint, hot.jaccard
        );
        Some(Outcome::new(verdict, reason))
    }

    /// The local model and the cloud, concurrently; the cloud wins when in time.
    fn judge(&self, message: &Message, message_id: u64, timings: &mut Timings) -> Outcome {
        if let (Some(remote), Some(private)) = (&self.remote, &self.private) {
            return self.judge_private(remote, private, message, timings);
        }
        let started = Instant::now();
        let model = self.local_model();
        let pending = self.remote.as_ref().map(|remote| {
            let request = sms_message(
                message,
                message_id,
                model.as_deref().map(|m| m.version.as_str()),
                self.config.market,
            );
            remote.start(remote.link.classify(request))
        });
        let local = self.local_outcome(model.as_deref(), message);
        timings.local = micros(started.elapsed());
        let Some(pending) = pending else {
            return local.unwrap_or_else(|reason| self.fail_open(reason));
        };
        let waited = Instant::now();
        let cloud = self.await_cloud(pending, started, message);
        timings.cloud_wait = micros(waited.elapsed());
        match (cloud, local) {
            (Ok(outcome), _) => outcome,
            (Err(cloud_error), Ok(mut outcome)) => {
                self.note_refusal(&cloud_error);
                outcome.reason = format!("{}; cloud: {cloud_error}", outcome.reason);
                outcome.degraded = true;
                outcome.queue = cloud_error.is_retryable();
                outcome
            }
            (Err(cloud_error), Err(reason)) => {
                self.note_refusal(&cloud_error);
                let mut outcome = self.fail_open(format!("{reason}; cloud: {cloud_error}"));
                outcome.queue = cloud_error.is_retryable();
                outcome
            }
        }
    }

    pub(super) fn local_outcome(
        &self,
        model: Option<&super::LocalModel>,
        message: &Message,
    ) -> Result<Outcome, String> {
        let Some(model) = model else {
            return Err(format!(
                "local model unavailable: {}",
                self.model_error().unwrap_or_default()
            ));
        };
        match model
            .model
            .classify_in_market(&message.normalized, self.config.market)
        {
            Ok(prediction) => {
                let verdict = local_verdict(&prediction, &model.labels);
                let mut reason = local_reason(&verdict, &prediction.judged);
                if prediction.windows > 1 {
                    reason.push_str(&format!(
                        " (the worst of {} windows of a long message)",
                        prediction.windows
                    ));
                }
                let outcome = Outcome::new(verdict, reason);
                Ok(self
                    .with_knowledge_base(|base| with_knowledge(outcome, base, &message.normalized)))
            }
            // Nothing to judge is not a failure: the message is delivered as is.
            Err(ModelError::EmptyText) => Ok(Outcome::new(
                rule_verdict(Label::Ham, 0.0, Action::Allow),
                "empty after normalisation".to_string(),
            )),
            Err(e) => {
                self.count_model_failure();
                Err(format!("local model failed: {e}"))
            }
        }
    }

    /// The cloud's verdict if it arrives within the deadline (counted from `started`); cached
    /// for its TTL.
    fn await_cloud(
        &self,
        pending: Pending<smsguard_proto::v1::Verdict>,
        started: Instant,
        message: &Message,
    ) -> Result<Outcome, CloudLinkError> {
        let deadline = self
            .remote
            .as_ref()
            .map_or(super::DEFAULT_DEADLINE, |r| r.deadline);
        let verdict = pending.wait_until(started + deadline).inspect_err(|e| {
            if !e.is_retryable() {
                self.count_cloud_failure();
            }
        })?;
        let stored = cloud_verdict(&verdict);
        if verdict.cache_ttl_seconds > 0 {
            self.cache_verdict(&message.fingerprint_hex, stored, verdict.cache_ttl_seconds);
        }
        let mut outcome = Outcome::new(stored, cloud_reason(&verdict, &stored));
        outcome.degraded = verdict.degraded;
        Ok(outcome)
    }

    /// Counts a message the cloud refused to judge (e.g. a body over its size limit): the
    /// local verdict stands for it, and `stats` shows how often that happens.
    pub(super) fn note_refusal(&self, cloud_error: &CloudLinkError) {
        if cloud_error.is_refusal() {
            self.bump_persisted(CLOUD_REFUSED_COUNTER);
        }
    }

    /// Stores `verdict` for `fingerprint` for `ttl_seconds`.
    pub(super) fn cache_verdict(
        &self,
        fingerprint: &str,
        verdict: StoredVerdict,
        ttl_seconds: u32,
    ) {
        let Some(store) = &self.store else { return };
        let expires = now_ms().saturating_add(i64::from(ttl_seconds) * 1000);
        if store
            .cache_put(fingerprint, verdict, expires, self.config.cache_capacity)
            .is_err()
        {
            self.count_store_failure();
        }
    }

    /// Deliver: nothing could judge the message.
    pub(super) fn fail_open(&self, reason: String) -> Outcome {
        self.failures.fail_open.fetch_add(1, Ordering::Relaxed);
        self.bump_persisted("failure.fail_open");
        let mut outcome = Outcome::new(
            rule_verdict(Label::Ham, 0.0, Action::Allow),
            format!("delivered unjudged (fail open): {reason}"),
        );
        outcome.verdict.source = Source::Local;
        outcome.degraded = true;
        outcome
    }

    /// Stores the decision (logged as `config.durability` asks). Returns the id and the
    /// outcome; a decision the store cannot take gets id 0 and is delivered (see
    /// [`Engine::unrecorded`]).
    fn record(
        &self,
        message: &Message,
        reserved: Result<u64, String>,
        mut outcome: Outcome,
    ) -> (u64, Outcome) {
        let stored = reserved.and_then(|id| {
            let store = self
                .store
                .as_ref()
                .ok_or_else(|| "the store is unavailable".to_string())?;
            self.store_decision(store, message, id, &mut outcome)
                .map(|()| id)
        });
        match stored {
            Ok(id) => (id, outcome),
            Err(reason) => (0, self.unrecorded(outcome, &reason)),
        }
    }

    fn store_decision(
        &self,
        store: &Store,
        message: &Message,
        message_id: u64,
        outcome: &mut Outcome,
    ) -> Result<(), String> {
        if outcome.queue && store.queue_len_hint() >= self.config.queue_capacity {
            outcome.queue = false;
            self.bump_persisted("queue.overflow");
        }
        let state = MessageState::for_action(outcome.verdict.action);
        let keep_body = outcome.queue || state == MessageState::Quarantined;
        let record = MessageRecord {
            id: message_id,
            state,
            sender: message.sender.to_string(),
            body: keep_body.then(|| message.body.to_string()),
            received_at_ms: message.received_at_ms,
            decided_at_ms: now_ms(),
            verdict: outcome.verdict,
            fingerprint: message.fingerprint_hex.clone(),
            minhash: message.fingerprint.minhash.to_vec(),
            queued: outcome.queue,
        };
        let counters = [
            "classified",
            source_counter(outcome.verdict.source),
            state_counter(state),
        ];
        store.record_decision(&record, &counters).map_err(|e| {
            self.count_store_failure();
            e.to_string()
        })?;
        self.note_decision();
        Ok(())
    }

    /// A decision the store could not record. A quarantine holds a message only as long as its
    /// record exists, so a quarantine or block verdict that cannot be recorded would hide the
    /// SMS in nowhere: it is delivered tagged instead (fail open, the spam label kept as a
    /// warning), marked degraded with the store's reason, and counted.
    fn unrecorded(&self, mut outcome: Outcome, store_reason: &str) -> Outcome {
        self.failures.unrecorded.fetch_add(1, Ordering::Relaxed);
        outcome.degraded = true;
        outcome.queue = false;
        if MessageState::for_action(outcome.verdict.action) == MessageState::Quarantined {
            self.failures
                .delivered_unrecorded
                .fetch_add(1, Ordering::Relaxed);
            outcome.reason = format!(
                "{}; not recorded ({store_reason}): delivered tagged instead of {}",
                outcome.reason,
                outcome.verdict.action.as_str()
            );
            outcome.verdict.action = Action::Tag;
        } else {
            outcome.reason = format!("{}; not recorded ({store_reason})", outcome.reason);
        }
        outcome
    }
}

fn rule_verdict(label: Label, spam_score: f32, action: Action) -> StoredVerdict {
    StoredVerdict {
        label,
        spam_score,
        action,
        source: Source::Rule,
    }
}

/// The offline rule beside the model, for a message the model allows ([`offline_rule`]: a fraud,
/// illegal or junk type; an advertisement marker, a fraud signal or a disguise on a message the
/// model leans spam on): tagged, never more.
fn with_knowledge(outcome: Outcome, knowledge: &KnowledgeBase, normalized: &Normalized) -> Outcome {
    if outcome.verdict.action != Action::Allow {
        return outcome;
    }
    let score = outcome.verdict.spam_score;
    match offline_rule(knowledge, normalized, score) {
        Some(tag) => Outcome::new(
            rule_verdict(tag.label, score, Action::Tag),
            format!("{} -> tag ({})", tag.why, outcome.reason),
        ),
        None => outcome,
    }
}

/// The device's configured market as the protocol names it (empty: the cloud goes by script).
fn market_field(market: Option<Market>) -> String {
    market.map(|m| m.as_str().to_owned()).unwrap_or_default()
}

/// The request for the cloud; `client_message_id` is the engine's message id.
fn sms_message(
    message: &Message,
    message_id: u64,
    model_version: Option<&str>,
    market: Option<Market>,
) -> SmsMessage {
    SmsMessage {
        market: market_field(market),
        sender: message.sender.to_string(),
        body: message.body.to_string(),
        received_at_ms: message.received_at_ms,
        edge_model_version: model_version.unwrap_or_default().to_string(),
        client_message_id: message_id.to_string(),
        ..Default::default()
    }
}

/// The request for a stored record (re-check), with the verdict the edge gave it.
pub(super) fn recheck_message(
    record: &MessageRecord,
    body: &str,
    market: Option<Market>,
) -> SmsMessage {
    let verdict = record.verdict;
    SmsMessage {
        market: market_field(market),
        sender: record.sender.clone(),
        body: body.to_string(),
        received_at_ms: record.received_at_ms,
        client_message_id: record.id.to_string(),
        local_verdict: Some(LocalVerdict {
            label: smsguard_proto::v1::Label::from(verdict.label) as i32,
            spam_score: verdict.spam_score,
            action: smsguard_proto::v1::Action::from(verdict.action) as i32,
            source: smsguard_proto::v1::VerdictSource::from(verdict.source) as i32,
        }),
        ..Default::default()
    }
}

fn source_counter(source: Source) -> &'static str {
    match source {
        Source::Cache => "source.cache",
        Source::Cloud => "source.cloud",
        Source::Local => "source.local",
        Source::Rule => "source.rule",
        Source::Private => "source.private",
    }
}

pub(super) fn state_counter(state: MessageState) -> &'static str {
    match state {
        MessageState::Delivered => "state.delivered",
        MessageState::Quarantined => "state.quarantined",
        MessageState::Released => "state.released",
        MessageState::Flagged => "state.flagged",
        MessageState::Deleted => "state.deleted",
    }
}

/// Why the local model's score led to its action: the threshold it reached or stayed under, and
/// whose it is (`zh`, `en`, or `pooled` when the model has none for the message's market).
fn local_reason(verdict: &StoredVerdict, judged: &Judged) -> String {
    let (spam_score, action) = (verdict.spam_score, verdict.action);
    let point = judged.point;
    let (relation, name, threshold) = match action {
        Action::Allow => ("below", "tag", point.tag),
        Action::Tag => ("at least", "tag", point.tag),
        Action::Quarantine | Action::Block => ("at least", "quarantine", point.quarantine),
    };
    format!(
        "local model: spam score {spam_score:.4}, {relation} the {} {name} threshold {threshold:.4} -> {}",
        judged.profile_name(),
        action.as_str()
    )
}
