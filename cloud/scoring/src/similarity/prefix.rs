//! The private similarity lookup's server side: every entry of one band whose band key starts
//! with a given prefix (the top `bits` bits), read by a range scan of the ordered band keys.
//! The phone sends only such prefixes and matches its full band keys locally.
//!
//! Every state backend answers by the same rule ([`key_share`]), so a phone gets the same
//! answer from the embedded store and from Redis for the same stored entries.

use super::{Entry, SimilarityError, SimilarityStore, MAX_BUCKET_SCAN};

/// Shortest and longest prefixes served, in bits. Below 4 a prefix names a sixteenth of the key
/// space or more (answers would be the whole memory); above 32 it no longer fits a `u32`.
pub const PREFIX_BITS: std::ops::RangeInclusive<u32> = 4..=32;

/// The entries of one (band, prefix) bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixBucket {
    /// Entries the bucket offers, whether returned or not: the sum of its keys' [`key_share`]s.
    pub stored: usize,
    /// At most `cap` of them, each with its full band key of that band: keys in ascending
    /// order, each key's share in [`key_share`]'s order (so not the newest `cap` of the bucket).
    pub entries: Vec<(u64, Entry)>,
}

/// What one band key contributes to a prefix bucket, on every backend: its newest
/// [`MAX_BUCKET_SCAN`] entries (`newest`, newest first), then its user-reported entries not among
/// them (`reported`, most recently reported first). These are exactly the candidates the
/// plaintext lookup verifies for that key, and what the Redis layout keeps per key (it stores
/// the newest [`MAX_BUCKET_SCAN`] ids and every reported one, nothing older).
pub fn key_share<T: Copy + PartialEq>(
    newest: impl IntoIterator<Item = T>,
    reported: impl IntoIterator<Item = T>,
) -> Vec<T> {
    let mut share: Vec<T> = newest.into_iter().take(MAX_BUCKET_SCAN).collect();
    for item in reported {
        if !share.contains(&item) {
            share.push(item);
        }
    }
    share
}

/// The inclusive range of 64-bit band keys whose top `bits` bits are `prefix`, or `None` when
/// `bits` is outside [`PREFIX_BITS`] or `prefix` does not fit in `bits` bits.
pub fn prefix_range(prefix: u32, bits: u32) -> Option<std::ops::RangeInclusive<u64>> {
    if !PREFIX_BITS.contains(&bits) || (bits < 32 && prefix >> bits != 0) {
        return None;
    }
    let shift = 64 - bits;
    let low = u64::from(prefix) << shift;
    Some(low..=low | (u64::MAX >> bits))
}

impl SimilarityStore {
    /// The entries of band `band` whose band key starts with `prefix` (top `bits` bits): their
    /// number and at most `cap` of them (see [`PrefixBucket::entries`]). An empty bucket for a
    /// band or prefix out of range.
    pub fn prefix_bucket(
        &self,
        band: usize,
        prefix: u32,
        bits: u32,
        cap: usize,
    ) -> Result<PrefixBucket, SimilarityError> {
        let Some(keys) = prefix_range(prefix, bits).filter(|_| band < super::BANDS) else {
            return Ok(PrefixBucket {
                stored: 0,
                entries: Vec::new(),
            });
        };
        let index = self.index.read().map_err(|_| SimilarityError::Poisoned)?;
        let (stored, found) = index.band_range(band, keys, cap);
        Ok(PrefixBucket {
            stored,
            entries: found.into_iter().map(|(k, e)| (k, e.clone())).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smsguard_core::lsh::{band_key, band_key_prefix as key_prefix};
    use smsguard_core::Label;

    #[test]
    fn a_prefix_range_holds_exactly_the_keys_with_that_prefix() {
        let range = prefix_range(0xab, 8).unwrap();
        assert_eq!(*range.start(), 0xab00_0000_0000_0000);
        assert_eq!(*range.end(), 0xabff_ffff_ffff_ffff);
        assert_eq!(key_prefix(0xab12_3456_789a_bcde, 8), 0xab);
        assert_eq!(key_prefix(u64::MAX, 32), u32::MAX);
        assert!(
            prefix_range(0x1ab, 8).is_none(),
            "prefix wider than its bits"
        );
        assert!(prefix_range(0, 3).is_none() && prefix_range(0, 33).is_none());
        assert_eq!(prefix_range(u32::MAX, 32).unwrap().end(), &u64::MAX);
    }

    #[test]
    fn a_keys_share_is_its_newest_then_its_reported_ones_not_among_them() {
        let newest = (0..100u32).rev();
        let share = key_share(newest, [3, 70, 99, 71]);
        assert_eq!(share.len(), MAX_BUCKET_SCAN + 1);
        assert_eq!(share[0], 99, "newest first");
        assert_eq!(share[MAX_BUCKET_SCAN - 1], 52);
        assert_eq!(
            share[MAX_BUCKET_SCAN], 3,
            "a reported entry past the newest 48"
        );
        assert_eq!(key_share([2, 1], [1, 5]), vec![2, 1, 5]);
    }

    #[test]
    fn a_bucket_returns_the_entries_of_its_band_and_prefix_and_counts_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = SimilarityStore::open(dir.path()).unwrap();
        let texts: Vec<String> = (0..40)
            .map(|i| format!("claim your prize number {i} now at the usual place {i}"))
            .collect();
        for text in &texts {
            let fp = store.seed_fingerprint(text).unwrap();
            store.add_spam(&fp, Label::Spam).unwrap();
        }
        let fp = store.seed_fingerprint(&texts[7]).unwrap();
        let bits = 6;
        for band in [0, 5, 15] {
            let key = band_key(&fp.minhash, band);
            let bucket = store
                .prefix_bucket(band, key_prefix(key, bits), bits, 1000)
                .unwrap();
            assert!(bucket
                .entries
                .iter()
                .any(|(k, e)| *k == key && e.id == fp.id()));
            assert_eq!(bucket.stored, bucket.entries.len());
            for (k, e) in &bucket.entries {
                assert_eq!(band_key(&e.minhash, band), *k, "only band {band}'s keys");
                assert_eq!(key_prefix(*k, bits), key_prefix(key, bits));
            }
            let capped = store
                .prefix_bucket(band, key_prefix(key, bits), bits, 1)
                .unwrap();
            assert_eq!((capped.stored, capped.entries.len()), (bucket.stored, 1));
        }
        assert_eq!(store.prefix_bucket(16, 0, bits, 10).unwrap().stored, 0);
    }
}
