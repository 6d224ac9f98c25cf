//! Retention: message records that no longer need the phone's attention are pruned, oldest
//! first, and pending events are capped, so the store (and the message text, senders and
//! fingerprints in it) does not grow without bound.
//!
//! A record may go when its state is delivered, released, flagged or deleted, it is not
//! `queued`, no queue entry (re-check or pending report) names it, and it is either older than
//! the retention age or beyond the most records kept. Quarantined records are never pruned: only
//! the user deletes or restores them.
//!
//! Pruning walks the records in id order (ids follow decision time) in steps of a bounded number
//! of records, each step one atomic batch under the journal lock, resuming where the previous
//! step stopped. With a decision log, each pruned id leaves a tombstone so that replaying a log
//! segment that still holds its decision does not bring the record back; tombstones go once no
//! segment can hold the decision any more (after replay on open, and after `flush`).

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use serde::{Deserialize, Serialize};

use super::records::{add_by_to_counter_in, key, prefix};
use super::{decode, tree, MessageRecord, MessageState, QueueItem, Store, StoreError};

/// Counter of message records removed by retention.
pub const RECORDS_PRUNED_COUNTER: &str = "records_pruned";
/// Counter of pending events dropped beyond the cap.
pub const EVENTS_PRUNED_COUNTER: &str = "events_pruned";

/// What is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    /// Records decided longer ago than this (ms) are pruned when nothing needs them.
    pub max_age_ms: i64,
    /// Most records kept; beyond it the oldest that nothing needs are pruned.
    pub max_records: usize,
    /// Most pending events kept; beyond it the oldest are dropped.
    pub max_events: usize,
}

/// What pruning did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pruned {
    /// Records looked at.
    pub examined: usize,
    pub records: usize,
    pub events: usize,
    /// True when the walk reached the records retention keeps anyway (the newest, or the end):
    /// another step now would find nothing to do.
    pub finished: bool,
}

impl Pruned {
    fn add(&mut self, step: Pruned) {
        self.examined += step.examined;
        self.records += step.records;
        self.events += step.events;
        self.finished = step.finished;
    }
}

/// Whether retention may remove `record`, whatever its age.
pub fn prunable(record: &MessageRecord, referenced: &HashSet<u64>) -> bool {
    let settled = matches!(
        record.state,
        MessageState::Delivered
            | MessageState::Released
            | MessageState::Flagged
            | MessageState::Deleted
    );
    settled && !record.queued && !referenced.contains(&record.id)
}

impl Store {
    /// Prunes in steps of at most `step_records` records until the walk is finished or
    /// `max_steps` steps ran (the journal lock is released between steps, so decisions and
    /// user actions go on meanwhile). `now_ms` is the wall clock the age is measured against.
    pub fn prune(
        &self,
        retention: &Retention,
        now_ms: i64,
        step_records: usize,
        max_steps: usize,
    ) -> Result<Pruned, StoreError> {
        let mut total = Pruned::default();
        for _ in 0..max_steps {
            total.add(self.prune_step(retention, now_ms, step_records)?);
            if total.finished {
                break;
            }
        }
        Ok(total)
    }

