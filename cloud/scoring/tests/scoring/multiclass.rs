//! The multiclass model: features, scoring with a model set by hand from a toy split, the model
//! file (fitting is `smsguard-train`'s: `multiclass_fit`).

use std::str::FromStr;

use smsguard_core::{normalize, Label};
use smsguard_scoring::multiclass::subword::{self, SubwordError, SubwordVocab};
use smsguard_scoring::multiclass::{self, MulticlassError, MulticlassModel, CLASSES};
use smsguard_scoring::Scorer;
use tokenizers::models::wordpiece::{WordPiece, WordPieceTrainer};
use tokenizers::models::TrainerWrapper;
use tokenizers::pre_tokenizers::whitespace::WhitespaceSplit;
use tokenizers::{AddedToken, Tokenizer};

use crate::msg;
use crate::toy::{label_index, TOY};

pub fn toy_model(bits: u32) -> MulticlassModel {
    toy_model_with(bits, None)
}

/// A model set by hand from the toy split, with the given subword vocabulary (or none): serving
/// needs a model, not a fitted one (fitting is `smsguard-train`'s and tested there). Every
/// feature of a toy message adds one to its label's weight, less the feature's mean over the
/// labels, so features all labels share cancel out.
fn toy_model_with(bits: u32, subwords: Option<&SubwordVocab>) -> MulticlassModel {
    let mut weights = vec![0.0f32; (1 << bits) * CLASSES];
    for (label, text) in TOY {
        let features = multiclass::features(&normalize(text).text, bits, subwords);
        for &bucket in &features.buckets {
            let row = &mut weights[bucket as usize * CLASSES..][..CLASSES];
            for (class, w) in row.iter_mut().enumerate() {
                let vote = if class == label_index(*label) {
                    1.0
                } else {
                    0.0
                };
                *w += vote - 1.0 / CLASSES as f32;
            }
        }
    }
    let model = MulticlassModel::quantize(bits, &weights, [0.0; CLASSES]);
    match subwords {
        Some(vocab) => model.with_subwords(vocab.clone()),
        None => model,
    }
}

fn predicted(model: &MulticlassModel, text: &str) -> Label {
    let probs = model.probabilities(&normalize(text).text);
    Label::ALL[multiclass::arg_max_among(&probs, 0..5)]
}

#[test]
fn scorer_reports_one_minus_ham_probability_and_the_top_class() {
    let model = toy_model(12);
    let spam = msg("congratulations you have won a prize call now to claim");
    let score = model.score(&spam.context()).unwrap();
    let probs = score.probabilities.expect("multiclass gives probabilities");
    assert!((score.score - (1.0 - probs[0])).abs() < 1e-6);
    assert_eq!(score.label, Some(Label::Spam));
    assert!(score.reason.contains("spam"), "reason names the top class");
    assert!((probs.iter().sum::<f32>() - 1.0).abs() < 1e-4);
}

#[test]
fn model_file_round_trips_and_bad_files_are_refused() {
    let model = toy_model(10);
    let bytes = model.to_bytes();
    assert_eq!(bytes.len(), 4 + 16 + 8 + 40 + (1 << 10) * 5);
    assert_eq!(MulticlassModel::from_bytes(&bytes).unwrap(), model);
    let mut bad_magic = bytes.clone();
    bad_magic[0] = b'X';
    assert!(matches!(
        MulticlassModel::from_bytes(&bad_magic),
        Err(MulticlassError::BadFile(_))
    ));
    let truncated = &bytes[..bytes.len() - 1];
    assert!(MulticlassModel::from_bytes(truncated).is_err());
    let mut other_pipeline = bytes.clone();
    other_pipeline[8] = other_pipeline[8].wrapping_add(1);
    assert!(matches!(
        MulticlassModel::from_bytes(&other_pipeline),
        Err(MulticlassError::PipelineVersion { .. })
    ));
}

#[test]
fn words_cut_han_runs_and_keep_placeholders_whole() {
    let text = normalize("加微信领取免费礼品 visit http://spam.example.top now!").text;
    let words = multiclass::words(&text);
    assert!(words.contains(&"<url>"), "{} words", words.len());
    assert!(words.contains(&"visit") && words.contains(&"now"));
    assert!(words.contains(&"领取") && words.contains(&"免费") && words.contains(&"礼品"));
    assert!(!words.iter().any(|w| w.contains('!') || w.contains(' ')));
}

