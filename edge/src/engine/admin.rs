//! The quarantine, sender lists, events and statistics.

use std::sync::atomic::Ordering;

use super::classify::state_counter;
use super::senders::canonical_sender;
use super::{read, Engine, EngineError, EngineStats, FailureCounts, QuarantinedMessage};
use crate::store::{
    Effects, EngineEvent, MessageRecord, MessageState, Transitioned, SYNC_VERSION_KEY,
};

impl Engine {
    /// Messages in the quarantine, oldest first.
    pub fn quarantine_list(&self) -> Result<Vec<QuarantinedMessage>, EngineError> {
        Ok(self
            .store()?
            .quarantined()?
            .iter()
            .map(quarantined_message)
            .collect())
    }

    /// Moves a message from the quarantine to the inbox and returns it (the app inserts it).
    pub fn quarantine_restore(&self, message_id: u64) -> Result<QuarantinedMessage, EngineError> {
        let record = self.leave_quarantine(message_id, MessageState::Released, |_| {})?;
        Ok(quarantined_message(&record))
    }

    /// Deletes a quarantined message for good (its text is dropped from the store).
    pub fn quarantine_delete(&self, message_id: u64) -> Result<(), EngineError> {
        self.leave_quarantine(message_id, MessageState::Deleted, |record| {
            record.body = None;
        })?;
        Ok(())
    }

    fn leave_quarantine(
        &self,
        message_id: u64,
        state: MessageState,
        also: impl Fn(&mut MessageRecord),
    ) -> Result<MessageRecord, EngineError> {
        let store = self.store()?;
        let outcome = store.transition(message_id, None, |record| {
            if record.state != MessageState::Quarantined {
                return None;
            }
            record.state = state;
            also(record);
            Some(Effects {
                counters: vec![state_counter(state)],
                event: None,
            })
        })?;
        // User actions are rare: flushing them costs little and keeps them as safe as decisions.
        if self.config.durability.logged() {
            store.flush()?;
        }
        match outcome {
            Transitioned::Changed(record) => Ok(record),
            Transitioned::Unchanged(record) => Err(EngineError::NotQuarantined {
                message_id,
                state: record.state,
            }),
            Transitioned::Missing => Err(EngineError::NotFound { message_id }),
        }
    }

    /// Puts a sender on the allow list (and off the deny list): its messages are always
    /// delivered. Contacts belong here.
    pub fn allow_sender(&self, sender: &str) -> Result<(), EngineError> {
        self.store()?.allow_sender(&canonical_sender(sender))?;
        Ok(())
    }

    /// Puts a sender on the deny list (and off the allow list): its messages are blocked into
    /// the quarantine.
    pub fn deny_sender(&self, sender: &str) -> Result<(), EngineError> {
        self.store()?.deny_sender(&canonical_sender(sender))?;
        Ok(())
    }

    /// Takes a sender off both lists.
    pub fn forget_sender(&self, sender: &str) -> Result<(), EngineError> {
        self.store()?.remove_sender(&canonical_sender(sender))?;
        Ok(())
    }

    /// The stored record of a message (the body only while it is kept).
    pub fn message(&self, message_id: u64) -> Result<Option<MessageRecord>, EngineError> {
        Ok(self.store()?.message(message_id)?)
    }

    /// Events since the last call, oldest first (released / flagged messages).
    pub fn drain_events(&self) -> Vec<EngineEvent> {
        let Some(store) = &self.store else {
            return Vec::new();
        };
        store.drain_events().unwrap_or_else(|_| {
            self.count_store_failure();
            Vec::new()
        })
    }

    pub fn stats(&self) -> EngineStats {
        let store = self.store.as_ref();
        EngineStats {
            model_version: self.local_model().map(|m| m.version.clone()),
            model_error: self.model_error(),
            installed_model_error: read(&self.installed_model_error).clone(),
            store_error: self.store_error.clone(),
            cloud_configured: self.remote.is_some(),
            counters: store.and_then(|s| s.counters().ok()).unwrap_or_default(),
            quarantined: store.map_or(0, |s| s.quarantine_len()),
            stored_messages: store.map_or(0, |s| s.message_count_hint()),
            queue_length: store.map_or(0, |s| s.queue_len()),
            cache_entries: store.map_or(0, |s| s.cache_len()),
            hot_fingerprints: read(&self.hot).len(),
            sender_rules: read(&self.rules).len(),
            sync_version: store
                .and_then(|s| s.meta_u64(SYNC_VERSION_KEY).ok().flatten())
                .unwrap_or(0),
            knowledge_revision: self.knowledge_revision(),
            failures: FailureCounts {
                model: self.failures.model.load(Ordering::Relaxed),
                // Batches the background writer could not apply count too (they stay in the
                // decision log for the next open).
                store: self.failures.store.load(Ordering::Relaxed)
                    + store.map_or(0, |s| s.writer_failures()),
                cloud: self.failures.cloud.load(Ordering::Relaxed),
                fail_open: self.failures.fail_open.load(Ordering::Relaxed),
                unrecorded: self.failures.unrecorded.load(Ordering::Relaxed),
                delivered_unrecorded: self.failures.delivered_unrecorded.load(Ordering::Relaxed),
            },
        }
    }
}

fn quarantined_message(record: &MessageRecord) -> QuarantinedMessage {
    QuarantinedMessage {
        message_id: record.id,
        sender: record.sender.clone(),
        body: record.body.clone().unwrap_or_default(),
        received_at_ms: record.received_at_ms,
        decided_at_ms: record.decided_at_ms,
        label: record.verdict.label,
        spam_score: record.verdict.spam_score,
        action: record.verdict.action,
        source: record.verdict.source,
        fingerprint: record.fingerprint.clone(),
    }
}
