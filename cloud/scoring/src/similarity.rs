//! Near-duplicate memory of known spam, keyed by one-way fingerprints.
//!
//! # What is stored
//! One [`Entry`] per fingerprint id: the 64 MinHash slots, a label, how often the training
//! corpora or the spam feed seeded it, and the users' "spam" and "not spam" reports, kept apart:
//! seeded entries score as the fusion was fitted on, user reports are explicit human labels and
//! act on their own (see "User reports" below). Only fingerprints are stored (they cannot be
//! turned back into text). The sled tree `entries` maps the big-endian fingerprint id to a fixed
//! 270-byte record (see [`encode_entry`]); [`SimilarityStore::open`] rebuilds the in-memory index
//! from it. The trees `votes`, `audit` and `reputation` hold one vote per (fingerprint, reporter
//! hash), every report received and each reporter's track record (see `similarity/reports.rs`).
//!
//! # LSH choice: 16 bands × 4 rows
//! The 64 slots are cut into `b = 16` bands of `r = 4` rows. Two messages become candidates when
//! any band is equal, which happens with probability `1 - (1 - J^4)^16` for Jaccard similarity
//! `J`: 0.13 at J = 0.3, 0.64 at J = 0.5, 0.89 at J = 0.6, 0.99 at J = 0.7. The S-curve's middle,
//! `(1/16)^(1/4) = 0.5`, sits at the default match threshold [`SimilarityConfig::min_jaccard`], so
//! near-duplicates (J >= 0.7, typically one changed word or number) are almost never missed, while
//! unrelated messages (J < 0.3) rarely cost a verification. Candidates are verified with the
//! 64-slot Jaccard estimate (standard error about 0.06).
//! Verification exits early once the threshold is out of reach, each candidate is verified once
//! per lookup (per-thread generation stamps, no allocation), and a bucket holding more than
//! [`MAX_BUCKET_SCAN`] entries (a "common shingles" band) is scanned only for its newest ones.
//!
//! # User reports
//! Each reporter has one vote per fingerprint; reporting again changes the vote instead of adding
//! one. A reporter is an identity the client cannot mint: the server passes the API key, never
//! the client-chosen device id (one key inventing device ids would otherwise outvote everyone).
//! Reports are votes, not facts: until [`SimilarityConfig::report_quorum`] distinct reporters
//! agree on a fingerprint, its user reports change nothing for anyone (no score, no evidence,
//! no whitelist). From the quorum, a near-duplicate (Jaccard at or above
//! [`SimilarityConfig::report_min_jaccard`], stricter than the match threshold) scores at least
//! `1 - 0.1 / reports` and is forced to [`ForcedAction::Quarantine`] with the authority of
//! [`crate::ForceAuthority::UserReports`]: never `Block`, so a false report stays recoverable, and any
//! operator rule (an allow rule for a carrier or a bank template) outranks it. A reporter whose
//! votes keep disagreeing with the consensus that forms is distrusted and its later votes count
//! for nothing ([`Reputation`]); every report is audited ([`AuditRecord`]).
//!
//! # Whitelist beats blacklist
//! A fingerprint with at least [`SimilarityConfig::report_quorum`] "not spam" reports is
//! whitelisting: when a match of a message above the threshold is whitelisting, the message
//! scores 0 with label `Ham`, whatever corpus spam matches it also has, unless a user-reported
//! near-duplicate has strictly more user spam reports than the whitelisting match has "not spam"
//! reports (at equal counts the whitelist wins).

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use smsguard_core::fingerprint::NUM_HASHES;
use smsguard_core::{Fingerprint, Label, MinHasher};

use crate::{ForcedAction, MessageContext, ModelScore, Scorer, ScoringError};

use smsguard_core::lsh::band_key;

