//! The sync log: every change an edge cache cares about (a reported spam fingerprint, a
//! whitelisted one, a sender rule added or removed) gets the next version number, so an edge
//! pulls only what changed since the version it last saw (`SyncCache`).
//!
//! Stored in its own sled database (`data_dir/sync`); the key is the big-endian version, so
//! `range(since + 1..)` lists changes in order. Appends are flushed before they return, so an
//! acknowledged report survives a crash.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use smsguard_proto::v1;

const LOG_TREE: &str = "log";
const META_TREE: &str = "meta";
const SENDER_RULES_KEY: &[u8] = b"sender_rules";

/// One change, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    Fingerprint {
        fingerprint: String,
        minhash: Vec<u32>,
        /// `v1::Label` number.
        label: i32,
        report_count: u32,
        removed: bool,
    },
    SenderRule {
        pattern: String,
        /// `v1::SenderRuleKind` number.
        kind: i32,
        removed: bool,
    },
}

/// One `SyncCache` answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncPage {
    pub version: u64,
    pub fingerprints: Vec<v1::SpamFingerprint>,
    pub sender_rules: Vec<v1::SenderRule>,
    pub has_more: bool,
}

#[derive(Debug, Clone)]
pub struct SyncLog {
    db: sled::Db,
    log: sled::Tree,
    meta: sled::Tree,
    /// Held from reading the newest version until the new entries are inserted: concurrent
    /// reports would otherwise take the same version and overwrite each other's change.
    appending: Arc<Mutex<()>>,
}

impl SyncLog {
    /// Opens the log with a 16 MiB page cache.
    pub fn open(dir: &Path) -> Result<Self, sled::Error> {
        Self::open_with_cache(dir, 16 * 1024 * 1024)
    }

    /// Opens the log with a page cache of `cache_bytes` (sled's default, 1 GiB, would let a
    /// long-running server's memory grow with its log).
    pub fn open_with_cache(dir: &Path, cache_bytes: u64) -> Result<Self, sled::Error> {
        let db = smsguard_sled::open_waiting_for_lock(|| {
            sled::Config::new().path(dir).cache_capacity(cache_bytes)
        })?;
        let log = db.open_tree(LOG_TREE)?;
        let meta = db.open_tree(META_TREE)?;
        Ok(SyncLog {
            db,
            log,
            meta,
            appending: Arc::default(),
        })
    }

    /// Another tree of the same database: the operator console's audit log lives beside the
    /// sync log, so one store (`data_dir/sync`) holds every durable record of the service.
    pub fn tree(&self, name: &str) -> Result<sled::Tree, sled::Error> {
        self.db.open_tree(name)
    }

    /// The newest version (0 before the first change).
    pub fn version(&self) -> Result<u64, sled::Error> {
        Ok(self
            .log
            .last()?
            .and_then(|(key, _)| key.as_ref().try_into().ok().map(u64::from_be_bytes))
            .unwrap_or(0))
    }

    /// Appends changes under consecutive new versions and flushes; returns the last version.
    pub fn append(&self, changes: &[Change]) -> Result<u64, sled::Error> {
        let version = {
            // The lock guards no data of its own, so a poisoned one is still usable.
            let _appending = self.appending.lock().unwrap_or_else(|e| e.into_inner());
            let mut version = self.version()?;
            for change in changes {
                version += 1;
                let value = serde_json::to_vec(change).map_err(std::io::Error::other)?;
                self.log.insert(version.to_be_bytes(), value)?;
            }
            version
        };
        // Outside the lock (it still persists this call's inserts): appends need not wait on it.
        self.db.flush()?;
        Ok(version)
    }

    /// Changes after `since`, at most `max_entries` of them.
    pub fn since(&self, since: u64, max_entries: usize) -> Result<SyncPage, sled::Error> {
        let mut page = SyncPage {
            version: since,
            ..SyncPage::default()
        };
        let start = since.saturating_add(1).to_be_bytes();
        let mut taken = 0;
        for item in self.log.range(start..) {
            let (key, value) = item?;
            if taken == max_entries {
                page.has_more = true;
                break;
            }
            let Ok(version) = key.as_ref().try_into().map(u64::from_be_bytes) else {
                continue;
            };
            page.version = version;
            taken += 1;
            match serde_json::from_slice::<Change>(&value) {
                Ok(change) => push_change(&mut page, change),
                Err(e) => {
                    tracing::warn!(version, error = %e, "skipping an unreadable sync log entry")
                }
            }
        }
        Ok(page)
    }

    /// Logs the difference between the sender rules now in force and the ones last logged.
    /// Returns the number of changes logged.
    pub fn sync_sender_rules(&self, current: &BTreeMap<String, i32>) -> Result<usize, sled::Error> {
        let previous: BTreeMap<String, i32> = self
            .meta
            .get(SENDER_RULES_KEY)?
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        let changes = sender_rule_changes(&previous, current);
        if !changes.is_empty() {
            let snapshot = serde_json::to_vec(current).map_err(std::io::Error::other)?;
            self.meta.insert(SENDER_RULES_KEY, snapshot)?;
            self.append(&changes)?;
        }
        Ok(changes.len())
    }

