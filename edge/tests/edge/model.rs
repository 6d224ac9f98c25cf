use smsguard_core::features::word_level_json;
use smsguard_core::ngrams::NgramFeatures;
use smsguard_core::{normalize, reads_pipeline, Label, Market};
use smsguard_model::{EdgeModel, ModelError, ModelInput};

use crate::fixtures::{int8_model, vocab_json, OBVIOUS_HAM, OBVIOUS_SPAM};

fn embedded() -> EdgeModel {
    EdgeModel::embedded().expect("embedded model loads")
}

#[test]
fn embedded_model_metadata_matches_this_build() {
    let model = embedded();
    let info = model.metadata();
    assert_eq!(info.labels[0], "ham");
    assert!(reads_pipeline(info.pipeline_version));
    assert_eq!(info.seq_len, model.encoder().seq_len());
    assert!(info.threshold_fpr_0_5 <= info.threshold_fpr_0_1);
}

#[test]
fn embedded_model_judges_each_market_at_its_own_thresholds() {
    let model = embedded();
    let info = model.metadata();
    for market in Market::ALL {
        let judged = info.operating_point(market);
        assert!(
            judged.market_specific,
            "no thresholds of its own for {market}"
        );
        assert!(judged.point.tag <= judged.point.quarantine, "{market}");
    }
    let zh = model
        .classify("明天下午三点开会，记得带上周的报告")
        .unwrap();
    let en = model
        .classify("Are we still on for lunch tomorrow?")
        .unwrap();
    assert_eq!(
        (zh.judged.market, en.judged.market),
        (Market::Zh, Market::En)
    );
    assert_eq!(zh.judged.point, info.operating_point(Market::Zh).point);
    let forced = model
        .classify_in_market(
            &normalize("Are we still on for lunch tomorrow?"),
            Some(Market::Zh),
        )
        .unwrap();
    assert_eq!(forced.judged.market, Market::Zh);
    assert_eq!(
        forced.spam_score, en.spam_score,
        "the market changes thresholds, not scores"
    );
}

#[test]
fn obvious_spam_scores_above_obvious_ham() {
    let model = embedded();
    let score = |text: &str| model.classify(text).expect("classifies").spam_score;
    let lowest_spam = OBVIOUS_SPAM
        .iter()
        .map(|t| score(t))
        .fold(f32::INFINITY, f32::min);
    let highest_ham = OBVIOUS_HAM
        .iter()
        .map(|t| score(t))
        .fold(f32::NEG_INFINITY, f32::max);
    assert!(
        lowest_spam > highest_ham,
        "lowest spam {lowest_spam} <= highest ham {highest_ham}"
    );
    for text in OBVIOUS_SPAM {
        assert_ne!(
            model.classify(text).unwrap().label,
            Label::Ham,
            "an obvious spam was called ham"
        );
    }
    for text in OBVIOUS_HAM {
        assert_eq!(
            model.classify(text).unwrap().label,
            Label::Ham,
            "an obvious ham was called spam"
        );
    }
}

#[test]
fn prediction_is_consistent() {
    let model = embedded();
    let prediction = model.classify(OBVIOUS_SPAM[0]).unwrap();
    let total: f32 = prediction.probabilities.iter().sum();
    assert!((total - 1.0).abs() < 1e-4, "probabilities sum to {total}");
    assert_eq!(
        prediction.probabilities.len(),
        model.metadata().labels.len()
    );
    assert!((prediction.spam_score - (1.0 - prediction.probabilities[0])).abs() < 1e-6);
    assert_eq!(
        model.metadata().labels[prediction.label_index],
        prediction.label.as_str()
    );
    let again = model
        .classify_normalized(&normalize(OBVIOUS_SPAM[0]))
        .unwrap();
    assert_eq!(again, prediction);
}

