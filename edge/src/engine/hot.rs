//! In-memory index of hot spam fingerprints (synced from the cloud or reported by the user):
//! exact fingerprint ids and MinHash near-duplicates through LSH banding (16 bands of 4 slots,
//! candidates verified by their Jaccard estimate).

use std::collections::HashMap;

use smsguard_core::fingerprint::NUM_HASHES;
use smsguard_core::lsh::{band_key, minhash_jaccard, BANDS};
use smsguard_core::Fingerprint;

use crate::store::HotFingerprint;

/// The closest hot fingerprint to a message.
#[derive(Debug, Clone, PartialEq)]
pub struct HotMatch {
    pub entry: HotFingerprint,
    /// 1.0 for the exact fingerprint id.
    pub jaccard: f32,
}

#[derive(Debug, Default)]
pub struct HotIndex {
    entries: Vec<HotFingerprint>,
    by_id: HashMap<String, usize>,
    /// Band key (which already tells the bands apart) to the positions of the entries with it.
    bands: HashMap<u64, Vec<usize>>,
}

impl HotIndex {
    /// Indexes `entries`; entries without a full signature are matched by exact id only.
    pub fn build(entries: Vec<HotFingerprint>) -> HotIndex {
        let mut index = HotIndex::default();
        for entry in entries {
            index.insert(entry);
        }
        index
    }

    pub fn insert(&mut self, entry: HotFingerprint) {
        let position = self.entries.len();
        if let Some(signature) = signature(&entry.minhash) {
            for band in 0..BANDS {
                self.bands
                    .entry(band_key(signature, band))
                    .or_default()
                    .push(position);
            }
        }
        self.by_id.insert(entry.fingerprint.clone(), position);
        self.entries.push(entry);
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// The exact entry for `fingerprint`'s id, else the most similar one with a Jaccard estimate
    /// of at least `min_jaccard`.
    pub fn nearest(
        &self,
        fingerprint: &Fingerprint,
        hex_id: &str,
        min_jaccard: f32,
    ) -> Option<HotMatch> {
        if let Some(&position) = self.by_id.get(hex_id) {
            return Some(HotMatch {
                entry: self.entries[position].clone(),
                jaccard: 1.0,
            });
        }
        if fingerprint.minhash.iter().all(|&slot| slot == u32::MAX) {
            return None; // a text without shingles is similar to nothing
        }
        let mut best: Option<(usize, f32)> = None;
        for band in 0..BANDS {
            let Some(candidates) = self.bands.get(&band_key(&fingerprint.minhash, band)) else {
                continue;
            };
            for &position in candidates {
                let jaccard =
                    minhash_jaccard(&fingerprint.minhash, &self.entries[position].minhash);
                if jaccard >= min_jaccard && best.is_none_or(|(_, b)| jaccard > b) {
                    best = Some((position, jaccard));
                }
            }
        }
        best.map(|(position, jaccard)| HotMatch {
            entry: self.entries[position].clone(),
            jaccard,
        })
    }
}

fn signature(minhash: &[u32]) -> Option<&[u32; NUM_HASHES]> {
    minhash.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use smsguard_core::{Label, MinHasher};

    fn hot(text: &str) -> HotFingerprint {
        let fp = MinHasher::default().fingerprint(text);
        HotFingerprint {
            fingerprint: fp.to_hex(),
            minhash: fp.minhash.to_vec(),
            label: Label::Fraud,
        }
    }

    #[test]
    fn finds_exact_and_near_duplicates_but_not_strangers() {
        let campaign =
            "your parcel is held at the depot pay the customs fee at <url> within 24 hours";
        let index = HotIndex::build(vec![hot(campaign), hot("totally different words here")]);
        let hasher = MinHasher::default();
        let exact = hasher.fingerprint(campaign);
        let hit = index.nearest(&exact, &exact.to_hex(), 0.8).unwrap();
        assert_eq!(hit.jaccard, 1.0);
        let variant = hasher.fingerprint(
            "your parcel is held at the depot pay the customs fee at <url> within 48 hours",
        );
        let near = index.nearest(&variant, &variant.to_hex(), 0.6).unwrap();
        assert!(
            near.jaccard >= 0.6 && near.jaccard < 1.0,
            "{}",
            near.jaccard
        );
        assert_eq!(near.entry.fingerprint, exact.to_hex());
        let stranger = hasher.fingerprint("are we still on for lunch tomorrow at noon");
        assert!(index.nearest(&stranger, &stranger.to_hex(), 0.6).is_none());
        let empty = hasher.fingerprint("");
        assert!(index.nearest(&empty, &empty.to_hex(), 0.0).is_none());
    }
}
