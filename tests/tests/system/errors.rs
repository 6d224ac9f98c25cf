//! The cloud answers with errors: a key the engine lacks, a rate limit, a body it refuses.

use std::time::Duration;

use smsguard_edge::engine::Source;
use smsguard_server::ApiKeyConfig;
use smsguard_system_tests::{now_ms, open_engine, samples, TestCloud, GENEROUS_DEADLINE};

use crate::{online_config, online_engine};

fn keyed_cloud(key: &str, rate_per_second: f64) -> TestCloud {
    TestCloud::start(|config| {
        config.api_keys = vec![ApiKeyConfig::from_key("fleet", key, rate_per_second, 1)];
    })
    .unwrap()
}

#[test]
fn a_refused_key_gives_local_verdicts_that_are_not_queued() {
    let cloud = keyed_cloud("the-fleet-key", 100.0);
    let dir = tempfile::tempdir().unwrap();
    let engine = online_engine(dir.path(), &cloud.url());
    let sender = samples::sender(600);
    let refused = engine.classify(&sender, &samples::phishing(6), now_ms());
    assert_eq!(refused.source, Source::Local, "{refused:?}");
    assert!(refused.degraded, "{refused:?}");
    assert!(
        !refused.queued,
        "asking again with the same key cannot help: {refused:?}"
    );
    let stats = engine.stats();
    assert_eq!(stats.queue_length, 0);
    assert!(stats.failures.cloud >= 1, "{stats:?}");
}

#[test]
fn a_rate_limited_engine_queues_and_drains_when_tokens_return() {
    let key = "rate-limited-key";
    // One request, then one every 2 s.
    let cloud = keyed_cloud(key, 0.5);
    let dir = tempfile::tempdir().unwrap();
    let mut config = online_config(&cloud.url(), GENEROUS_DEADLINE);
    if let Some(cloud) = config.cloud.as_mut() {
        cloud.api_key = Some(key.into());
    }
    let engine = open_engine(dir.path(), config).unwrap();
    let sender = samples::sender(601);
    let first = engine.classify(&sender, &samples::ham(60), now_ms());
    assert_eq!(first.source, Source::Cloud, "{first:?}");
    let limited = engine.classify(&sender, &samples::ham(61), now_ms());
    assert_eq!(limited.source, Source::Local, "{limited:?}");
    assert!(limited.queued, "overload is temporary: {limited:?}");
    std::thread::sleep(Duration::from_millis(2_100));
    let summary = engine.drain_queue().unwrap();
    assert_eq!(
        (summary.rechecked, summary.remaining),
        (1, 0),
        "{summary:?}"
    );
}

#[test]
fn an_oversized_body_is_refused_by_the_cloud_and_judged_locally() {
    let cloud = TestCloud::start(|_| {}).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let engine = online_engine(dir.path(), &cloud.url());
    let sender = samples::sender(602);
    let ham = samples::ham(62);
    let huge = ham.repeat(cloud.config().max_body_bytes / ham.len() + 2);
    assert!(huge.len() > cloud.config().max_body_bytes);
    let decision = engine.classify(&sender, &huge, now_ms());
    assert_eq!(decision.source, Source::Local, "{decision:?}");
    assert!(
        !decision.queued,
        "the cloud will refuse it again: {decision:?}"
    );
    // The server keeps serving the next, normal message.
    let next = engine.classify(&sender, &samples::ham(63), now_ms());
    assert_eq!(next.source, Source::Cloud, "{next:?}");
}
