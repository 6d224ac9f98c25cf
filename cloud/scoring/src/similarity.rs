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

use std::path::{Path, PathBuf};
use std::sync::RwLock;

use smsguard_core::fingerprint::NUM_HASHES;
use smsguard_core::{Fingerprint, Label, MinHasher};

use crate::{ForcedAction, MessageContext, ModelScore, Scorer, ScoringError};

mod codec;
mod index;
mod prefix;
mod reports;
use codec::check_format;
pub use codec::{decode_entry, encode_entry};
use index::{Limits, LshIndex};
pub use prefix::{key_share, prefix_range, PrefixBucket, PREFIX_BITS};
pub use reports::{
    decode_audit, encode_audit, id_hash, AuditRecord, Reputation, UserReport, AUDIT_RECORD_LEN,
    DISTRUST_MIN_DISAGREED,
};
use reports::{ReportTrees, AUDIT_TREE, REPUTATION_TREE, VOTES_TREE};
pub use smsguard_core::lsh::{BANDS, ROWS_PER_BAND as ROWS};

const ENTRIES_TREE: &str = "entries";

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
    /// A new entry of `fp` with no evidence yet (class `Spam`).
    pub fn empty(fp: &Fingerprint) -> Self {
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
    pub fn user_reported(&self) -> bool {
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
        let db = smsguard_sled::open_waiting_for_lock(sled_config).map_err(open_error)?;
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
        whitelists(&self.config, entry)
    }

    /// What the users' reports on `entry` say for everyone: nothing below the quorum.
    pub fn consensus(&self, entry: &Entry) -> Consensus {
        consensus_of(&self.config, entry)
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

    /// The newest `limit` reports of the audit trail, newest first.
    pub fn recent_audit(&self, limit: usize) -> Result<Vec<AuditRecord>, SimilarityError> {
        self.reports.recent_audit(limit)
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
}

/// True when `entry` alone whitelists its near-duplicates under `config`: a quorum of "not
/// spam" reports, and at least as many as user spam reports.
pub fn whitelists(config: &SimilarityConfig, entry: &Entry) -> bool {
    entry.not_spam_reports >= config.report_quorum.max(1)
        && entry.not_spam_reports >= entry.user_spam_reports
}

/// What the users' reports on `entry` say for everyone under `config`: nothing below the quorum.
pub fn consensus_of(config: &SimilarityConfig, entry: &Entry) -> Consensus {
    if whitelists(config, entry) {
        Consensus::NotSpam
    } else if entry.counted_user_spam_reports(config.report_quorum) > 0 {
        Consensus::Spam
    } else {
        Consensus::None
    }
}

/// The `similarity` score of `fp` against `candidates`, entries read elsewhere (a shared
/// store's LSH buckets: the newest [`MAX_BUCKET_SCAN`] of each band `fp` falls in, and every
/// user-reported one). Gives the score [`SimilarityStore`] gives when its buckets hold the same.
pub fn score_candidates(
    config: &SimilarityConfig,
    fp: &Fingerprint,
    candidates: &[Entry],
) -> ModelScore {
    let matches = index::best_of_candidates(fp, candidates, &Limits::of(config));
    score_matches(config, matches)
}

fn score_matches(config: &SimilarityConfig, matches: Matches) -> ModelScore {
    if let Some(white) = matches.white {
        let reason = format!(
            "near-duplicate (jaccard {:.2}) of fingerprint {:016x}, whitelisted by {} not-spam report(s)",
            white.jaccard, white.fingerprint_id, white.not_spam_reports
        );
        return ModelScore::new(NAME, 0.0, reason).with_label(Some(Label::Ham));
    }
    let spam = matches.spam.map(|m| evidence_score(config, m));
    let reported = matches.reported.map(|m| user_report_score(config, m));
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
fn evidence_score(config: &SimilarityConfig, found: SimilarityMatch) -> ModelScore {
    let counted_reports = if found.user_spam_reports >= config.report_quorum.max(1) {
        found.user_spam_reports
    } else {
        0
    };
    let evidence = found.seed_count.saturating_add(counted_reports);
    let certainty = 1.0 - 0.3 / evidence.max(1) as f32;
    let closeness = (found.jaccard - config.min_jaccard) / (1.0 - config.min_jaccard).max(1e-6);
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
fn user_report_score(config: &SimilarityConfig, found: SimilarityMatch) -> ModelScore {
    let reports = found.user_spam_reports.max(1);
    let score = 1.0 - 0.1 / reports as f32;
    let reason = format!(
        "near-duplicate (jaccard {:.2}) of {} fingerprint {:016x} reported as spam by {} user(s): quarantined (quorum {})",
        found.jaccard,
        found.label,
        found.fingerprint_id,
        reports,
        config.report_quorum
    );
    ModelScore::new(NAME, score, reason)
        .with_label(Some(found.label))
        .with_report_forced_action(Some(ForcedAction::Quarantine))
}

const NAME: &str = "similarity";

impl Scorer for SimilarityStore {
    fn name(&self) -> &'static str {
        NAME
    }

    fn score(&self, msg: &MessageContext<'_>) -> Result<ModelScore, ScoringError> {
        Ok(score_matches(
            &self.config,
            self.matches(msg.fingerprint)?.0,
        ))
    }
}
