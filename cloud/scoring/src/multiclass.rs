//! The cloud's multiclass model: a linear fastText-style classifier over hashed features of the
//! normalised text, labels [`Label::ALL`] (ham, ad, fraud, illegal, spam).
//!
//! # Features (from `normalize(..).text` only)
//! * word unigrams and bigrams: Han runs are cut into words by jieba (dictionary loaded once per
//!   process); other text is split on non-alphanumeric characters; each placeholder (`<url>`,
//!   `<phone>`, ...) is one word;
//! * character 1..=4-grams over the text with each placeholder as one symbol and the text padded
//!   with a space on both sides (these survive obfuscation that breaks words);
//! * subword tokens of the non-Han words ([`subword_words`]) from the model's trained WordPiece
//!   vocabulary ([`subword::SubwordVocab`], `cloud/models/subword.json`), when it has one: they
//!   share pieces between inflections and rare words that whole-word features miss;
//! * one length feature (log2 bucket of the character count).
//!
//! Every distinct feature has value `1 / sqrt(number of distinct features)`.
//!
//! # Hash (stable)
//! A feature string is hashed with FNV-1a 64 (offset `0xcbf29ce484222325`, prime
//! `0x100000001b3`) over a one-byte namespace (`w` word, `b` bigram, `c` char n-gram, `s`
//! subword token with its `##` prefix, `l` length) followed by its UTF-8 bytes (bigram words joined by `0x1f`), then mixed with
//! [`splitmix64`]; the bucket is the top `bucket_bits` bits.
//!
//! # Model file (`multiclass.bin`, little endian)
//! `b"SGMC"`, format `u32` (= [`FORMAT_VERSION`]), pipeline version `u32`, bucket bits `u32`,
//! classes `u32` (= 5), subword vocabulary fingerprint `u64` ([`SubwordVocab::fingerprint`]; 0
//! for a model without subword features), then per class a dequantisation scale `f32`, then per class a bias `f32`,
//! then `2^bucket_bits * classes` int8 weights, bucket-major (`weights[bucket * 5 + class]`).
//! Weight = `scale[class] * q`.

pub mod subword;

use std::sync::LazyLock;

use jieba_rs::Jieba;
use smsguard_core::fingerprint::splitmix64;
use smsguard_core::normalize::{is_han, normalize, WARM_UP_TEXT};
use smsguard_core::{placeholder, Label, PIPELINE_VERSION};

use crate::{MessageContext, ModelScore, Scorer, ScoringError};
pub use subword::{SubwordError, SubwordVocab};

/// Number of classes (the taxonomy, ham first).
pub const CLASSES: usize = Label::ALL.len();
/// Version of the binary model layout.
pub const FORMAT_VERSION: u32 = 2;
/// Default number of hash bits (2^18 buckets: 1.3 MB of int8 weights).
pub const DEFAULT_BUCKET_BITS: u32 = 18;
const MAGIC: &[u8; 4] = b"SGMC";
const HEADER_LEN: usize = 4 + 4 * 4 + 8;
/// The scorer's name in fusion inputs and contributions.
pub const NAME: &str = "multiclass";
/// Longest character n-gram.
const MAX_CHAR_GRAM: usize = 4;
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

#[cfg(smsguard_embedded_multiclass)]
const EMBEDDED: Option<&[u8]> = Some(include_bytes!("../../models/multiclass.bin"));
#[cfg(not(smsguard_embedded_multiclass))]
const EMBEDDED: Option<&[u8]> = None;

/// The jieba dictionary, loaded once per process on first use.
static JIEBA: LazyLock<Jieba> = LazyLock::new(Jieba::new);

/// Errors of loading a model file. None quotes message text.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MulticlassError {
    #[error(
        "no multiclass model was embedded at build time (cloud/models/multiclass.bin missing)"
    )]
    NoEmbeddedModel,
    #[error("not a multiclass model file ({0})")]
    BadFile(String),
    #[error("model was built for pipeline version {found}, this code is version {expected}")]
    PipelineVersion { found: u32, expected: u32 },
    #[error("the model uses subword features but no subword vocabulary was given")]
    MissingSubwords,
    #[error("the subword vocabulary is not the one the model was trained with")]
    SubwordMismatch,
    #[error(transparent)]
    Subwords(#[from] SubwordError),
}

