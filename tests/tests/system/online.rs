//! Cloud up: the fused cloud verdict wins and is cached for its TTL.

use std::time::Duration;

use smsguard_edge::engine::{MessageState, Source};
use smsguard_system_tests::{now_ms, samples, TestCloud};

use crate::online_engine;

#[test]
fn the_cloud_verdict_wins_and_a_repeat_is_answered_from_the_cache() {
    let cloud = TestCloud::start(|_| {}).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let engine = online_engine(dir.path(), &cloud.url());
    let sender = samples::sender(300);
    let first = engine.classify(&sender, &samples::phishing(4), now_ms());
    assert_eq!(first.source, Source::Cloud, "{first:?}");
    assert!(!first.degraded && !first.queued, "{first:?}");
    assert_eq!(first.state, MessageState::for_action(first.action));
    let again = engine.classify(&sender, &samples::phishing(4), now_ms());
    assert_eq!(again.source, Source::Cache, "{again:?}");
    assert_eq!(again.fingerprint, first.fingerprint);
    assert_eq!(
        (again.label, again.action, again.spam_score),
        (first.label, first.action, first.spam_score)
    );
    assert_eq!(
        again.timings_us.cloud_wait, 0,
        "a cache hit does not wait for the cloud"
    );
    let stats = engine.stats();
    assert_eq!(stats.queue_length, 0);
    assert!(stats.cache_entries >= 1);
    assert_eq!(stats.failures.cloud, 0);
}

#[test]
fn a_cached_verdict_expires_after_the_cloud_ttl() {
    let cloud = TestCloud::start(|config| config.cache_ttl_seconds = 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let engine = online_engine(dir.path(), &cloud.url());
    let sender = samples::sender(301);
    let body = samples::ham(30);
    assert_eq!(
        engine.classify(&sender, &body, now_ms()).source,
        Source::Cloud
    );
    assert_eq!(
        engine.classify(&sender, &body, now_ms()).source,
        Source::Cache
    );
    std::thread::sleep(Duration::from_millis(1_200));
    let expired = engine.classify(&sender, &body, now_ms());
    assert_eq!(expired.source, Source::Cloud, "{expired:?}");
    assert_eq!(
        engine.classify(&sender, &body, now_ms()).source,
        Source::Cache
    );
}
