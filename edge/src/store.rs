//! The edge's sled store: message records (with the quarantine index), the verdict cache, the
//! re-check/report queue, allow/deny lists, synced hot fingerprints and sender rules, sync
//! versions, counters, pending events and an updated model. Owner: edge-engine.
//!
//! New decisions are first appended to the decision log (`wal`) and reach sled on a background
//! writer thread (`writer`); see [`Durability`].
//!
//! Message records and events are bounded by [`Retention`] (`retention`): settled records older
//! than an age or beyond a count are pruned, oldest first; quarantined ones never are.
//!
//! Values are JSON; ids and sequence keys are big-endian u64 so trees iterate in id order.
//!
//! Message records, the quarantine index, the queue, counters and events share one tree, the
//! journal, under one-byte key prefixes: a decision (record + index + queue entry + counters)
//! is then one atomic `apply_batch`, so a crash leaves all of it or none. (sled's multi-tree
//! transactions give the same guarantee but cost 4-8x more per message.) Read-modify-write
//! steps on the journal are serialised by a mutex; sled admits one process per directory.

mod cache;
mod lists;
mod private;
mod records;
mod retention;
mod sealing;
mod types;
mod wal;
mod writer;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, RwLock};

use serde::de::DeserializeOwned;
use serde::Serialize;

pub use private::{DIR_MODE, FILE_MODE};
pub use records::{Effects, Transitioned};
pub use retention::{prunable, Pruned, Retention, EVENTS_PRUNED_COUNTER, RECORDS_PRUNED_COUNTER};
pub use sealing::StoreKey;
pub use types::{
    CacheEntry, Counters, EngineEvent, HotFingerprint, MessageRecord, MessageState, QueueItem,
    SenderRuleEntry, Source, StoredModel, StoredVerdict,
};
pub use wal::{
    decision_id as log_decision_id, frame as log_frame, read_frames as read_log_frames, Durability,
    LogRecovery, MAX_PAYLOAD_BYTES as MAX_LOG_PAYLOAD_BYTES,
};