/// One sparse feature vector: sorted distinct buckets, all with the same value.
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    pub buckets: Vec<u32>,
    pub value: f32,
}

/// Hashes `namespace` + `parts` (joined by 0x1f) into a bucket of `bits` bits.
pub fn feature_bucket(namespace: u8, parts: &[&str], bits: u32) -> u32 {
    let mut hash = (FNV_OFFSET ^ u64::from(namespace)).wrapping_mul(FNV_PRIME);
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            hash = (hash ^ 0x1f).wrapping_mul(FNV_PRIME);
        }
        for byte in part.bytes() {
            hash = (hash ^ u64::from(byte)).wrapping_mul(FNV_PRIME);
        }
    }
    (splitmix64(hash) >> (64 - bits)) as u32
}

/// One unit of the normalised text: a placeholder or a character.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Symbol<'a> {
    Placeholder(&'a str),
    Char(char),
}

fn symbols(text: &str) -> Vec<(usize, Symbol<'_>)> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let rest = &text[i..];
        if let Some(p) = placeholder::ALL.iter().find(|p| rest.starts_with(**p)) {
            out.push((i, Symbol::Placeholder(p)));
            i += p.len();
        } else if let Some(c) = rest.chars().next() {
            out.push((i, Symbol::Char(c)));
            i += c.len_utf8();
        } else {
            break;
        }
    }
    out
}

/// Words of the normalised text: placeholders, jieba words of Han runs, alphanumeric runs.
pub fn words(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut run: Option<(usize, bool)> = None; // (start byte, is_han)
    for (at, sym) in symbols(text) {
        match sym {
            Symbol::Placeholder(p) => {
                flush_run(text, run.take(), at, &mut out);
                out.push(p);
            }
            Symbol::Char(c) if c.is_alphanumeric() => {
                let han = is_han(c);
                if run.is_some_and(|(_, h)| h != han) {
                    flush_run(text, run.take(), at, &mut out);
                }
                run.get_or_insert((at, han));
            }
            Symbol::Char(_) => flush_run(text, run.take(), at, &mut out),
        }
    }
    flush_run(text, run, text.len(), &mut out);
    out
}

/// Emits the word run `text[start..end]`: cut by jieba when it is Han, else whole.
fn flush_run<'a>(text: &'a str, run: Option<(usize, bool)>, end: usize, out: &mut Vec<&'a str>) {
    let Some((start, han)) = run else {
        return;
    };
    let word = &text[start..end];
    if han {
        out.extend(JIEBA.cut(word, true).into_iter().map(|t| t.word));
    } else {
        out.push(word);
    }
}

/// Whether a word of [`words`] is one the subword vocabulary covers: not a placeholder and not
/// Han (jieba words and character n-grams already cover Han text).
pub fn is_subword_word(word: &str) -> bool {
    !placeholder::ALL.contains(&word) && !word.chars().next().is_some_and(is_han)
}

/// The words of a normalised text that the subword vocabulary is trained on and applied to.
pub fn subword_words(text: &str) -> Vec<&str> {
    let mut out = words(text);
    out.retain(|w| is_subword_word(w));
    out
}

/// The hashed features of one normalised text (see the module docs); subword features only when
/// `subwords` is given.
pub fn features(text: &str, bits: u32, subwords: Option<&SubwordVocab>) -> Features {
    let mut buckets = Vec::with_capacity(text.len() * 5);
    let words = words(text);
    for (i, word) in words.iter().enumerate() {
        buckets.push(feature_bucket(b'w', &[word], bits));
        if let Some(next) = words.get(i + 1) {
            buckets.push(feature_bucket(b'b', &[word, next], bits));
        }
    }
    if let Some(vocab) = subwords {
        push_subword_features(vocab, &words, bits, &mut buckets);
    }
    let mut units: Vec<&str> = vec![" "];
    units.extend(symbols(text).into_iter().map(|(at, sym)| match sym {
        Symbol::Placeholder(p) => p,
        Symbol::Char(c) => &text[at..at + c.len_utf8()],
    }));
    units.push(" ");
    for n in 1..=MAX_CHAR_GRAM {
        for gram in units.windows(n) {
            buckets.push(feature_bucket(b'c', gram, bits));
        }
    }
    let chars = text.chars().count().max(1);
    let length_bucket = (usize::BITS - chars.leading_zeros()).to_string();
    buckets.push(feature_bucket(b'l', &[&length_bucket], bits));
    buckets.sort_unstable();
    buckets.dedup();
    let value = 1.0 / (buckets.len() as f32).sqrt();
    Features { buckets, value }
}

