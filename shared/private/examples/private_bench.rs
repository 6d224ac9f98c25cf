//! Sizes and times of one private classification: phone encrypt, server score, phone decrypt.
//! `cargo run --release -p smsguard-private --example private_bench [iterations]`
//! (uses a synthetic model of the shipped shape: timing does not depend on the weights' values).

use std::time::Duration;

use smsguard_core::normalize::normalize;
use smsguard_private::params::{self, MAX_WEIGHT};
use smsguard_private::round_trip::timed_round_trip;
use smsguard_private::{PrivateClient, PrivateError, PrivateModel, PrivateScorer, PrivateShape};

const MESSAGES: [&str; 3] = [
    "Your parcel is held at customs, pay the fee at http://example.test/pay within 24h",
    "【银行】您的账户存在异常，请点击链接验证身份，否则将冻结",
    "see you at 7 for dinner? bring the blue folder",
];

fn main() -> Result<(), PrivateError> {
    let iterations: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(50);
    let shape = PrivateShape::for_classes(5);
    let model = PrivateModel {
        shape,
        labels: (0..5).map(|k| k.to_string()).collect(),
        weights: (0..shape.classes * shape.buckets)
            .map(|i| (i as i64 * 31) % (2 * MAX_WEIGHT + 1) - MAX_WEIGHT)
            .collect(),
    };
    let client = PrivateClient::new(shape)?;
    let scorer = PrivateScorer::new(&model)?;
    let texts: Vec<String> = MESSAGES.iter().map(|m| normalize(m).text).collect();
    let (mut encrypt, mut score, mut decrypt) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let (mut query_bytes, mut answer_bytes) = (0, 0);
    for i in 0..iterations {
        let features = shape.features(&texts[i % texts.len()]);
        let trip = timed_round_trip(&client, &scorer, &features)?;
        decrypt += trip.decrypt;
        score += trip.score;
        encrypt += trip.encrypt;
        assert_eq!(
            trip.scores,
            model.plain_scores(&features)?,
            "inexact scores"
        );
        query_bytes = trip.query_bytes;
        answer_bytes = trip.answer_bytes;
    }
    let mean = |d: Duration| d.as_secs_f64() * 1e3 / iterations as f64;
    println!(
        "parameters {}  classes {} x buckets {}  iterations {iterations}  profile {}",
        params::PARAMETER_SET,
        shape.classes,
        shape.buckets,
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    println!("query {query_bytes} B  answer {answer_bytes} B");
    println!(
        "phone encrypt {:.2} ms  server score {:.2} ms  phone decrypt {:.2} ms  (one thread)",
        mean(encrypt),
        mean(score),
        mean(decrypt)
    );
    Ok(())
}
