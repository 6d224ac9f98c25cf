//! The edge's cloud link (`CloudClient`) against the real server: every RPC, frames over 64
//! messages, API keys, rate limits, deadlines.

use std::time::{Duration, Instant};

use smsguard_edge::cloud_link::{verify_model_package, CloudClient, CloudLinkError};
use smsguard_proto::v1;
use smsguard_server::ApiKeyConfig;
use smsguard_signing::VerifyingKey;
use smsguard_system_tests::{
    cloud_config, now_ms, samples, DelayProxy, TestCloud, GENEROUS_DEADLINE,
};
use tonic::Code;

fn message(sender: &str, body: &str, id: usize) -> v1::SmsMessage {
    v1::SmsMessage {
        sender: sender.to_owned(),
        body: body.to_owned(),
        received_at_ms: now_ms(),
        client_message_id: id.to_string(),
        ..v1::SmsMessage::default()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn every_rpc_round_trips_and_batches_split_into_frames() {
    let cloud = TestCloud::start(|_| {}).unwrap();
    let client = CloudClient::new(&cloud_config(&cloud.url(), GENEROUS_DEADLINE)).unwrap();
    let rt = runtime();
    let sender = samples::sender(100);

    let verdict = rt
        .block_on(client.classify(message(&sender, &samples::phishing(0), 0)))
        .unwrap();
    assert_eq!(verdict.source(), v1::VerdictSource::Cloud);
    assert!(!verdict.fingerprint.is_empty());
    assert!(
        verdict.spam_score > 0.5,
        "phishing scored {}",
        verdict.spam_score
    );

    // 130 messages: three frames (64 + 64 + 2), one message invalid (empty body).
    let mut batch: Vec<v1::SmsMessage> = (0..130)
        .map(|i| message(&sender, &samples::ham(i), i))
        .collect();
    batch[70].body.clear();
    let results = rt.block_on(client.classify_batch(batch)).unwrap();
    assert_eq!(results.len(), 130);
    for (i, result) in results.iter().enumerate() {
        assert_eq!(
            result.client_message_id,
            i.to_string(),
            "results keep input order"
        );
        match (&result.outcome, i) {
            (Some(v1::classify_result::Outcome::Error(error)), 70) => {
                assert_eq!(error.code, Code::InvalidArgument as i32)
            }
            (Some(v1::classify_result::Outcome::Verdict(_)), i) if i != 70 => {}
            (other, i) => panic!("message {i}: unexpected outcome {other:?}"),
        }
    }

    let report = rt
        .block_on(client.report(v1::ReportRequest {
            feedback: v1::Feedback::Spam as i32,
            fingerprint: verdict.fingerprint.clone(),
            sender: sender.clone(),
            reported_at_ms: now_ms(),
            ..v1::ReportRequest::default()
        }))
        .unwrap();
    assert!(report.accepted);
    assert!(report.report_count >= 1);

    let sync = rt.block_on(client.sync_cache(0, 100, "")).unwrap();
    assert!(sync.version >= 1, "a report is a change: {sync:?}");
    let again = rt
        .block_on(client.sync_cache(sync.version, 100, ""))
        .unwrap();
    assert!(
        again.fingerprints.is_empty(),
        "nothing changed since {}",
        sync.version
    );

    let package = rt.block_on(client.get_model("")).unwrap();
    let pinned = VerifyingKey::from_hex(cloud.model_public_key()).unwrap();
    verify_model_package(&package, &pinned).unwrap();
    let current = rt
        .block_on(client.get_model(cloud.model_version()))
        .unwrap();
    assert!(current.up_to_date);
}

#[test]
fn api_keys_are_sent_and_refusals_are_not_retryable() {
    let key = "edge-fleet-key";
    let cloud = TestCloud::start(|config| {
        config.api_keys = vec![ApiKeyConfig::from_key("fleet", key, 100.0, 100)];
    })
    .unwrap();
    let rt = runtime();
    let sender = samples::sender(101);
    let mut config = cloud_config(&cloud.url(), GENEROUS_DEADLINE);
    let anonymous = CloudClient::new(&config).unwrap();
    let refused = rt
        .block_on(anonymous.classify(message(&sender, &samples::ham(1), 1)))
        .unwrap_err();
    assert!(
        matches!(
            refused,
            CloudLinkError::Rejected {
                code: Code::Unauthenticated,
                ..
            }
        ),
        "{refused:?}"
    );
    assert!(!refused.is_retryable());

    config.api_key = Some("not-the-key".into());
    let wrong = CloudClient::new(&config).unwrap();
    assert!(rt
        .block_on(wrong.classify(message(&sender, &samples::ham(1), 1)))
        .is_err());

    config.api_key = Some(key.into());
    let keyed = CloudClient::new(&config).unwrap();
    rt.block_on(keyed.classify(message(&sender, &samples::ham(1), 1)))
        .unwrap();
    let batch = rt
        .block_on(keyed.classify_batch(vec![message(&sender, &samples::ham(2), 2)]))
        .unwrap();
    assert_eq!(batch.len(), 1);
}

#[test]
fn a_rate_limited_key_gets_a_retryable_error() {
    let key = "slow-fleet-key";
    let cloud = TestCloud::start(|config| {
        config.api_keys = vec![ApiKeyConfig::from_key("slow", key, 0.2, 1)];
    })
    .unwrap();
    let mut config = cloud_config(&cloud.url(), GENEROUS_DEADLINE);
    config.api_key = Some(key.into());
    let client = CloudClient::new(&config).unwrap();
    let rt = runtime();
    let sender = samples::sender(102);
    rt.block_on(client.classify(message(&sender, &samples::ham(3), 1)))
        .unwrap();
    let limited = rt
        .block_on(client.classify(message(&sender, &samples::ham(4), 2)))
        .unwrap_err();
    assert!(
        matches!(limited, CloudLinkError::ResourceExhausted { .. }),
        "{limited:?}"
    );
    assert!(limited.is_retryable());
}

#[test]
fn a_slow_network_hits_the_deadline_not_the_caller() {
    let cloud = TestCloud::start(|_| {}).unwrap();
    let proxy = DelayProxy::start(cloud.addr()).unwrap();
    let deadline = Duration::from_millis(300);
    let client = CloudClient::new(&cloud_config(&proxy.url(), deadline)).unwrap();
    let rt = runtime();
    let sender = samples::sender(103);
    proxy.set_delay(Duration::from_secs(3));
    let started = Instant::now();
    let error = rt
        .block_on(client.classify(message(&sender, &samples::ham(5), 1)))
        .unwrap_err();
    let waited = started.elapsed();
    assert_eq!(error, CloudLinkError::DeadlineExceeded);
    assert!(error.is_retryable());
    // Behavioural bound, not a speed target: the call gave up long before the network answered.
    assert!(waited < Duration::from_secs(2), "waited {waited:?}");

    // A stalled connection (bytes held) is the same to the caller.
    proxy.set_delay(Duration::ZERO);
    proxy.pause();
    let error = rt
        .block_on(client.classify(message(&sender, &samples::ham(6), 2)))
        .unwrap_err();
    assert_eq!(error, CloudLinkError::DeadlineExceeded);
    proxy.resume();
}

#[test]
fn a_dead_cloud_is_unavailable_and_retryable() {
    let mut cloud = TestCloud::start(|_| {}).unwrap();
    let client = CloudClient::new(&cloud_config(&cloud.url(), GENEROUS_DEADLINE)).unwrap();
    let rt = runtime();
    let sender = samples::sender(104);
    rt.block_on(client.classify(message(&sender, &samples::ham(7), 1)))
        .unwrap();
    cloud.kill();
    let error = rt
        .block_on(client.classify(message(&sender, &samples::ham(8), 2)))
        .unwrap_err();
    assert!(
        matches!(error, CloudLinkError::Unavailable { .. }),
        "{error:?}"
    );
    assert!(error.is_retryable());
    cloud.restart().unwrap();
    // The same client (same lazily connected channel) reconnects to the restarted server.
    rt.block_on(client.classify(message(&sender, &samples::ham(9), 3)))
        .unwrap();
}
