//! A stream is charged per message: a key's rate limit holds however the messages arrive.

use smsguard_proto::v1;
use smsguard_proto::v1::classify_result::Outcome;
use smsguard_server::ApiKeyConfig;
use tokio_stream::StreamExt;
use tonic::Code;

use crate::common::{self, message, run, with_bearer};

const KEY: &str = "stream-key";

#[test]
fn a_stream_cannot_score_more_messages_than_its_key_allows() {
    run(async {
        // Burst 5, and a rate too slow to refill during the test: 5 tokens in all.
        let server = common::start(|config| {
            config.api_keys = vec![ApiKeyConfig::from_key("slow-fleet", KEY, 0.001, 5)];
        })
        .await;
        let frames: Vec<v1::ClassifyBatch> = (0..3)
            .map(|frame| v1::ClassifyBatch {
                messages: (0..10)
                    .map(|i| message("see you at the station at six", &format!("{frame}-{i}")))
                    .collect(),
            })
            .collect();
        let answers: Vec<_> = common::client(server.addr())
            .await
            .classify_stream(with_bearer(KEY, tokio_stream::iter(frames)))
            .await
            .expect("the stream opens (one token)")
            .into_inner()
            .collect()
            .await;
        let results: Vec<v1::ClassifyResult> = answers
            .into_iter()
            .flat_map(|frame| frame.expect("every frame is answered").results)
            .collect();
        assert_eq!(results.len(), 30, "every message gets an answer");
        let scored = results
            .iter()
            .filter(|r| matches!(r.outcome, Some(Outcome::Verdict(_))))
            .count();
        // Opening the stream took one token, which pays for the first message.
        assert_eq!(scored, 5, "only the key's tokens are scored");
        assert!(results[..5]
            .iter()
            .all(|r| matches!(r.outcome, Some(Outcome::Verdict(_)))));
        for refused in &results[5..] {
            let Some(Outcome::Error(error)) = &refused.outcome else {
                panic!("message {} was not refused", refused.client_message_id);
            };
            assert_eq!(error.code, Code::ResourceExhausted as i32);
            assert!(error.reason.contains("slow-fleet"), "{}", error.reason);
            assert!(!refused.client_message_id.is_empty());
        }
        server.server.shutdown().await.unwrap();
    });
}