#[test]
fn batched_logits_equal_single_rows() {
    let model = embedded();
    // Rows with different n-gram counts, so the shorter one is padded in the batch.
    let rows: Vec<ModelInput> = [OBVIOUS_SPAM[1], OBVIOUS_HAM[0]]
        .iter()
        .map(|t| model.encode(&normalize(t).text))
        .collect();
    assert_ne!(rows[0].ngrams.len(), rows[1].ngrams.len());
    let batch = model.logits(&rows).unwrap();
    let classes = model.metadata().labels.len();
    assert_eq!(batch.len(), 2 * classes);
    for (i, row) in rows.iter().enumerate() {
        let single = model.logits(std::slice::from_ref(row)).unwrap();
        for (a, b) in single.iter().zip(&batch[i * classes..(i + 1) * classes]) {
            assert!((a - b).abs() < 1e-4, "row {i}: {a} vs {b}");
        }
    }
}

#[test]
fn wrong_batch_shape_is_an_error() {
    let model = embedded();
    let short = ModelInput {
        ids: vec![1, 2, 3],
        ngrams: NgramFeatures::default(),
    };
    let err = model.logits(&[short]).unwrap_err();
    assert!(
        matches!(err, ModelError::BatchShape { ids: 3, .. }),
        "{err}"
    );
    assert!(model.logits(&[]).unwrap().is_empty());
}

#[test]
fn out_of_vocabulary_ids_are_an_error_not_a_panic() {
    let model = embedded();
    let mut input = model.encode("hello");
    input.ids[0] = model.encoder().vocab_size() as i64 + 1000;
    assert!(model.logits(std::slice::from_ref(&input)).is_err());
    let mut input = model.encode("hello");
    input.ngrams.ids[0] = model.metadata().ngram.buckets as i64 + 1000;
    assert!(model.logits(&[input]).is_err());
}

#[test]
fn empty_and_blank_messages_are_refused() {
    let model = embedded();
    for text in ["", "   ", "\u{200b}\u{200b}"] {
        assert!(
            matches!(model.classify(text), Err(ModelError::EmptyText)),
            "{text:?} was not refused"
        );
    }
}

#[test]
fn huge_message_gets_a_sane_score() {
    let model = embedded();
    let text = "win a free prize now ".repeat(5000);
    assert!(text.len() > 100_000);
    let prediction = model.classify(&text).unwrap();
    assert!((0.0..=1.0).contains(&prediction.spam_score));
}

#[test]
fn corrupt_model_bytes_are_refused() {
    let vocab = vocab_json();
    assert!(matches!(
        EdgeModel::from_bytes(b"definitely not onnx", &vocab),
        Err(ModelError::Ort { .. })
    ));
    let model = int8_model();
    let truncated = &model[..model.len() / 2];
    assert!(EdgeModel::from_bytes(truncated, &vocab).is_err());
    assert!(EdgeModel::from_bytes(&[], &vocab).is_err());
}

#[test]
fn vocabulary_mismatch_is_refused() {
    let model = int8_model();
    let other_vocab = word_level_json(&['a', 'b', 'c'], 16);
    let err = EdgeModel::from_bytes(&model, &other_vocab).unwrap_err();
    assert!(matches!(err, ModelError::VocabMismatch { .. }), "{err}");
    // Same tokens, different bytes: still refused, the hash pins the exact file.
    let reformatted = format!(" {}", vocab_json());
    assert!(matches!(
        EdgeModel::from_bytes(&model, &reformatted),
        Err(ModelError::VocabMismatch { .. })
    ));
    assert!(matches!(
        EdgeModel::from_bytes(&model, "{not json"),
        Err(ModelError::Vocab(_))
    ));
}

#[test]
fn model_is_shared_between_threads() {
    let model = embedded();
    let expected = model.classify(OBVIOUS_SPAM[2]).unwrap().spam_score;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| model.classify(OBVIOUS_SPAM[2]).unwrap().spam_score))
            .collect();
        for handle in handles {
            assert_eq!(handle.join().unwrap(), expected);
        }
    });
}
