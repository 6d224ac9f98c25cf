//! Retention of message records and events (see `store::retention` for what is pruned): a
//! bounded pass when the engine opens, then a background pass every
//! `prune_every_decisions` decisions on a thread of its own, so `classify` only counts.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::thread::JoinHandle;

use super::{now_ms, Engine, EngineConfig, EngineError};
use crate::store::{Pruned, Retention, Store};

/// Records looked at per step; the journal lock (which the decision writer also needs) is held
/// for one step at a time.
const STEP_RECORDS: usize = 512;
/// Steps when the engine opens (at most 4,096 records: opening stays quick on a full store; the
/// background thread finishes the pass).
const OPEN_STEPS: usize = 8;
/// Steps of one background pass (enough for three times the default record cap).
const BACKGROUND_STEPS: usize = 64;
/// Counter of failed background passes (the store's own error is not logged: it may name keys).
const FAILURE_COUNTER: &str = "failure.retention";

const MS_PER_DAY: i64 = 24 * 3600 * 1000;

impl EngineConfig {
    /// The retention settings as the store takes them.
    pub fn retention(&self) -> Retention {
        Retention {
            max_age_ms: i64::from(self.retention_days).saturating_mul(MS_PER_DAY),
            max_records: self.max_message_records,
            max_events: self.max_events,
        }
    }
}

/// The background retention thread and the decision count that wakes it.
#[derive(Debug)]
pub(super) struct Janitor {
    wake: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
    decisions: AtomicU64,
    every: u64,
}

impl Janitor {
    /// Starts the thread; `None` when passes are off or the thread cannot start (then only
    /// opening and `Engine::prune` prune).
    pub fn start(store: &Store, config: &EngineConfig) -> Option<Janitor> {
        let every = u64::from(config.prune_every_decisions);
        if every == 0 {
            return None;
        }
        // One pending wake-up is enough: a pass started later sees every decision before it.
        let (wake, woken) = sync_channel::<()>(1);
        let store = store.clone();
        let retention = config.retention();
        let thread = std::thread::Builder::new()
            .name("smsguard-retention".into())
            .spawn(move || {
                while woken.recv().is_ok() {
                    background_pass(&store, &retention);
                }
            })
            .ok()?;
        Some(Janitor {
            wake: Some(wake),
            thread: Some(thread),
            decisions: AtomicU64::new(0),
            every,
        })
    }

    /// Counts a decision; every `every`-th wakes the thread (never waits for it).
    pub fn note_decision(&self) {
        if (self.decisions.fetch_add(1, Ordering::Relaxed) + 1).is_multiple_of(self.every) {
            self.wake();
        }
    }

    pub fn wake(&self) {
        if let Some(wake) = &self.wake {
            // Full: a pass is already due. Disconnected: the thread is gone; opening prunes.
            let _: Result<(), TrySendError<()>> = wake.try_send(());
        }
    }
}

impl Drop for Janitor {
    /// Finishes a pending pass, then joins the thread (it holds a store handle: the store's
    /// directory lock goes only once it has stopped).
    fn drop(&mut self) {
        self.wake.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn background_pass(store: &Store, retention: &Retention) {
    match store.prune(retention, now_ms(), STEP_RECORDS, BACKGROUND_STEPS) {
        Ok(pruned) => log_pass("background", &pruned),
        Err(_) => {
            let _ = store.bump(FAILURE_COUNTER, 1);
        }
    }
}

/// Counts only: never a sender or message text.
fn log_pass(when: &'static str, pruned: &Pruned) {
    if pruned.records > 0 || pruned.events > 0 {
        tracing::debug!(
            when,
            examined = pruned.examined,
            records = pruned.records,
            events = pruned.events,
            finished = pruned.finished,
            "retention pass"
        );
    }
}

impl Engine {
    /// Runs a full retention pass now (the wall clock decides the age).
    pub fn prune(&self) -> Result<Pruned, EngineError> {
        self.prune_as_of(now_ms())
    }

    /// Runs a full retention pass with ages measured at `now_ms` (hosts with their own clock,
    /// tests).
    pub fn prune_as_of(&self, now_ms: i64) -> Result<Pruned, EngineError> {
        let pruned =
            self.store()?
                .prune(&self.config.retention(), now_ms, STEP_RECORDS, usize::MAX)?;
        log_pass("on demand", &pruned);
        Ok(pruned)
    }

    /// A bounded pass when the engine opens; the background thread finishes a longer one.
    pub(super) fn prune_on_open(&self) {
        let Some(store) = &self.store else { return };
        match store.prune(&self.config.retention(), now_ms(), STEP_RECORDS, OPEN_STEPS) {
            Ok(pruned) => {
                log_pass("open", &pruned);
                if !pruned.finished {
                    if let Some(janitor) = &self.janitor {
                        janitor.wake();
                    }
                }
            }
            Err(_) => self.count_store_failure(),
        }
    }

    /// Called after each recorded decision.
    pub(super) fn note_decision(&self) {
        if let Some(janitor) = &self.janitor {
            janitor.note_decision();
        }
    }
}
