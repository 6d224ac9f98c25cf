//! Where the service keeps the state its replicas must agree on: the similarity memory (entries,
//! votes, audit, reputations), the sync change log, the sender-behaviour windows and the rate
//! limits. Two backends behind one trait, [`StateBackend`]:
//!
//! * [`embedded::EmbeddedState`] (the default): today's single-process state, sled files in the
//!   data folder and windows in memory. Its scorers read their state in process, so
//!   [`StateBackend::prefetch`] has nothing to fetch.
//! * [`redis::RedisState`] (`--state redis://HOST:PORT/DB`): every replica reads and writes one
//!   Redis, so a report through one replica changes the verdicts of the others, versions of
//!   the change log are monotonic across replicas and a key's rate limit holds across them.
//!   Scoring stays synchronous: everything one message needs is fetched in one pipelined round
//!   trip before the scorers run ([`Prefetched::Shared`]).
//!
//! Nothing above this module sees a Redis type: errors are [`StateError`], data are the
//! scoring crate's types.

pub mod embedded;
pub mod redis;

use std::collections::BTreeMap;

use smsguard_core::{Fingerprint, Label};
use smsguard_scoring::sender::SenderSnapshot;
use smsguard_scoring::similarity::{AuditRecord, Entry, PrefixBucket, UserReport};

use crate::operator_list::OperatorListing;

use crate::sync::{Change, SyncPage};

/// Errors of a state backend. None quotes message text or a sender.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StateError {
    /// The shared store did not answer in time or refused the connection.
    #[error("shared state unavailable: {0}")]
    Unavailable(String),
    /// The store answered something this build cannot read.
    #[error("shared state is corrupt: {0}")]
    Corrupt(String),
    /// The embedded store failed (sled, a poisoned lock).
    #[error("state store: {0}")]
    Store(String),
    #[error("bad state URL `{url}`: {reason}")]
    BadUrl { url: String, reason: String },
    /// This backend cannot serve the operation (the caller answers FAILED_PRECONDITION).
    #[error("not served by the {backend} state: {what}")]
    Unsupported {
        backend: &'static str,
        what: &'static str,
    },
}

/// What one message's scoring needs from shared state.
#[derive(Debug, Clone, Copy)]
pub struct PrefetchRequest<'a> {
    pub fingerprint: &'a Fingerprint,
    /// The salted sender hash ([`smsguard_scoring::SenderReputation::sender_key`]).
    pub sender_key: [u8; 16],
    /// The salted device hash ([`smsguard_scoring::SenderReputation::id_key`]).
    pub device_key: u64,
    /// The server-trusted receive time (ms since the Unix epoch).
    pub at_ms: i64,
    /// The caller's shared rate limit to charge one message to, if any.
    pub rate: Option<RateLimit<'a>>,
}

/// A per-key rate limit: `rate_per_second` sustained, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit<'a> {
    pub key_id: &'a str,
    pub rate_per_second: f64,
    pub burst: u32,
}

/// The shared-state inputs of one message, fetched before the (blocking) scoring.
#[derive(Debug, Clone, PartialEq)]
pub struct SharedInputs {
    /// Entries sharing an LSH band with the message (newest of each bucket, every reported one).
    pub candidates: Vec<Entry>,
    /// The sender's windows, this message counted.
    pub sender: SenderSnapshot,
    /// False when the caller's shared rate limit refused the message.
    pub rate_allowed: bool,
}

/// What [`StateBackend::prefetch`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum Prefetched {
    /// The scorers hold the state in process (embedded backend): nothing was fetched.
    InProcess,
    /// Inputs read from the shared store.
    Shared(SharedInputs),
}

/// A report as recorded: the entry before and after it, read atomically with the write.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedReport {
    pub before: Option<Entry>,
    pub after: Entry,
}

/// The state a replica shares with the others (or, embedded, keeps alone).
pub trait StateBackend: Send + Sync + std::fmt::Debug {
    /// `embedded` or `redis` (logs, metrics).
    fn kind(&self) -> &'static str;

