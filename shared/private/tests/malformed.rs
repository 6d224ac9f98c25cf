//! Whatever bytes reach the server (or come back to the phone), the answer is an error, never a
//! panic.

use std::sync::LazyLock;

use fhe::bfv::{Ciphertext, Encoding, Plaintext, SecretKey};
use fhe_traits::{FheEncoder, FheEncrypter, Serialize};
use proptest::prelude::*;
use smsguard_private::{
    params, PrivateClient, PrivateError, PrivateModel, PrivateScorer, PrivateShape,
};

/// Built once: parameter generation dominates a test case otherwise.
static PAIR: LazyLock<(PrivateScorer, PrivateClient)> = LazyLock::new(build_pair);

fn scorer_and_client() -> &'static (PrivateScorer, PrivateClient) {
    &PAIR
}

fn build_pair() -> (PrivateScorer, PrivateClient) {
    let shape = PrivateShape::for_classes(5);
    let model = PrivateModel {
        shape,
        labels: (0..5).map(|k| k.to_string()).collect(),
        weights: vec![3; shape.classes * shape.buckets],
    };
    (
        PrivateScorer::new(&model).unwrap(),
        PrivateClient::new(shape).unwrap(),
    )
}

fn assert_malformed(result: Result<Vec<u8>, PrivateError>) {
    match result {
        Err(PrivateError::MalformedCiphertext(_)) => {}
        other => panic!("expected a malformed-ciphertext error, got {other:?}"),
    }
}

#[test]
fn empty_truncated_and_garbage_queries_are_refused() {
    let (scorer, client) = scorer_and_client();
    let query = client.encrypt_text("hello there").unwrap();
    assert_malformed(scorer.score(&[]));
    assert_malformed(scorer.score(&query[..query.len() / 2]));
    assert_malformed(scorer.score(&query[..query.len() - 1]));
    assert_malformed(scorer.score(b"not a ciphertext at all"));
    let mut extended = query.clone();
    extended.extend_from_slice(&[0x12, 0x03, 1, 2, 3]);
    assert_malformed(scorer.score(&extended));
}

#[test]
fn a_query_below_the_top_level_is_refused_not_a_panic() {
    // A well-formed ciphertext at the lower level: the product with the top-level weights would
    // trip an assertion inside `fhe` if it were not refused first.
    let (scorer, _) = scorer_and_client();
    let parameters = params::bfv_parameters().unwrap();
    let secret = SecretKey::random(&parameters, &mut rand::rng());
    let plaintext =
        Plaintext::try_encode(&[1u64, 2, 3] as &[u64], Encoding::poly(), &parameters).unwrap();
    let mut ciphertext: Ciphertext = secret.try_encrypt(&plaintext, &mut rand::rng()).unwrap();
    ciphertext.switch_down().unwrap();
    assert_malformed(scorer.score(&ciphertext.to_bytes()));
}

#[test]
fn a_bad_answer_is_an_error_for_the_phone() {
    let (scorer, client) = scorer_and_client();
    let answer = scorer
        .score(&client.encrypt_text("hello").unwrap())
        .unwrap();
    assert!(matches!(
        client.decrypt_scores(&answer[..answer.len() - 3]),
        Err(PrivateError::MalformedCiphertext(_))
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let (scorer, _) = scorer_and_client();
        prop_assert!(scorer.score(&bytes).is_err());
    }

    #[test]
    fn tampered_queries_never_panic(position in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let (scorer, client) = scorer_and_client();
        let mut query = client.encrypt_text("your account is locked, verify now").unwrap();
        let at = position.index(query.len());
        query[at] ^= flip;
        // A flipped coefficient byte is still a ciphertext (the answer decrypts to noise); a
        // flipped framing byte is refused. Either way the call returns.
        let _ = scorer.score(&query);
    }
}
