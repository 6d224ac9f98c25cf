//! The verdict cache: fingerprint hex -> verdict with a wall-clock expiry, bounded in size.
//! Eviction drops the oldest insertions first (`cache_order` maps insertion sequence -> key);
//! expired entries are dropped when met.

use super::{decode, encode, tree, CacheEntry, Store, StoreError, StoredVerdict};

impl Store {
    /// The live entry for `key`; an expired one is removed and reported as absent.
    pub fn cache_get(&self, key: &str, now_ms: i64) -> Result<Option<CacheEntry>, StoreError> {
        let Some(raw) = self.cache.get(key.as_bytes())? else {
            return Ok(None);
        };
        let entry: CacheEntry = decode(tree::CACHE, &raw)?;
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
        let mut len = self.cache_len.lock().unwrap_or_else(|p| p.into_inner());
        let order = self.db.generate_id()?;
        let entry = CacheEntry {
            verdict,
            expires_at_ms,
            order,
        };
        let previous = self
            .cache
            .insert(key.as_bytes(), encode(tree::CACHE, &entry)?)?;
        match previous {
            Some(old) => {
                let old: CacheEntry = decode(tree::CACHE, &old)?;
                self.cache_order.remove(old.order.to_be_bytes())?;
            }
            None => *len += 1,
        }
        self.cache_order
            .insert(order.to_be_bytes(), key.as_bytes())?;
        let mut evicted = 0;
        while *len > capacity.max(1) {
            let Some((_, oldest)) = self.cache_order.pop_min()? else {
                break;
            };
            if self.cache.remove(&oldest)?.is_some() {
                *len -= 1;
                evicted += 1;
            }
        }
        Ok(evicted)
    }

    /// Removes `key`; true when it was cached.
    pub fn cache_remove(&self, key: &str) -> Result<bool, StoreError> {
        let mut len = self.cache_len.lock().unwrap_or_else(|p| p.into_inner());
        let Some(old) = self.cache.remove(key.as_bytes())? else {
            return Ok(false);
        };
        let old: CacheEntry = decode(tree::CACHE, &old)?;
        self.cache_order.remove(old.order.to_be_bytes())?;
        *len = len.saturating_sub(1);
        Ok(true)
    }

    /// Entries in the cache (live or not yet noticed to be expired).
    pub fn cache_len(&self) -> usize {
        *self.cache_len.lock().unwrap_or_else(|p| p.into_inner())
    }
}
