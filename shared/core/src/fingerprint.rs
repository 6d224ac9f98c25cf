//! Near-duplicate fingerprints of normalised text: a 64-slot MinHash over character 3-shingles.
//!
//! # Definition (stable, [`FINGERPRINT_VERSION`] 4)
//! * Shingles: every window of [`SHINGLE_WIDTH`] = 3 consecutive `char`s of the text (Unicode
//!   scalar values, not bytes). A text of 1-2 chars has one shingle (the whole text); the empty
//!   text has none.
//! * Shingle hash `h`: the code points are packed as `c0 | c1 << 21 | c2 << 42` (missing chars
//!   are 0) and mixed with the SplitMix64 finaliser ([`splitmix64`], constants
//!   `0x9E3779B97F4A7C15`, `0xBF58476D1CE4E5B9`, `0x94D049BB133111EB`).
//! * MinHash keys, once per shingle: `s = h ^ seed` (the default seed is [`BASE_SEED`], ASCII
//!   "smsguard"); `k0 = splitmix64(s)` and `k1 = splitmix64(s + 0x9E3779B97F4A7C15)` (the first
//!   two outputs of a SplitMix64 generator in state `s`) give eight 16-bit bases: `b[k]` is bits
//!   `16k..16k+16` of `k0` for `k` in 0..4 and bits `16(k-4)..` of `k1` for `k` in 4..8; the step
//!   is `d = (h >> 48) | 1` (odd, so the values of one sequence are distinct).
//! * MinHash slot `i = 8j + k` (`j` in 0..8, `k` in 0..8): the minimum over shingles of the
//!   16-bit value `(b[k] + j * d) mod 2^16` *read as a signed (two's complement) number*, stored
//!   as the `u32` of its 16 bits. Any fixed order of the values makes a valid MinHash (a slot is
//!   the minimum of a random function under that order); the signed one is the order of the
//!   vector minimum that baseline x86-64 has (SSE2 `pminsw`; ARMv8 NEON has both), so no
//!   per-value conversion is needed. This is Kirsch–Mitzenmacher double hashing (one
//!   64-bit hash per shingle instead of 64 hash functions), interleaved as eight sequences of
//!   eight, so that the slots of a row (and the four of an LSH band, see [`crate::lsh`]) come
//!   from independent bases and the same step: one vector add and one vector minimum of eight
//!   16-bit lanes per row, which baseline x86-64 (SSE2 `pminsw`) and ARMv8 NEON both have.
//!   Each slot on its own is a random function of the shingle, so the fraction of equal slots
//!   estimates the Jaccard similarity; 16-bit values make two different minima coincide with
//!   probability about `n / 2^17` for sets of `n` shingles (0.1 % at 150), a bias far below the
//!   estimate's standard error of 0.06. Unit tests check its bias, its variance (that of
//!   independent slots) and the band collision rate `J^4` on sets of known similarity.
//!   A text without shingles has every slot `u32::MAX` (no 16-bit minimum can be that).
//! * Id: the slots packed two to a 64-bit word (slot `2m` in the low half of word `m`): 32 words
//!   folded as `id = splitmix64(id ^ word)` from `0xcbf29ce484222325`. It
//!   depends on the MinHash only, so whoever holds the 64 slots (the cloud, from a report) has
//!   the id too.
//!
//! # Stability
//! For a given text, the fingerprint and its id depend only on the definition above: they are the
//! same on every platform, build and run, and change only with a deliberate change of this module,
//! which bumps [`FINGERPRINT_VERSION`] (a golden test pins one id). Fingerprints of different
//! versions (or seeds) are not comparable: stored ones must be recomputed. Version 1 used 64
//! separate xor-multiply-xorshift hash functions per shingle; its MinHash slots (and ids) differ,
//! its SimHash is the same. Version 2 had 32-bit slots (four sequences of sixteen) and an FNV-1a
//! id over the slots' bytes and a SimHash; version 3 (one commit) had 16-bit slots in unsigned
//! order and the SimHash. Version 4 dropped the SimHash: nothing compared it, it cost a fifth of
//! a fingerprint's instructions, and it kept the cloud from rebuilding a reported message's id.
//! Fingerprints are computed from *normalised* text, so a change of
//! [`crate::normalize()`] (see [`crate::PIPELINE_VERSION`]) changes the fingerprints of affected
//! messages too.

use serde::{Deserialize, Serialize};
use wide::i16x8;

/// Version of the fingerprint definition (module docs); bumped on any change of the values.
/// Fingerprints (and ids) of different versions are not comparable.
pub const FINGERPRINT_VERSION: u32 = 4;
/// Number of MinHash slots.
pub const NUM_HASHES: usize = 64;
/// Width of a character shingle.
pub const SHINGLE_WIDTH: usize = 3;
/// Default seed, the ASCII bytes of "smsguard".
pub const BASE_SEED: u64 = 0x736d_7367_7561_7264;

/// Start of the id fold (the FNV-1a offset basis, a fixed odd constant).
const ID_SEED: u64 = 0xcbf2_9ce4_8422_2325;

