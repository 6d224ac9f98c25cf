//! The re-check queue and user reports: `Engine::drain_queue` and `Engine::report`.

use std::collections::HashMap;

use smsguard_core::Label;
use smsguard_model::Action;
use smsguard_proto::v1::{classify_result::Outcome as ResultOutcome, Feedback, ReportRequest};
use tonic::{Code, Status};

use super::classify::{recheck_message, state_counter};
use super::verdict::{calls_fraud, calls_ham, cloud_verdict};
use super::{now_ms, write, DrainSummary, Engine, EngineError, ReportOutcome};
use crate::cloud_link::CloudLinkError;
use crate::store::{
    Effects, EngineEvent, HotFingerprint, MessageRecord, MessageState, QueueItem, Source,
    StoredVerdict, Transitioned,
};

impl Engine {
    /// Records the user's verdict on message `message_id`: the local cache follows at once (a
    /// spam report also marks the fingerprint hot, so copies are caught offline), and the report
    /// goes to the cloud or waits in the queue while it is unreachable.
    pub fn report(&self, message_id: u64, spam: bool) -> Result<ReportOutcome, EngineError> {
        let store = self.store()?;
        let record = store
            .message(message_id)?
            .ok_or(EngineError::NotFound { message_id })?;
        self.apply_report_locally(&record, spam)?;
        store.bump(
            if spam {
                "report.spam"
            } else {
                "report.not_spam"
            },
            1,
        )?;
        if self.private.is_some() {
            return Ok(ReportOutcome::KeptOnPhone);
        }
        let reported_at_ms = now_ms();
        if let Some(remote) = &self.remote {
            match remote.call(
                remote
                    .link
                    .report(report_request(&record, spam, reported_at_ms)),
            ) {
                Ok(response) => {
                    return Ok(ReportOutcome::Sent {
                        report_count: response.report_count,
                    })
                }
                Err(e) if e.is_retryable() => {}
                Err(e) => {
                    self.count_cloud_failure();
                    return Err(e.into());
                }
            }
        }
        let item = QueueItem::Report {
            message_id,
            spam,
            reported_at_ms,
        };
        // Retention may have pruned the record since it was read (a report on an old message).
        store
            .enqueue_for_message(message_id, &item)?
            .ok_or(EngineError::NotFound { message_id })?;
        Ok(ReportOutcome::Queued)
    }

    fn apply_report_locally(&self, record: &MessageRecord, spam: bool) -> Result<(), EngineError> {
        let store = self.store()?;
        let verdict = user_verdict(record, spam);
        self.cache_verdict(&record.fingerprint, verdict, self.config.report_ttl_seconds);
        if spam {
            let entry = HotFingerprint {
                fingerprint: record.fingerprint.clone(),
                minhash: record.minhash.clone(),
                label: verdict.label,
            };
            store.put_hot(&entry)?;
            write(&self.hot).insert(entry);
        } else if store.remove_hot(&record.fingerprint)? {
            self.reload_synced_state();
        }
        Ok(())
    }

    /// Sends queued reports and re-checks queued messages in batches. Stops (keeping the rest)
    /// when the cloud becomes unreachable; quarantined messages the cloud clears are released
    /// and delivered ones it calls fraud are flagged, each with an event.
    pub fn drain_queue(&self) -> Result<DrainSummary, EngineError> {
        let store = self.store()?;
        self.remote()?;
        let mut summary = DrainSummary::default();
        if let Some(private) = &self.private {
            // Re-checks go through PrivateClassify; reports (which carry the fingerprint) queued
            // before private mode stay where they are.
            self.drain_private(private, &mut summary)?;
            summary.remaining = store.queue_len();
            return Ok(summary);
        }
        // Keys only grow, so scanning forward visits every entry once, whatever became of the
        // previous ones (sent, dropped, kept after a per-message retryable error).
        let mut last_key = None;
        loop {
            let head = store.queue_after(last_key, self.config.recheck_batch.max(1))?;
            let Some(&(key, _)) = head.last() else { break };
            last_key = Some(key);
            match self.drain_batch(head, &mut summary) {
                Ok(()) => {}
                Err(e) if e.is_retryable() => break,
                Err(e) => {
                    self.count_cloud_failure();
                    return Err(e.into());
                }
            }
        }
        summary.remaining = store.queue_len();
        Ok(summary)
    }

    fn drain_batch(
        &self,
        head: Vec<(u64, QueueItem)>,
        summary: &mut DrainSummary,
    ) -> Result<(), CloudLinkError> {
        let mut rechecks = Vec::new();
        for (key, item) in head {
            match item {
                QueueItem::Report {
                    message_id,
                    spam,
                    reported_at_ms,
                } => self.send_queued_report(key, message_id, spam, reported_at_ms, summary)?,
                QueueItem::Recheck { message_id } => rechecks.push((key, message_id)),
            }
        }
        self.recheck(rechecks, summary)
    }

