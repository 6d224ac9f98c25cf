//! The journal tree: message records, the quarantine index, the queue, counters and events.
//! A record changes together with its index entry, queue entry, counters and event in one
//! atomic batch.

use std::sync::atomic::Ordering;
use std::sync::{Mutex, MutexGuard};

use super::wal::PendingDecision;

use super::sealing::{decode_record, encode_record};
use super::{
    be_u64, decode, encode, tree, Counters, EngineEvent, MessageRecord, MessageState, QueueItem,
    Store, StoreError,
};

/// Key prefixes of the journal tree; ids and queue keys follow as big-endian u64.
pub(super) mod prefix {
    pub const MESSAGE: u8 = b'm';
    pub const QUARANTINE: u8 = b'q';
    pub const QUEUE: u8 = b'k';
    pub const COUNTER: u8 = b'c';
    pub const EVENT: u8 = b'e';
    /// Tombstone of a record retention pruned (see `retention`).
    pub const PRUNED: u8 = b'p';
}

pub(super) fn key(prefix: u8, id: u64) -> [u8; 9] {
    let mut key = [prefix; 9];
    key[1..].copy_from_slice(&id.to_be_bytes());
    key
}

fn counter_key(name: &str) -> Vec<u8> {
    let mut key = vec![prefix::COUNTER];
    key.extend_from_slice(name.as_bytes());
    key
}

/// Side effects of a state change, applied in the same batch.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Effects {
    pub counters: Vec<&'static str>,
    pub event: Option<EngineEvent>,
}

/// Result of [`Store::transition`].
#[derive(Debug, Clone, PartialEq)]
pub enum Transitioned {
    /// No record has this id.
    Missing,
    /// The change declined (its precondition did not hold); the record as it is.
    Unchanged(MessageRecord),
    /// The record after the change.
    Changed(MessageRecord),
}

