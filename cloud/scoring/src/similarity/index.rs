//! The in-memory LSH index over the stored entries (see the parent module for the banding).

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use smsguard_core::fingerprint::NUM_HASHES;
use smsguard_core::lsh::band_key;
use smsguard_core::Fingerprint;

use super::{
    Entry, LookupStats, Matches, SimilarityConfig, SimilarityMatch, BANDS, MAX_BUCKET_SCAN,
};

/// Marks the end of a bucket chain in [`LshIndex::next`].
const NO_ENTRY: u32 = u32::MAX;

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
pub(super) struct LshIndex {
    pub(super) entries: Vec<Entry>,
    by_id: HashMap<u64, u32>,
    buckets: BandMap<Bucket>,
    next: Vec<[u32; BANDS]>,
    reported: BandMap<Vec<u32>>,
    /// Every bucket's band key, ordered, for the private lookup's prefix range scans (about
    /// 9 bytes per bucket in B-tree nodes: one more u64 per distinct band key).
    ordered: BTreeSet<u64>,
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
pub(super) struct Limits {
    min_equal: usize,
    report_min_equal: usize,
    quorum: u32,
}

impl Limits {
    pub(super) fn of(config: &SimilarityConfig) -> Self {
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
    pub(super) fn upsert(&mut self, entry: Entry) {
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
            let key = band_key(&entry.minhash, band);
            let bucket = self.buckets.entry(key).or_insert_with(|| {
                self.ordered.insert(key);
                Bucket {
                    head: NO_ENTRY,
                    len: 0,
                }
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

    pub(super) fn get(&self, id: u64) -> Option<&Entry> {
        self.by_id
            .get(&id)
            .map(|&slot| &self.entries[slot as usize])
    }

    /// A copy of the entry of `fp` to update, or a new empty one.
    pub(super) fn entry_or_empty(&self, fp: &Fingerprint) -> Entry {
        self.get(fp.id())
            .cloned()
            .unwrap_or_else(|| Entry::empty(fp))
    }

    /// Verifies every entry sharing a band with `fp` (newest [`MAX_BUCKET_SCAN`] per bucket,
    /// every user-reported entry) once, keeping the best spam, user-reported and whitelisting
    /// matches.
    pub(super) fn best_matches(&self, fp: &Fingerprint, limits: &Limits) -> (Matches, LookupStats) {
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

impl LshIndex {
    /// The entries of band `band` whose band key lies in `keys` (one prefix's range): how many
    /// the keys offer, and the first `cap` of them with their band keys: keys in ascending
    /// order, each key's entries by [`super::prefix::key_share`].
    pub(super) fn band_range(
        &self,
        band: usize,
        keys: std::ops::RangeInclusive<u64>,
        cap: usize,
    ) -> (usize, Vec<(u64, &Entry)>) {
        let mut stored = 0;
        let mut found = Vec::new();
        for &key in self.ordered.range(keys) {
            let Some(bucket) = self.buckets.get(&key) else {
                continue;
            };
            // Keys of every band share one space: keep those of this band only.
            let head = &self.entries[bucket.head as usize];
            if band_key(&head.minhash, band) != key {
                continue;
            }
            let chain = std::iter::successors(Some(bucket.head), |&slot| {
                Some(self.next[slot as usize][band]).filter(|&next| next != NO_ENTRY)
            });
            // Listed in report order: the most recent report last.
            let reported = self.reported.get(&key).into_iter().flatten().rev();
            let share = super::prefix::key_share(chain, reported.copied());
            stored += share.len();
            let room = cap.saturating_sub(found.len());
            found.extend(
                share
                    .into_iter()
                    .take(room)
                    .map(|slot| (key, &self.entries[slot as usize])),
            );
        }
        (stored, found)
    }
}

/// The best matches of `fp` among `candidates` (each verified once, in order).
pub(super) fn best_of_candidates(
    fp: &Fingerprint,
    candidates: &[Entry],
    limits: &Limits,
) -> Matches {
    let mut best = BestMatches::default();
    let mut seen = std::collections::HashSet::with_capacity(candidates.len());
    for entry in candidates.iter().filter(|e| seen.insert(e.id)) {
        if let Some(equal) = equal_slots_at_least(&entry.minhash, &fp.minhash, limits.min_equal) {
            best.offer(entry, equal, limits);
        }
    }
    best.into_matches()
}