#[test]
fn features_are_stable_bounded_and_unit_norm() {
    let text = normalize("Win a FREE prize: call 09061701461").text;
    let a = multiclass::features(&text, 14, None);
    assert_eq!(a, multiclass::features(&text, 14, None));
    assert!(a.buckets.iter().all(|&b| b < 1 << 14));
    assert!(
        a.buckets.windows(2).all(|w| w[0] < w[1]),
        "sorted and distinct"
    );
    let norm = (a.buckets.len() as f32 * a.value * a.value).sqrt();
    assert!((norm - 1.0).abs() < 1e-5);
    // The hash is part of the model format: pin one bucket (FNV-1a of "wprize", SplitMix64,
    // top 18 bits; computed independently).
    assert_eq!(multiclass::feature_bucket(b'w', &["prize"], 18), 28297);
    assert_ne!(
        multiclass::feature_bucket(b'w', &["prize"], 18),
        multiclass::feature_bucket(b'c', &["prize"], 18)
    );
}

/// Texts in several scripts, with inflections, rare words, digits, a look-alike Cyrillic word
/// and a word longer than WordPiece's 100-character limit.
const SUBWORD_SAMPLES: &[&str] = &[
    "Congratulations! You have been selected to receive a prize, claim your winnings now",
    "your parcel delivery failed, reschedule at http://parcel.example.top today",
    "selamat anda mendapatkan hadiah pulsa gratis, hubungi kami segera",
    "tebrikler kazandınız hediye çekiliş kampanyası için tıklayın",
    "привет, ваш банковский счет заблокирован",
    "wіn а frее іphоnе nоw (cyrillic look-alikes)",
    "明天下午开会 meeting rescheduled 请回复 unsubscribe",
    "zzzzqqqq xylophonist unbelievably misunderestimated",
];

fn long_word() -> String {
    "ab".repeat(60)
}

/// Trains a WordPiece vocabulary the way `smsguard-train train-cloud` does (non-Han words,
/// whitespace split, `[UNK]` and the `##c` pieces registered up front) and returns its
/// `tokenizers` document.
fn trained_vocab_json(texts: &[String], vocab_size: usize) -> String {
    let sequences: Vec<String> = texts
        .iter()
        .map(|t| multiclass::subword_words(&normalize(t).text).join(" "))
        .collect();
    let mut alphabet: Vec<char> = sequences.iter().flat_map(|s| s.chars()).collect();
    alphabet.sort_unstable();
    alphabet.dedup();
    alphabet.retain(|c| *c != ' ');
    let fixed = std::iter::once("[UNK]".to_owned())
        .chain(alphabet.iter().map(|c| format!("##{c}")))
        .map(|t| AddedToken::from(t, true))
        .collect();
    let mut trainer: TrainerWrapper = WordPieceTrainer::builder()
        .vocab_size(vocab_size)
        .min_frequency(1)
        .special_tokens(fixed)
        .show_progress(false)
        .build()
        .into();
    let mut tokenizer = Tokenizer::new(WordPiece::default());
    tokenizer.with_pre_tokenizer(Some(WhitespaceSplit));
    tokenizer
        .train(&mut trainer, sequences.into_iter())
        .unwrap();
    tokenizer.to_string(false).unwrap()
}

fn training_texts() -> Vec<String> {
    TOY.iter()
        .map(|(_, t)| t.to_string())
        .chain(SUBWORD_SAMPLES[..4].iter().map(|t| t.to_string()))
        .collect()
}

/// Tokens and ids of our encoder over the subword words of `text`.
fn our_tokens(vocab: &SubwordVocab, text: &str) -> (Vec<String>, Vec<u32>) {
    let mut ids = Vec::new();
    for word in multiclass::subword_words(text) {
        vocab.encode_word(word, &mut ids);
    }
    let tokens = ids
        .iter()
        .map(|&id| vocab.token(id).unwrap().to_owned())
        .collect();
    (tokens, ids)
}

#[test]
fn subword_encoder_gives_the_same_tokens_as_tokenizers() {
    let mut samples: Vec<String> = SUBWORD_SAMPLES.iter().map(|t| t.to_string()).collect();
    samples.extend(TOY.iter().map(|(_, t)| t.to_string()));
    samples.push(format!("short {} word", long_word()));
    // A generous vocabulary (whole words) and a tight one (mostly pieces).
    for size in [600, 250] {
        let json = trained_vocab_json(&training_texts(), size);
        let tokenizer = Tokenizer::from_str(&json).unwrap();
        let vocab = SubwordVocab::from_json(json.as_bytes()).unwrap();
        assert_eq!(vocab.len(), tokenizer.get_vocab_size(true));
        let mut pieces = 0;
        for sample in &samples {
            let text = normalize(sample).text;
            let joined = multiclass::subword_words(&text).join(" ");
            let expected = tokenizer.encode(joined, false).unwrap();
            let (tokens, ids) = our_tokens(&vocab, &text);
            assert_eq!(
                tokens,
                expected.get_tokens(),
                "vocab {size}, sample {sample:?}"
            );
            assert_eq!(ids, expected.get_ids());
            pieces += tokens.iter().filter(|t| t.starts_with("##")).count();
        }
        assert!(pieces > 0, "vocab {size}: some words are split into pieces");
    }
}

