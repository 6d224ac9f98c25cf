//! Handles given to hosts are opaque ids into a process-wide map, never raw pointers: a stale,
//! forged or double-closed handle is a lookup miss (an error), not a use-after-free. Ids are
//! never reused, so a stale handle cannot reach an engine opened later.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::{BridgeError, BridgeResult};

/// A map of live objects keyed by handle id. `0` is never issued, so hosts can use it as "none".
#[derive(Debug)]
pub struct Registry<T> {
    next_id: AtomicU64,
    live: Mutex<HashMap<u64, Arc<T>>>,
}

impl<T> Default for Registry<T> {
    fn default() -> Self {
        Self {
            next_id: AtomicU64::new(1),
            live: Mutex::new(HashMap::new()),
        }
    }
}

impl<T> Registry<T> {
    /// Stores `value` and returns its new, never-before-issued handle.
    pub fn insert(&self, value: T) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(id, Arc::new(value));
        id
    }

    /// A shared reference to the live object; the lock is not held while the caller uses it.
    pub fn get(&self, id: u64) -> BridgeResult<Arc<T>> {
        self.lock()
            .get(&id)
            .cloned()
            .ok_or(BridgeError::ClosedHandle(id))
    }

    /// Removes the handle; later `get`/`remove` calls with it fail. Calls already in flight keep
    /// their own `Arc` and finish normally.
    pub fn remove(&self, id: u64) -> BridgeResult<Arc<T>> {
        self.lock().remove(&id).ok_or(BridgeError::ClosedHandle(id))
    }

    /// Number of live handles (for tests and diagnostics).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no handle is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The map stays consistent even if a holder panicked (every critical section is a single
    /// map operation), so a poisoned lock is recovered instead of failing every later call.
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Arc<T>>> {
        self.live
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_ids_are_nonzero_and_unique() {
        let registry = Registry::default();
        let a = registry.insert("a");
        let b = registry.insert("b");
        assert_ne!(a, 0);
        assert_ne!(a, b);
        assert_eq!(*registry.get(a).unwrap(), "a");
        assert_eq!(*registry.get(b).unwrap(), "b");
    }

    #[test]
    fn removed_handle_is_an_error_not_a_crash() {
        let registry = Registry::default();
        let id = registry.insert(7_u32);
        assert_eq!(*registry.remove(id).unwrap(), 7);
        assert!(matches!(registry.get(id), Err(BridgeError::ClosedHandle(x)) if x == id));
        assert!(matches!(
            registry.remove(id),
            Err(BridgeError::ClosedHandle(_))
        ));
        assert!(registry.is_empty());
    }

    #[test]
    fn ids_are_not_reused_after_close() {
        let registry = Registry::default();
        let first = registry.insert(1_u8);
        registry.remove(first).unwrap();
        let second = registry.insert(2_u8);
        assert_ne!(first, second);
        assert!(registry.get(first).is_err());
    }

    #[test]
    fn in_flight_reference_survives_close() {
        let registry = Registry::default();
        let id = registry.insert(String::from("engine"));
        let in_flight = registry.get(id).unwrap();
        registry.remove(id).unwrap();
        assert_eq!(in_flight.as_str(), "engine");
        assert_eq!(registry.len(), 0);
    }

    #[test]
    fn forged_handle_is_rejected() {
        let registry: Registry<u8> = Registry::default();
        assert!(matches!(registry.get(0), Err(BridgeError::ClosedHandle(0))));
        assert!(registry.get(u64::MAX).is_err());
    }
}
