//! Hashed character n-grams of normalised text: the sparse "bag of n-grams" input of the edge
//! model's linear branch (the part of the model that works like a TF-IDF linear classifier, next
//! to the char-CNN).
//!
//! Words are the whitespace-separated runs of the text, each padded with one space on both sides
//! (so prefixes and suffixes are their own grams); every run of 1 to `max_n` characters inside a
//! padded word is a gram, except the lone padding space. A Chinese sentence without spaces is one
//! long word, so its grams run across the whole sentence. Only the first `max_chars` characters
//! of the text count.
//!
//! A gram goes to bucket `1 + fnv1a_64(UTF-8 bytes of the gram) % (buckets - 1)`; bucket 0 is
//! padding and carries weight 0. FNV-1a is fixed by its published constants, so buckets never
//! change between builds, platforms or Rust versions. Each bucket present gets the weight
//! `1 + ln(count)`, and the weights of a message are scaled to unit L2 norm (sublinear tf,
//! cosine-normalised, as in classic TF-IDF text classifiers, without the idf, which the model's
//! per-bucket weights absorb).

use serde::{Deserialize, Serialize};

/// Shape of the n-gram features; recorded in the model so the edge computes the same ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NgramConfig {
    /// Number of buckets including the padding bucket 0 (at least 2).
    pub buckets: usize,
    /// Longest gram, in characters (at least 1).
    pub max_n: usize,
    /// Characters of the text that are read.
    pub max_chars: usize,
}

impl Default for NgramConfig {
    fn default() -> Self {
        Self {
            buckets: 1 << 16,
            max_n: 5,
            max_chars: 256,
        }
    }
}

/// Why an [`NgramConfig`] is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NgramConfigError {
    #[error("n-gram buckets must be at least 2 (bucket 0 is padding), got {0}")]
    TooFewBuckets(usize),
    #[error("n-gram max_n must be between 1 and 16, got {0}")]
    BadMaxN(usize),
    #[error("n-gram max_chars must be at least 1")]
    ZeroMaxChars,
}

impl NgramConfig {
    pub fn validate(&self) -> Result<(), NgramConfigError> {
        if self.buckets < 2 {
            Err(NgramConfigError::TooFewBuckets(self.buckets))
        } else if !(1..=16).contains(&self.max_n) {
            Err(NgramConfigError::BadMaxN(self.max_n))
        } else if self.max_chars == 0 {
            Err(NgramConfigError::ZeroMaxChars)
        } else {
            Ok(())
        }
    }
}

/// The n-gram features of one message: bucket ids in increasing order, each once, with their
/// weights. Empty text gives no features.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NgramFeatures {
    pub ids: Vec<i64>,
    pub weights: Vec<f32>,
}

impl NgramFeatures {
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// The n-gram inputs of a batch, row-major `[rows, width]`: every row right-padded with bucket 0
/// and weight 0 to the longest row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PaddedNgrams {
    pub ids: Vec<i64>,
    pub weights: Vec<f32>,
    /// Columns per row: the longest row, at least 1 (so that a batch of messages without
    /// n-grams is still a valid tensor).
    pub width: usize,
}

/// Pads the n-grams of a batch into one rectangular block (see [`PaddedNgrams`]).
pub fn pad_batch(rows: &[&NgramFeatures]) -> PaddedNgrams {
    let width = rows.iter().map(|row| row.len()).max().unwrap_or(0).max(1);
    let mut padded = PaddedNgrams {
        ids: vec![0; rows.len() * width],
        weights: vec![0.0; rows.len() * width],
        width,
    };
    for (r, row) in rows.iter().enumerate() {
        let start = r * width;
        padded.ids[start..start + row.len()].copy_from_slice(&row.ids);
        padded.weights[start..start + row.len()].copy_from_slice(&row.weights);
    }
    padded
}

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv1a_extend(hash: u64, c: char) -> u64 {
    let mut buf = [0u8; 4];
    c.encode_utf8(&mut buf).bytes().fold(hash, |h, byte| {
        (h ^ u64::from(byte)).wrapping_mul(FNV_PRIME)
    })
}

/// Hashes the n-grams of `normalized_text` (output of [`crate::normalize()`]) under `config`.
/// `config` must be valid (see [`NgramConfig::validate`]); an invalid one gives no features.
pub fn hash_ngrams(normalized_text: &str, config: &NgramConfig) -> NgramFeatures {
    if config.validate().is_err() {
        return NgramFeatures::default();
    }
    let mut buckets = Vec::new();
    let mut padded: Vec<char> = Vec::with_capacity(64);
    let text: String = normalized_text.chars().take(config.max_chars).collect();
    for word in text.split_whitespace() {
        padded.clear();
        padded.push(' ');
        padded.extend(word.chars());
        padded.push(' ');
        push_word_grams(&padded, config, &mut buckets);
    }
    weigh(buckets)
}