mod codec;
mod reports;
pub use codec::encode_entry;
use codec::{check_format, decode_entry};
pub use reports::{
    id_hash, AuditRecord, Reputation, UserReport, AUDIT_RECORD_LEN, DISTRUST_MIN_DISAGREED,
};
use reports::{ReportTrees, AUDIT_TREE, REPUTATION_TREE, VOTES_TREE};
pub use smsguard_core::lsh::{BANDS, ROWS_PER_BAND as ROWS};

const ENTRIES_TREE: &str = "entries";
/// Marks the end of a bucket chain in [`LshIndex::next`].
const NO_ENTRY: u32 = u32::MAX;

/// Errors of the similarity store. None quotes message text.
#[derive(Debug, thiserror::Error)]
pub enum SimilarityError {
    #[error("cannot open similarity store at {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: sled::Error,
    },
    #[error("similarity store at {path} is corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("similarity store I/O failed: {0}")]
    Store(#[from] sled::Error),
    #[error("the similarity index is unavailable (a writer panicked)")]
    Poisoned,
    #[error("add_spam needs a spam label, got {0}")]
    NotSpamLabel(Label),
}

/// Tuning of the similarity scorer.
#[derive(Debug, Clone)]
pub struct SimilarityConfig {
    /// Jaccard estimate from which a candidate counts as a match.
    pub min_jaccard: f32,
    /// Jaccard estimate from which a quorum of user spam reports acts on a near-duplicate.
    pub report_min_jaccard: f32,
    /// Distinct reporters (API keys) that must agree before their reports act for anyone:
    /// "spam" reports quarantine near-duplicates, "not spam" reports whitelist them. Below it
    /// user reports are recorded but change no score.
    pub report_quorum: u32,
    /// Normalised texts shorter than this (in chars) are not seeded: short texts ("ok thanks")
    /// would match too much ham.
    pub min_seed_chars: usize,
    /// sled page-cache size in bytes.
    pub cache_capacity_bytes: u64,
}

impl Default for SimilarityConfig {
    fn default() -> Self {
        SimilarityConfig {
            min_jaccard: 0.5,
            report_min_jaccard: 0.7,
            report_quorum: 3,
            min_seed_chars: 12,
            cache_capacity_bytes: 32 * 1024 * 1024,
        }
    }
}

/// One remembered fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: u64,
    pub minhash: [u32; NUM_HASHES],
    pub label: Label,
    /// Times the training corpora or the spam feed added it ([`SimilarityStore::add_spam`]).
    pub seed_count: u32,
    /// Reporters whose current vote is "spam".
    pub user_spam_reports: u32,
    /// Reporters whose current vote is "not spam".
    pub not_spam_reports: u32,
}

impl Entry {
    fn empty(fp: &Fingerprint) -> Self {
        Entry {
            id: fp.id(),
            minhash: fp.minhash,
            label: Label::Spam,
            seed_count: 0,
            user_spam_reports: 0,
            not_spam_reports: 0,
        }
    }

    /// Seeded and user-reported spam evidence together.
    pub fn spam_evidence(&self) -> u32 {
        self.seed_count.saturating_add(self.user_spam_reports)
    }

    /// Seeded spam evidence, plus the user spam reports once they reach `quorum` (fewer are
    /// votes that count for nothing yet).
    pub fn counted_spam_evidence(&self, quorum: u32) -> u32 {
        self.seed_count
            .saturating_add(self.counted_user_spam_reports(quorum))
    }

    /// The user spam reports once they reach `quorum`, else 0.
    pub fn counted_user_spam_reports(&self, quorum: u32) -> u32 {
        if self.user_spam_reports >= quorum.max(1) {
            self.user_spam_reports
        } else {
            0
        }
    }

    /// True when users reported it at all (such entries are never lost to the bucket cap).
    fn user_reported(&self) -> bool {
        self.user_spam_reports > 0 || self.not_spam_reports > 0
    }
}

/// What the users' reports on a fingerprint say for everyone ([`SimilarityStore::consensus`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consensus {
    /// No quorum either way: the reports affect nobody.
    None,
    /// A quorum reported it as spam: its near-duplicates are quarantined.
    Spam,
    /// A quorum reported it as not spam: it whitelists its near-duplicates.
    NotSpam,
}