/// The SplitMix64 output function applied to `x` (one step of the SplitMix64 generator).
pub const fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Computes [`Fingerprint`]s with one seed.
#[derive(Debug, Clone)]
pub struct MinHasher {
    seed: u64,
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
        MinHasher { seed }
    }

    /// Fingerprint of `text`, which should be `normalize(..).text`.
    pub fn fingerprint(&self, text: &str) -> Fingerprint {
        let mut chars = text.chars();
        let Some(first) = chars.next() else {
            return Fingerprint {
                minhash: [u32::MAX; NUM_HASHES],
            };
        };
        let second = chars.next();
        // The last three code points, packed as in the definition and slid by one shift per
        // char (code points are below 2^21, so the oldest falls out of the low bits). The first
        // two are read before the loop: a per-char "seen two yet?" kept the window in memory.
        let packed = |c: char| u64::from(u32::from(c));
        let mut window = packed(first) << 21 | second.map_or(0, packed) << 42;
        // One loop with the minima in locals: a per-shingle callback kept them in memory (a load
        // and a store per row per shingle), about a quarter of a fingerprint's time.
        let mut minima = SlotMinima::new();
        let mut shingles = 0usize;
        for c in chars {
            window = window >> 21 | packed(c) << 42;
            minima.add(&self.slot_keys(splitmix64(window)));
            shingles += 1;
        }
        if shingles == 0 {
            // A text of 1-2 chars has one shingle, missing chars packed as 0.
            let short = packed(first) | second.map_or(0, packed) << 21;
            minima.add(&self.slot_keys(splitmix64(short)));
        }
        Fingerprint {
            minhash: minima.slots(),
        }
    }

    /// The per-shingle parameters of the MinHash slots (see the module docs).
    #[inline(always)]
    fn slot_keys(&self, shingle_hash: u64) -> SlotKeys {
        let state = shingle_hash ^ self.seed;
        let first = splitmix64(state);
        let second = splitmix64(state.wrapping_add(SPLITMIX_GAMMA));
        SlotKeys {
            first,
            second,
            step: (shingle_hash >> 48) as u16 | 1,
        }
    }
}

/// The increment of the SplitMix64 generator state (its first constant).
const SPLITMIX_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// Number of interleaved arithmetic sequences of slot values: one 128-bit vector of `i16`.
const LANES: usize = 8;

/// Slot `LANES * j + k` of one shingle has the value `bases[k] + j * step (mod 2^16)`, where
/// base `k` is bits `16k..` of `first` (k < 4) or `16(k-4)..` of `second`: the little-endian
/// 16-bit lanes of the 128-bit word `second:first`.
struct SlotKeys {
    first: u64,
    second: u64,
    /// Odd, so the values of one sequence are distinct.
    step: u16,
}

impl SlotKeys {
    /// The bases by the definition, lane by lane.
    #[cfg(any(test, not(target_endian = "little")))]
    fn bases_by_lane(&self) -> [i16; LANES] {
        std::array::from_fn(|k| {
            let word = if k < 4 { self.first } else { self.second };
            (word >> (16 * (k % 4))) as i16
        })
    }

    /// On little-endian targets the bases are the memory image of `[first, second]`: one
    /// register move instead of eight lane inserts (a test checks it against the definition).
    #[cfg(target_endian = "little")]
    fn bases(&self) -> i16x8 {
        bytemuck::cast([self.first, self.second])
    }

    #[cfg(not(target_endian = "little"))]
    fn bases(&self) -> i16x8 {
        i16x8::new(self.bases_by_lane())
    }
}

/// Running minima of the 64 MinHash slots over the shingles seen so far, in the signed order
/// of the definition, as eight vectors of eight 16-bit lanes. The step is the same for all
/// lanes of a row, so a row is one vector add and one signed vector minimum (SSE2 `paddw` and
/// `pminsw`, NEON `add`/`smin`), through the `wide` crate: the compiler left to itself rebuilt
/// the vectors lane by lane or split the minima into 64 scalars. (Version 2 kept 32-bit slots,
/// whose minimum SSE2 lacks: a compare and three logic operations per four slots.)
struct SlotMinima {
    rows: [i16x8; NUM_HASHES / LANES],
}

impl SlotMinima {
    fn new() -> Self {
        SlotMinima {
            rows: [i16x8::splat(i16::MAX); NUM_HASHES / LANES],
        }
    }

    /// Folds in the slot values of one shingle.
    #[inline(always)]
    fn add(&mut self, keys: &SlotKeys) {
        let mut values = keys.bases();
        let step = i16x8::splat(keys.step as i16);
        for row in &mut self.rows {
            *row = row.min(values);
            values += step;
        }
    }

    fn slots(&self) -> [u32; NUM_HASHES] {
        let mut slots = [0u32; NUM_HASHES];
        for (row, out) in self.rows.iter().zip(slots.chunks_exact_mut(LANES)) {
            for (slot, minimum) in out.iter_mut().zip(row.to_array()) {
                *slot = u32::from(minimum as u16);
            }
        }
        slots
    }
}

/// The MinHash of one normalised message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Fingerprint {
    #[serde(with = "slots")]
    pub minhash: [u32; NUM_HASHES],
}

