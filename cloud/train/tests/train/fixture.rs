//! A tiny hand-written, already normalised training set shared by the training tests.

use smsguard_core::features::FeatureEncoder;
use smsguard_core::ngrams::NgramConfig;
use smsguard_train::config::{ArchConfig, ConvKind, HeadKind};
use smsguard_train::data::{Dataset, Example, EDGE_LABELS};
use smsguard_train::trainer::EncodedSet;
use smsguard_train::vocab::{self, VocabConfig};

const HAM: [&str; 6] = [
    "are we still on for lunch tomorrow?",
    "mum says dinner is at <num>, bring the charger",
    "thanks for the help today, see you on monday",
    "running late, save me a seat",
    "can you call me when you get home",
    "happy birthday! have a lovely day",
];

const SPAM: [&str; 6] = [
    "win a free prize now! claim at <url>",
    "urgent: your account is locked, verify at <url>",
    "congratulations you won <num> cash, call <phone>",
    "free entry! text win to <num> to claim",
    "your parcel is held, pay the fee at <url>",
    "cheap loans approved today, reply yes",
];

pub const SEQ_LEN: usize = 48;

pub fn dataset() -> Dataset {
    let spam = EDGE_LABELS.iter().position(|l| *l == "spam").unwrap();
    let examples = HAM
        .iter()
        .map(|t| (t, 0))
        .chain(SPAM.iter().map(|t| (t, spam)))
        .map(|(text, label)| Example {
            text: text.to_string(),
            original: text.to_string(),
            label,
            source: 0,
        })
        .collect();
    Dataset {
        sources: vec!["fixture".into()],
        examples,
        ..Default::default()
    }
}

pub fn vocab_config() -> VocabConfig {
    VocabConfig {
        min_count: 1,
        max_chars: 40,
        hash_buckets: 8,
    }
}

/// Vocabulary JSON, encoder, architecture and encoded set of the fixture.
pub fn prepared() -> (String, FeatureEncoder, ArchConfig, EncodedSet) {
    let data = dataset();
    let json = vocab::train_vocab(
        data.examples.iter().map(|e| e.text.as_str()),
        &vocab_config(),
    )
    .expect("fixture vocabulary");
    let encoder = FeatureEncoder::from_json(&json, SEQ_LEN).expect("fixture encoder");
    let arch = ArchConfig {
        vocab_size: encoder.vocab_size(),
        embed_dim: 8,
        filters: 8,
        kernel_widths: vec![3, 5],
        seq_len: SEQ_LEN,
        labels: EDGE_LABELS.iter().map(|l| l.to_string()).collect(),
        ngram: NgramConfig {
            buckets: 256,
            max_n: 3,
            max_chars: 64,
        },
        conv: ConvKind::Separable,
        head: HeadKind::Pooled,
    };
    let set = EncodedSet::encode(&data, &encoder, &arch.ngram);
    (json, encoder, arch, set)
}
