//! The user's allow and deny lists: sled trees keyed by sender, mirrored in memory so that
//! `classify` reads no sled page for them.
//!
//! In a sealed store (see `sealing`) a list key is not the canonical sender but its keyed hash
//! (HMAC-SHA256 under a key derived from the store key), behind a 0xFF byte that no UTF-8 text
//! starts with: membership can be checked, but the numbers the user listed cannot be read back
//! from the files. Plain keys left from before the store was sealed are rehashed on open.

use std::collections::HashMap;
use std::sync::RwLockWriteGuard;

use sled::Transactional;

use super::sealing::Sealer;
use super::{Store, StoreError};

/// First byte of a hashed list key (never the first byte of UTF-8 text).
const HASHED_KEY_MARK: u8 = 0xFF;

type ListError = sled::transaction::ConflictableTransactionError<StoreError>;

impl Store {
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
        let key = self.list_key(canonical);
        let mut lists = self.write_lists();
        (add, remove).transaction(|(add, remove)| {
            add.insert(key.as_slice(), &[])?;
            remove.remove(key.as_slice())?;
            Ok::<_, ListError>(())
        })?;
        lists.insert(key, allow);
        Ok(())
    }

    pub fn remove_sender(&self, canonical: &str) -> Result<(), StoreError> {
        let key = self.list_key(canonical);
        let mut lists = self.write_lists();
        // Forgotten first: a failure half-way leaves the sender on neither list in memory,
        // and the lists are read back from sled on the next open.
        lists.remove(&key);
        self.allow.remove(key.as_slice())?;
        self.deny.remove(key.as_slice())?;
        Ok(())
    }

    /// `Some(true)` when allowed, `Some(false)` when denied, `None` when on neither list.
    pub fn sender_list(&self, canonical: &str) -> Result<Option<bool>, StoreError> {
        let key = self.list_key(canonical);
        let lists = self.lists.read().unwrap_or_else(|p| p.into_inner());
        Ok(lists.get(&key).copied())
    }

    fn write_lists(&self) -> RwLockWriteGuard<'_, HashMap<Vec<u8>, bool>> {
        self.lists.write().unwrap_or_else(|p| p.into_inner())
    }

    fn list_key(&self, canonical: &str) -> Vec<u8> {
        list_key(self.sealer.as_deref(), canonical)
    }
}

/// The sled key of a sender on a list: its keyed hash in a sealed store, else its text.
fn list_key(sealer: Option<&Sealer>, canonical: &str) -> Vec<u8> {
    match sealer {
        Some(sealer) => {
            let mut key = vec![HASHED_KEY_MARK];
            key.extend_from_slice(&sealer.list_mac(canonical));
            key
        }
        None => canonical.as_bytes().to_vec(),
    }
}

/// The allow and deny lists from sled (allow wins should a sender be on both), keyed as sled
/// keys them; in a sealed store plain keys are first replaced by their hashes.
pub(super) fn load_lists(
    allow: &sled::Tree,
    deny: &sled::Tree,
    sealer: Option<&Sealer>,
) -> Result<HashMap<Vec<u8>, bool>, StoreError> {
    if let Some(sealer) = sealer {
        for tree in [allow, deny] {
            hash_plain_keys(tree, sealer)?;
        }
    }
    let mut lists = HashMap::new();
    for (tree, allowed) in [(deny, false), (allow, true)] {
        for key in tree.iter().keys() {
            lists.insert(key?.to_vec(), allowed);
        }
    }
    Ok(lists)
}

/// Replaces every plain sender key of `tree` with its hash, in one transaction.
fn hash_plain_keys(tree: &sled::Tree, sealer: &Sealer) -> Result<(), StoreError> {
    let mut plain = Vec::new();
    for key in tree.iter().keys() {
        let key = key?;
        if key.first() != Some(&HASHED_KEY_MARK) {
            plain.push(key);
        }
    }
    if plain.is_empty() {
        return Ok(());
    }
    tree.transaction(|tx| {
        for key in &plain {
            let canonical = String::from_utf8_lossy(key);
            tx.insert(list_key(Some(sealer), &canonical), &[])?;
            tx.remove(key)?;
        }
        Ok::<_, ListError>(())
    })?;
    Ok(())
}
