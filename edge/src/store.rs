//! The edge's sled store: message records (with the quarantine index), the verdict cache, the
//! re-check/report queue, allow/deny lists, synced hot fingerprints and sender rules, sync
//! versions, counters, pending events and an updated model. Owner: edge-engine.
//!
//! Values are JSON; ids and sequence keys are big-endian u64 so trees iterate in id order.
//!
//! Message records, the quarantine index, the queue, counters and events share one tree, the
//! journal, under one-byte key prefixes: a decision (record + index + queue entry + counters)
//! is then one atomic `apply_batch`, so a crash leaves all of it or none. (sled's multi-tree
//! transactions give the same guarantee but cost 4-8x more per message.) Read-modify-write
//! steps on the journal are serialised by a mutex; sled admits one process per directory.

mod cache;
mod records;
mod types;

use std::path::Path;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};

use serde::de::DeserializeOwned;
use serde::Serialize;

pub use records::{Effects, Transitioned};
pub use types::{
    CacheEntry, Counters, EngineEvent, HotFingerprint, MessageRecord, MessageState, QueueItem,
    SenderRuleEntry, Source, StoredModel, StoredVerdict,
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

/// The open store. Cheap to share: sled trees are reference counted and thread-safe.
#[derive(Debug, Clone)]
pub struct Store {
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
    /// Entry count of `cache`, kept here because `Tree::len` is a scan; the lock also serialises
    /// cache writes so the count stays exact.
    cache_len: Arc<Mutex<usize>>,
    /// Approximate entry count of `queue` (exact unless two writers race on one key).
    queue_len: Arc<AtomicUsize>,
}

impl Store {
    /// Opens (or creates) the store in `dir`. `cache_bytes` bounds sled's page cache.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<Store, StoreError> {
        let db = open_db_waiting_for_lock(dir, cache_bytes)?;
        let open = |name: &str| db.open_tree(name);
        let cache = open(tree::CACHE)?;
        let cache_len = Arc::new(Mutex::new(cache.len()));
        let journal = open(tree::JOURNAL)?;
        let queue_len = Arc::new(AtomicUsize::new(
            journal.scan_prefix([records::prefix::QUEUE]).count(),
        ));
        Ok(Store {
            journal,
            journal_lock: Arc::new(Mutex::new(())),
            queue_len,
            cache,
            cache_len,
            cache_order: open(tree::CACHE_ORDER)?,
            allow: open(tree::ALLOW)?,
            deny: open(tree::DENY)?,
            hot: open(tree::HOT)?,
            rules: open(tree::RULES)?,
            meta: open(tree::META)?,
            model: open(tree::MODEL)?,
            db,
        })
    }

    /// A fresh id, unique across restarts and crashes (sled persists a high-water mark).
    pub fn next_id(&self) -> Result<u64, StoreError> {
        // sled's first id is 0; 0 is kept free to mean "not stored" in decisions.
        Ok(self.db.generate_id()? + 1)
    }

    /// Writes everything buffered to disk and fsyncs.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    /// Number of stored messages (any state). O(n): for stats and tests.
    pub fn message_count(&self) -> usize {
        self.journal.scan_prefix([records::prefix::MESSAGE]).count()
    }

    // ---- allow / deny lists (keys are canonical sender strings) ----

    pub fn allow_sender(&self, canonical: &str) -> Result<(), StoreError> {
        self.set_list(canonical, true)
    }

    pub fn deny_sender(&self, canonical: &str) -> Result<(), StoreError> {
        self.set_list(canonical, false)
    }

    /// Adds a sender to one list and removes it from the other, atomically.
    fn set_list(&self, canonical: &str, allow: bool) -> Result<(), StoreError> {
        let (add, remove) = if allow {
            (&self.allow, &self.deny)
        } else {
            (&self.deny, &self.allow)
        };
        (add, remove).transaction(|(add, remove)| {
            add.insert(canonical.as_bytes(), &[])?;
            remove.remove(canonical.as_bytes())?;
            Ok::<_, sled::transaction::ConflictableTransactionError<StoreError>>(())
        })?;
        Ok(())
    }

    pub fn remove_sender(&self, canonical: &str) -> Result<(), StoreError> {
        self.allow.remove(canonical.as_bytes())?;
        self.deny.remove(canonical.as_bytes())?;
        Ok(())
    }

    /// `Some(true)` when allowed, `Some(false)` when denied, `None` when on neither list.
    pub fn sender_list(&self, canonical: &str) -> Result<Option<bool>, StoreError> {
        if self.allow.contains_key(canonical.as_bytes())? {
            return Ok(Some(true));
        }
        Ok(self
            .deny
            .contains_key(canonical.as_bytes())?
            .then_some(false))
    }

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

    // ---- updated model ----

    /// Replaces the stored model (description and bytes in one transaction: the old model stays
    /// until this succeeds).
    pub fn save_model(&self, model: &StoredModel) -> Result<(), StoreError> {
        let description = encode(tree::MODEL, model)?;
        self.model.transaction(|tx| {
            tx.insert(MODEL_DESCRIPTION_KEY, description.as_slice())?;
            tx.insert(MODEL_BYTES_KEY, model.model.as_slice())?;
            Ok::<_, sled::transaction::ConflictableTransactionError<StoreError>>(())
        })?;
        Ok(())
    }

    pub fn load_model(&self) -> Result<Option<StoredModel>, StoreError> {
        let Some(description) = self.model.get(MODEL_DESCRIPTION_KEY)? else {
            return Ok(None);
        };
        let mut model: StoredModel = decode(tree::MODEL, &description)?;
        model.model = self
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

use sled::Transactional;

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

/// How long [`Store::open`] waits for the store's file lock. A store closed a moment ago can
/// still be locked: sled releases its lock only when its background flusher thread has stopped,
/// which takes up to one flush interval after the last handle is dropped.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

fn open_db_waiting_for_lock(dir: &Path, cache_bytes: u64) -> Result<sled::Db, sled::Error> {
    let give_up = std::time::Instant::now() + LOCK_WAIT;
    loop {
        let result = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            .open();
        match result {
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < give_up =>
            {
                std::thread::sleep(std::time::Duration::from_millis(25));
            }
            other => return other,
        }
    }
}