    /// One step: looks at up to `max_records` records from where the last step stopped and
    /// removes those retention lets go, with their index entries, the events beyond the cap and
    /// the counters, in one batch.
    pub fn prune_step(
        &self,
        retention: &Retention,
        now_ms: i64,
        max_records: usize,
    ) -> Result<Pruned, StoreError> {
        self.settle();
        let _guard = self.lock_journal();
        let mut cursor = self
            .prune_cursor
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let referenced = self.queued_message_ids()?;
        let cutoff = now_ms.saturating_sub(retention.max_age_ms);
        let mut excess = self
            .messages_len
            .load(Ordering::Relaxed)
            .saturating_sub(retention.max_records);
        let mut batch = sled::Batch::default();
        let mut step = Pruned {
            finished: true,
            ..Pruned::default()
        };
        let range = key(prefix::MESSAGE, *cursor)..=key(prefix::MESSAGE, u64::MAX);
        let mut next_cursor = 0;
        for entry in self.journal.range(range) {
            if step.examined >= max_records.max(1) {
                step.finished = false;
                break;
            }
            let (raw_key, value) = entry?;
            let id = super::be_u64(&raw_key[1..]);
            step.examined += 1;
            next_cursor = id.saturating_add(1);
            // An unreadable record is kept: retention never guesses.
            let Ok(record) = decode::<MessageRecord>(tree::MESSAGES, &value) else {
                continue;
            };
            let expired = record.decided_at_ms < cutoff;
            if !expired && excess == 0 {
                // Newer records follow (ids follow decision time): nothing more to do.
                break;
            }
            if prunable(&record, &referenced) {
                self.stage_prune(&mut batch, id);
                step.records += 1;
                excess = excess.saturating_sub(1);
            }
        }
        *cursor = if step.finished { 0 } else { next_cursor };
        step.events = self.stage_event_cap(&mut batch, retention.max_events)?;
        add_by_to_counter_in(
            &self.journal,
            &mut batch,
            RECORDS_PRUNED_COUNTER,
            step.records,
        )?;
        add_by_to_counter_in(
            &self.journal,
            &mut batch,
            EVENTS_PRUNED_COUNTER,
            step.events,
        )?;
        self.journal.apply_batch(batch)?;
        let _ = self
            .messages_len
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_sub(step.records))
            });
        Ok(step)
    }

    /// Removes record `id` and its index entry in `batch`; with a decision log, leaves its
    /// tombstone (see the module docs).
    fn stage_prune(&self, batch: &mut sled::Batch, id: u64) {
        batch.remove(&key(prefix::MESSAGE, id));
        batch.remove(&key(prefix::QUARANTINE, id));
        if self.log.is_some() {
            batch.insert(&key(prefix::PRUNED, id), &[]);
        }
    }

    /// Drops the oldest pending events beyond `max_events` in `batch`; returns how many.
    fn stage_event_cap(
        &self,
        batch: &mut sled::Batch,
        max_events: usize,
    ) -> Result<usize, StoreError> {
        let pending = self.journal.scan_prefix([prefix::EVENT]).keys().count();
        let over = pending.saturating_sub(max_events);
        for event_key in self.journal.scan_prefix([prefix::EVENT]).keys().take(over) {
            batch.remove(event_key?);
        }
        Ok(over)
    }

    /// Ids of the messages a queue entry names (caller holds the journal lock).
    fn queued_message_ids(&self) -> Result<HashSet<u64>, StoreError> {
        let mut ids = HashSet::new();
        for value in self.journal.scan_prefix([prefix::QUEUE]).values() {
            // An unreadable entry names no message we could keep for it.
            if let Ok(item) = decode::<QueueItem>(tree::QUEUE, &value?) {
                ids.insert(match item {
                    QueueItem::Recheck { message_id } | QueueItem::Report { message_id, .. } => {
                        message_id
                    }
                });
            }
        }
        Ok(ids)
    }

    /// Messages stored, from a running count (O(1); exact unless a write failed).
    pub fn message_count_hint(&self) -> usize {
        self.messages_len.load(Ordering::Relaxed)
    }

    /// Keys of the tombstones now in the journal.
    pub(super) fn tombstones(&self) -> Result<Vec<sled::IVec>, StoreError> {
        tombstones(&self.journal)
    }

    /// Removes the given tombstones (their decisions are in no log segment any more).
    pub(super) fn remove_tombstones(&self, keys: Vec<sled::IVec>) -> Result<(), StoreError> {
        remove_tombstones(&self.journal, &self.journal_lock, keys)
    }
}

pub(super) fn tombstones(journal: &sled::Tree) -> Result<Vec<sled::IVec>, StoreError> {
    Ok(journal
        .scan_prefix([prefix::PRUNED])
        .keys()
        .collect::<Result<_, _>>()?)
}

pub(super) fn remove_tombstones(
    journal: &sled::Tree,
    journal_lock: &std::sync::Mutex<()>,
    keys: Vec<sled::IVec>,
) -> Result<(), StoreError> {
    if keys.is_empty() {
        return Ok(());
    }
    let mut batch = sled::Batch::default();
    for tombstone in keys {
        batch.remove(tombstone);
    }
    let _guard = journal_lock.lock().unwrap_or_else(|p| p.into_inner());
    journal.apply_batch(batch)?;
    Ok(())
}

/// Whether retention pruned message `id` (and the log may still hold its decision).
pub(super) fn was_pruned(journal: &sled::Tree, id: u64) -> Result<bool, StoreError> {
    Ok(journal.contains_key(key(prefix::PRUNED, id))?)
}
