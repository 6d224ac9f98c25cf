//! The background writer: applies logged decisions to sled in batches, off `classify`'s path,
//! and checkpoints the decision log (flush sled, delete covered segments) as it grows.
//!
//! Readers of the journal first [`settle`](Progress::wait_for) until every decision logged so
//! far is applied, so the store reads as if each decision had been written in `classify`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use super::records::apply_decisions;
use super::wal::{Checkpoint, DecisionLog, PendingDecision};
use super::StoreError;

/// Most decisions applied in one sled batch.
const MAX_BATCH: usize = 512;
/// Decisions waiting for the writer before `classify` waits for it (back-pressure).
const QUEUE_BOUND: usize = 4_096;

/// How far the writer got; shared by the writer thread and the store.
#[derive(Debug, Default)]
pub(super) struct Progress {
    /// Decisions taken care of (applied, or failed and left in the log for the next open).
    applied: Mutex<u64>,
    advanced: Condvar,
    /// Sled refused a batch: the log must stay until it is replayed on the next open.
    keep_log: AtomicBool,
    pub failures: AtomicU64,
}

impl Progress {
    pub fn advance(&self, by: u64) {
        *self.applied.lock().unwrap_or_else(|p| p.into_inner()) += by;
        self.advanced.notify_all();
    }

    /// Blocks until `target` decisions are taken care of.
    pub fn wait_for(&self, target: u64) {
        let mut applied = self.applied.lock().unwrap_or_else(|p| p.into_inner());
        while *applied < target {
            applied = self
                .advanced
                .wait(applied)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    fn applied(&self) -> u64 {
        *self.applied.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn log_may_shrink(&self) -> bool {
        !self.keep_log.load(Ordering::Relaxed)
    }

    fn failed(&self) {
        self.keep_log.store(true, Ordering::Relaxed);
        self.failures.fetch_add(1, Ordering::Relaxed);
    }
}

/// What the writer thread works on.
#[derive(Debug, Clone)]
pub(super) struct Target {
    pub db: sled::Db,
    pub journal: sled::Tree,
    pub journal_lock: Arc<Mutex<()>>,
    pub log: Arc<DecisionLog>,
    pub progress: Arc<Progress>,
    /// A segment this large (bytes) is closed and checkpointed.
    pub checkpoint_bytes: u64,
}

impl Target {
    /// Applies `decisions` to sled in one batch; a failure (even a panic inside sled) is
    /// counted and the log kept, and progress advances regardless so that readers never hang.
    fn apply(&self, decisions: &[PendingDecision]) {
        let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            apply_decisions(&self.journal, &self.journal_lock, decisions)
        }));
        if !matches!(applied, Ok(Ok(()))) {
            self.progress.failed();
        }
        self.progress.advance(decisions.len() as u64);
    }

    /// Flushes sled and deletes the segments `checkpoint` covers (all applied by now).
    pub fn complete(&self, checkpoint: Checkpoint) -> Result<(), StoreError> {
        self.db.flush()?;
        if self.progress.log_may_shrink() {
            self.log
                .remove_through(checkpoint)
                .map_err(|e| StoreError::Log(e.to_string()))?;
        }
        Ok(())
    }
}

/// The handle the store keeps; dropping it drains the queue, checkpoints and joins the thread.
#[derive(Debug)]
pub(super) struct Writer {
    sender: Option<SyncSender<PendingDecision>>,
    thread: Option<JoinHandle<()>>,
    target: Target,
}

impl Writer {
    pub fn start(target: Target) -> std::io::Result<Writer> {
        let (sender, receiver) = sync_channel(QUEUE_BOUND);
        let worker = target.clone();
        let thread = std::thread::Builder::new()
            .name("smsguard-store-writer".into())
            .spawn(move || run(&worker, &receiver))?;
        Ok(Writer {
            sender: Some(sender),
            thread: Some(thread),
            target,
        })
    }

    /// Hands a logged decision to the writer, waiting while its queue is full. The caller holds
    /// the log (see `DecisionLog::append_then`); the writer never waits for the log, so this
    /// cannot deadlock.
    pub fn submit(&self, decision: PendingDecision) {
        let Some(sender) = &self.sender else {
            return self.target.apply(&[decision]);
        };
        if let Err(unsent) = sender.send(decision) {
            // Only if the writer thread is gone; then nothing is queued behind this one.
            self.target.apply(&[unsent.0]);
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.sender.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The writer loop: batches of whatever is queued; a checkpoint once a segment is large and all
/// its decisions are applied; a final checkpoint when the store is dropped.
fn run(target: &Target, receiver: &Receiver<PendingDecision>) {
    let mut pending: Option<Checkpoint> = None;
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = receiver.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(decision) => batch.push(decision),
                Err(_) => break,
            }
        }
        target.apply(&batch);
        batch.clear();
        if pending.is_none() && target.log.current_bytes() >= target.checkpoint_bytes {
            pending = target.log.try_rotate();
        }
        if let Some(checkpoint) = pending.filter(|c| target.progress.applied() >= c.appended) {
            if target.complete(checkpoint).is_err() {
                target.progress.failed();
            }
            pending = None;
        }
    }
    // Every sender is gone: nothing more can be appended, and everything appended is applied,
    // so every segment (the current one too) goes once sled is flushed.
    let _ = target.complete(Checkpoint {
        segment: u64::MAX,
        appended: target.log.appended(),
    });
}