    pub fn flush(&self) -> Result<(), sled::Error> {
        self.db.flush().map(|_| ())
    }
}

/// The sender-rule changes from the rules `previous` to the rules `current` (removals first).
pub fn sender_rule_changes(
    previous: &BTreeMap<String, i32>,
    current: &BTreeMap<String, i32>,
) -> Vec<Change> {
    let mut changes = Vec::new();
    for (pattern, kind) in previous {
        if current.get(pattern) != Some(kind) {
            changes.push(Change::SenderRule {
                pattern: pattern.clone(),
                kind: *kind,
                removed: true,
            });
        }
    }
    for (pattern, kind) in current {
        if previous.get(pattern) != Some(kind) {
            changes.push(Change::SenderRule {
                pattern: pattern.clone(),
                kind: *kind,
                removed: false,
            });
        }
    }
    changes
}

impl SyncPage {
    /// The page of `changes` (version, change; `None` for an unreadable one), read in version
    /// order after `since`: at most `max_entries`, `has_more` when more were read.
    pub fn from_changes(
        since: u64,
        changes: Vec<(u64, Option<Change>)>,
        max_entries: usize,
    ) -> Self {
        let mut page = SyncPage {
            version: since,
            has_more: changes.len() > max_entries,
            ..SyncPage::default()
        };
        for (version, change) in changes.into_iter().take(max_entries) {
            page.version = version;
            match change {
                Some(change) => push_change(&mut page, change),
                None => tracing::warn!(version, "skipping an unreadable sync log entry"),
            }
        }
        page
    }
}

fn push_change(page: &mut SyncPage, change: Change) {
    match change {
        Change::Fingerprint {
            fingerprint,
            minhash,
            label,
            report_count,
            removed,
        } => page.fingerprints.push(v1::SpamFingerprint {
            fingerprint,
            minhash,
            label,
            report_count,
            removed,
        }),
        Change::SenderRule {
            pattern,
            kind,
            removed,
        } => page.sender_rules.push(v1::SenderRule {
            pattern,
            kind,
            removed,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fingerprint(id: &str) -> Change {
        Change::Fingerprint {
            fingerprint: id.into(),
            minhash: vec![1, 2],
            label: v1::Label::Spam as i32,
            report_count: 1,
            removed: false,
        }
    }

    #[test]
    fn pages_are_incremental_and_say_when_more_remain() {
        let dir = tempfile::tempdir().unwrap();
        let log = SyncLog::open(dir.path()).unwrap();
        assert_eq!(log.version().unwrap(), 0);
        log.append(&[fingerprint("a"), fingerprint("b"), fingerprint("c")])
            .unwrap();
        let first = log.since(0, 2).unwrap();
        assert_eq!((first.version, first.has_more), (2, true));
        assert_eq!(first.fingerprints.len(), 2);
        let rest = log.since(first.version, 2).unwrap();
        assert_eq!((rest.version, rest.has_more), (3, false));
        assert_eq!(rest.fingerprints[0].fingerprint, "c");
        let none = log.since(3, 10).unwrap();
        assert_eq!((none.version, none.fingerprints.len()), (3, 0));
    }

    #[test]
    fn concurrent_appends_each_get_their_own_version() {
        let dir = tempfile::tempdir().unwrap();
        let log = SyncLog::open(dir.path()).unwrap();
        let (threads, per_thread) = (8, 25);
        std::thread::scope(|scope| {
            for t in 0..threads {
                let log = &log;
                scope.spawn(move || {
                    for i in 0..per_thread {
                        log.append(&[fingerprint(&format!("{t}-{i}"))]).unwrap();
                    }
                });
            }
        });
        let total = threads * per_thread;
        assert_eq!(log.version().unwrap(), total as u64);
        let page = log.since(0, total + 1).unwrap();
        let distinct: std::collections::HashSet<_> =
            page.fingerprints.iter().map(|f| &f.fingerprint).collect();
        assert_eq!(distinct.len(), total);
    }

    #[test]
    fn sender_rule_changes_are_logged_once() {
        let dir = tempfile::tempdir().unwrap();
        let log = SyncLog::open(dir.path()).unwrap();
        let mut rules = BTreeMap::from([("^95.*".to_owned(), 1)]);
        assert_eq!(log.sync_sender_rules(&rules).unwrap(), 1);
        assert_eq!(log.sync_sender_rules(&rules).unwrap(), 0);
        rules.clear();
        rules.insert("^106.*".to_owned(), 2);
        assert_eq!(log.sync_sender_rules(&rules).unwrap(), 2);
        let page = log.since(1, 10).unwrap();
        assert!(page
            .sender_rules
            .iter()
            .any(|r| r.removed && r.pattern == "^95.*"));
        assert!(page
            .sender_rules
            .iter()
            .any(|r| !r.removed && r.pattern == "^106.*"));
    }
}