#[test]
fn subword_encoder_marks_unknown_and_overlong_words() {
    let json = trained_vocab_json(&training_texts(), 300);
    let vocab = SubwordVocab::from_json(json.as_bytes()).unwrap();
    let (tokens, _) = our_tokens(&vocab, &format!("prize {}", long_word()));
    assert_eq!(tokens.last().map(String::as_str), Some("[UNK]"));
    assert_ne!(tokens[0], "[UNK]", "a known word is not unknown");
    let (tokens, _) = our_tokens(&vocab, "ωψ");
    assert_eq!(tokens, ["[UNK]"], "characters never seen in training");
    let mut ids = Vec::new();
    vocab.encode_word("", &mut ids);
    assert!(ids.is_empty());
}

#[test]
fn subword_vocab_refuses_other_documents() {
    assert!(matches!(
        SubwordVocab::from_json(b"{}"),
        Err(SubwordError::BadDocument(_))
    ));
    let json = trained_vocab_json(&training_texts(), 400);
    let as_bpe = json.replacen("\"WordPiece\"", "\"BPE\"", 1);
    assert!(SubwordVocab::from_json(as_bpe.as_bytes()).is_err());
    let no_unk = json.replacen("\"unk_token\":\"[UNK]\"", "\"unk_token\":\"<nope>\"", 1);
    assert!(SubwordVocab::from_json(no_unk.as_bytes()).is_err());
}

fn subword_toy_model(vocab: &SubwordVocab) -> MulticlassModel {
    toy_model_with(12, Some(vocab))
}

#[test]
fn subword_features_join_the_model_and_its_file_names_the_vocabulary() {
    let json = trained_vocab_json(&training_texts(), 400);
    let vocab = SubwordVocab::from_json(json.as_bytes()).unwrap();
    let text = normalize("your bank account is suspended verify now").text;
    let plain = multiclass::features(&text, 14, None);
    let with = multiclass::features(&text, 14, Some(&vocab));
    assert!(plain.buckets.iter().all(|b| with.buckets.contains(b)));
    assert!(with.buckets.len() > plain.buckets.len());

    let model = subword_toy_model(&vocab);
    assert_eq!(
        predicted(&model, "your bank account is suspended"),
        Label::Fraud
    );
    let bytes = model.to_bytes();
    let loaded = MulticlassModel::from_parts(&bytes, Some(json.as_bytes())).unwrap();
    assert_eq!(loaded, model);
    assert_eq!(
        MulticlassModel::from_bytes(&bytes),
        Err(MulticlassError::MissingSubwords)
    );
    let other = trained_vocab_json(&training_texts(), 300);
    assert_eq!(
        MulticlassModel::from_parts(&bytes, Some(other.as_bytes())),
        Err(MulticlassError::SubwordMismatch)
    );
    // A model without subword features ignores a vocabulary.
    let plain_model = toy_model(10);
    let loaded = MulticlassModel::from_parts(&plain_model.to_bytes(), Some(json.as_bytes()));
    assert_eq!(loaded.unwrap().subwords(), None);
}

#[test]
fn embedded_model_uses_the_embedded_vocabulary() {
    let model = match MulticlassModel::embedded() {
        // Only before the first training run (no cloud/models/multiclass.bin).
        Err(MulticlassError::NoEmbeddedModel) => return,
        result => result.expect("the embedded model loads with the embedded vocabulary"),
    };
    match subword::embedded_json() {
        Some(json) => {
            let vocab = SubwordVocab::from_json(json).unwrap();
            assert!(vocab.len() >= 1000, "a trained vocabulary");
            assert_eq!(model.subwords(), Some(&vocab));
            let tokenizer = Tokenizer::from_bytes(json).unwrap();
            for sample in SUBWORD_SAMPLES.iter().chain(TOY.iter().map(|(_, t)| t)) {
                let text = normalize(sample).text;
                let joined = multiclass::subword_words(&text).join(" ");
                let expected = tokenizer.encode(joined, false).unwrap();
                assert_eq!(our_tokens(&vocab, &text).1, expected.get_ids());
            }
        }
        None => assert_eq!(model.subwords(), None),
    }
}
