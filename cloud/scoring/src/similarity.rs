//! Near-duplicate memory of known spam, keyed by one-way fingerprints.
//!
//! # What is stored
//! One [`Entry`] per fingerprint id: the 64 MinHash slots, a label and the counts of "spam" and
//! "not spam" reports. Only fingerprints are stored (they cannot be turned back into text). The
//! sled tree `entries` maps the big-endian fingerprint id to a fixed 266-byte record (see
//! [`encode_entry`]); [`SimilarityStore::open`] rebuilds the in-memory index from it.
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
//! # Whitelist beats blacklist
//! A fingerprint with at least [`SimilarityConfig::whitelist_min_reports`] "not spam" reports is
//! whitelisted: when any match of a message above the threshold is whitelisted, the message
//! scores 0 with label `Ham`, whatever spam matches it also has.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use smsguard_core::fingerprint::{splitmix64, NUM_HASHES};
use smsguard_core::{Fingerprint, Label, MinHasher};

use crate::{MessageContext, ModelScore, Scorer, ScoringError};

/// Number of LSH bands.
pub const BANDS: usize = 16;
/// MinHash slots per band (`BANDS * ROWS == 64`).
pub const ROWS: usize = NUM_HASHES / BANDS;

const ENTRIES_TREE: &str = "entries";
const META_TREE: &str = "meta";
const FORMAT_KEY: &[u8] = b"format";
/// Version of the on-disk record layout; a store written with another version is refused.
const FORMAT_VERSION: u8 = 1;
/// The store marker: record layout and MinHash definition. Fingerprints of another
/// `FINGERPRINT_VERSION` never match today's, so such a store is refused rather than silently
/// matching nothing.
const FORMAT_MARKER: [u8; 2] = [
    FORMAT_VERSION,
    smsguard_core::fingerprint::FINGERPRINT_VERSION as u8,
];
const RECORD_LEN: usize = 2 + 4 + 4 + NUM_HASHES * 4;
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
    /// "Not spam" reports that whitelist a fingerprint.
    pub whitelist_min_reports: u32,
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
            whitelist_min_reports: 1,
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
    pub spam_reports: u32,
    pub not_spam_reports: u32,
}