    fn send_queued_report(
        &self,
        key: u64,
        message_id: u64,
        spam: bool,
        reported_at_ms: i64,
        summary: &mut DrainSummary,
    ) -> Result<(), CloudLinkError> {
        let (Ok(store), Ok(remote)) = (self.store(), self.remote()) else {
            return Ok(());
        };
        let record = match store.message(message_id) {
            Ok(Some(record)) => record,
            _ => return self.drop_entry(key, summary),
        };
        match remote.call(
            remote
                .link
                .report(report_request(&record, spam, reported_at_ms)),
        ) {
            Ok(_) => {
                summary.reports_sent += 1;
                self.dequeue(key);
                Ok(())
            }
            Err(e) if e.is_retryable() => Err(e),
            Err(_) => self.drop_entry(key, summary),
        }
    }

    /// One `ClassifyStream` exchange for the given queue entries.
    fn recheck(
        &self,
        entries: Vec<(u64, u64)>,
        summary: &mut DrainSummary,
    ) -> Result<(), CloudLinkError> {
        let (Ok(store), Ok(remote)) = (self.store(), self.remote()) else {
            return Ok(());
        };
        let mut requests = Vec::new();
        let mut keys = HashMap::new();
        for (key, message_id) in entries {
            let record = store.message(message_id).ok().flatten();
            match record
                .as_ref()
                .and_then(|r| r.body.as_deref().map(|b| (r, b)))
            {
                Some((record, body)) => {
                    requests.push(recheck_message(record, body, self.config.market));
                    keys.insert(message_id.to_string(), (key, message_id));
                }
                None => self.drop_recheck(key, message_id, summary),
            }
        }
        if requests.is_empty() {
            return Ok(());
        }
        let results = remote.call(remote.link.classify_batch(requests))?;
        for result in results {
            let Some(&(key, message_id)) = keys.get(&result.client_message_id) else {
                continue; // an id we did not send: ignore rather than touch another record
            };
            match result.outcome {
                Some(ResultOutcome::Verdict(verdict)) => {
                    summary.rechecked += 1;
                    let stored = cloud_verdict(&verdict);
                    if let Ok(Some(record)) = store.message(message_id) {
                        if verdict.cache_ttl_seconds > 0 {
                            self.cache_verdict(
                                &record.fingerprint,
                                stored,
                                verdict.cache_ttl_seconds,
                            );
                        }
                    }
                    self.apply_recheck(key, message_id, stored, summary);
                }
                // Left in the queue for the next drain.
                Some(ResultOutcome::Error(error)) if is_retryable_code(error.code) => {}
                _ => self.drop_recheck(key, message_id, summary),
            }
        }
        Ok(())
    }

    pub(super) fn apply_recheck(
        &self,
        key: u64,
        message_id: u64,
        verdict: StoredVerdict,
        summary: &mut DrainSummary,
    ) {
        let Ok(store) = self.store() else { return };
        match store.transition(message_id, Some(key), |record| {
            recheck_transition(record, verdict)
        }) {
            Ok(Transitioned::Changed(record)) => match record.state {
                MessageState::Released => summary.released += 1,
                MessageState::Flagged => summary.flagged += 1,
                _ => {}
            },
            Ok(_) => {}
            Err(_) => self.count_store_failure(),
        }
    }

    /// Gives up on a re-check: the message keeps its verdict, its body is no longer needed.
    pub(super) fn drop_recheck(&self, key: u64, message_id: u64, summary: &mut DrainSummary) {
        summary.dropped += 1;
        let Ok(store) = self.store() else { return };
        let result = store.transition(message_id, Some(key), |record| {
            record.queued = false;
            drop_body_unless_quarantined(record);
            Some(Effects {
                counters: vec!["recheck.dropped"],
                event: None,
            })
        });
        if result.is_err() {
            self.count_store_failure();
        }
    }

    fn drop_entry(&self, key: u64, summary: &mut DrainSummary) -> Result<(), CloudLinkError> {
        summary.dropped += 1;
        self.dequeue(key);
        Ok(())
    }

    fn dequeue(&self, key: u64) {
        if let Ok(store) = self.store() {
            if store.dequeue(key).is_err() {
                self.count_store_failure();
            }
        }
    }
}

/// What a cloud re-check does to a record: a quarantined message the cloud clears is released, a
/// delivered one it calls fraud is flagged; the record takes the cloud's verdict either way and
/// leaves the queue. Returns the effects (counters, event).
pub fn recheck_transition(record: &mut MessageRecord, verdict: StoredVerdict) -> Option<Effects> {
    let mut effects = Effects {
        counters: vec!["recheck.answered"],
        event: None,
    };
    let new_state = match record.state {
        MessageState::Quarantined if calls_ham(&verdict) => Some(MessageState::Released),
        MessageState::Delivered if calls_fraud(&verdict) => Some(MessageState::Flagged),
        _ => None,
    };
    if let Some(state) = new_state {
        record.state = state;
        effects.counters.push(state_counter(state));
        effects.event = Some(match state {
            MessageState::Released => EngineEvent::Released {
                message_id: record.id,
            },
            _ => EngineEvent::Flagged {
                message_id: record.id,
            },
        });
    }
    record.verdict = verdict;
    record.queued = false;
    drop_body_unless_quarantined(record);
    Some(effects)
}

