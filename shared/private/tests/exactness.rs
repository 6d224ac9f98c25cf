//! The decrypted scores equal the plaintext integer computation, for random models and features
//! and for real (hand-written) messages.

use proptest::prelude::*;
use smsguard_core::normalize::normalize;
use smsguard_private::params::{MAX_FEATURE, MAX_WEIGHT};
use smsguard_private::{PrivateClient, PrivateModel, PrivateScorer, PrivateShape};

fn model_with(shape: PrivateShape, weights: Vec<i64>) -> PrivateModel {
    PrivateModel {
        shape,
        labels: (0..shape.classes).map(|k| format!("class{k}")).collect(),
        weights,
    }
}

fn encrypted_scores(client: &PrivateClient, model: &PrivateModel, features: &[i64]) -> Vec<i64> {
    let scorer = PrivateScorer::new(model).unwrap();
    let query = client.encrypt_features(features).unwrap();
    let answer = scorer.score(&query).unwrap();
    client.decrypt_scores(&answer).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn random_vectors_decrypt_to_the_plain_scores(
        classes in 1usize..=5,
        seed_weights in proptest::collection::vec(-MAX_WEIGHT..=MAX_WEIGHT, 4096),
        seed_features in proptest::collection::vec(0..=MAX_FEATURE, 4096),
    ) {
        let shape = PrivateShape::for_classes(classes);
        let d = shape.buckets;
        let model = model_with(shape, seed_weights[..classes * d].to_vec());
        let features = &seed_features[..d];
        let client = PrivateClient::new(shape).unwrap();
        prop_assert_eq!(encrypted_scores(&client, &model, features), model.plain_scores(features).unwrap());
    }
}

#[test]
fn extreme_scores_do_not_wrap() {
    // Every feature and weight at its bound: the largest score in absolute value, both signs.
    let shape = PrivateShape::for_classes(2);
    let d = shape.buckets;
    let mut weights = vec![MAX_WEIGHT; d];
    weights.extend(vec![-MAX_WEIGHT; d]);
    let model = model_with(shape, weights);
    let features = vec![MAX_FEATURE; d];
    let client = PrivateClient::new(shape).unwrap();
    let scores = encrypted_scores(&client, &model, &features);
    let bound = d as i64 * MAX_FEATURE * MAX_WEIGHT;
    assert_eq!(scores, vec![bound, -bound]);
}

#[test]
fn real_messages_decrypt_to_the_plain_scores() {
    let shape = PrivateShape::for_classes(5);
    let weights = (0..shape.classes * shape.buckets)
        .map(|i| ((i as i64 * 7919) % (2 * MAX_WEIGHT + 1)) - MAX_WEIGHT)
        .collect();
    let model = model_with(shape, weights);
    let client = PrivateClient::new(shape).unwrap();
    let scorer = PrivateScorer::new(&model).unwrap();
    for text in [
        "Your parcel is held at customs, pay the fee at http://example.test/pay now",
        "【银行】您的账户存在异常，请点击链接验证身份，否则将冻结",
        "see you at 7 for dinner?",
        "",
    ] {
        let normalized = normalize(text).text;
        let features = shape.features(&normalized);
        let answer = scorer
            .score(&client.encrypt_text(&normalized).unwrap())
            .unwrap();
        assert_eq!(
            client.decrypt_scores(&answer).unwrap(),
            model.plain_scores(&features).unwrap()
        );
    }
}

#[test]
fn features_are_small_integers_with_the_bias_bucket_set() {
    let shape = PrivateShape::for_classes(5);
    let features = shape.features(&normalize("win a free prize now, click the link").text);
    assert_eq!(features.len(), shape.buckets);
    assert_eq!(features[0], 1);
    assert!(features.iter().all(|f| (0..=MAX_FEATURE).contains(f)));
    assert!(features[1..].iter().filter(|&&f| f > 0).count() > 10);
}

#[test]
fn query_and_answer_sizes_do_not_depend_on_the_text() {
    // The cloud sees sizes: they must not leak the message's length or content.
    let shape = PrivateShape::for_classes(5);
    let model = model_with(shape, vec![1; shape.classes * shape.buckets]);
    let client = PrivateClient::new(shape).unwrap();
    let scorer = PrivateScorer::new(&model).unwrap();
    let sizes: Vec<(usize, usize)> = ["", "hi", &"a much longer message ".repeat(20)]
        .iter()
        .map(|text| {
            let query = client.encrypt_text(&normalize(text).text).unwrap();
            let answer = scorer.score(&query).unwrap();
            (query.len(), answer.len())
        })
        .collect();
    assert!(sizes.windows(2).all(|w| w[0] == w[1]), "{sizes:?}");
    assert!(
        sizes[0].0 <= 256 * 1024 && sizes[0].1 <= 64 * 1024,
        "{sizes:?}"
    );
}