fn push_subword_features(vocab: &SubwordVocab, words: &[&str], bits: u32, out: &mut Vec<u32>) {
    let mut ids = Vec::new();
    for word in words.iter().filter(|w| is_subword_word(w)) {
        vocab.encode_word(word, &mut ids);
    }
    for id in ids {
        if let Some(token) = vocab.token(id) {
            out.push(feature_bucket(b's', &[token], bits));
        }
    }
}

/// Softmax in place-free form; stable for large logits.
pub fn softmax(logits: &[f32; CLASSES]) -> [f32; CLASSES] {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut out = logits.map(|l| (l - max).exp());
    let sum: f32 = out.iter().sum();
    for p in &mut out {
        *p /= sum;
    }
    out
}

/// Index of the largest value among `indices`.
pub fn arg_max_among(probs: &[f32; CLASSES], indices: impl Iterator<Item = usize>) -> usize {
    indices
        .max_by(|&a, &b| probs[a].total_cmp(&probs[b]))
        .unwrap_or(0)
}

/// The shipped (quantised) model; the `multiclass` [`Scorer`].
#[derive(Debug, Clone, PartialEq)]
pub struct MulticlassModel {
    bucket_bits: u32,
    scales: [f32; CLASSES],
    bias: [f32; CLASSES],
    weights: Vec<i8>,
    subwords: Option<SubwordVocab>,
}

impl MulticlassModel {
    /// The model compiled in from `cloud/models/multiclass.bin`, with the subword vocabulary
    /// compiled in from `cloud/models/subword.json` when the model uses one.
    pub fn embedded() -> Result<Self, MulticlassError> {
        let model = EMBEDDED.ok_or(MulticlassError::NoEmbeddedModel)?;
        let subwords = subword::embedded_json();
        Self::from_parts(model, subwords)
    }

    /// Quantises float weights (`weights[bucket * CLASSES + class]`) to int8 with one scale per
    /// class (max |w| maps to 127).
    pub fn quantize(bucket_bits: u32, weights: &[f32], bias: [f32; CLASSES]) -> Self {
        let mut max_abs = [0f32; CLASSES];
        for row in weights.chunks_exact(CLASSES) {
            for (m, w) in max_abs.iter_mut().zip(row) {
                *m = m.max(w.abs());
            }
        }
        let scales = max_abs.map(|m| if m > 0.0 { m / 127.0 } else { 1.0 });
        let quantized = weights
            .chunks_exact(CLASSES)
            .flat_map(|row| {
                (0..CLASSES).map(move |c| (row[c] / scales[c]).round().clamp(-127.0, 127.0) as i8)
            })
            .collect();
        MulticlassModel {
            bucket_bits,
            scales,
            bias,
            weights: quantized,
            subwords: None,
        }
    }

    /// The same model with subword features from `vocab` (the vocabulary it was trained with).
    pub fn with_subwords(mut self, vocab: SubwordVocab) -> Self {
        self.subwords = Some(vocab);
        self
    }

    pub fn bucket_bits(&self) -> u32 {
        self.bucket_bits
    }

    /// The subword vocabulary of the model's features, if it uses one.
    pub fn subwords(&self) -> Option<&SubwordVocab> {
        self.subwords.as_ref()
    }

    /// The model file bytes (layout in the module docs).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + 40 + self.weights.len());
        out.extend_from_slice(MAGIC);
        for v in [
            FORMAT_VERSION,
            PIPELINE_VERSION,
            self.bucket_bits,
            CLASSES as u32,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        let fingerprint = self.subwords.as_ref().map_or(0, SubwordVocab::fingerprint);
        out.extend_from_slice(&fingerprint.to_le_bytes());
        for v in self.scales.iter().chain(&self.bias) {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend(self.weights.iter().map(|&q| q as u8));
        out
    }

    /// Parses and checks a model file without subword features ([`Self::from_parts`] loads one
    /// with them).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MulticlassError> {
        Self::from_parts(bytes, None)
    }

