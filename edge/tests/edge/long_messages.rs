//! Long messages are read whole: the model reads only the start of a text (128 char ids, 256
//! n-gram characters), so a lure after a screen of chat went unread (269 characters of chat took
//! a prize scam from 0.99998 to 0.36). A long text is scored in windows and judged by its worst;
//! a text that fits in one window scores exactly as the single pass did.

use std::path::PathBuf;

use smsguard_core::normalize;
use smsguard_edge::engine::{Engine, EngineConfig, Source};
use smsguard_edge::model::{softmax, Action, MAX_WINDOWS};
use smsguard_edge::EdgeModel;

use crate::fixtures::{OBVIOUS_HAM, OBVIOUS_SPAM};

/// Hand-written family chat, 311 characters: more than the model reads at once.
const CHAT: &str =
    "Hey, how was your weekend? We went hiking with the kids up the hill behind the old \
    mill and had a picnic by the lake. The weather was lovely and the dog chased ducks all \
    afternoon. Mum says hello and asks if you are still coming for dinner on Sunday, she is \
    making her lasagne. Let me know what time suits you. ";

/// More hand-written chat, to make a long ham message.
const MORE_CHAT: &str =
    "Also I booked the table for Friday at eight, the place near the station you \
    liked. Can you bring the charger and the photos from the trip? Dad wants copies for the \
    album and grandma would love to see them too. Speak soon, love you.";

const LURE: &str = OBVIOUS_SPAM[0];

fn embedded() -> EdgeModel {
    EdgeModel::embedded().expect("embedded model loads")
}

/// The softmax of one pass over the text's start: what the model read before windows.
fn single_pass(model: &EdgeModel, text: &str) -> Vec<f32> {
    let input = model.encode(&normalize(text).text);
    softmax(&model.logits(&[input]).expect("model runs"))
}

/// Every hand-written fixture message of the repository.
fn fixture_messages() -> Vec<String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../datasets/fixtures");
    let samples = std::fs::read_to_string(dir.join("samples.txt")).unwrap();
    let robustness = std::fs::read_to_string(dir.join("robustness.tsv")).unwrap();
    let rows = robustness
        .lines()
        .filter_map(|line| line.split_once('\t').map(|(_, text)| text));
    samples
        .lines()
        .chain(rows)
        .chain(OBVIOUS_SPAM)
        .chain(OBVIOUS_HAM)
        .filter(|text| !text.trim().is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn messages_within_one_window_score_bit_for_bit_as_the_single_pass() {
    let model = embedded();
    let messages = fixture_messages();
    assert!(messages.len() > 90);
    for text in &messages {
        let prediction = model.classify(text).unwrap();
        assert_eq!(prediction.windows, 1, "{} chars", text.chars().count());
        let expected = single_pass(&model, text);
        assert_eq!(prediction.probabilities, expected, "{text}");
        assert_eq!(prediction.spam_score, (1.0 - expected[0]).clamp(0.0, 1.0));
    }
}

#[test]
fn a_lure_after_a_screen_of_chat_is_caught() {
    let model = embedded();
    let long_spam = format!("{CHAT}{LURE}");
    let before = 1.0 - single_pass(&model, &long_spam)[0];
    let threshold = model.metadata().threshold_fpr_0_5;
    assert!(
        before < threshold,
        "the single pass already catches it ({before}): the test no longer shows the gap"
    );
    let windowed = model.classify(&long_spam).unwrap();
    assert!(windowed.windows > 1);
    assert!(windowed.spam_score >= threshold, "{}", windowed.spam_score);

    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), EngineConfig::default()).unwrap();
    for text in [long_spam.as_str(), LURE] {
        let d = engine.classify("+15550100", text, 0);
        assert_eq!(
            (d.source, d.action),
            (Source::Local, Action::Quarantine),
            "{} chars: {}",
            text.len(),
            d.reason
        );
    }
    let long_ham = format!("{CHAT}{MORE_CHAT} {CHAT}");
    let d = engine.classify("+15550100", &long_ham, 0);
    assert_eq!(d.action, Action::Allow, "{}", d.reason);
    assert!(d.reason.contains("windows"), "{}", d.reason);
}

#[test]
fn a_long_message_never_scores_below_its_single_pass() {
    let model = embedded();
    for text in [
        format!("{CHAT}{LURE}"),
        format!("{CHAT}{MORE_CHAT}"),
        format!("{LURE} {CHAT}"),
        format!("{}{MORE_CHAT}", CHAT.repeat(3)),
    ] {
        let windowed = model.classify(&text).unwrap();
        let single = 1.0 - single_pass(&model, &text)[0];
        assert!(windowed.spam_score >= single, "{windowed:?} < {single}");
    }
}

#[test]
fn huge_messages_are_scored_in_a_bounded_number_of_windows() {
    let model = embedded();
    let two_thousand: String = CHAT.repeat(7).chars().take(2_000).collect();
    let windows = model.classify(&two_thousand).unwrap().windows;
    assert!((14..=MAX_WINDOWS).contains(&windows), "{windows}");
    let huge = format!("{}{LURE}", CHAT.repeat(300));
    let prediction = model.classify(&huge).unwrap();
    assert_eq!(prediction.windows, MAX_WINDOWS);
    // The last window always reaches the end of the text, so a final lure is still read.
    assert!(prediction.spam_score >= model.metadata().threshold_fpr_0_5);
}