/// The best match of a lookup.
#[derive(Debug, Clone, PartialEq)]
pub struct SimilarityMatch {
    pub fingerprint_id: u64,
    pub jaccard: f32,
    pub label: Label,
    pub spam_reports: u32,
    pub not_spam_reports: u32,
    /// True when the match (or, for a spam best match, another match) is whitelisted.
    pub whitelisted: bool,
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
/// Entries with "not spam" reports (few) are also listed per band in `reported`, which is never
/// capped.
#[derive(Debug, Default)]
struct LshIndex {
    entries: Vec<Entry>,
    by_id: HashMap<u64, u32>,
    buckets: BandMap<Bucket>,
    next: Vec<[u32; BANDS]>,
    reported: BandMap<Vec<u32>>,
}

fn band_key(band: usize, minhash: &[u32; NUM_HASHES]) -> u64 {
    minhash[band * ROWS..(band + 1) * ROWS]
        .iter()
        .fold(splitmix64(band as u64), |h, v| {
            splitmix64(h ^ u64::from(*v))
        })
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

/// Best spam and best whitelisted match seen so far.
#[derive(Default)]
struct BestMatches<'a> {
    spam: Option<(&'a Entry, usize)>,
    white: Option<(&'a Entry, usize)>,
}

impl<'a> BestMatches<'a> {
    fn offer(&mut self, entry: &'a Entry, equal: usize, whitelist_min: u32) {
        let target = if entry.not_spam_reports >= whitelist_min {
            &mut self.white
        } else {
            &mut self.spam
        };
        if target.is_none_or(|(_, e)| equal > e) {
            *target = Some((entry, equal));
        }
    }

    fn into_match(self) -> Option<SimilarityMatch> {
        let whitelisted = self.white.is_some();
        self.white
            .or(self.spam)
            .map(|(entry, equal)| SimilarityMatch {
                fingerprint_id: entry.id,
                jaccard: equal as f32 / NUM_HASHES as f32,
                label: entry.label,
                spam_reports: entry.spam_reports,
                not_spam_reports: entry.not_spam_reports,
                whitelisted,
            })
    }
}

impl LshIndex {
    /// Inserts a new entry or replaces the fields of an existing one (same id, same slots).
    fn upsert(&mut self, entry: Entry) {
        if let Some(&slot) = self.by_id.get(&entry.id) {
            let newly_reported =
                self.entries[slot as usize].not_spam_reports == 0 && entry.not_spam_reports > 0;
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
                .entry(band_key(band, &entry.minhash))
                .or_insert(Bucket {
                    head: NO_ENTRY,
                    len: 0,
                });
            *link = bucket.head;
            bucket.head = slot;
            bucket.len = bucket.len.saturating_add(1);
        }
        let reported = entry.not_spam_reports > 0;
        self.by_id.insert(entry.id, slot);
        self.entries.push(entry);
        self.next.push(links);
        if reported {
            self.list_reported(slot);
        }
    }

    fn list_reported(&mut self, slot: u32) {
        for band in 0..BANDS {
            let key = band_key(band, &self.entries[slot as usize].minhash);
            self.reported.entry(key).or_default().push(slot);
        }
    }

    fn get(&self, id: u64) -> Option<&Entry> {
        self.by_id
            .get(&id)
            .map(|&slot| &self.entries[slot as usize])
    }

    /// Verifies every entry sharing a band with `fp` (newest [`MAX_BUCKET_SCAN`] per bucket,
    /// every reported entry) once, keeping the best spam and whitelisted matches.
    fn best_match(
        &self,
        fp: &Fingerprint,
        min_jaccard: f32,
        whitelist_min: u32,
    ) -> (Option<SimilarityMatch>, LookupStats) {
        let min_equal = min_equal_slots(min_jaccard);
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
                if let Some(equal) = equal_slots_at_least(&entry.minhash, &fp.minhash, min_equal) {
                    best.offer(entry, equal, whitelist_min);
                }
            };
            for band in 0..BANDS {
                let key = band_key(band, &fp.minhash);
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
        (best.into_match(), stats)
    }
}

/// Persistent near-duplicate memory; also the `similarity` [`Scorer`].
#[derive(Debug)]
pub struct SimilarityStore {
    path: PathBuf,
    config: SimilarityConfig,
    entries: sled::Tree,
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
        let db = sled::Config::new()
            .path(&path)
            .cache_capacity(config.cache_capacity_bytes)
            .open()
            .map_err(open_error)?;
        check_format(&db, &path)?;
        let entries = db.open_tree(ENTRIES_TREE).map_err(open_error)?;
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

    /// Remembers `fp` as spam of class `label` (one more spam count). Not flushed: call
    /// [`Self::flush`] after a batch; sled also flushes in the background.
    pub fn add_spam(&self, fp: &Fingerprint, label: Label) -> Result<Entry, SimilarityError> {
        if !label.is_spam() {
            return Err(SimilarityError::NotSpamLabel(label));
        }
        self.update(fp, |entry| {
            entry.label = label;
            entry.spam_reports = entry.spam_reports.saturating_add(1);
        })
    }

    /// Records a user report: `spam = true` counts a spam report (the entry keeps its class, a new
    /// one is `Spam`), `spam = false` a "not spam" report, which whitelists the fingerprint and its
    /// near-duplicates once [`SimilarityConfig::whitelist_min_reports`] is reached. Flushed to disk
    /// before returning.
    pub fn report(&self, fp: &Fingerprint, spam: bool) -> Result<Entry, SimilarityError> {
        let entry = self.update(fp, |entry| {
            if spam {
                entry.spam_reports = entry.spam_reports.saturating_add(1);
            } else {
                entry.not_spam_reports = entry.not_spam_reports.saturating_add(1);
            }
        })?;
        self.flush()?;
        Ok(entry)
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
            let normalized = smsguard_core::normalize(text.as_ref());
            if normalized.text.chars().count() < self.config.min_seed_chars {
                continue;
            }
            self.add_spam(&self.hasher.fingerprint(&normalized.text), Label::Spam)?;
            added += 1;
        }
        self.flush()?;
        Ok(added)
    }

    /// Best match of `fp` above the threshold (a whitelisted match wins over any spam match).
    pub fn lookup(&self, fp: &Fingerprint) -> Result<Option<SimilarityMatch>, SimilarityError> {
        Ok(self.lookup_with_stats(fp)?.0)
    }

    /// [`Self::lookup`], and what it cost (for benchmarks and monitoring).
    pub fn lookup_with_stats(
        &self,
        fp: &Fingerprint,
    ) -> Result<(Option<SimilarityMatch>, LookupStats), SimilarityError> {
        let index = self.index.read().map_err(|_| SimilarityError::Poisoned)?;
        Ok(index.best_match(
            fp,
            self.config.min_jaccard,
            self.config.whitelist_min_reports,
        ))
    }

    /// Writes every pending change to disk.
    pub fn flush(&self) -> Result<(), SimilarityError> {
        self.db.flush()?;
        Ok(())
    }

    /// Applies `change` to the entry of `fp` (created empty if absent), in memory and in sled.
    fn update(
        &self,
        fp: &Fingerprint,
        change: impl FnOnce(&mut Entry),
    ) -> Result<Entry, SimilarityError> {
        let mut index = self.index.write().map_err(|_| SimilarityError::Poisoned)?;
        let id = fp.id();
        let mut entry = index.get(id).cloned().unwrap_or(Entry {
            id,
            minhash: fp.minhash,
            label: Label::Spam,
            spam_reports: 0,
            not_spam_reports: 0,
        });
        change(&mut entry);
        self.entries
            .insert(id.to_be_bytes(), encode_entry(&entry).to_vec())?;
        index.upsert(entry.clone());
        Ok(entry)
    }

    fn score_match(&self, found: Option<SimilarityMatch>) -> ModelScore {
        let Some(found) = found else {
            return ModelScore::new(NAME, 0.0, "no near-duplicate of a known fingerprint");
        };
        if found.whitelisted {
            let reason = format!(
                "near-duplicate (jaccard {:.2}) of fingerprint {:016x}, whitelisted by {} not-spam report(s)",
                found.jaccard, found.fingerprint_id, found.not_spam_reports
            );
            return ModelScore::new(NAME, 0.0, reason).with_label(Some(Label::Ham));
        }
        // More spam reports make the memory more certain; similarity above the threshold scales
        // the score from half to full strength.
        let certainty = 1.0 - 0.3 / found.spam_reports.max(1) as f32;
        let closeness =
            (found.jaccard - self.config.min_jaccard) / (1.0 - self.config.min_jaccard).max(1e-6);
        let score = certainty * (0.5 + 0.5 * closeness);
        let reason = format!(
            "near-duplicate (jaccard {:.2}) of known {} fingerprint {:016x} ({} spam / {} not-spam reports)",
            found.jaccard, found.label, found.fingerprint_id, found.spam_reports, found.not_spam_reports
        );
        ModelScore::new(NAME, score, reason).with_label(Some(found.label))
    }
}

const NAME: &str = "similarity";

impl Scorer for SimilarityStore {
    fn name(&self) -> &'static str {
        NAME
    }

    fn score(&self, msg: &MessageContext<'_>) -> Result<ModelScore, ScoringError> {
        Ok(self.score_match(self.lookup(msg.fingerprint)?))
    }
}

/// Writes the format marker into a new store, refuses a store of another layout or
/// fingerprint version.
fn check_format(db: &sled::Db, path: &Path) -> Result<(), SimilarityError> {
    let open_error = |source| SimilarityError::Open {
        path: path.to_path_buf(),
        source,
    };
    let meta = db.open_tree(META_TREE).map_err(open_error)?;
    match meta.get(FORMAT_KEY).map_err(open_error)? {
        None => {
            meta.insert(FORMAT_KEY, &FORMAT_MARKER)
                .map_err(open_error)?;
            Ok(())
        }
        Some(v) if v.as_ref() == FORMAT_MARKER => Ok(()),
        Some(v) => Err(SimilarityError::Corrupt {
            path: path.to_path_buf(),
            reason: format!(
                "store written by another format or fingerprint version (marker {:?}, expected \
                 {FORMAT_MARKER:?}); rebuild it from the corpora and reports",
                v.as_ref()
            ),
        }),
    }
}

fn label_code(label: Label) -> u8 {
    Label::ALL.iter().position(|l| *l == label).unwrap_or(0) as u8
}

/// Record layout: format version (1 byte), label index in [`Label::ALL`] (1), spam reports
/// (u32 LE), not-spam reports (u32 LE), 64 MinHash slots (u32 LE each).
pub fn encode_entry(entry: &Entry) -> [u8; RECORD_LEN] {
    let mut out = [0u8; RECORD_LEN];
    out[0] = FORMAT_VERSION;
    out[1] = label_code(entry.label);
    out[2..6].copy_from_slice(&entry.spam_reports.to_le_bytes());
    out[6..10].copy_from_slice(&entry.not_spam_reports.to_le_bytes());
    for (chunk, slot) in out[10..].chunks_exact_mut(4).zip(&entry.minhash) {
        chunk.copy_from_slice(&slot.to_le_bytes());
    }
    out
}

fn decode_entry(key: &[u8], value: &[u8]) -> Result<Entry, String> {
    let id = u64::from_be_bytes(
        key.try_into()
            .map_err(|_| format!("key of {} bytes, expected 8", key.len()))?,
    );
    let bad = |what: &str| format!("record of fingerprint {id:016x}: {what}");
    if value.len() != RECORD_LEN {
        return Err(bad(&format!(
            "{} bytes, expected {RECORD_LEN}",
            value.len()
        )));
    }
    if value[0] != FORMAT_VERSION {
        return Err(bad(&format!("record version {}", value[0])));
    }
    let label = *Label::ALL
        .get(value[1] as usize)
        .ok_or_else(|| bad("unknown label code"))?;
    let u32_at =
        |at: usize| u32::from_le_bytes([value[at], value[at + 1], value[at + 2], value[at + 3]]);
    let mut minhash = [0u32; NUM_HASHES];
    for (i, slot) in minhash.iter_mut().enumerate() {
        *slot = u32_at(10 + 4 * i);
    }
    Ok(Entry {
        id,
        minhash,
        label,
        spam_reports: u32_at(2),
        not_spam_reports: u32_at(6),
    })
}
