//! The verdict cache: fingerprint hex -> verdict with a wall-clock expiry, bounded in size.
//! Eviction drops the oldest insertions first (`cache_order` maps insertion sequence -> key);
//! expired entries are dropped when met.
//!
//! sled holds the cache across restarts; an in-memory copy (at most `capacity` small entries)
//! answers lookups, so `classify` reads no sled page and decodes no JSON on a cache hit. Its lock
//! also serialises cache writes, keeping both in step.

use std::collections::HashMap;
use std::sync::{RwLockReadGuard, RwLockWriteGuard};

use super::{decode, encode, tree, CacheEntry, Store, StoreError, StoredVerdict};

/// The in-memory copy of the cache tree.
pub(super) type CacheMirror = HashMap<String, CacheEntry>;

/// Reads the cache tree; entries that do not decode are left out (and so never hit).
pub(super) fn load_mirror(cache: &sled::Tree) -> Result<CacheMirror, StoreError> {
    let mut mirror = CacheMirror::new();
    for entry in cache.iter() {
        let (key, value) = entry?;
        let (Ok(key), Ok(entry)) = (
            String::from_utf8(key.to_vec()),
            decode::<CacheEntry>(tree::CACHE, &value),
        ) else {
            continue;
        };
        mirror.insert(key, entry);
    }
    Ok(mirror)
}

impl Store {
    fn read_mirror(&self) -> RwLockReadGuard<'_, CacheMirror> {
        self.cache_mirror
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write_mirror(&self) -> RwLockWriteGuard<'_, CacheMirror> {
        self.cache_mirror
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The live entry for `key`; an expired one is removed and reported as absent.
    pub fn cache_get(&self, key: &str, now_ms: i64) -> Result<Option<CacheEntry>, StoreError> {
        let Some(entry) = self.read_mirror().get(key).copied() else {
            return Ok(None);
        };
        if entry.expires_at_ms > now_ms {
            return Ok(Some(entry));
        }
        self.cache_remove(key)?;
        Ok(None)
    }

    /// Inserts or replaces `key`, then evicts the oldest entries beyond `capacity`. Returns how
    /// many entries were evicted.
    pub fn cache_put(
        &self,
        key: &str,
        verdict: StoredVerdict,
        expires_at_ms: i64,
        capacity: usize,
    ) -> Result<usize, StoreError> {
        let mut mirror = self.write_mirror();
        let order = self.db.generate_id()?;
        let entry = CacheEntry {
            verdict,
            expires_at_ms,
            order,
        };
        let previous = self
            .cache
            .insert(key.as_bytes(), encode(tree::CACHE, &entry)?)?;
        if let Some(old) = previous {
            let old: CacheEntry = decode(tree::CACHE, &old)?;
            self.cache_order.remove(old.order.to_be_bytes())?;
        }
        mirror.insert(key.to_string(), entry);
        self.cache_order
            .insert(order.to_be_bytes(), key.as_bytes())?;
        let mut evicted = 0;
        while mirror.len() > capacity.max(1) {
            let Some((_, oldest)) = self.cache_order.pop_min()? else {
                break;
            };
            if self.cache.remove(&oldest)?.is_some() {
                evicted += 1;
            }
            mirror.remove(String::from_utf8_lossy(&oldest).as_ref());
        }
        Ok(evicted)
    }

    /// Removes `key`; true when it was cached.
    pub fn cache_remove(&self, key: &str) -> Result<bool, StoreError> {
        let mut mirror = self.write_mirror();
        let Some(old) = self.cache.remove(key.as_bytes())? else {
            mirror.remove(key);
            return Ok(false);
        };
        mirror.remove(key);
        let old: CacheEntry = decode(tree::CACHE, &old)?;
        self.cache_order.remove(old.order.to_be_bytes())?;
        Ok(true)
    }

    /// Entries in the cache (live or not yet noticed to be expired).
    pub fn cache_len(&self) -> usize {
        self.read_mirror().len()
    }
}