/// Errors of the store. They name trees and keys (ids, hashes), never message text.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store I/O failed: {0}")]
    Sled(#[from] sled::Error),
    #[error("store value in tree {tree} is unreadable: {reason}")]
    Corrupt { tree: &'static str, reason: String },
    #[error("cannot encode a value for tree {tree}: {reason}")]
    Encode { tree: &'static str, reason: String },
    #[error("decision log I/O failed: {0}")]
    Log(String),
    #[error("cannot make the store directory owner-only: {0}")]
    Permissions(String),
    #[error("store key: {0}")]
    Key(String),
}

impl From<sled::transaction::TransactionError<StoreError>> for StoreError {
    fn from(error: sled::transaction::TransactionError<StoreError>) -> Self {
        match error {
            sled::transaction::TransactionError::Abort(inner) => inner,
            sled::transaction::TransactionError::Storage(inner) => StoreError::Sled(inner),
        }
    }
}

/// Names of the sled trees (also used in error messages).
mod tree {
    pub const JOURNAL: &str = "journal";
    pub const MESSAGES: &str = "journal/messages";
    pub const QUEUE: &str = "journal/queue";
    pub const CACHE: &str = "cache";
    pub const CACHE_ORDER: &str = "cache_order";
    pub const ALLOW: &str = "allow";
    pub const DENY: &str = "deny";
    pub const HOT: &str = "hot";
    pub const RULES: &str = "rules";
    pub const META: &str = "meta";
    pub const EVENTS: &str = "journal/events";
    pub const MODEL: &str = "model";
}

const MODEL_DESCRIPTION_KEY: &str = "description";
const MODEL_BYTES_KEY: &str = "onnx";

/// Meta key of the last synced `SyncCache` version.
pub const SYNC_VERSION_KEY: &str = "sync_version";
/// Meta key of the knowledge table installed from `SyncCache` (its TOML text).
const KNOWLEDGE_TABLE_KEY: &str = "knowledge_table";

/// The open store. Cheap to share: sled trees are reference counted and thread-safe.
#[derive(Debug, Clone)]
pub struct Store {
    /// The store directory (its files are made owner-only again at every flush).
    dir: std::path::PathBuf,
    db: sled::Db,
    /// Records, quarantine index, queue, counters and events (see the module docs).
    journal: sled::Tree,
    /// Serialises read-modify-write steps on the journal.
    journal_lock: Arc<Mutex<()>>,
    cache: sled::Tree,
    cache_order: sled::Tree,
    allow: sled::Tree,
    deny: sled::Tree,
    hot: sled::Tree,
    rules: sled::Tree,
    meta: sled::Tree,
    model: sled::Tree,
    /// Seals senders and bodies of message records (absent: they are stored plain).
    sealer: Option<Arc<sealing::Sealer>>,
    /// The cache tree in memory (see `cache`); its lock serialises cache writes.
    cache_mirror: Arc<RwLock<cache::CacheMirror>>,
    /// The allow (`true`) and deny (`false`) lists in memory by sled key (see `lists`), so
    /// `classify` reads no sled page for them; its lock serialises list writes.
    lists: Arc<RwLock<HashMap<Vec<u8>, bool>>>,
    /// Approximate entry count of `queue` (exact unless two writers race on one key).
    queue_len: Arc<AtomicUsize>,
    /// Running count of message records (decisions counted when logged; see `retention`).
    messages_len: Arc<AtomicUsize>,
    /// Id from which the next retention step walks the records (0: from the oldest).
    prune_cursor: Arc<Mutex<u64>>,
    durability: Durability,
    /// The decision log and its writer thread (absent with `Durability::None`).
    log: Option<Arc<wal::DecisionLog>>,
    progress: Option<Arc<writer::Progress>>,
    writer: Option<Arc<writer::Writer>>,
    recovery: LogRecovery,
}

/// How a store is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    /// Bound of sled's page cache, bytes.
    pub cache_bytes: u64,
    pub durability: Durability,
    /// Size at which a decision log segment is closed, and deleted once sled is flushed.
    pub log_checkpoint_bytes: u64,
    /// Seals message senders and bodies at rest (see `sealing`); without it they are plain.
    /// A store once opened with a key refuses to open without it or with another.
    pub key: Option<StoreKey>,
}

impl StoreOptions {
    pub const DEFAULT_LOG_CHECKPOINT_BYTES: u64 = 4 << 20;

    /// `durability` with the default checkpoint size.
    pub fn new(cache_bytes: u64, durability: Durability) -> StoreOptions {
        StoreOptions {
            cache_bytes,
            durability,
            log_checkpoint_bytes: StoreOptions::DEFAULT_LOG_CHECKPOINT_BYTES,
            key: None,
        }
    }
}

/// Counter names of decision-log recovery (persisted with the other counters).
pub const REPLAYED_COUNTER: &str = "log.replayed";
pub const DAMAGED_SPANS_COUNTER: &str = "log.damaged_spans";

impl Store {
    /// Opens (or creates) the store in `dir` with the default durability (`process`).
    /// `cache_bytes` bounds sled's page cache.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<Store, StoreError> {
        Store::open_with(dir, StoreOptions::new(cache_bytes, Durability::default()))
    }

    /// Opens (or creates) the store in `dir`, first replaying decisions a killed process left
    /// in the decision log (whatever `options.durability` is now).
    /// The directory is made owner-only (0700, its files 0600): it holds message bodies and
    /// sender numbers.
    pub fn open_with(dir: &Path, options: StoreOptions) -> Result<Store, StoreError> {
        private::create_private_dir(dir).map_err(|e| StoreError::Permissions(e.to_string()))?;
        let db = smsguard_sled::open_waiting_for_lock(|| {
            sled::Config::new()
                .path(dir)
                .cache_capacity(options.cache_bytes)
        })?;
        let open = |name: &str| db.open_tree(name);
        let cache = open(tree::CACHE)?;
        let cache_mirror = Arc::new(RwLock::new(cache::load_mirror(&cache)?));
        let (allow, deny) = (open(tree::ALLOW)?, open(tree::DENY)?);
        let meta = open(tree::META)?;
        let sealer = check_key(&meta, options.key)?.map(Arc::new);
        let journal = open(tree::JOURNAL)?;
        let journal_lock = Arc::new(Mutex::new(()));
        let (recovery, next_segment) = replay_log(dir, &db, &journal, &journal_lock)?;
        let queue_len = Arc::new(AtomicUsize::new(
            journal.scan_prefix([records::prefix::QUEUE]).count(),
        ));
        let messages_len = Arc::new(AtomicUsize::new(
            journal.scan_prefix([records::prefix::MESSAGE]).count(),
        ));
        let (log, progress, writer) = if options.durability.logged() {
            let log = Arc::new(
                wal::DecisionLog::create(dir, next_segment, options.durability)
                    .map_err(|e| StoreError::Log(e.to_string()))?,
            );
            let progress = Arc::new(writer::Progress::default());
            let writer = writer::Writer::start(writer::Target {
                db: db.clone(),
                journal: journal.clone(),
                journal_lock: journal_lock.clone(),
                log: log.clone(),
                progress: progress.clone(),
                checkpoint_bytes: options.log_checkpoint_bytes.max(1),
            })
            .map_err(|e| StoreError::Log(format!("cannot start the writer thread: {e}")))?;
            (Some(log), Some(progress), Some(Arc::new(writer)))
        } else {
            (None, None, None)
        };
        restrict_files(dir);
        Ok(Store {
            dir: dir.to_path_buf(),
            journal,
            journal_lock,
            queue_len,
            messages_len,
            prune_cursor: Arc::new(Mutex::new(0)),
            cache,
            cache_mirror,
            cache_order: open(tree::CACHE_ORDER)?,
            lists: Arc::new(RwLock::new(lists::load_lists(
                &allow,
                &deny,
                sealer.as_deref(),
            )?)),
            allow,
            deny,
            hot: open(tree::HOT)?,
            rules: open(tree::RULES)?,
            meta,
            model: open(tree::MODEL)?,
            sealer,
            db,
            durability: options.durability,
            log,
            progress,
            writer,
            recovery,
        })
    }

    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// What opening found in the decision log.
    pub fn recovery(&self) -> LogRecovery {
        self.recovery
    }

    /// Batches the background writer failed to apply this session (their decisions stay in the
    /// log and are replayed on the next open).
    pub fn writer_failures(&self) -> u64 {
        self.progress
            .as_ref()
            .map_or(0, |p| p.failures.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// A fresh id, unique across restarts and crashes (sled persists a high-water mark).
    pub fn next_id(&self) -> Result<u64, StoreError> {
        // sled's first id is 0; 0 is kept free to mean "not stored" in decisions.
        Ok(self.db.generate_id()? + 1)
    }

    /// Writes everything buffered to disk and fsyncs; then the decision log holds nothing sled
    /// lacks and is emptied.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.flush_data()?;
        // Files sled created since the last pass (snapshots, blobs) become owner-only too.
        restrict_files(&self.dir);
        Ok(())
    }

    fn flush_data(&self) -> Result<(), StoreError> {
        let (Some(log), Some(progress)) = (&self.log, &self.progress) else {
            self.db.flush()?;
            return Ok(());
        };
        // Taken before the rotation: a record pruned by now had its decision logged before it,
        // so the segments this checkpoint deletes held every decision these tombstones guard.
        let tombstones = self.tombstones()?;
        let checkpoint = log.rotate().map_err(|e| StoreError::Log(e.to_string()))?;
        progress.wait_for(checkpoint.appended);
        self.db.flush()?;
        if progress.log_may_shrink() {
            log.remove_through(checkpoint)
                .map_err(|e| StoreError::Log(e.to_string()))?;
            self.remove_tombstones(tombstones)?;
        }
        Ok(())
    }

    /// Number of stored messages (any state). O(n): for stats and tests.
    pub fn message_count(&self) -> usize {
        self.settle();
        self.journal.scan_prefix([records::prefix::MESSAGE]).count()
    }

    // ---- allow / deny lists: see `lists` ----

    // ---- synced hot fingerprints and sender rules ----

    pub fn put_hot(&self, entry: &HotFingerprint) -> Result<(), StoreError> {
        self.hot
            .insert(entry.fingerprint.as_bytes(), encode(tree::HOT, entry)?)?;
        Ok(())
    }

    pub fn remove_hot(&self, fingerprint: &str) -> Result<bool, StoreError> {
        Ok(self.hot.remove(fingerprint.as_bytes())?.is_some())
    }

    pub fn hot_fingerprints(&self) -> Result<Vec<HotFingerprint>, StoreError> {
        values(&self.hot, tree::HOT)
    }

    pub fn put_rule(&self, rule: &SenderRuleEntry) -> Result<(), StoreError> {
        self.rules
            .insert(rule.pattern.as_bytes(), encode(tree::RULES, rule)?)?;
        Ok(())
    }

    pub fn remove_rule(&self, pattern: &str) -> Result<bool, StoreError> {
        Ok(self.rules.remove(pattern.as_bytes())?.is_some())
    }

    pub fn sender_rules(&self) -> Result<Vec<SenderRuleEntry>, StoreError> {
        values(&self.rules, tree::RULES)
    }

    // ---- meta (versions) ----

    pub fn meta_u64(&self, key: &str) -> Result<Option<u64>, StoreError> {
        Ok(self.meta.get(key.as_bytes())?.map(|v| be_u64(&v)))
    }

    pub fn set_meta_u64(&self, key: &str, value: u64) -> Result<(), StoreError> {
        self.meta.insert(key.as_bytes(), &value.to_be_bytes())?;
        Ok(())
    }

    /// The knowledge table installed from `SyncCache`, if one was.
    pub fn knowledge_table(&self) -> Result<Option<String>, StoreError> {
        let Some(bytes) = self.meta.get(KNOWLEDGE_TABLE_KEY.as_bytes())? else {
            return Ok(None);
        };
        String::from_utf8(bytes.to_vec())
            .map(Some)
            .map_err(|_| StoreError::Corrupt {
                tree: tree::META,
                reason: "the knowledge table is not UTF-8".to_string(),
            })
    }

    pub fn save_knowledge_table(&self, text: &str) -> Result<(), StoreError> {
        self.meta
            .insert(KNOWLEDGE_TABLE_KEY.as_bytes(), text.as_bytes())?;
        Ok(())
    }

    // ---- updated model ----

    /// Replaces the stored model (description and bytes in one transaction: the old model stays
    /// until this succeeds).
    pub fn save_model(&self, model: &StoredModel) -> Result<(), StoreError> {
        let description = encode(tree::MODEL, model)?;
        self.model.transaction(|tx| {
            tx.insert(MODEL_DESCRIPTION_KEY, description.as_slice())?;
            tx.insert(MODEL_BYTES_KEY, model.sealed_model.as_slice())?;
            Ok::<_, sled::transaction::ConflictableTransactionError<StoreError>>(())
        })?;
        Ok(())
    }

    pub fn load_model(&self) -> Result<Option<StoredModel>, StoreError> {
        let Some(description) = self.model.get(MODEL_DESCRIPTION_KEY)? else {
            return Ok(None);
        };
        let mut model: StoredModel = decode(tree::MODEL, &description)?;
        model.sealed_model = self
            .model
            .get(MODEL_BYTES_KEY)?
            .ok_or_else(|| StoreError::Corrupt {
                tree: tree::MODEL,
                reason: "model bytes missing".to_string(),
            })?
            .to_vec();
        Ok(Some(model))
    }

    pub fn remove_model(&self) -> Result<(), StoreError> {
        self.model.remove(MODEL_DESCRIPTION_KEY)?;
        self.model.remove(MODEL_BYTES_KEY)?;
        Ok(())
    }
}

/// Meta key of the value that proves which key seals the store.
const KEY_CHECK_KEY: &str = "key_check";

/// The sealer for `key`, after checking it is this store's: a store remembers being sealed,
/// and refuses another key, or none, rather than mix plaintext and ciphertext.
fn check_key(
    meta: &sled::Tree,
    key: Option<StoreKey>,
) -> Result<Option<sealing::Sealer>, StoreError> {
    let check = meta.get(KEY_CHECK_KEY)?;
    let check = check
        .as_deref()
        .map(|raw| String::from_utf8_lossy(raw).into_owned());
    let Some(key) = key else {
        return match check {
            Some(_) => Err(StoreError::Key(
                "the store is encrypted and no store key was given".to_string(),
            )),
            None => Ok(None),
        };
    };
    let sealer = sealing::Sealer::new(&key)?;
    match check {
        Some(check) if !sealer.verifies(&check) => Err(StoreError::Key(
            "the given store key is not the key this store is encrypted with".to_string(),
        )),
        Some(_) => Ok(Some(sealer)),
        None => {
            meta.insert(KEY_CHECK_KEY, sealer.key_check()?.as_bytes())?;
            meta.flush()?;
            Ok(Some(sealer))
        }
    }
}

/// Makes the store's files owner-only. Best effort: the 0700 directory already keeps other
/// users out, and a file whose mode cannot be changed must not make the store unusable (that
/// would leave messages unrecorded).
fn restrict_files(dir: &Path) {
    if let Err(e) = private::restrict(dir) {
        tracing::warn!(error = %e, "cannot make every store file owner-only");
    }
}

/// Applies the decisions in the log segments of `dir` that sled lacks, flushes sled and deletes
/// the segments. Returns what was found and the number of the next segment.
fn replay_log(
    dir: &Path,
    db: &sled::Db,
    journal: &sled::Tree,
    journal_lock: &Mutex<()>,
) -> Result<(LogRecovery, u64), StoreError> {
    let log_error = |e: std::io::Error| StoreError::Log(e.to_string());
    let segments = wal::segments_in(dir).map_err(log_error)?;
    let mut recovery = LogRecovery {
        segments: segments.len(),
        ..LogRecovery::default()
    };
    for segment in &segments {
        let bytes = std::fs::read(&segment.path).map_err(log_error)?;
        let (payloads, spans, skipped) = wal::read_frames(&bytes);
        recovery.damaged_spans += spans;
        recovery.damaged_bytes += skipped;
        let mut missing = Vec::new();
        for payload in payloads {
            match wal::decode_decision(payload) {
                Some(decision) if records::has_message(journal, decision.id)? => {
                    recovery.already_stored += 1;
                }
                // Retention removed the record after it reached sled: it stays removed.
                Some(decision) if retention::was_pruned(journal, decision.id)? => {
                    recovery.pruned += 1;
                }
                Some(decision) => missing.push(decision),
                None => recovery.unreadable_records += 1,
            }
        }
        recovery.replayed += missing.len();
        for chunk in missing.chunks(512) {
            records::apply_decisions(journal, journal_lock, chunk)?;
        }
    }
    if recovery.damaged_spans > 0 || recovery.unreadable_records > 0 {
        // Counted and reported, never fatal: the frames before and after a damaged span stand.
        tracing::warn!(
            damaged_spans = recovery.damaged_spans,
            damaged_bytes = recovery.damaged_bytes,
            unreadable_records = recovery.unreadable_records,
            "decision log: skipped damaged data (a torn write from a killed process)"
        );
    }
    record_recovery(journal, journal_lock, &recovery)?;
    db.flush()?;
    for segment in &segments {
        wal::remove_if_present(&segment.path).map_err(log_error)?;
    }
    // No segment is left to bring a pruned record back: its tombstone has done its work. (Were
    // this lost in a crash, a stale tombstone is harmless: ids are never reused.)
    retention::remove_tombstones(journal, journal_lock, retention::tombstones(journal)?)?;
    let next = segments.last().map_or(0, |s| s.number + 1);
    Ok((recovery, next))
}

/// Adds the recovery tallies to the persisted counters.
fn record_recovery(
    journal: &sled::Tree,
    journal_lock: &Mutex<()>,
    recovery: &LogRecovery,
) -> Result<(), StoreError> {
    let tallies = [
        (REPLAYED_COUNTER, recovery.replayed),
        (
            DAMAGED_SPANS_COUNTER,
            recovery.damaged_spans + recovery.unreadable_records,
        ),
    ];
    for (name, by) in tallies.into_iter().filter(|(_, by)| *by > 0) {
        records::add_to_counter(journal, journal_lock, name, by as u64)?;
    }
    Ok(())
}

fn encode<T: Serialize>(tree: &'static str, value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Encode {
        tree,
        reason: e.to_string(),
    })
}

fn decode<T: DeserializeOwned>(tree: &'static str, raw: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(raw).map_err(|e| StoreError::Corrupt {
        tree,
        reason: e.to_string(),
    })
}

fn values<T: DeserializeOwned>(
    tree: &sled::Tree,
    name: &'static str,
) -> Result<Vec<T>, StoreError> {
    tree.iter()
        .values()
        .map(|value| decode(name, &value?))
        .collect()
}

/// A stored big-endian u64 (0 for a malformed value, which only a foreign writer could produce).
fn be_u64(raw: &[u8]) -> u64 {
    raw.try_into().map(u64::from_be_bytes).unwrap_or(0)
}
