//! The phone's side of the private similarity lookup: which prefixes to ask for, and the local
//! match of its full band keys against the entries the cloud returned for them. The cloud sees
//! only the prefixes (see ARCHITECTURE.md, "Private similarity lookup").
//!
//! # Match rule
//! The cloud's similarity scorer takes an entry sharing any band as a candidate and verifies it
//! with the 64-slot Jaccard estimate (match from 0.5). The phone has the stored entries' band
//! keys, not their signatures, so it counts shared bands instead: two signatures share each band
//! with probability `J^4`, so an entry sharing at least [`MIN_SHARED_BANDS`] of the 16 bands is a
//! match. At J = 0.7 (one changed word) that happens with probability 0.93, at J = 0.8 0.999,
//! and for unrelated texts (J = 0.3) 0.008, where a single shared band would be 0.12.

use smsguard_core::fingerprint::NUM_HASHES;
use smsguard_core::lsh::{band_key, band_key_prefix, BANDS};

/// The prefix length the phone asks with, in bits (published; 4 to 32 are served). Each band's
/// prefix names one of 65,536 slices of the band-key space.
pub const PREFIX_BITS: u32 = 16;
/// Bands an entry must share with the message to match (see the module's "Match rule").
pub const MIN_SHARED_BANDS: usize = 2;

/// The top `bits` bits of each band key of `minhash`, band 0 first (`bits` in 1..=32).
pub fn band_prefixes(minhash: &[u32; NUM_HASHES], bits: u32) -> Vec<u32> {
    (0..BANDS)
        .map(|band| band_key_prefix(band_key(minhash, band), bits))
        .collect()
}

/// One entry of a returned bucket, as the phone reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketEntry {
    pub band: usize,
    pub band_key: u64,
    /// The answer's number for the stored entry (equal across buckets for one entry).
    pub entry: u32,
    /// Counted spam evidence of a spam-labelled entry (0 for ham or no evidence).
    pub spam_evidence: u32,
    pub whitelisting: bool,
}

/// What the local match found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LocalMatch {
    #[default]
    None,
    /// A stored spam entry shares `shared_bands` bands with the message.
    Spam { shared_bands: usize, evidence: u32 },
    /// A whitelisting entry matched: as in the cloud, the whitelist wins.
    Whitelisted { shared_bands: usize },
}

/// Matches `minhash`'s full band keys against the returned entries.
pub fn match_locally(
    minhash: &[u32; NUM_HASHES],
    entries: impl IntoIterator<Item = BucketEntry>,
) -> LocalMatch {
    let keys: Vec<u64> = (0..BANDS).map(|band| band_key(minhash, band)).collect();
    // entry number -> (shared bands, spam evidence, whitelisting); bands counted once each.
    let mut shared: std::collections::HashMap<u32, (u32, u32, bool)> = Default::default();
    for e in entries {
        if keys.get(e.band) != Some(&e.band_key) {
            continue;
        }
        let slot = shared
            .entry(e.entry)
            .or_insert((0, e.spam_evidence, e.whitelisting));
        slot.0 |= 1 << e.band;
    }
    let matched = shared
        .into_values()
        .map(|(bands, evidence, white)| (bands.count_ones() as usize, evidence, white))
        .filter(|(bands, _, _)| *bands >= MIN_SHARED_BANDS);
    let mut best = LocalMatch::None;
    for (shared_bands, evidence, white) in matched {
        best = match best {
            _ if white => LocalMatch::Whitelisted { shared_bands },
            LocalMatch::Whitelisted { .. } => best,
            LocalMatch::Spam { evidence: e, .. } if e >= evidence => best,
            _ if evidence > 0 => LocalMatch::Spam {
                shared_bands,
                evidence,
            },
            _ => best,
        };
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signature(seed: u32) -> [u32; NUM_HASHES] {
        std::array::from_fn(|i| (i as u32 + 1).wrapping_mul(2_654_435_761) ^ seed)
    }

    fn entries_of(minhash: &[u32; NUM_HASHES], entry: u32, evidence: u32) -> Vec<BucketEntry> {
        (0..BANDS)
            .map(|band| BucketEntry {
                band,
                band_key: band_key(minhash, band),
                entry,
                spam_evidence: evidence,
                whitelisting: false,
            })
            .collect()
    }

    #[test]
    fn prefixes_are_the_top_bits_of_each_band_key() {
        let m = signature(1);
        let prefixes = band_prefixes(&m, 16);
        assert_eq!(prefixes.len(), BANDS);
        for (band, p) in prefixes.iter().enumerate() {
            assert_eq!(u64::from(*p), band_key(&m, band) >> 48);
        }
    }

    #[test]
    fn an_entry_matches_from_two_shared_bands_and_a_whitelist_wins() {
        let message = signature(1);
        let mut near = message;
        for slot in near.iter_mut().skip(8) {
            *slot ^= 0xdead; // bands 2.. differ: two shared bands
        }
        let mut one_band = message;
        for slot in one_band.iter_mut().skip(4) {
            *slot ^= 0xbeef;
        }
        assert_eq!(
            match_locally(&message, entries_of(&one_band, 0, 5)),
            LocalMatch::None
        );
        assert_eq!(
            match_locally(&message, entries_of(&near, 1, 5)),
            LocalMatch::Spam {
                shared_bands: 2,
                evidence: 5
            }
        );
        assert_eq!(
            match_locally(&message, entries_of(&near, 1, 0)),
            LocalMatch::None,
            "no spam evidence"
        );
        let mut white = entries_of(&message, 2, 0);
        white.iter_mut().for_each(|e| e.whitelisting = true);
        let all = entries_of(&near, 1, 5).into_iter().chain(white);
        assert_eq!(
            match_locally(&message, all),
            LocalMatch::Whitelisted { shared_bands: 16 }
        );
    }
}
