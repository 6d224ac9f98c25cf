//! The one feature encoder shared by the trainer and the edge: normalised text -> fixed-length
//! character ids for the char-CNN.
//!
//! The vocabulary is a `tokenizers` WordLevel JSON document (`model.vocab` maps token -> id); it
//! is parsed here with serde_json so that the core does not depend on the `tokenizers` crate.
//! The id layout is fixed and validated when the encoder is built:
//!
//! ```text
//! 0                      PAD_TOKEN ("[PAD]"), also used for right padding
//! 1..=4                  the placeholders of `crate::placeholder::ALL`, in that order
//! 5..5+K                 K known characters (each token is exactly one char)
//! 5+K..5+K+B             B hash buckets for unknown characters, tokens "[H0]".."[H{B-1}]"
//! ```
//!
//! An unknown character goes to bucket `fnv1a_32(code point as 4 little-endian bytes) % B`;
//! FNV-1a is fixed by its published constants, so the bucket of a char never changes between
//! builds, platforms or Rust versions.

use sha2::{Digest, Sha256};
use std::collections::HashMap;

use crate::placeholder;

/// Token of id 0 (padding).
pub const PAD_TOKEN: &str = "[PAD]";
/// Prefix of the hash-bucket tokens: bucket `b` is `"[H{b}]"`.
pub const HASH_BUCKET_PREFIX: &str = "[H";
/// Id of the first placeholder; placeholder `i` of `placeholder::ALL` has id `1 + i`.
pub const FIRST_PLACEHOLDER_ID: usize = 1;
/// Id of the first known character.
pub const FIRST_CHAR_ID: usize = FIRST_PLACEHOLDER_ID + placeholder::ALL.len();

/// Why a vocabulary document cannot back a [`FeatureEncoder`].
#[derive(Debug, thiserror::Error)]
pub enum FeatureError {
    #[error("vocabulary is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("vocabulary JSON has no object at `model.vocab`")]
    MissingVocab,
    #[error("vocabulary model type is {found:?}, expected \"WordLevel\"")]
    NotWordLevel { found: String },
    #[error("vocabulary token #{index} has a non-integer id")]
    BadId { index: usize },
    #[error("vocabulary ids are not exactly 0..{size}: id {id} is missing or repeated")]
    NonContiguousIds { size: usize, id: usize },
    #[error("vocabulary id {id} must be the reserved token {expected:?}")]
    ReservedIdMismatch { id: usize, expected: String },
    #[error("vocabulary id {id} must be a single character or a hash bucket token")]
    NotACharacter { id: usize },
    #[error(
        "hash bucket tokens must be contiguous, numbered from 0 and last; id {id} breaks this"
    )]
    BadBucket { id: usize },
    #[error("vocabulary has no hash buckets")]
    NoBuckets,
    #[error("seq_len must be at least 1")]
    ZeroSeqLen,
}

/// Builds the WordLevel vocabulary JSON (the `tokenizers` `Tokenizer` document shape) for the
/// given known characters and bucket count; ids follow the layout of the module docs. The
/// trainer may serialise through `tokenizers` instead; both must yield this id layout.
pub fn word_level_json(known_chars: &[char], hash_buckets: usize) -> String {
    let vocab: serde_json::Map<String, serde_json::Value> =
        layout_tokens(known_chars, hash_buckets)
            .into_iter()
            .enumerate()
            .map(|(id, token)| (token, serde_json::Value::from(id)))
            .collect();
    let doc = serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [],
        "normalizer": null,
        "pre_tokenizer": null,
        "post_processor": null,
        "decoder": null,
        "model": { "type": "WordLevel", "vocab": vocab, "unk_token": bucket_token(0) },
    });
    doc.to_string()
}

/// All tokens in id order for the given known characters and bucket count.
pub fn layout_tokens(known_chars: &[char], hash_buckets: usize) -> Vec<String> {
    let mut tokens = vec![PAD_TOKEN.to_string()];
    tokens.extend(placeholder::ALL.iter().map(|p| p.to_string()));
    tokens.extend(known_chars.iter().map(|c| c.to_string()));
    tokens.extend((0..hash_buckets).map(bucket_token));
    tokens
}

/// The token of hash bucket `bucket`.
pub fn bucket_token(bucket: usize) -> String {
    format!("{HASH_BUCKET_PREFIX}{bucket}]")
}

/// FNV-1a (32 bit) of a char's code point as 4 little-endian bytes; the documented stable hash
/// that assigns unknown characters to buckets.
pub fn stable_char_hash(c: char) -> u32 {
    const OFFSET_BASIS: u32 = 0x811c_9dc5;
    const PRIME: u32 = 0x0100_0193;
    (c as u32)
        .to_le_bytes()
        .iter()
        .fold(OFFSET_BASIS, |hash, &byte| {
            (hash ^ u32::from(byte)).wrapping_mul(PRIME)
        })
}

