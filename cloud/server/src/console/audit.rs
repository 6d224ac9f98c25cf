//! The console's audit log: every console action (who, what, when, from where) in the
//! `console_audit` tree of the server's store, flushed before the action's answer. Entries never
//! hold message text.

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

const AUDIT_TREE: &str = "console_audit";
/// Longest `who` or `detail` kept (a login form's user field is attacker-chosen).
const MAX_FIELD_CHARS: usize = 200;

/// One audited action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The admin (or, for a failed login, the user name that was tried).
    pub who: String,
    /// `login`, `login_failed`, `logout`, `try_message`, ...
    pub action: String,
    /// What the action did, without any message text.
    pub detail: String,
    /// The client address.
    pub from: String,
}

/// Errors of the audit log.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit store: {0}")]
    Store(#[from] sled::Error),
    #[error("audit entry: {0}")]
    Encoding(#[from] serde_json::Error),
}

/// The audit tree.
#[derive(Debug, Clone)]
pub struct AuditLog {
    tree: sled::Tree,
}

fn clipped(text: &str) -> String {
    text.chars().take(MAX_FIELD_CHARS).collect()
}

impl AuditLog {
    pub fn new(tree: sled::Tree) -> Self {
        AuditLog { tree }
    }

    pub fn open(sync: &crate::sync::SyncLog) -> Result<Self, AuditError> {
        Ok(AuditLog::new(sync.tree(AUDIT_TREE)?))
    }

    /// Records one action durably (blocking I/O: flushes).
    pub fn record(
        &self,
        who: &str,
        action: &str,
        detail: &str,
        from: SocketAddr,
    ) -> Result<AuditEntry, AuditError> {
        let at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let entry = AuditEntry {
            at_ms,
            who: clipped(who),
            action: clipped(action),
            detail: clipped(detail),
            from: from.ip().to_string(),
        };
        // Time first so the tree iterates in order; random bytes keep same-millisecond entries
        // apart.
        let mut key = [0u8; 16];
        key[..8].copy_from_slice(&at_ms.to_be_bytes());
        if SystemRandom::new().fill(&mut key[8..]).is_err() {
            key[8..].copy_from_slice(&self.tree.len().to_be_bytes());
        }
        self.tree.insert(key, serde_json::to_vec(&entry)?)?;
        self.tree.flush()?;
        Ok(entry)
    }

    /// The newest `limit` entries, newest first; unreadable entries are skipped.
    pub fn newest(&self, limit: usize) -> Result<Vec<AuditEntry>, AuditError> {
        let mut entries = Vec::new();
        for item in self.tree.iter().rev().take(limit) {
            let (_, value) = item?;
            if let Ok(entry) = serde_json::from_slice(&value) {
                entries.push(entry);
            }
        }
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_survive_reopening_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let from: SocketAddr = "127.0.0.1:9".parse().unwrap();
        {
            let db = sled::open(dir.path()).unwrap();
            let log = AuditLog::new(db.open_tree(AUDIT_TREE).unwrap());
            log.record("admin", "login", "", from).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(2));
            log.record("admin", "try_message", "spam/block", from)
                .unwrap();
        }
        let db = sled::open(dir.path()).unwrap();
        let log = AuditLog::new(db.open_tree(AUDIT_TREE).unwrap());
        let entries = log.newest(10).unwrap();
        let actions: Vec<_> = entries.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["try_message", "login"]);
        assert_eq!(entries[0].from, "127.0.0.1");
    }
}
