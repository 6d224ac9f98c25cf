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
//! * MinHash slot `i` (0..64): `min over shingles of p_i(h mod 2^32)` where
//!   `p_i(k) = v ^ (v >> 15)`, `v = ((k ^ b_i) * a_i) mod 2^32`, a random bijection of `u32`, with
//!   `a_i = (splitmix64(seed ^ 2i) >> 32) | 1` and `b_i = splitmix64(seed ^ (2i + 1)) >> 32`; the
//!   default seed is [`BASE_SEED`] (ASCII "smsguard").
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
    multipliers: [u32; NUM_HASHES],
    offsets: [u32; NUM_HASHES],
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
            *a = (splitmix64(seed ^ (2 * i)) >> 32) as u32 | 1;
            *b = (splitmix64(seed ^ (2 * i + 1)) >> 32) as u32;
        }
        MinHasher {
            multipliers,
            offsets,
        }
    }

    /// Fingerprint of `text`, which should be `normalize(..).text`.
    pub fn fingerprint(&self, text: &str) -> Fingerprint {
        // The running minima are kept sign-flipped as `i32` (see `SIGN`): baseline x86-64 (SSE2)
        // has a signed 32-bit vector compare but no unsigned one, so the 64 slots vectorise
        // with fewer instructions. Flipping the sign bit maps unsigned order onto signed order,
        // so the minima are the same.
        let mut flipped = [i32::MAX; NUM_HASHES];
        let mut votes = BitVotes::default();
        for_each_shingle_hash(text, |h| {
            // 32-bit arithmetic so that the 64 slots compile to vector code on baseline x86-64.
            let key = h as u32;
            for ((slot, a), b) in flipped.iter_mut().zip(&self.multipliers).zip(&self.offsets) {
                *slot = (*slot).min(sign_flipped(permute(key, *a, *b)));
            }
            votes.add(h);
        });
        Fingerprint {
            minhash: flipped.map(unflip),
            simhash: votes.majority(),
        }
    }
}

/// The sign bit of a `u32`.
const SIGN: u32 = 0x8000_0000;

/// `value` with its top bit flipped, as `i32`: `a < b` (unsigned) iff `flip(a) < flip(b)`.
fn sign_flipped(value: u32) -> i32 {
    (value ^ SIGN) as i32
}

fn unflip(flipped: i32) -> u32 {
    flipped as u32 ^ SIGN
}

/// Per-bit counts of set bits over many 64-bit hashes, for the SimHash majority vote. Counts
/// bit `k + 8j` in byte `j` of `lanes[k]` (eight additions per hash instead of 64) and spills the
/// bytes into `totals` before they can overflow.
struct BitVotes {
    lanes: [u64; 8],
    pending: u32,
    totals: [u32; 64],
    hashes: u32,
}

impl Default for BitVotes {
    fn default() -> Self {
        BitVotes {
            lanes: [0; 8],
            pending: 0,
            totals: [0; 64],
            hashes: 0,
        }
    }
}

impl BitVotes {
    const BYTE_ONES: u64 = 0x0101_0101_0101_0101;

    fn add(&mut self, h: u64) {
        for (k, lane) in self.lanes.iter_mut().enumerate() {
            *lane += (h >> k) & Self::BYTE_ONES;
        }
        self.pending += 1;
        self.hashes += 1;
        if self.pending == 255 {
            self.spill();
        }
    }

    fn spill(&mut self) {
        for (k, lane) in self.lanes.iter_mut().enumerate() {
            for (j, byte) in lane.to_le_bytes().into_iter().enumerate() {
                self.totals[k + 8 * j] += u32::from(byte);
            }
            *lane = 0;
        }
        self.pending = 0;
    }

    /// Bit `j` is set when more than half of the hashes had bit `j` set.
    fn majority(mut self) -> u64 {
        self.spill();
        let hashes = self.hashes;
        self.totals
            .iter()
            .enumerate()
            .filter(|(_, count)| 2 * **count > hashes)
            .fold(0u64, |acc, (bit, _)| acc | (1 << bit))
    }
}

/// Hash function `(a, b)` of the MinHash family: a bijection of `u32` (xor, odd multiply,
/// xor-shift), applied to an already well-mixed key.
fn permute(key: u32, a: u32, b: u32) -> u32 {
    let v = (key ^ b).wrapping_mul(a);
    v ^ (v >> 15)
}

/// Calls `f` with the hash of every character shingle of `text` (see the module docs).
fn for_each_shingle_hash(text: &str, mut f: impl FnMut(u64)) {
    let pack = |c0: u32, c1: u32, c2: u32| {
        splitmix64(u64::from(c0) | u64::from(c1) << 21 | u64::from(c2) << 42)
    };
    // The last three chars; a sliding window of plain variables (no array rotation per char).
    let (mut c0, mut c1, mut c2) = (0u32, 0u32, 0u32);
    let mut seen = 0usize;
    for c in text.chars() {
        let c = u32::from(c);
        match seen {
            0 => c0 = c,
            1 => c1 = c,
            2 => c2 = c,
            _ => (c0, c1, c2) = (c1, c2, c),
        }
        seen += 1;
        if seen >= SHINGLE_WIDTH {
            f(pack(c0, c1, c2));
        }
    }
    // 1-2 chars: one shingle, missing chars packed as 0.
    if (1..SHINGLE_WIDTH).contains(&seen) {
        f(pack(c0, c1, c2));
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