/// Maps normalised text to `seq_len` ids (see the module docs for the id layout).
#[derive(Debug, Clone)]
pub struct FeatureEncoder {
    char_ids: HashMap<char, i64>,
    first_bucket_id: usize,
    hash_buckets: usize,
    seq_len: usize,
    sha256: String,
}

impl FeatureEncoder {
    /// Builds the encoder from a WordLevel vocabulary JSON document, validating its id layout.
    pub fn from_json(vocab_json: &str, seq_len: usize) -> Result<Self, FeatureError> {
        if seq_len == 0 {
            return Err(FeatureError::ZeroSeqLen);
        }
        let tokens = tokens_by_id(vocab_json)?;
        check_reserved(&tokens)?;
        let (char_ids, first_bucket_id) = collect_chars(&tokens)?;
        let hash_buckets = check_buckets(&tokens, first_bucket_id)?;
        Ok(Self {
            char_ids,
            first_bucket_id,
            hash_buckets,
            seq_len,
            sha256: hex::encode(Sha256::digest(vocab_json.as_bytes())),
        })
    }

    /// Encodes one normalised text: each placeholder is one id, each other char one id;
    /// truncated or right-padded with 0 to exactly `seq_len`.
    pub fn encode(&self, normalized_text: &str) -> Vec<i64> {
        let mut ids = Vec::with_capacity(self.seq_len);
        let mut rest = normalized_text;
        while ids.len() < self.seq_len {
            let Some(c) = rest.chars().next() else { break };
            if let Some((id, len)) = placeholder_at(rest) {
                ids.push(id);
                rest = &rest[len..];
            } else {
                ids.push(self.char_id(c));
                rest = &rest[c.len_utf8()..];
            }
        }
        ids.resize(self.seq_len, 0);
        ids
    }

    /// Encodes many texts into one row-major `[texts.len(), seq_len]` buffer.
    pub fn encode_batch<S: AsRef<str>>(&self, texts: &[S]) -> Vec<i64> {
        texts
            .iter()
            .flat_map(|text| self.encode(text.as_ref()))
            .collect()
    }

    /// The id of a single (non-placeholder) character: known id or its hash bucket.
    pub fn char_id(&self, c: char) -> i64 {
        match self.char_ids.get(&c) {
            Some(&id) => id,
            None => {
                let bucket = stable_char_hash(c) as usize % self.hash_buckets;
                (self.first_bucket_id + bucket) as i64
            }
        }
    }

    /// Total number of ids V (padding + placeholders + known chars + buckets).
    pub fn vocab_size(&self) -> usize {
        self.first_bucket_id + self.hash_buckets
    }

    pub fn seq_len(&self) -> usize {
        self.seq_len
    }

    pub fn hash_buckets(&self) -> usize {
        self.hash_buckets
    }

    pub fn known_chars(&self) -> usize {
        self.char_ids.len()
    }

    /// Lower-case hex SHA-256 of the vocabulary JSON bytes, recorded in model metadata.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }
}

/// The placeholder id and byte length if `text` starts with a placeholder.
fn placeholder_at(text: &str) -> Option<(i64, usize)> {
    if !text.starts_with('<') {
        return None;
    }
    placeholder::ALL
        .iter()
        .position(|p| text.starts_with(p))
        .map(|i| ((FIRST_PLACEHOLDER_ID + i) as i64, placeholder::ALL[i].len()))
}

/// Parses the document and returns the tokens indexed by id, requiring ids 0..n.
fn tokens_by_id(vocab_json: &str) -> Result<Vec<String>, FeatureError> {
    let doc: serde_json::Value = serde_json::from_str(vocab_json)?;
    let model = doc.get("model").ok_or(FeatureError::MissingVocab)?;
    if let Some(kind) = model.get("type").and_then(|t| t.as_str()) {
        if kind != "WordLevel" {
            return Err(FeatureError::NotWordLevel {
                found: kind.to_string(),
            });
        }
    }
    let vocab = model
        .get("vocab")
        .and_then(|v| v.as_object())
        .ok_or(FeatureError::MissingVocab)?;
    let size = vocab.len();
    let mut tokens: Vec<Option<String>> = vec![None; size];
    for (index, (token, id)) in vocab.iter().enumerate() {
        let id = id.as_u64().ok_or(FeatureError::BadId { index })? as usize;
        match tokens.get_mut(id) {
            Some(slot @ None) => *slot = Some(token.clone()),
            _ => return Err(FeatureError::NonContiguousIds { size, id }),
        }
    }
    // With `size` entries, no duplicates and every id < size, all slots are filled.
    Ok(tokens.into_iter().flatten().collect())
}

fn check_reserved(tokens: &[String]) -> Result<(), FeatureError> {
    let reserved = std::iter::once(PAD_TOKEN).chain(placeholder::ALL);
    for (id, expected) in reserved.enumerate() {
        if tokens.get(id).map(String::as_str) != Some(expected) {
            return Err(FeatureError::ReservedIdMismatch {
                id,
                expected: expected.to_string(),
            });
        }
    }
    Ok(())
}

