//! The multiclass model's subword vocabulary: a WordPiece vocabulary trained by `smsguard-train
//! train-cloud` with the `tokenizers` crate on the non-Han words of the normalised training texts
//! (`cloud/models/subword.json`, a `tokenizers` `Tokenizer` document).
//!
//! The document is read with serde_json and encoded by our own greedy longest-match-first
//! encoder, which gives the same tokens as `tokenizers`' `WordPiece` model but without its
//! per-call allocations: the scoring path stays fast and this crate does not link `tokenizers`.
//! Longest match first: at each position the longest vocabulary entry that the rest of the word
//! starts with is taken (entries after the first carry the continuing-subword prefix `##`); a
//! word with a position where nothing matches, or longer than `max_input_chars_per_word`,
//! becomes the single unknown token.

use std::collections::HashMap;

use rustc_hash::FxHashMap;
use smsguard_core::fingerprint::splitmix64;

/// File name of the vocabulary beside `multiclass.bin`.
pub const SUBWORD_FILE: &str = "subword.json";

#[cfg(smsguard_embedded_subwords)]
const EMBEDDED: Option<&[u8]> = Some(include_bytes!("../../../models/subword.json"));
#[cfg(not(smsguard_embedded_subwords))]
const EMBEDDED: Option<&[u8]> = None;

/// Errors of loading a vocabulary document. None quotes vocabulary entries.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SubwordError {
    #[error(
        "no subword vocabulary was embedded at build time (cloud/models/subword.json missing)"
    )]
    NoEmbeddedVocab,
    #[error("not a WordPiece vocabulary document ({0})")]
    BadDocument(String),
}

#[derive(serde::Deserialize)]
struct Document {
    model: WordPieceDocument,
}

#[derive(serde::Deserialize)]
struct WordPieceDocument {
    #[serde(rename = "type")]
    kind: String,
    unk_token: String,
    continuing_subword_prefix: String,
    max_input_chars_per_word: usize,
    vocab: HashMap<String, u32>,
}

/// Token lookup of one position kind, with the longest key length so that the greedy search
/// never tries substrings that cannot match.
#[derive(Debug, Clone, PartialEq, Default)]
struct Lookup {
    ids: FxHashMap<Box<str>, u32>,
    longest_bytes: usize,
}

impl Lookup {
    fn insert(&mut self, key: &str, id: u32) {
        self.longest_bytes = self.longest_bytes.max(key.len());
        self.ids.insert(key.into(), id);
    }

    /// Longest prefix of `rest` that is a key: (id, byte length).
    fn longest_prefix(&self, rest: &str) -> Option<(u32, usize)> {
        let mut end = rest.len().min(self.longest_bytes);
        while end > 0 {
            if rest.is_char_boundary(end) {
                if let Some(&id) = self.ids.get(&rest[..end]) {
                    return Some((id, end));
                }
            }
            end -= 1;
        }
        None
    }
}

/// A loaded WordPiece vocabulary and its encoder.
#[derive(Debug, Clone, PartialEq)]
pub struct SubwordVocab {
    tokens: Vec<Box<str>>,
    /// Every entry, as it may start a word.
    initial: Lookup,
    /// Entries with the continuing prefix, keyed without it.
    continuing: Lookup,
    unk: u32,
    max_word_chars: usize,
    fingerprint: u64,
}

/// The bytes of `cloud/models/subword.json` if it was there at build time.
pub fn embedded_json() -> Option<&'static [u8]> {
    EMBEDDED
}

impl SubwordVocab {
    /// The vocabulary compiled in from `cloud/models/subword.json`.
    pub fn embedded() -> Result<Self, SubwordError> {
        Self::from_json(EMBEDDED.ok_or(SubwordError::NoEmbeddedVocab)?)
    }

    /// Parses a `tokenizers` document whose model is a WordPiece model with dense ids.
    pub fn from_json(bytes: &[u8]) -> Result<Self, SubwordError> {
        let bad = |why: &str| SubwordError::BadDocument(why.to_owned());
        let doc: Document =
            serde_json::from_slice(bytes).map_err(|e| SubwordError::BadDocument(e.to_string()))?;
        let model = doc.model;
        if model.kind != "WordPiece" {
            return Err(bad("model type is not WordPiece"));
        }
        let mut tokens: Vec<Option<Box<str>>> = vec![None; model.vocab.len()];
        for (token, &id) in &model.vocab {
            let slot = tokens
                .get_mut(id as usize)
                .ok_or_else(|| bad("vocabulary ids are not dense"))?;
            *slot = Some(token.as_str().into());
        }
        let tokens: Vec<Box<str>> = tokens
            .into_iter()
            .collect::<Option<_>>()
            .ok_or_else(|| bad("vocabulary ids are not distinct"))?;
        let unk = *model
            .vocab
            .get(&model.unk_token)
            .ok_or_else(|| bad("the unknown token is not in the vocabulary"))?;
        let prefix = model.continuing_subword_prefix.as_str();
        let mut initial = Lookup::default();
        let mut continuing = Lookup::default();
        for (id, token) in tokens.iter().enumerate() {
            initial.insert(token, id as u32);
            if let Some(rest) = token.strip_prefix(prefix).filter(|_| !prefix.is_empty()) {
                continuing.insert(rest, id as u32);
            }
        }
        let fingerprint = fingerprint(&tokens, prefix, unk, model.max_input_chars_per_word);
        Ok(SubwordVocab {
            tokens,
            initial,
            continuing,
            unk,
            max_word_chars: model.max_input_chars_per_word,
            fingerprint,
        })
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The entry of `id` (with its continuing prefix), if the id exists.
    pub fn token(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(|t| &**t)
    }

    /// A stable hash of the entries, their ids and the encoder settings: a model trained on
    /// this vocabulary stores it and refuses any other.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// Appends the token ids of one word (see the module docs) to `out`.
    pub fn encode_word(&self, word: &str, out: &mut Vec<u32>) {
        if word.is_empty() {
            return;
        }
        if word.chars().count() > self.max_word_chars {
            out.push(self.unk);
            return;
        }
        let first = out.len();
        let mut start = 0;
        while start < word.len() {
            let lookup = if start == 0 {
                &self.initial
            } else {
                &self.continuing
            };
            match lookup.longest_prefix(&word[start..]) {
                Some((id, len)) => {
                    out.push(id);
                    start += len;
                }
                None => {
                    out.truncate(first);
                    out.push(self.unk);
                    return;
                }
            }
        }
    }
}

/// FNV-1a 64 over the entries in id order and the settings, mixed with SplitMix64; never 0 (0
/// marks a model without subword features).
fn fingerprint(tokens: &[Box<str>], prefix: &str, unk: u32, max_word_chars: usize) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    let mut eat = |bytes: &[u8]| {
        for &byte in bytes {
            hash = (hash ^ u64::from(byte)).wrapping_mul(PRIME);
        }
        hash = (hash ^ 0x1f).wrapping_mul(PRIME);
    };
    for token in tokens {
        eat(token.as_bytes());
    }
    eat(prefix.as_bytes());
    eat(&unk.to_le_bytes());
    eat(&(max_word_chars as u64).to_le_bytes());
    splitmix64(hash).max(1)
}
