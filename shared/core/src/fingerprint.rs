//! Near-duplicate fingerprints of normalised text: a 64-slot MinHash and a 64-bit SimHash over
//! character 3-shingles.
//!
//! # Definition (stable)
//! * Shingles: every window of [`SHINGLE_WIDTH`] = 3 consecutive `char`s of the text (Unicode
//!   scalar values, not bytes). A text of 1-2 chars has one shingle (the whole text); the empty
//!   text has none.
//! * Shingle hash: the code points are packed as `c0 | c1 << 21 | c2 << 42` (missing chars are 0)
//!   and mixed with the SplitMix64 finaliser ([`splitmix64`], constants `0x9E3779B97F4A7C15`,
//!   `0xBF58476D1CE4E5B9`, `0x94D049BB133111EB`).
//! * MinHash slot `i` (0..64): `min over shingles of ((a_i * h + b_i) mod 2^64) >> 32`, a
//!   multiply-shift hash family, with `a_i = splitmix64(seed ^ 2i) | 1` and
//!   `b_i = splitmix64(seed ^ (2i + 1))`; the default seed is [`BASE_SEED`] (ASCII "smsguard").
//!   A text without shingles has every slot `u32::MAX`.
//! * SimHash bit `j`: set when more than half of the shingle hashes have bit `j` set.
//! * Id: FNV-1a 64 (offset `0xcbf29ce484222325`, prime `0x100000001b3`) over the little-endian
//!   bytes of the 64 slots followed by the SimHash.
//!
//! # Stability
//! For a given text, the fingerprint and its id depend only on the constants above: they are the
//! same on every platform, build and run, and change only with a deliberate change of this module
//! (a golden test pins one id). They are computed from *normalised* text, so a change of
//! [`crate::normalize`] (see [`crate::PIPELINE_VERSION`]) changes the fingerprints of affected
//! messages; stored fingerprints must be recomputed with the pipeline version.

use serde::{Deserialize, Serialize};

/// Number of MinHash slots (hash functions).
pub const NUM_HASHES: usize = 64;
/// Width of a character shingle.
pub const SHINGLE_WIDTH: usize = 3;
/// Default seed, the ASCII bytes of "smsguard".
pub const BASE_SEED: u64 = 0x736d_7367_7561_7264;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The SplitMix64 output function applied to `x` (one step of the SplitMix64 generator).
pub const fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Computes [`Fingerprint`]s; holds the parameters of the 64 hash functions.
#[derive(Debug, Clone)]
pub struct MinHasher {
    multipliers: [u64; NUM_HASHES],
    offsets: [u64; NUM_HASHES],
}

impl Default for MinHasher {
    fn default() -> Self {
        Self::with_seed(BASE_SEED)
    }
}

impl MinHasher {
    /// The hasher with the default seed [`BASE_SEED`]; use this one for stored fingerprints.
    pub fn new() -> Self {
        Self::default()
    }

    /// A hasher with another seed (fingerprints of different seeds are not comparable).
    pub fn with_seed(seed: u64) -> Self {
        let mut multipliers = [0; NUM_HASHES];
        let mut offsets = [0; NUM_HASHES];
        for (i, (a, b)) in multipliers.iter_mut().zip(offsets.iter_mut()).enumerate() {
            let i = i as u64;
            *a = splitmix64(seed ^ (2 * i)) | 1;
            *b = splitmix64(seed ^ (2 * i + 1));
        }
        MinHasher {
            multipliers,
            offsets,
        }
    }

    /// Fingerprint of `text`, which should be `normalize(..).text`.
    pub fn fingerprint(&self, text: &str) -> Fingerprint {
        let mut minhash = [u32::MAX; NUM_HASHES];
        let mut bit_votes = [0i32; 64];
        for_each_shingle_hash(text, |h| {
            for ((slot, a), b) in minhash.iter_mut().zip(&self.multipliers).zip(&self.offsets) {
                let value = (a.wrapping_mul(h).wrapping_add(*b) >> 32) as u32;
                *slot = (*slot).min(value);
            }
            for (bit, vote) in bit_votes.iter_mut().enumerate() {
                *vote += if (h >> bit) & 1 == 1 { 1 } else { -1 };
            }
        });
        let simhash = bit_votes
            .iter()
            .enumerate()
            .filter(|(_, vote)| **vote > 0)
            .fold(0u64, |acc, (bit, _)| acc | (1 << bit));
        Fingerprint { minhash, simhash }
    }
}

/// Calls `f` with the hash of every character shingle of `text` (see the module docs).
fn for_each_shingle_hash(text: &str, mut f: impl FnMut(u64)) {
    let pack = |window: &[u32; SHINGLE_WIDTH]| {
        splitmix64(u64::from(window[0]) | u64::from(window[1]) << 21 | u64::from(window[2]) << 42)
    };
    let mut window = [0u32; SHINGLE_WIDTH];
    let mut seen = 0usize;
    for c in text.chars() {
        if seen < SHINGLE_WIDTH {
            window[seen] = u32::from(c);
        } else {
            window.rotate_left(1);
            window[SHINGLE_WIDTH - 1] = u32::from(c);
        }
        seen += 1;
        if seen >= SHINGLE_WIDTH {
            f(pack(&window));
        }
    }
    if (1..SHINGLE_WIDTH).contains(&seen) {
        f(pack(&window));
    }
}

/// MinHash + SimHash of one normalised message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Fingerprint {
    #[serde(with = "slots")]
    pub minhash: [u32; NUM_HASHES],
    pub simhash: u64,
}

impl Fingerprint {
    /// Fraction of equal MinHash slots: an unbiased estimate of the Jaccard similarity of the two
    /// shingle sets (standard error about 0.06 with 64 slots).
    pub fn jaccard_estimate(&self, other: &Fingerprint) -> f32 {
        let equal = self
            .minhash
            .iter()
            .zip(&other.minhash)
            .filter(|(a, b)| a == b)
            .count();
        equal as f32 / NUM_HASHES as f32
    }

    /// Number of differing SimHash bits (0..=64).
    pub fn simhash_distance(&self, other: &Fingerprint) -> u32 {
        (self.simhash ^ other.simhash).count_ones()
    }

    /// Stable 64-bit id of the whole fingerprint (FNV-1a, see the module docs).
    pub fn id(&self) -> u64 {
        let slot_bytes = self.minhash.iter().flat_map(|slot| slot.to_le_bytes());
        slot_bytes
            .chain(self.simhash.to_le_bytes())
            .fold(FNV_OFFSET, |hash, byte| {
                (hash ^ u64::from(byte)).wrapping_mul(FNV_PRIME)
            })
    }

    /// The id as 16 lower-case hex digits.
    pub fn to_hex(&self) -> String {
        format!("{:016x}", self.id())
    }
}

/// Serde for the 64-slot array (serde derives arrays only up to 32 elements).
mod slots {
    use super::NUM_HASHES;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(slots: &[u32; NUM_HASHES], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(slots.iter())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u32; NUM_HASHES], D::Error> {
        let values = Vec::<u32>::deserialize(d)?;
        let len = values.len();
        values
            .try_into()
            .map_err(|_| D::Error::invalid_length(len, &"64 minhash slots"))
    }
}