/// Known characters start at `FIRST_CHAR_ID` and run until the first bucket token.
fn collect_chars(tokens: &[String]) -> Result<(HashMap<char, i64>, usize), FeatureError> {
    let mut char_ids = HashMap::new();
    for (id, token) in tokens.iter().enumerate().skip(FIRST_CHAR_ID) {
        if token.starts_with(HASH_BUCKET_PREFIX) {
            return Ok((char_ids, id));
        }
        let mut chars = token.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => char_ids.insert(c, id as i64),
            _ => return Err(FeatureError::NotACharacter { id }),
        };
    }
    Err(FeatureError::NoBuckets)
}

fn check_buckets(tokens: &[String], first_bucket_id: usize) -> Result<usize, FeatureError> {
    for (bucket, token) in tokens[first_bucket_id..].iter().enumerate() {
        if *token != bucket_token(bucket) {
            return Err(FeatureError::BadBucket {
                id: first_bucket_id + bucket,
            });
        }
    }
    Ok(tokens.len() - first_bucket_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoder(chars: &[char], buckets: usize, seq_len: usize) -> FeatureEncoder {
        FeatureEncoder::from_json(&word_level_json(chars, buckets), seq_len).unwrap()
    }

    #[test]
    fn id_layout_reserves_padding_then_placeholders() {
        let enc = encoder(&['a', 'b'], 4, 8);
        assert_eq!(enc.vocab_size(), 1 + 4 + 2 + 4);
        let ids = enc.encode("<url><email><phone><num>ab");
        assert_eq!(ids, vec![1, 2, 3, 4, 5, 6, 0, 0]);
    }

    #[test]
    fn unknown_chars_hash_into_the_bucket_range() {
        let enc = encoder(&['a'], 8, 4);
        let ids = enc.encode("z垃圾");
        for &id in &ids[..3] {
            assert!((6..14).contains(&id), "id {id} outside the bucket range");
        }
        assert_eq!(ids[0], enc.char_id('z'));
        assert_eq!(ids[3], 0);
    }

    #[test]
    fn stable_hash_matches_fnv1a_reference() {
        // FNV-1a of the bytes 61 00 00 00 ('a' as little-endian u32).
        let mut h: u32 = 0x811c_9dc5;
        for b in [0x61u8, 0, 0, 0] {
            h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
        }
        assert_eq!(stable_char_hash('a'), h);
        assert_ne!(stable_char_hash('a'), stable_char_hash('b'));
    }

    #[test]
    fn truncates_and_pads_to_seq_len() {
        let enc = encoder(&['a'], 2, 3);
        assert_eq!(enc.encode("aaaaa"), vec![5, 5, 5]);
        assert_eq!(enc.encode(""), vec![0, 0, 0]);
        assert_eq!(enc.encode_batch(&["a", "aa"]), vec![5, 0, 0, 5, 5, 0]);
    }

    #[test]
    fn partial_placeholder_is_encoded_as_chars() {
        let enc = encoder(&['<', 'u', 'r', 'l'], 2, 6);
        assert_eq!(enc.encode("<url"), vec![5, 6, 7, 8, 0, 0]);
    }

    #[test]
    fn sha256_is_of_the_json_bytes() {
        let json = word_level_json(&['a'], 2);
        let enc = FeatureEncoder::from_json(&json, 4).unwrap();
        assert_eq!(enc.sha256(), hex::encode(Sha256::digest(json.as_bytes())));
        assert_eq!(enc.sha256().len(), 64);
    }

    #[test]
    fn rejects_bad_layouts() {
        let no_buckets = word_level_json(&['a'], 0);
        assert!(matches!(
            FeatureEncoder::from_json(&no_buckets, 4),
            Err(FeatureError::NoBuckets)
        ));
        let swapped = word_level_json(&['a'], 2).replace("\"[PAD]\"", "\"[XX]\"");
        assert!(matches!(
            FeatureEncoder::from_json(&swapped, 4),
            Err(FeatureError::ReservedIdMismatch { id: 0, .. })
        ));
        assert!(matches!(
            FeatureEncoder::from_json("{}", 4),
            Err(FeatureError::MissingVocab)
        ));
        assert!(matches!(
            FeatureEncoder::from_json(&word_level_json(&['a'], 2), 0),
            Err(FeatureError::ZeroSeqLen)
        ));
        let multi_char = r#"{"model":{"type":"WordLevel","vocab":{"[PAD]":0,"<url>":1,"<email>":2,"<phone>":3,"<num>":4,"ab":5,"[H0]":6}}}"#;
        assert!(matches!(
            FeatureEncoder::from_json(multi_char, 4),
            Err(FeatureError::NotACharacter { id: 5 })
        ));
    }
}
