//! LSH banding of MinHash signatures, shared by every near-duplicate index (the edge's hot
//! fingerprints, the cloud's similarity memory): the 64 slots are cut into [`BANDS`] bands of
//! [`ROWS_PER_BAND`] slots, and two signatures become candidates when any band is equal, which
//! happens with probability `1 - (1 - J^4)^16` for Jaccard similarity `J` (0.65 at J = 0.5,
//! 0.9998 at J = 0.8). Candidates are then verified by [`minhash_jaccard`].
//!
//! Band keys live only in memory (indexes are rebuilt from stored signatures), so their hash
//! may change between versions; the signatures themselves may not (see [`crate::fingerprint`]).

use crate::fingerprint::{splitmix64, NUM_HASHES};

/// Number of LSH bands.
pub const BANDS: usize = 16;
/// MinHash slots per band (`BANDS * ROWS_PER_BAND == NUM_HASHES`).
pub const ROWS_PER_BAND: usize = NUM_HASHES / BANDS;

/// The key of band `band` of `minhash`: equal for two signatures exactly when their slots of
/// that band are equal (up to 64-bit hash collisions), and different between bands.
pub fn band_key(minhash: &[u32; NUM_HASHES], band: usize) -> u64 {
    minhash[band * ROWS_PER_BAND..(band + 1) * ROWS_PER_BAND]
        .iter()
        .fold(splitmix64(band as u64), |h, &slot| {
            splitmix64(h ^ u64::from(slot))
        })
}

/// The top `bits` bits of a band key (`bits` clamped to 1..=32): what the private similarity
/// lookup sends instead of the key, and how the cloud groups stored keys to answer it.
pub fn band_key_prefix(key: u64, bits: u32) -> u32 {
    (key >> (64 - bits.clamp(1, 32))) as u32
}

/// The Jaccard estimate of two signatures: the share of equal slots. Signatures of another
/// length than [`NUM_HASHES`] are compared on their common prefix and still divided by 64.
pub fn minhash_jaccard(a: &[u32], b: &[u32]) -> f32 {
    let equal = a.iter().zip(b).filter(|(x, y)| x == y).count();
    equal as f32 / NUM_HASHES as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_cover_the_signature_and_keys_follow_their_slots() {
        assert_eq!(BANDS * ROWS_PER_BAND, NUM_HASHES);
        let a: [u32; NUM_HASHES] = std::array::from_fn(|i| i as u32 * 7919);
        let mut b = a;
        b[5] ^= 1; // band 1 differs, every other band is equal
        for band in 0..BANDS {
            assert_eq!(band_key(&a, band) == band_key(&b, band), band != 1);
        }
        let same: [u32; NUM_HASHES] = [3; NUM_HASHES];
        assert_ne!(
            band_key(&same, 0),
            band_key(&same, 1),
            "bands are keyed apart"
        );
        assert_eq!(minhash_jaccard(&a, &b), 63.0 / 64.0);
        assert_eq!(minhash_jaccard(&a, &a), 1.0);
        assert_eq!(minhash_jaccard(&a, &[]), 0.0);
    }
}