/// Buckets of every gram of one padded word.
fn push_word_grams(padded: &[char], config: &NgramConfig, out: &mut Vec<u32>) {
    let modulus = (config.buckets - 1) as u64;
    for start in 0..padded.len() {
        let mut hash = FNV_OFFSET_BASIS;
        for (n, &c) in padded[start..].iter().take(config.max_n).enumerate() {
            hash = fnv1a_extend(hash, c);
            let lone_padding = n == 0 && c == ' ';
            if !lone_padding {
                out.push(1 + (hash % modulus) as u32);
            }
        }
    }
}

/// Counts buckets and turns the counts into unit-norm sublinear weights.
fn weigh(mut buckets: Vec<u32>) -> NgramFeatures {
    buckets.sort_unstable();
    let mut features = NgramFeatures::default();
    let mut i = 0;
    while i < buckets.len() {
        let run = buckets[i..]
            .iter()
            .take_while(|&&b| b == buckets[i])
            .count();
        features.ids.push(i64::from(buckets[i]));
        features.weights.push(1.0 + (run as f32).ln());
        i += run;
    }
    let norm = features.weights.iter().map(|w| w * w).sum::<f32>().sqrt();
    if norm > 0.0 {
        features.weights.iter_mut().for_each(|w| *w /= norm);
    }
    features
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> NgramConfig {
        NgramConfig {
            buckets: 1 << 20,
            max_n: 3,
            max_chars: 256,
        }
    }

    #[test]
    fn counts_every_gram_of_a_padded_word() {
        // " ab ": grams a, b, " a", ab, "b ", " ab", "ab " (the two lone spaces are skipped).
        let f = hash_ngrams("ab", &small());
        assert_eq!(f.len(), 7);
        assert!(f.ids.windows(2).all(|w| w[0] < w[1]), "sorted and unique");
        let norm: f32 = f.weights.iter().map(|w| w * w).sum();
        assert!((norm - 1.0).abs() < 1e-5);
    }

    #[test]
    fn repeated_grams_weigh_sublinearly() {
        let f = hash_ngrams("aa", &small());
        // " aa ": a (twice), " a", aa, "a ", " aa", "aa ": six distinct grams, one seen twice.
        assert_eq!(f.len(), 6);
        let max = f.weights.iter().cloned().fold(0.0, f32::max);
        let min = f.weights.iter().cloned().fold(f32::MAX, f32::min);
        assert!((max / min - (1.0 + 2f32.ln())).abs() < 1e-5);
    }

    #[test]
    fn buckets_are_stable_and_never_zero() {
        let cfg = NgramConfig {
            buckets: 1 << 16,
            ..small()
        };
        let f = hash_ngrams("加微信 free entry", &cfg);
        assert!(f.ids.iter().all(|id| (1..1 << 16).contains(id)));
        // Pinned: the bucket of the single gram "a" under FNV-1a 64 (offset basis
        // 0xcbf29ce484222325, prime 0x100000001b3) modulo 65535, plus one.
        let expected = 1 + (0xaf63_dc4c_8601_ec8cu64 % 65_535) as i64;
        let single = hash_ngrams("a", &NgramConfig { max_n: 1, ..cfg });
        assert_eq!(single.ids, vec![expected]);
    }

    #[test]
    fn only_the_first_max_chars_count_and_empty_text_has_no_features() {
        let cfg = NgramConfig {
            max_chars: 2,
            ..small()
        };
        assert_eq!(hash_ngrams("ab cd", &cfg), hash_ngrams("ab", &cfg));
        assert!(hash_ngrams("", &cfg).is_empty());
        assert!(hash_ngrams("   ", &cfg).is_empty());
    }

    #[test]
    fn batches_pad_to_the_longest_row_with_bucket_zero() {
        let long = hash_ngrams("abc", &small());
        let none = NgramFeatures::default();
        let padded = pad_batch(&[&none, &long]);
        assert_eq!(padded.width, long.len());
        assert!(padded.ids[..padded.width].iter().all(|&id| id == 0));
        assert!(padded.weights[..padded.width].iter().all(|&w| w == 0.0));
        assert_eq!(&padded.ids[padded.width..], long.ids.as_slice());
        assert_eq!(&padded.weights[padded.width..], long.weights.as_slice());
        let empty = pad_batch(&[&none]);
        assert_eq!(
            (empty.width, empty.ids, empty.weights),
            (1, vec![0], vec![0.0])
        );
    }

    #[test]
    fn invalid_configs_are_named() {
        let bad = NgramConfig {
            buckets: 1,
            ..small()
        };
        assert_eq!(bad.validate(), Err(NgramConfigError::TooFewBuckets(1)));
        assert!(hash_ngrams("abc", &bad).is_empty());
        let bad = NgramConfig {
            max_n: 0,
            ..small()
        };
        assert_eq!(bad.validate(), Err(NgramConfigError::BadMaxN(0)));
    }
}
