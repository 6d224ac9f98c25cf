//! Character vocabulary of the edge model, learnt from normalised training texts and written as
//! a `tokenizers` WordLevel document whose ids follow `smsguard_core::features` exactly.

use std::collections::HashMap;

use smsguard_core::features::{layout_tokens, FeatureEncoder, FeatureError};
use smsguard_core::placeholder;
use tokenizers::models::wordlevel::WordLevel;
use tokenizers::Tokenizer;

/// How many characters the vocabulary keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VocabConfig {
    /// A character needs at least this many occurrences to get its own id.
    pub min_count: usize,
    /// At most this many known characters (the most frequent win); bounds the model size.
    pub max_chars: usize,
    /// Ids shared by all other characters.
    pub hash_buckets: usize,
}

impl Default for VocabConfig {
    fn default() -> Self {
        Self {
            min_count: 3,
            max_chars: 3000,
            hash_buckets: 64,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VocabError {
    #[error("tokenizers rejected the vocabulary: {0}")]
    Tokenizers(String),
    #[error("vocabulary does not fit the feature encoder: {0}")]
    Features(#[from] FeatureError),
}

/// Counts characters of normalised texts, counting each placeholder as a unit (its letters are
/// not characters of the message).
pub fn count_chars<'a>(texts: impl IntoIterator<Item = &'a str>) -> HashMap<char, usize> {
    let mut counts = HashMap::new();
    for text in texts {
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            let skip = placeholder::ALL
                .iter()
                .find(|p| rest.starts_with(*p))
                .map_or(c.len_utf8(), |p| p.len());
            if skip == c.len_utf8() {
                *counts.entry(c).or_insert(0) += 1;
            }
            rest = &rest[skip..];
        }
    }
    counts
}

/// The known characters: count >= min_count, most frequent first (ties by code point, so the
/// order is deterministic), at most `max_chars`.
pub fn select_chars(counts: &HashMap<char, usize>, cfg: &VocabConfig) -> Vec<char> {
    let mut frequent: Vec<(char, usize)> = counts
        .iter()
        .filter(|(_, &n)| n >= cfg.min_count)
        .map(|(&c, &n)| (c, n))
        .collect();
    frequent.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    frequent.truncate(cfg.max_chars);
    frequent.into_iter().map(|(c, _)| c).collect()
}

/// Serialises the vocabulary through `tokenizers`' WordLevel model and checks that the result
/// is accepted by the shared feature encoder.
pub fn vocab_json(known_chars: &[char], hash_buckets: usize) -> Result<String, VocabError> {
    let tokens = layout_tokens(known_chars, hash_buckets);
    let unk = tokens
        .last()
        .cloned()
        .ok_or_else(|| VocabError::Tokenizers("empty vocabulary".into()))?;
    let model = WordLevel::builder()
        .vocab(
            tokens
                .into_iter()
                .enumerate()
                .map(|(id, t)| (t, id as u32))
                .collect(),
        )
        .unk_token(unk)
        .build()
        .map_err(|e| VocabError::Tokenizers(e.to_string()))?;
    let json = Tokenizer::new(model)
        .to_string(false)
        .map_err(|e| VocabError::Tokenizers(e.to_string()))?;
    FeatureEncoder::from_json(&json, 1)?;
    Ok(json)
}

/// Learns the vocabulary from normalised texts and returns its JSON document.
pub fn train_vocab<'a>(
    texts: impl IntoIterator<Item = &'a str>,
    cfg: &VocabConfig,
) -> Result<String, VocabError> {
    let chars = select_chars(&count_chars(texts), cfg);
    vocab_json(&chars, cfg.hash_buckets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_not_counted_as_letters() {
        let counts = count_chars(["<url> ab", "a<num>"]);
        assert_eq!(counts.get(&'a'), Some(&2));
        assert_eq!(counts.get(&'u'), None);
        assert_eq!(counts.get(&'<'), None);
        assert_eq!(counts.get(&' '), Some(&1));
    }

    #[test]
    fn selection_applies_min_count_and_cap_in_frequency_order() {
        let counts = HashMap::from([('a', 5), ('b', 9), ('c', 1), ('d', 5)]);
        let cfg = VocabConfig {
            min_count: 2,
            max_chars: 2,
            hash_buckets: 4,
        };
        assert_eq!(select_chars(&counts, &cfg), vec!['b', 'a']);
    }
}