/// The deciding match of a lookup.
#[derive(Debug, Clone, PartialEq)]
pub struct SimilarityMatch {
    pub fingerprint_id: u64,
    pub jaccard: f32,
    pub label: Label,
    pub seed_count: u32,
    pub user_spam_reports: u32,
    pub not_spam_reports: u32,
    /// True when the message is whitelisted (this match is then the whitelisting one).
    pub whitelisted: bool,
}

impl SimilarityMatch {
    fn of(entry: &Entry, equal: usize, whitelisted: bool) -> Self {
        SimilarityMatch {
            fingerprint_id: entry.id,
            jaccard: equal as f32 / NUM_HASHES as f32,
            label: entry.label,
            seed_count: entry.seed_count,
            user_spam_reports: entry.user_spam_reports,
            not_spam_reports: entry.not_spam_reports,
            whitelisted,
        }
    }
}

/// Every kind of match a lookup found; [`Matches::deciding`] picks the one that explains it.
#[derive(Debug, Clone, Default, PartialEq)]
struct Matches {
    /// The closest match with spam evidence and no whitelist.
    spam: Option<SimilarityMatch>,
    /// The near-duplicate (at `report_min_jaccard`) with the most user spam reports.
    reported: Option<SimilarityMatch>,
    /// The whitelisting match, when it wins.
    white: Option<SimilarityMatch>,
}

impl Matches {
    fn deciding(self) -> Option<SimilarityMatch> {
        self.white.or(self.reported).or(self.spam)
    }
}

/// Buckets holding more entries than this are "common shingles": their 4-slot band is shared by
/// many unrelated texts (a frequent template or phrase), so a hit on them carries little signal.
/// Only their newest `MAX_BUCKET_SCAN` entries are verified. A near-duplicate of a text in such
/// a bucket is still found through its other bands (at Jaccard 0.6 it shares about 2 of 16
/// bands on average), or through the newest members of the crowded bucket, which are themselves
/// near-duplicates of one another when the crowd is one spam campaign. Entries with "not spam"
/// reports are also kept in an uncapped side index, so a whitelist is never lost to the cap.
pub const MAX_BUCKET_SCAN: usize = 48;

/// What one lookup cost; see [`SimilarityStore::lookup_with_stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LookupStats {
    /// Distinct entries whose MinHash was compared.
    pub candidates: usize,
    /// Bucket hits skipped because of [`MAX_BUCKET_SCAN`] (entries beyond the cap).
    pub skipped_by_cap: usize,
}

/// A pass-through hasher for band keys, which are already SplitMix64 outputs: hashing them again
/// with SipHash would only cost time.
#[derive(Debug, Default, Clone, Copy)]
struct BandKeyHasher(u64);

impl Hasher for BandKeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

type BandMap<V> = HashMap<u64, V, BuildHasherDefault<BandKeyHasher>>;

/// The newest entry of a bucket and the bucket's size.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    head: u32,
    len: u32,
}

/// Banded LSH over the entries: one hash map from (band, band hash) to the newest entry of that
/// bucket, and per entry and band a link to the previous entry of the same bucket. This keeps the
/// index at about 16 map slots + 64 bytes of links per entry, without one allocation per bucket.
/// Entries with user reports (few) are also listed per band in `reported`, which is never capped.
#[derive(Debug, Default)]
struct LshIndex {
    entries: Vec<Entry>,
    by_id: HashMap<u64, u32>,
    buckets: BandMap<Bucket>,
    next: Vec<[u32; BANDS]>,
    reported: BandMap<Vec<u32>>,
}

/// The fewest equal slots whose Jaccard estimate (`equal / 64`) reaches `min_jaccard`;
/// `NUM_HASHES + 1` when no count does.
fn min_equal_slots(min_jaccard: f32) -> usize {
    (0..=NUM_HASHES)
        .find(|&equal| equal as f32 / NUM_HASHES as f32 >= min_jaccard)
        .unwrap_or(NUM_HASHES + 1)
}