    /// True when other replicas share this state: limits must then be taken here
    /// ([`Self::take_token`], [`PrefetchRequest::rate`]) to hold across them.
    fn shared(&self) -> bool {
        false
    }

    /// Reads what scoring the message needs and counts it into its sender's windows and the
    /// caller's rate limit: one round trip at most. Blocking: call off the async runtime.
    fn prefetch(&self, request: &PrefetchRequest<'_>) -> Result<Prefetched, StateError>;

    /// [`Self::prefetch`] for several messages (a `ClassifyStream` frame) in one round trip.
    fn prefetch_many(
        &self,
        requests: &[PrefetchRequest<'_>],
    ) -> Result<Vec<Prefetched>, StateError> {
        requests.iter().map(|r| self.prefetch(r)).collect()
    }

    /// Number of remembered fingerprints (cached; for gauges).
    fn similarity_len(&self) -> usize;

    /// The stored entry of fingerprint id `id`.
    fn entry(&self, id: u64) -> Result<Option<Entry>, StateError>;

    /// For every band `b`, the entries whose band key in that band starts with `prefixes[b]`
    /// (its top `bits` bits): how many the bucket offers and at most `cap` of them, by the rule
    /// every backend shares ([`smsguard_scoring::similarity::key_share`]; the private similarity
    /// lookup).
    fn prefix_buckets(
        &self,
        prefixes: &[u32],
        bits: u32,
        cap: usize,
    ) -> Result<Vec<PrefixBucket>, StateError>;

    /// The shortest prefix this backend serves (a shorter one would make it read more than
    /// one stored group per band).
    fn min_prefix_bits(&self) -> u32 {
        *smsguard_scoring::similarity::PREFIX_BITS.start()
    }

    /// Remembers `fp` as seeded spam of class `label` (corpora, spam feed).
    fn add_spam(&self, fp: &Fingerprint, label: Label) -> Result<Entry, StateError>;

    /// Records a user report (one vote per reporter; the latest counts); durable before it
    /// returns.
    fn record_report(
        &self,
        fp: &Fingerprint,
        report: &UserReport<'_>,
    ) -> Result<RecordedReport, StateError>;

    /// `reporter`'s vote on the sender with hash `sender_key`.
    fn record_sender_report(
        &self,
        sender_key: [u8; 16],
        reporter: &str,
        spam: bool,
    ) -> Result<(), StateError>;

    /// Takes one token of `limit`'s bucket; false when it is empty. Shared across replicas on
    /// Redis; the embedded backend never limits here (its limits live in the API-key check).
    fn take_token(&self, limit: &RateLimit<'_>) -> Result<bool, StateError>;

    /// Appends changes under consecutive new versions; returns the last version.
    fn sync_append(&self, changes: &[Change]) -> Result<u64, StateError>;

    /// Changes after `since`, at most `max_entries`.
    fn sync_since(&self, since: u64, max_entries: usize) -> Result<SyncPage, StateError>;

    /// The newest version of the change log.
    fn sync_version(&self) -> Result<u64, StateError>;

    /// Logs the difference between `current` sender rules and the last logged ones.
    fn sync_sender_rules(&self, current: &BTreeMap<String, i32>) -> Result<usize, StateError>;

    /// The newest `limit` user reports of the audit trail, newest first (the console's pages).
    fn recent_reports(&self, limit: usize) -> Result<Vec<AuditRecord>, StateError>;

    /// Every operator listing (the console's whitelist and blacklist).
    fn operator_listings(&self) -> Result<Vec<OperatorListing>, StateError>;

    /// Stores `listing`, replacing the fingerprint's earlier one; durable before it returns.
    fn put_operator_listing(&self, listing: &OperatorListing) -> Result<(), StateError>;

    /// Removes fingerprint `id`'s listing, if any; durable before it returns.
    fn remove_operator_listing(&self, id: u64) -> Result<(), StateError>;

    /// Makes every acknowledged write durable (sled flush; Redis persists by itself).
    fn flush(&self) -> Result<(), StateError>;
}