impl Fingerprint {
    /// Fraction of equal MinHash slots: an unbiased estimate of the Jaccard similarity of the two
    /// shingle sets (standard error about 0.06 with 64 slots).
    pub fn jaccard_estimate(&self, other: &Fingerprint) -> f32 {
        crate::lsh::minhash_jaccard(&self.minhash, &other.minhash)
    }

    /// Stable 64-bit id of the whole fingerprint (see the module docs).
    pub fn id(&self) -> u64 {
        let slot_words = self
            .minhash
            .chunks_exact(2)
            .map(|pair| u64::from(pair[0]) | u64::from(pair[1]) << 32);
        slot_words.fold(ID_SEED, |id, word| splitmix64(id ^ word))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// MinHash slots of a set given as shingle hashes, as [`MinHasher::fingerprint`] folds them.
    fn minhash_of(hasher: &MinHasher, shingle_hashes: &[u64]) -> [u32; NUM_HASHES] {
        let mut minima = SlotMinima::new();
        for &h in shingle_hashes {
            minima.add(&hasher.slot_keys(h));
        }
        minima.slots()
    }

    fn equal_fraction(a: &[u32; NUM_HASHES], b: &[u32; NUM_HASHES]) -> f64 {
        let equal = a.iter().zip(b).filter(|(x, y)| x == y).count();
        equal as f64 / NUM_HASHES as f64
    }

    /// Two sets of distinct shingle hashes with `union` elements, `common` of them shared; the
    /// hashes are SplitMix64 outputs of a running counter, distinct across calls.
    fn set_pair(counter: &mut u64, union: usize, common: usize) -> (Vec<u64>, Vec<u64>) {
        let mut next = || {
            *counter += 1;
            splitmix64(*counter)
        };
        let shared: Vec<u64> = (0..common).map(|_| next()).collect();
        let only_a = (union - common) / 2;
        let mut a = shared.clone();
        let mut b = shared;
        a.extend((0..only_a).map(|_| next()));
        b.extend((0..union - common - only_a).map(|_| next()));
        (a, b)
    }

    #[test]
    fn vector_bases_are_the_lanes_of_the_definition() {
        for seed in 0..1000u64 {
            let keys = SlotKeys {
                first: splitmix64(seed),
                second: splitmix64(!seed),
                step: 1,
            };
            assert_eq!(keys.bases().to_array(), keys.bases_by_lane(), "seed {seed}");
        }
    }

    #[test]
    fn equal_slot_fraction_estimates_jaccard_without_bias() {
        let hasher = MinHasher::new();
        let mut counter = 0;
        let pairs = 400;
        let union = 120;
        for target in [0.2, 0.5, 0.8] {
            let common = (target * union as f64).round() as usize;
            let jaccard = common as f64 / union as f64;
            let (mut sum, mut abs_err, mut sq_err) = (0.0, 0.0, 0.0);
            for _ in 0..pairs {
                let (a, b) = set_pair(&mut counter, union, common);
                let estimate = equal_fraction(&minhash_of(&hasher, &a), &minhash_of(&hasher, &b));
                sum += estimate;
                abs_err += (estimate - jaccard).abs();
                sq_err += (estimate - jaccard).powi(2);
            }
            let n = f64::from(pairs);
            let (mean, mae, mse) = (sum / n, abs_err / n, sq_err / n);
            assert!(
                (mean - jaccard).abs() < 0.02,
                "J {jaccard}: mean estimate {mean}"
            );
            assert!(mae <= 0.1, "J {jaccard}: mean absolute error {mae}");
            // Independent slots give binomial variance J(1-J)/64; correlated slots would inflate it.
            let binomial = jaccard * (1.0 - jaccard) / NUM_HASHES as f64;
            assert!(
                mse < 1.5 * binomial,
                "J {jaccard}: mse {mse} vs binomial {binomial}"
            );
        }
    }

    /// The similarity store bands the slots in rows of four; a band matches with probability
    /// `J^4` only if the four slots of a band are independent.
    #[test]
    fn bands_of_four_slots_collide_with_probability_jaccard_to_the_fourth() {
        const ROWS: usize = 4;
        let hasher = MinHasher::new();
        let mut counter = 1 << 40;
        let union = 90;
        for target in [0.5, 0.8] {
            let common = (target * union as f64).round() as usize;
            let jaccard = common as f64 / union as f64;
            let (mut matches, mut bands) = (0u32, 0u32);
            for _ in 0..400 {
                let (a, b) = set_pair(&mut counter, union, common);
                let (a, b) = (minhash_of(&hasher, &a), minhash_of(&hasher, &b));
                for (band_a, band_b) in a.chunks_exact(ROWS).zip(b.chunks_exact(ROWS)) {
                    matches += u32::from(band_a == band_b);
                    bands += 1;
                }
            }
            let rate = f64::from(matches) / f64::from(bands);
            let expected = jaccard.powi(ROWS as i32);
            assert!(
                (rate - expected).abs() < 0.03,
                "J {jaccard}: band rate {rate} vs {expected}"
            );
        }
    }
}
