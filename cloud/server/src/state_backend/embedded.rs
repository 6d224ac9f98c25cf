//! The embedded backend: one process's state, as the service kept it before replicas: the
//! similarity memory and the sync log in sled files of the data folder, the sender windows in
//! memory. Its scorers read the state in process, so nothing is prefetched.

use std::collections::BTreeMap;
use std::sync::Arc;

use smsguard_core::{Fingerprint, Label};
use smsguard_scoring::similarity::{AuditRecord, Entry, PrefixBucket, SimilarityError, UserReport};
use smsguard_scoring::{SenderReputation, SimilarityStore};

use super::{PrefetchRequest, Prefetched, RateLimit, RecordedReport, StateBackend, StateError};
use crate::operator_list::OperatorListing;
use crate::sync::{Change, SyncLog, SyncPage};

/// The sled tree of operator listings (in the sync store): fingerprint id (big-endian) -> JSON.
const OPERATOR_LIST_TREE: &str = "operator_list";

/// sled and in-memory state of one replica.
#[derive(Debug)]
pub struct EmbeddedState {
    pub similarity: Arc<SimilarityStore>,
    pub sender: Arc<SenderReputation>,
    pub sync: SyncLog,
}

fn store_error(error: impl std::fmt::Display) -> StateError {
    StateError::Store(error.to_string())
}

impl From<SimilarityError> for StateError {
    fn from(error: SimilarityError) -> Self {
        store_error(error)
    }
}

impl StateBackend for EmbeddedState {
    fn kind(&self) -> &'static str {
        "embedded"
    }

    fn prefetch(&self, _request: &PrefetchRequest<'_>) -> Result<Prefetched, StateError> {
        Ok(Prefetched::InProcess)
    }

    fn similarity_len(&self) -> usize {
        self.similarity.len()
    }

    fn entry(&self, id: u64) -> Result<Option<Entry>, StateError> {
        Ok(self.similarity.entry(id)?)
    }

    fn prefix_buckets(
        &self,
        prefixes: &[u32],
        bits: u32,
        cap: usize,
    ) -> Result<Vec<PrefixBucket>, StateError> {
        let bucket = |(band, &prefix): (usize, &u32)| {
            Ok(self.similarity.prefix_bucket(band, prefix, bits, cap)?)
        };
        prefixes.iter().enumerate().map(bucket).collect()
    }

    fn add_spam(&self, fp: &Fingerprint, label: Label) -> Result<Entry, StateError> {
        Ok(self.similarity.add_spam(fp, label)?)
    }

    fn record_report(
        &self,
        fp: &Fingerprint,
        report: &UserReport<'_>,
    ) -> Result<RecordedReport, StateError> {
        // The caller serialises reports (one process), so reading `before` apart is exact.
        let before = self.similarity.entry(fp.id())?;
        let after = self.similarity.record_report(fp, report)?;
        Ok(RecordedReport { before, after })
    }

    fn record_sender_report(
        &self,
        sender_key: [u8; 16],
        reporter: &str,
        spam: bool,
    ) -> Result<(), StateError> {
        self.sender
            .record_report_by_key(sender_key, reporter, spam)
            .map_err(store_error)
    }

    fn take_token(&self, _limit: &RateLimit<'_>) -> Result<bool, StateError> {
        Ok(true)
    }

    fn sync_append(&self, changes: &[Change]) -> Result<u64, StateError> {
        self.sync.append(changes).map_err(store_error)
    }

    fn sync_since(&self, since: u64, max_entries: usize) -> Result<SyncPage, StateError> {
        self.sync.since(since, max_entries).map_err(store_error)
    }

    fn sync_version(&self) -> Result<u64, StateError> {
        self.sync.version().map_err(store_error)
    }

    fn sync_sender_rules(&self, current: &BTreeMap<String, i32>) -> Result<usize, StateError> {
        self.sync.sync_sender_rules(current).map_err(store_error)
    }

    fn recent_reports(&self, limit: usize) -> Result<Vec<AuditRecord>, StateError> {
        Ok(self.similarity.recent_audit(limit)?)
    }

    fn operator_listings(&self) -> Result<Vec<OperatorListing>, StateError> {
        let tree = self.sync.tree(OPERATOR_LIST_TREE).map_err(store_error)?;
        let mut listings = Vec::new();
        for item in tree.iter() {
            let (_, value) = item.map_err(store_error)?;
            listings.push(
                serde_json::from_slice(&value)
                    .map_err(|e| StateError::Corrupt(format!("an operator listing: {e}")))?,
            );
        }
        Ok(listings)
    }

    fn put_operator_listing(&self, listing: &OperatorListing) -> Result<(), StateError> {
        let tree = self.sync.tree(OPERATOR_LIST_TREE).map_err(store_error)?;
        let value = serde_json::to_vec(listing).map_err(store_error)?;
        tree.insert(listing.fingerprint_id.to_be_bytes(), value)
            .map_err(store_error)?;
        tree.flush().map(|_| ()).map_err(store_error)
    }

    fn remove_operator_listing(&self, id: u64) -> Result<(), StateError> {
        let tree = self.sync.tree(OPERATOR_LIST_TREE).map_err(store_error)?;
        tree.remove(id.to_be_bytes()).map_err(store_error)?;
        tree.flush().map(|_| ()).map_err(store_error)
    }

    fn flush(&self) -> Result<(), StateError> {
        self.similarity.flush()?;
        self.sync.flush().map_err(store_error)
    }
}