/// Bodies are kept only for messages the user may still want back from the quarantine.
fn drop_body_unless_quarantined(record: &mut MessageRecord) {
    let was_quarantined = matches!(
        record.state,
        MessageState::Quarantined | MessageState::Released
    );
    if !record.queued && !was_quarantined {
        record.body = None;
    }
}

/// The verdict a user report stands for.
fn user_verdict(record: &MessageRecord, spam: bool) -> StoredVerdict {
    if spam {
        let label = if record.verdict.label.is_spam() {
            record.verdict.label
        } else {
            Label::Spam
        };
        StoredVerdict {
            label,
            spam_score: 1.0,
            action: Action::Quarantine,
            source: Source::Cache,
        }
    } else {
        StoredVerdict {
            label: Label::Ham,
            spam_score: 0.0,
            action: Action::Allow,
            source: Source::Cache,
        }
    }
}

fn report_request(record: &MessageRecord, spam: bool, reported_at_ms: i64) -> ReportRequest {
    let category = if spam && record.verdict.label.is_spam() {
        smsguard_proto::v1::Label::from(record.verdict.label)
    } else {
        smsguard_proto::v1::Label::Unspecified
    };
    ReportRequest {
        feedback: if spam {
            Feedback::Spam
        } else {
            Feedback::NotSpam
        } as i32,
        fingerprint: record.fingerprint.clone(),
        minhash: record.minhash.clone(),
        category: category as i32,
        sender: record.sender.clone(),
        reported_at_ms,
        ..Default::default()
    }
}

/// Whether a per-message error code of a stream result is worth retrying later: the same rule as
/// for a failed call (`CloudLinkError::is_retryable`), so the two paths cannot drift apart.
fn is_retryable_code(code: i32) -> bool {
    CloudLinkError::from_status(&Status::new(Code::from_i32(code), "")).is_retryable()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(state: MessageState) -> MessageRecord {
        MessageRecord {
            id: 7,
            state,
            sender: "+15550100".into(),
            body: Some("body".into()),
            received_at_ms: 1,
            decided_at_ms: 2,
            verdict: StoredVerdict {
                label: Label::Ham,
                spam_score: 0.5,
                action: Action::Tag,
                source: Source::Local,
            },
            fingerprint: "00".into(),
            minhash: vec![],
            queued: true,
        }
    }

    fn cloud(label: Label, action: Action) -> StoredVerdict {
        StoredVerdict {
            label,
            spam_score: 0.5,
            action,
            source: Source::Cloud,
        }
    }

    #[test]
    fn recheck_golden_table() {
        use MessageState::*;
        let table = [
            // (state before, cloud label, cloud action, state after, event, body kept)
            (
                Quarantined,
                Label::Ham,
                Action::Allow,
                Released,
                Some("released"),
                true,
            ),
            (
                Quarantined,
                Label::Ad,
                Action::Tag,
                Released,
                Some("released"),
                true,
            ),
            (
                Quarantined,
                Label::Fraud,
                Action::Block,
                Quarantined,
                None,
                true,
            ),
            (
                Delivered,
                Label::Fraud,
                Action::Tag,
                Flagged,
                Some("flagged"),
                false,
            ),
            (
                Delivered,
                Label::Spam,
                Action::Quarantine,
                Flagged,
                Some("flagged"),
                false,
            ),
            (Delivered, Label::Ad, Action::Tag, Delivered, None, false),
            (Delivered, Label::Ham, Action::Allow, Delivered, None, false),
            (Deleted, Label::Ham, Action::Allow, Deleted, None, false),
        ];
        for (before, label, action, after, event, body_kept) in table {
            let mut r = record(before);
            let effects = recheck_transition(&mut r, cloud(label, action)).unwrap();
            let case = format!("{before:?} + {label}/{action:?}");
            assert_eq!(r.state, after, "{case}");
            assert!(!r.queued, "{case}");
            assert_eq!(r.verdict.source, Source::Cloud, "{case}");
            assert_eq!(r.body.is_some(), body_kept, "{case}");
            let got = effects.event.map(|e| match e {
                EngineEvent::Released { message_id } => ("released", message_id),
                EngineEvent::Flagged { message_id } => ("flagged", message_id),
            });
            assert_eq!(got, event.map(|name| (name, 7)), "{case}");
        }
    }

    #[test]
    fn retryable_codes() {
        // The stream's per-message codes follow the call's rule (CloudLinkError::from_status).
        for (code, retryable) in [
            (Code::Unavailable, true),
            (Code::DeadlineExceeded, true),
            (Code::ResourceExhausted, true),
            (Code::Internal, true),
            (Code::Aborted, true),
            (Code::InvalidArgument, false),
            (Code::OutOfRange, false),
            (Code::PermissionDenied, false),
            (Code::Unauthenticated, false),
        ] {
            assert_eq!(is_retryable_code(code as i32), retryable, "{code:?}");
        }
    }
}