impl Store {
    pub(super) fn lock_journal(&self) -> MutexGuard<'_, ()> {
        self.journal_lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Stores a new decision: the record, its quarantine index entry, a re-check queue entry when
    /// `record.queued`, and the given counters, atomically. With a decision log the decision is
    /// logged here (see [`Durability`](super::Durability)) and reaches sled on the writer thread;
    /// every read of the journal waits for it.
    pub fn record_decision(
        &self,
        record: &MessageRecord,
        counters: &[&'static str],
    ) -> Result<(), StoreError> {
        let decision = super::wal::encode_decision(record, counters, self.sealer.as_deref())?;
        if record.queued {
            self.queue_len.fetch_add(1, Ordering::Relaxed);
        }
        // Counted before sled has it: retention's count cap then covers decisions on their way.
        self.messages_len.fetch_add(1, Ordering::Relaxed);
        let (Some(log), Some(writer)) = (&self.log, &self.writer) else {
            return apply_decisions(&self.journal, &self.journal_lock, &[decision])
                .inspect_err(|_| self.uncount_message());
        };
        // Queued under the log's lock: the writer then sees decisions in log order, which its
        // checkpoints rely on.
        if let Err(unlogged) = log.append_then(decision, |decision| writer.submit(decision)) {
            // The log is unusable (disk full, removed directory): write through to sled and
            // flush, so the decision is as safe as the log would have made it.
            apply_decisions(&self.journal, &self.journal_lock, &[unlogged])
                .inspect_err(|_| self.uncount_message())?;
            self.db.flush()?;
        }
        Ok(())
    }

    fn uncount_message(&self) {
        let _ = self
            .messages_len
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    /// Waits until every logged decision is in sled (a no-op without a log).
    pub(super) fn settle(&self) {
        if let (Some(log), Some(progress)) = (&self.log, &self.progress) {
            progress.wait_for(log.appended());
        }
    }

    /// Adds one to each named counter in `batch` (caller holds the journal lock).
    fn add_counters(&self, batch: &mut sled::Batch, names: &[&str]) -> Result<(), StoreError> {
        add_counters(&self.journal, batch, names)
    }

    /// Adds `by` to a counter on its own (failure counts, tallies).
    pub fn bump(&self, name: &str, by: u64) -> Result<(), StoreError> {
        add_to_counter(&self.journal, &self.journal_lock, name, by)
    }

    /// Every counter by name.
    pub fn counters(&self) -> Result<Counters, StoreError> {
        self.settle();
        let mut counters = Counters::new();
        for entry in self.journal.scan_prefix([prefix::COUNTER]) {
            let (key, value) = entry?;
            counters.insert(
                String::from_utf8_lossy(&key[1..]).into_owned(),
                be_u64(&value),
            );
        }
        Ok(counters)
    }

    /// The record of message `id`.
    pub fn message(&self, id: u64) -> Result<Option<MessageRecord>, StoreError> {
        self.settle();
        self.stored_message(id)
    }

    /// The record of message `id` as sled has it now (without waiting for the writer).
    fn stored_message(&self, id: u64) -> Result<Option<MessageRecord>, StoreError> {
        self.journal
            .get(key(prefix::MESSAGE, id))?
            .map(|raw| decode_record(self.sealer.as_deref(), &raw))
            .transpose()
    }

    /// Every record, in id order (tests, tools).
    pub fn messages(&self) -> Result<Vec<MessageRecord>, StoreError> {
        self.settle();
        self.journal
            .scan_prefix([prefix::MESSAGE])
            .values()
            .map(|value| decode_record(self.sealer.as_deref(), &value?))
            .collect()
    }

    /// Quarantined records, oldest first.
    pub fn quarantined(&self) -> Result<Vec<MessageRecord>, StoreError> {
        self.settle();
        let mut records = Vec::new();
        for entry in self.journal.scan_prefix([prefix::QUARANTINE]).keys() {
            let id = be_u64(&entry?[1..]);
            if let Some(record) = self.stored_message(id)? {
                records.push(record);
            }
        }
        Ok(records)
    }

    /// Messages in the quarantine (O(n)).
    pub fn quarantine_len(&self) -> usize {
        self.settle();
        self.journal.scan_prefix([prefix::QUARANTINE]).count()
    }

    /// Changes record `id` with `change` (which returns `None` to decline), keeping the
    /// quarantine index in step with the new state, removing `queue_key` from the queue when
    /// given, and applying the returned effects, all in one batch.
    pub fn transition(
        &self,
        id: u64,
        queue_key: Option<u64>,
        change: impl Fn(&mut MessageRecord) -> Option<Effects>,
    ) -> Result<Transitioned, StoreError> {
        self.settle();
        let _guard = self.lock_journal();
        let mut batch = sled::Batch::default();
        let mut dequeued = false;
        if let Some(queue_key) = queue_key.map(|k| key(prefix::QUEUE, k)) {
            dequeued = self.journal.contains_key(queue_key)?;
            batch.remove(&queue_key);
        }
        // Not `message`: settling while holding the journal lock would wait on the writer, which
        // needs the lock.
        let outcome = match self.stored_message(id)? {
            None => Transitioned::Missing,
            Some(mut record) => match change(&mut record) {
                None => Transitioned::Unchanged(record),
                Some(effects) => {
                    self.stage_change(&mut batch, &record, &effects)?;
                    Transitioned::Changed(record)
                }
            },
        };
        self.journal.apply_batch(batch)?;
        if dequeued {
            self.count_dequeued();
        }
        Ok(outcome)
    }

    fn stage_change(
        &self,
        batch: &mut sled::Batch,
        record: &MessageRecord,
        effects: &Effects,
    ) -> Result<(), StoreError> {
        let mut value = Vec::with_capacity(640);
        encode_record(self.sealer.as_deref(), record, &mut value)?;
        batch.insert(&key(prefix::MESSAGE, record.id), value);
        let index = key(prefix::QUARANTINE, record.id);
        if record.state == MessageState::Quarantined {
            batch.insert(&index, &[]);
        } else {
            batch.remove(&index);
        }
        self.add_counters(batch, &effects.counters)?;
        if let Some(event) = &effects.event {
            let event_key = key(prefix::EVENT, self.db.generate_id()?);
            batch.insert(&event_key, encode(tree::EVENTS, event)?);
        }
        Ok(())
    }

    /// Records an event for the app.
    pub fn push_event(&self, event: &EngineEvent) -> Result<(), StoreError> {
        let event_key = key(prefix::EVENT, self.db.generate_id()?);
        self.journal
            .insert(event_key, encode(tree::EVENTS, event)?)?;
        Ok(())
    }

    /// Removes and returns every pending event, oldest first.
    pub fn drain_events(&self) -> Result<Vec<EngineEvent>, StoreError> {
        let _guard = self.lock_journal();
        let mut events = Vec::new();
        let mut batch = sled::Batch::default();
        for entry in self.journal.scan_prefix([prefix::EVENT]) {
            let (key, value) = entry?;
            events.push(decode(tree::EVENTS, &value)?);
            batch.remove(key);
        }
        self.journal.apply_batch(batch)?;
        Ok(events)
    }

    /// Appends `item` to the queue; returns its key.
    pub fn enqueue(&self, item: &QueueItem) -> Result<u64, StoreError> {
        let queue_key = self.db.generate_id()? + 1;
        self.journal
            .insert(key(prefix::QUEUE, queue_key), encode(tree::QUEUE, item)?)?;
        self.queue_len.fetch_add(1, Ordering::Relaxed);
        Ok(queue_key)
    }

    /// Appends `item`, which names message `message_id`, to the queue unless that record is gone
    /// (pruned by retention meanwhile); returns its key, `None` when the record is gone. Under
    /// the journal lock, so retention either sees the entry or has already removed the record.
    pub fn enqueue_for_message(
        &self,
        message_id: u64,
        item: &QueueItem,
    ) -> Result<Option<u64>, StoreError> {
        self.settle();
        let _guard = self.lock_journal();
        if !self
            .journal
            .contains_key(key(prefix::MESSAGE, message_id))?
        {
            return Ok(None);
        }
        self.enqueue(item).map(Some)
    }

    /// Up to `limit` queue entries, oldest first, with their keys.
    pub fn queue_head(&self, limit: usize) -> Result<Vec<(u64, QueueItem)>, StoreError> {
        self.queue_after(None, limit)
    }

    /// Up to `limit` queue entries with keys above `after` (all when `None`), in key order.
    pub fn queue_after(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, QueueItem)>, StoreError> {
        self.settle();
        let start = key(prefix::QUEUE, after.map_or(0, |k| k.saturating_add(1)));
        self.journal
            .range(start..)
            .take_while(|entry| {
                entry
                    .as_ref()
                    .map_or(true, |(key, _)| key.first() == Some(&prefix::QUEUE))
            })
            .take(limit)
            .map(|entry| {
                let (key, value) = entry?;
                Ok((be_u64(&key[1..]), decode(tree::QUEUE, &value)?))
            })
            .collect()
    }

    pub fn dequeue(&self, queue_key: u64) -> Result<(), StoreError> {
        self.settle();
        if self
            .journal
            .remove(key(prefix::QUEUE, queue_key))?
            .is_some()
        {
            self.count_dequeued();
        }
        Ok(())
    }

    fn count_dequeued(&self) {
        // Saturating: the running count is a hint and must never wrap around.
        let _ = self
            .queue_len
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    /// Entries waiting in the queue (exact scan, O(n)).
    pub fn queue_len(&self) -> usize {
        self.settle();
        self.journal.scan_prefix([prefix::QUEUE]).count()
    }

    /// Entries waiting in the queue, from a running count (O(1)).
    pub fn queue_len_hint(&self) -> usize {
        self.queue_len.load(Ordering::Relaxed)
    }
}

/// Applies new decisions to the journal in one atomic batch (records, quarantine index, queue
/// entries and the sum of their counters).
pub(super) fn apply_decisions(
    journal: &sled::Tree,
    journal_lock: &Mutex<()>,
    decisions: &[PendingDecision],
) -> Result<(), StoreError> {
    let mut batch = sled::Batch::default();
    let mut counters: Vec<&str> = Vec::with_capacity(decisions.len() * 3);
    for decision in decisions {
        batch.insert(&key(prefix::MESSAGE, decision.id), decision.value());
        if decision.quarantined {
            batch.insert(&key(prefix::QUARANTINE, decision.id), &[]);
        }
        if decision.queued {
            let recheck = QueueItem::Recheck {
                message_id: decision.id,
            };
            // Message ids and queue keys come from the same sled id generator.
            batch.insert(
                &key(prefix::QUEUE, decision.id),
                encode(tree::QUEUE, &recheck)?,
            );
        }
        counters.extend(decision.counters.iter().map(|c| c.as_ref()));
    }
    let _guard = journal_lock.lock().unwrap_or_else(|p| p.into_inner());
    add_counters(journal, &mut batch, &counters)?;
    journal.apply_batch(batch)?;
    Ok(())
}

/// Whether the journal holds a record for message `id`.
pub(super) fn has_message(journal: &sled::Tree, id: u64) -> Result<bool, StoreError> {
    Ok(journal.contains_key(key(prefix::MESSAGE, id))?)
}

/// Adds one per occurrence of each name to its counter in `batch` (caller holds the journal
/// lock).
fn add_counters(
    journal: &sled::Tree,
    batch: &mut sled::Batch,
    names: &[&str],
) -> Result<(), StoreError> {
    let mut seen: Vec<(&str, u64)> = Vec::with_capacity(names.len().min(16));
    for name in names {
        match seen.iter_mut().find(|(n, _)| n == name) {
            Some((_, value)) => *value += 1,
            None => {
                let current = journal.get(counter_key(name))?.map_or(0, |v| be_u64(&v));
                seen.push((name, current.saturating_add(1)));
            }
        }
    }
    for (name, value) in seen {
        batch.insert(counter_key(name), &value.to_be_bytes());
    }
    Ok(())
}

/// Adds `by` to one counter in `batch` (caller holds the journal lock); nothing when `by` is 0.
pub(super) fn add_by_to_counter_in(
    journal: &sled::Tree,
    batch: &mut sled::Batch,
    name: &str,
    by: usize,
) -> Result<(), StoreError> {
    if by == 0 {
        return Ok(());
    }
    let key = counter_key(name);
    let current = journal.get(&key)?.map_or(0, |v| be_u64(&v));
    batch.insert(key, &current.saturating_add(by as u64).to_be_bytes());
    Ok(())
}

/// Adds `by` to one counter.
pub(super) fn add_to_counter(
    journal: &sled::Tree,
    journal_lock: &Mutex<()>,
    name: &str,
    by: u64,
) -> Result<(), StoreError> {
    let _guard = journal_lock.lock().unwrap_or_else(|p| p.into_inner());
    let key = counter_key(name);
    let current = journal.get(&key)?.map_or(0, |v| be_u64(&v));
    journal.insert(key, &current.saturating_add(by).to_be_bytes())?;
    Ok(())
}
