//! One query through both sides in process, timed per step: what the trainer's encrypted check
//! and the bench measure (encrypt on the phone, score on the cloud, decrypt on the phone).

use std::time::{Duration, Instant};

use crate::{PrivateClient, PrivateError, PrivateScorer};

/// The decrypted scores of one query, its sizes and the time of each step.
#[derive(Debug, Clone)]
pub struct RoundTrip {
    pub scores: Vec<i64>,
    pub query_bytes: usize,
    pub answer_bytes: usize,
    pub encrypt: Duration,
    pub score: Duration,
    pub decrypt: Duration,
}

/// Encrypts `features`, scores the query, decrypts the answer.
pub fn timed_round_trip(
    client: &PrivateClient,
    scorer: &PrivateScorer,
    features: &[i64],
) -> Result<RoundTrip, PrivateError> {
    let started = Instant::now();
    let query = client.encrypt_features(features)?;
    let encrypted = Instant::now();
    let answer = scorer.score(&query)?;
    let scored = Instant::now();
    let scores = client.decrypt_scores(&answer)?;
    Ok(RoundTrip {
        scores,
        query_bytes: query.len(),
        answer_bytes: answer.len(),
        encrypt: encrypted - started,
        score: scored - encrypted,
        decrypt: scored.elapsed(),
    })
}