    /// Parses and checks a model file and, when the model uses subword features, the vocabulary
    /// document it was trained with (refused if it is another one). A vocabulary given to a
    /// model without subword features is not used.
    pub fn from_parts(bytes: &[u8], subwords: Option<&[u8]>) -> Result<Self, MulticlassError> {
        let (mut model, fingerprint) = Self::parse(bytes)?;
        if fingerprint != 0 {
            let vocab = SubwordVocab::from_json(subwords.ok_or(MulticlassError::MissingSubwords)?)?;
            if vocab.fingerprint() != fingerprint {
                return Err(MulticlassError::SubwordMismatch);
            }
            model.subwords = Some(vocab);
        }
        Ok(model)
    }

    /// The model (without its subword vocabulary) and the fingerprint of the vocabulary it
    /// needs (0: none).
    fn parse(bytes: &[u8]) -> Result<(Self, u64), MulticlassError> {
        let bad = |why: &str| MulticlassError::BadFile(why.to_owned());
        if bytes.len() < HEADER_LEN + 8 * CLASSES || &bytes[..4] != MAGIC {
            return Err(bad("missing SGMC header"));
        }
        let word = |i: usize| {
            let at = 4 + 4 * i;
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        if word(0) != FORMAT_VERSION {
            return Err(bad("unknown format version"));
        }
        if word(1) != PIPELINE_VERSION {
            return Err(MulticlassError::PipelineVersion {
                found: word(1),
                expected: PIPELINE_VERSION,
            });
        }
        let (bucket_bits, classes) = (word(2), word(3) as usize);
        if classes != CLASSES || !(8..=24).contains(&bucket_bits) {
            return Err(bad("unsupported class count or bucket bits"));
        }
        let floats: Vec<f32> = bytes[HEADER_LEN..HEADER_LEN + 8 * CLASSES]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let weights = &bytes[HEADER_LEN + 8 * CLASSES..];
        if weights.len() != (1usize << bucket_bits) * CLASSES {
            return Err(bad("weight table has the wrong length"));
        }
        let mut scales = [0f32; CLASSES];
        let mut bias = [0f32; CLASSES];
        scales.copy_from_slice(&floats[..CLASSES]);
        bias.copy_from_slice(&floats[CLASSES..]);
        let model = MulticlassModel {
            bucket_bits,
            scales,
            bias,
            weights: weights.iter().map(|&b| b as i8).collect(),
            subwords: None,
        };
        let mut fingerprint = [0u8; 8];
        fingerprint.copy_from_slice(&bytes[HEADER_LEN - 8..HEADER_LEN]);
        Ok((model, u64::from_le_bytes(fingerprint)))
    }

    /// Class probabilities (in [`Label::ALL`] order) of a normalised text.
    pub fn probabilities(&self, normalized_text: &str) -> [f32; CLASSES] {
        let features = features(normalized_text, self.bucket_bits, self.subwords.as_ref());
        let mut sums = [0i32; CLASSES];
        for &bucket in &features.buckets {
            let row = &self.weights[bucket as usize * CLASSES..][..CLASSES];
            for (sum, &q) in sums.iter_mut().zip(row) {
                *sum += i32::from(q);
            }
        }
        let mut logits = self.bias;
        for c in 0..CLASSES {
            logits[c] += self.scales[c] * features.value * sums[c] as f32;
        }
        softmax(&logits)
    }

    /// The [`ModelScore`] of class probabilities: score `1 - p(ham)`, label the arg-max.
    pub fn model_score(probs: [f32; CLASSES]) -> ModelScore {
        let top = arg_max_among(&probs, 0..CLASSES);
        let label = Label::ALL[top];
        let reason = format!("top class {label} (p = {:.3})", probs[top]);
        ModelScore::new(NAME, 1.0 - probs[0], reason)
            .with_label(Some(label))
            .with_probabilities(Some(probs))
    }
}

impl Scorer for MulticlassModel {
    fn name(&self) -> &'static str {
        NAME
    }

    fn score(&self, msg: &MessageContext<'_>) -> Result<ModelScore, ScoringError> {
        Ok(Self::model_score(self.probabilities(&msg.normalized.text)))
    }

    /// Loads the jieba dictionary (~0.2 s in a release build) by featurising a message with
    /// Han characters.
    fn warm_up(&self) {
        let _ = self.probabilities(&normalize(WARM_UP_TEXT).text);
    }
}