/// Number of equal slots of `a` and `b`, or `None` as soon as `min_equal` is out of reach.
fn equal_slots_at_least(
    a: &[u32; NUM_HASHES],
    b: &[u32; NUM_HASHES],
    min_equal: usize,
) -> Option<usize> {
    const CHUNK: usize = 8;
    let mut equal = 0;
    for (i, (x, y)) in a.chunks_exact(CHUNK).zip(b.chunks_exact(CHUNK)).enumerate() {
        equal += x.iter().zip(y).filter(|(p, q)| p == q).count();
        let remaining = NUM_HASHES - (i + 1) * CHUNK;
        if equal + remaining < min_equal {
            return None;
        }
    }
    Some(equal)
}

/// Per-thread "seen in this lookup" stamps over entry slots: a slot is seen when its stamp
/// equals the current generation, so clearing costs one increment instead of a pass or an
/// allocation per lookup.
#[derive(Debug, Default)]
struct VisitedStamps {
    generation: u32,
    stamps: Vec<u32>,
}

impl VisitedStamps {
    fn start(&mut self, slots: usize) {
        if self.stamps.len() < slots {
            self.stamps.resize(slots, 0);
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.stamps.fill(0);
            self.generation = 1;
        }
    }

    /// True the first time `slot` is seen in this generation.
    fn first_visit(&mut self, slot: u32) -> bool {
        let stamp = &mut self.stamps[slot as usize];
        let first = *stamp != self.generation;
        *stamp = self.generation;
        first
    }
}

thread_local! {
    static VISITED: RefCell<VisitedStamps> = RefCell::new(VisitedStamps::default());
}

/// The lookup thresholds in equal MinHash slots, and the whitelist count.
#[derive(Debug, Clone, Copy)]
struct Limits {
    min_equal: usize,
    report_min_equal: usize,
    quorum: u32,
}

impl Limits {
    fn of(config: &SimilarityConfig) -> Self {
        Limits {
            min_equal: min_equal_slots(config.min_jaccard),
            report_min_equal: min_equal_slots(config.report_min_jaccard),
            quorum: config.report_quorum.max(1),
        }
    }
}

/// The best match of each kind seen so far (entry, equal slots).
#[derive(Default)]
struct BestMatches<'a> {
    spam: Option<(&'a Entry, usize)>,
    reported: Option<(&'a Entry, usize)>,
    white: Option<(&'a Entry, usize)>,
}

/// Replaces `best` when `candidate` ranks higher by (`rank`, equal slots).
fn keep_best<'a>(
    best: &mut Option<(&'a Entry, usize)>,
    candidate: (&'a Entry, usize),
    rank: impl Fn(&Entry) -> u32,
) {
    let key = |(entry, equal): (&Entry, usize)| (rank(entry), equal);
    if best.is_none_or(|current| key(candidate) > key(current)) {
        *best = Some(candidate);
    }
}

impl<'a> BestMatches<'a> {
    fn offer(&mut self, entry: &'a Entry, equal: usize, limits: &Limits) {
        let whitelisting = entry.not_spam_reports >= limits.quorum;
        if whitelisting {
            keep_best(&mut self.white, (entry, equal), |e| e.not_spam_reports);
        } else if entry.counted_spam_evidence(limits.quorum) > 0 {
            keep_best(&mut self.spam, (entry, equal), |_| 0);
        }
        if entry.user_spam_reports >= limits.quorum && equal >= limits.report_min_equal {
            keep_best(&mut self.reported, (entry, equal), |e| e.user_spam_reports);
        }
    }

    /// The whitelist wins unless the reported near-duplicate has strictly more user spam
    /// reports than the whitelisting match has "not spam" reports.
    fn into_matches(self) -> Matches {
        let white_wins = match (self.white, self.reported) {
            (Some((white, _)), Some((reported, _))) => {
                white.not_spam_reports >= reported.user_spam_reports
            }
            (white, _) => white.is_some(),
        };
        if white_wins {
            return Matches {
                white: self
                    .white
                    .map(|(e, equal)| SimilarityMatch::of(e, equal, true)),
                ..Matches::default()
            };
        }
        let found =
            |m: Option<(&Entry, usize)>| m.map(|(e, equal)| SimilarityMatch::of(e, equal, false));
        Matches {
            spam: found(self.spam),
            reported: found(self.reported),
            white: None,
        }
    }
}

impl LshIndex {
    /// Inserts a new entry or replaces the fields of an existing one (same id, same slots).
    fn upsert(&mut self, entry: Entry) {
        if let Some(&slot) = self.by_id.get(&entry.id) {
            let newly_reported =
                !self.entries[slot as usize].user_reported() && entry.user_reported();
            self.entries[slot as usize] = entry;
            if newly_reported {
                self.list_reported(slot);
            }
            return;
        }
        let slot = self.entries.len() as u32;
        let mut links = [NO_ENTRY; BANDS];
        for (band, link) in links.iter_mut().enumerate() {
            let bucket = self
                .buckets
                .entry(band_key(&entry.minhash, band))
                .or_insert(Bucket {
                    head: NO_ENTRY,
                    len: 0,
                });
            *link = bucket.head;
            bucket.head = slot;
            bucket.len = bucket.len.saturating_add(1);
        }
        let reported = entry.user_reported();
        self.by_id.insert(entry.id, slot);
        self.entries.push(entry);
        self.next.push(links);
        if reported {
            self.list_reported(slot);
        }
    }

    fn list_reported(&mut self, slot: u32) {
        for band in 0..BANDS {
            let key = band_key(&self.entries[slot as usize].minhash, band);
            self.reported.entry(key).or_default().push(slot);
        }
    }

    fn get(&self, id: u64) -> Option<&Entry> {
        self.by_id
            .get(&id)
            .map(|&slot| &self.entries[slot as usize])
    }

    /// A copy of the entry of `fp` to update, or a new empty one.
    fn entry_or_empty(&self, fp: &Fingerprint) -> Entry {
        self.get(fp.id())
            .cloned()
            .unwrap_or_else(|| Entry::empty(fp))
    }

    /// Verifies every entry sharing a band with `fp` (newest [`MAX_BUCKET_SCAN`] per bucket,
    /// every user-reported entry) once, keeping the best spam, user-reported and whitelisting
    /// matches.
    fn best_matches(&self, fp: &Fingerprint, limits: &Limits) -> (Matches, LookupStats) {
        let mut stats = LookupStats::default();
        let mut best = BestMatches::default();
        VISITED.with_borrow_mut(|visited| {
            visited.start(self.entries.len());
            let mut verify = |slot: u32, stats: &mut LookupStats| {
                if !visited.first_visit(slot) {
                    return;
                }
                stats.candidates += 1;
                let entry = &self.entries[slot as usize];
                if let Some(equal) =
                    equal_slots_at_least(&entry.minhash, &fp.minhash, limits.min_equal)
                {
                    best.offer(entry, equal, limits);
                }
            };
            for band in 0..BANDS {
                let key = band_key(&fp.minhash, band);
                if let Some(bucket) = self.buckets.get(&key) {
                    let mut slot = bucket.head;
                    let mut scanned = 0;
                    while slot != NO_ENTRY && scanned < MAX_BUCKET_SCAN {
                        verify(slot, &mut stats);
                        slot = self.next[slot as usize][band];
                        scanned += 1;
                    }
                    stats.skipped_by_cap += (bucket.len as usize).saturating_sub(scanned);
                }
                for &slot in self.reported.get(&key).map_or(&[][..], Vec::as_slice) {
                    verify(slot, &mut stats);
                }
            }
        });
        (best.into_matches(), stats)
    }
}

/// Persistent near-duplicate memory; also the `similarity` [`Scorer`].
#[derive(Debug)]
pub struct SimilarityStore {
    path: PathBuf,
    config: SimilarityConfig,
    entries: sled::Tree,
    reports: ReportTrees,
    db: sled::Db,
    index: RwLock<LshIndex>,
    hasher: MinHasher,
}

impl SimilarityStore {
    /// Opens (or creates) the store in directory `dir` with the default config.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, SimilarityError> {
        Self::open_with(dir, SimilarityConfig::default())
    }

    /// Opens (or creates) the store and rebuilds the in-memory index from every stored record.
    pub fn open_with(
        dir: impl AsRef<Path>,
        config: SimilarityConfig,
    ) -> Result<Self, SimilarityError> {
        let path = dir.as_ref().to_path_buf();
        let open_error = |source| SimilarityError::Open {
            path: path.clone(),
            source,
        };
        let sled_config = || {
            sled::Config::new()
                .path(&path)
                .cache_capacity(config.cache_capacity_bytes)
        };
        let db = crate::sled_open::open_waiting_for_lock(sled_config).map_err(open_error)?;
        check_format(&db, &path)?;
        let entries = db.open_tree(ENTRIES_TREE).map_err(open_error)?;
        let reports = ReportTrees {
            votes: db.open_tree(VOTES_TREE).map_err(open_error)?,
            audit: db.open_tree(AUDIT_TREE).map_err(open_error)?,
            reputation: db.open_tree(REPUTATION_TREE).map_err(open_error)?,
            db: db.clone(),
        };
        let mut index = LshIndex::default();
        for item in entries.iter() {
            let (key, value) = item.map_err(open_error)?;
            index.upsert(decode_entry(&key, &value).map_err(|reason| {
                SimilarityError::Corrupt {
                    path: path.clone(),
                    reason,
                }
            })?);
        }
        Ok(SimilarityStore {
            path,
            config,
            entries,
            reports,
            db,
            index: RwLock::new(index),
            hasher: MinHasher::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of remembered fingerprints.
    pub fn len(&self) -> usize {
        self.index
            .read()
            .map(|index| index.entries.len())
            .unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The stored entry of fingerprint id `id`, if any.
    pub fn entry(&self, id: u64) -> Result<Option<Entry>, SimilarityError> {
        let index = self.index.read().map_err(|_| SimilarityError::Poisoned)?;
        Ok(index.get(id).cloned())
    }

    /// Remembers `fp` as seeded spam of class `label` (training corpora, spam feed: one more
    /// [`Entry::seed_count`]). Not flushed: call [`Self::flush`] after a batch; sled also flushes
    /// in the background. User feedback goes through [`Self::record_report`] instead.
    pub fn add_spam(&self, fp: &Fingerprint, label: Label) -> Result<Entry, SimilarityError> {
        if !label.is_spam() {
            return Err(SimilarityError::NotSpamLabel(label));
        }
        let mut index = self.index.write().map_err(|_| SimilarityError::Poisoned)?;
        let mut entry = index.entry_or_empty(fp);
        entry.label = label;
        entry.seed_count = entry.seed_count.saturating_add(1);
        self.store_entry(&mut index, entry)
    }

    /// An anonymous user report ([`Self::record_report`] with the empty reporter, no class).
    pub fn report(&self, fp: &Fingerprint, spam: bool) -> Result<Entry, SimilarityError> {
        self.record_report(
            fp,
            &UserReport {
                reporter: "",
                device: "",
                at_ms: 0,
                spam,
                class: None,
            },
        )
    }

    /// Records a user report: the reporter's vote on `fp` becomes `report.spam`, replacing its
    /// earlier vote (a repeated vote changes nothing). A spam report with a spam class sets the
    /// entry's class; a new entry is `Spam`. Flushed to disk before returning.
    pub fn record_report(
        &self,
        fp: &Fingerprint,
        report: &UserReport<'_>,
    ) -> Result<Entry, SimilarityError> {
        let mut index = self.index.write().map_err(|_| SimilarityError::Poisoned)?;
        let mut entry = index.entry_or_empty(fp);
        let before = self.consensus(&entry);
        let changed = self.reports.cast(&mut entry, report)?;
        let after = self.consensus(&entry);
        if after != before {
            self.reports.settle(entry.id, after, None)?;
        } else if changed {
            self.reports
                .settle(entry.id, after, Some(report.reporter))?;
        }
        if let Some(class) = report.class.filter(|c| report.spam && c.is_spam()) {
            entry.label = class;
        }
        let entry = self.store_entry(&mut index, entry)?;
        drop(index);
        self.flush()?;
        Ok(entry)
    }

    /// True when `entry` alone whitelists its near-duplicates: a quorum of "not spam"
    /// reports, and at least as many as user spam reports.
    pub fn whitelists(&self, entry: &Entry) -> bool {
        entry.not_spam_reports >= self.config.report_quorum.max(1)
            && entry.not_spam_reports >= entry.user_spam_reports
    }

    /// What the users' reports on `entry` say for everyone: nothing below the quorum.
    pub fn consensus(&self, entry: &Entry) -> Consensus {
        if self.whitelists(entry) {
            Consensus::NotSpam
        } else if entry.counted_user_spam_reports(self.config.report_quorum) > 0 {
            Consensus::Spam
        } else {
            Consensus::None
        }
    }

    /// Seeded evidence and user spam reports that count (see [`Entry::counted_spam_evidence`]).
    pub fn counted_spam_evidence(&self, entry: &Entry) -> u32 {
        entry.counted_spam_evidence(self.config.report_quorum)
    }

    pub fn config(&self) -> &SimilarityConfig {
        &self.config
    }

    /// Every report received, oldest first (hashes and ids only; see [`AuditRecord`]).
    pub fn audit_trail(&self) -> Result<Vec<AuditRecord>, SimilarityError> {
        self.reports.audit_trail()
    }

    /// How `reporter`'s settled votes agreed with the consensus (see [`Reputation`]).
    pub fn reputation(&self, reporter: &str) -> Result<Reputation, SimilarityError> {
        self.reports.reputation(id_hash(reporter))
    }

    /// Fingerprints and remembers every training spam text (as [`Label::Spam`]); texts whose
    /// normalised form is shorter than [`SimilarityConfig::min_seed_chars`] are skipped. Returns
    /// the number of texts added. Flushes at the end.
    pub fn seed_from_corpus_spam<I, S>(&self, texts: I) -> Result<usize, SimilarityError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut added = 0;
        for text in texts {
            if let Some(fp) = self.seed_fingerprint(text.as_ref()) {
                self.add_spam(&fp, Label::Spam)?;
                added += 1;
            }
        }
        self.flush()?;
        Ok(added)
    }

    /// The fingerprint of `text` as seeding remembers it, or `None` when its normalised form is
    /// shorter than [`SimilarityConfig::min_seed_chars`] (too short to match usefully).
    pub fn seed_fingerprint(&self, text: &str) -> Option<Fingerprint> {
        let normalized = smsguard_core::normalize(text);
        (normalized.text.chars().count() >= self.config.min_seed_chars)
            .then(|| self.hasher.fingerprint(&normalized.text))
    }

    /// The deciding match of `fp` above the threshold: the whitelisting match when it wins,
    /// else the user-reported near-duplicate, else the closest spam match.
    pub fn lookup(&self, fp: &Fingerprint) -> Result<Option<SimilarityMatch>, SimilarityError> {
        Ok(self.lookup_with_stats(fp)?.0)
    }

    /// [`Self::lookup`], and what it cost (for benchmarks and monitoring).
    pub fn lookup_with_stats(
        &self,
        fp: &Fingerprint,
    ) -> Result<(Option<SimilarityMatch>, LookupStats), SimilarityError> {
        let (matches, stats) = self.matches(fp)?;
        Ok((matches.deciding(), stats))
    }

    fn matches(&self, fp: &Fingerprint) -> Result<(Matches, LookupStats), SimilarityError> {
        let index = self.index.read().map_err(|_| SimilarityError::Poisoned)?;
        Ok(index.best_matches(fp, &Limits::of(&self.config)))
    }

    /// Writes every pending change to disk.
    pub fn flush(&self) -> Result<(), SimilarityError> {
        self.db.flush()?;
        Ok(())
    }

    /// Writes `entry` to sled and to the index (whose write lock the caller holds).
    fn store_entry(&self, index: &mut LshIndex, entry: Entry) -> Result<Entry, SimilarityError> {
        self.entries
            .insert(entry.id.to_be_bytes(), encode_entry(&entry).to_vec())?;
        index.upsert(entry.clone());
        Ok(entry)
    }

    fn score_matches(&self, matches: Matches) -> ModelScore {
        if let Some(white) = matches.white {
            let reason = format!(
                "near-duplicate (jaccard {:.2}) of fingerprint {:016x}, whitelisted by {} not-spam report(s)",
                white.jaccard, white.fingerprint_id, white.not_spam_reports
            );
            return ModelScore::new(NAME, 0.0, reason).with_label(Some(Label::Ham));
        }
        let spam = matches.spam.map(|m| self.evidence_score(m));
        let reported = matches.reported.map(|m| self.user_report_score(m));
        match (spam, reported) {
            (Some(spam), Some(reported)) if spam.score > reported.score => spam
                .with_report_forced_action(reported.forced_action)
                .with_label(reported.label),
            (_, Some(reported)) => reported,
            (Some(spam), None) => spam,
            (None, None) => ModelScore::new(NAME, 0.0, "no near-duplicate of a known fingerprint"),
        }
    }

    /// The score fitted with the fusion: more spam evidence makes the memory more certain;
    /// similarity above the threshold scales the score from half to full strength. For a
    /// seeded-only entry it is exactly the score before user reports were kept apart.
    fn evidence_score(&self, found: SimilarityMatch) -> ModelScore {
        let counted_reports = if found.user_spam_reports >= self.config.report_quorum.max(1) {
            found.user_spam_reports
        } else {
            0
        };
        let evidence = found.seed_count.saturating_add(counted_reports);
        let certainty = 1.0 - 0.3 / evidence.max(1) as f32;
        let closeness =
            (found.jaccard - self.config.min_jaccard) / (1.0 - self.config.min_jaccard).max(1e-6);
        let score = certainty * (0.5 + 0.5 * closeness);
        let reason = format!(
            "near-duplicate (jaccard {:.2}) of known {} fingerprint {:016x} ({} seeded / {} user spam / {} not-spam reports)",
            found.jaccard, found.label, found.fingerprint_id, found.seed_count, found.user_spam_reports, found.not_spam_reports
        );
        ModelScore::new(NAME, score, reason).with_label(Some(found.label))
    }

    /// A quorum of user spam reports is a human label: a near-duplicate scores at least
    /// `1 - 0.1 / reports` and is quarantined (never blocked: a false report must stay
    /// recoverable; any operator rule outranks it). Only matches at the quorum get here.
    fn user_report_score(&self, found: SimilarityMatch) -> ModelScore {
        let reports = found.user_spam_reports.max(1);
        let score = 1.0 - 0.1 / reports as f32;
        let reason = format!(
            "near-duplicate (jaccard {:.2}) of {} fingerprint {:016x} reported as spam by {} user(s): quarantined (quorum {})",
            found.jaccard,
            found.label,
            found.fingerprint_id,
            reports,
            self.config.report_quorum
        );
        ModelScore::new(NAME, score, reason)
            .with_label(Some(found.label))
            .with_report_forced_action(Some(ForcedAction::Quarantine))
    }
}

const NAME: &str = "similarity";

impl Scorer for SimilarityStore {
    fn name(&self) -> &'static str {
        NAME
    }

    fn score(&self, msg: &MessageContext<'_>) -> Result<ModelScore, ScoringError> {
        Ok(self.score_matches(self.matches(msg.fingerprint)?.0))
    }
}
