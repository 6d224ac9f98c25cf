//! Offline from the start: no cloud configured, and a configured cloud that is down until later.

use smsguard_edge::engine::{EngineError, Source};
use smsguard_edge::model::Action;
use smsguard_system_tests::{
    engine_config, now_ms, open_engine, samples, unused_loopback_addr, TestCloud,
};

use crate::online_engine;

#[test]
fn without_a_cloud_the_local_model_decides_and_nothing_is_queued() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open_engine(dir.path(), engine_config(None)).unwrap();
    let sender = samples::sender(200);
    let phishing = engine.classify(&sender, &samples::phishing(6), now_ms());
    assert_eq!(phishing.source, Source::Local);
    assert!(
        matches!(phishing.action, Action::Quarantine | Action::Block),
        "{phishing:?}"
    );
    assert!(!phishing.queued);
    assert!(!phishing.degraded);
    let ham = engine.classify(&sender, &samples::ham(20), now_ms());
    assert_eq!(ham.source, Source::Local);
    assert_eq!(ham.action, Action::Allow, "{ham:?}");
    assert!(matches!(engine.drain_queue(), Err(EngineError::Offline)));
    let stats = engine.stats();
    assert!(!stats.cloud_configured);
    assert_eq!(stats.queue_length, 0);
    assert_eq!(stats.quarantined, 1);
}

#[test]
fn a_cloud_down_from_the_start_gets_the_queue_once_it_is_up() {
    let addr = unused_loopback_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let engine = online_engine(dir.path(), &format!("http://{addr}"));
    let sender = samples::sender(201);
    let bodies = [samples::ham(21), samples::phishing(3), samples::ham(22)];
    let decisions: Vec<_> = bodies
        .iter()
        .map(|body| engine.classify(&sender, body, now_ms()))
        .collect();
    for decision in &decisions {
        assert_eq!(decision.source, Source::Local, "{decision:?}");
        assert!(decision.degraded && decision.queued, "{decision:?}");
    }
    // Still down: draining keeps everything.
    let summary = engine.drain_queue().unwrap();
    assert_eq!((summary.rechecked, summary.remaining), (0, 3));

    let data = tempfile::tempdir().unwrap();
    let mut config = smsguard_server::ServerConfig::for_tests(data.path());
    config.listen = addr;
    let _cloud = TestCloud::start_with(config, Some(data)).unwrap();
    let summary = engine.drain_queue().unwrap();
    assert_eq!(
        (summary.rechecked, summary.remaining),
        (3, 0),
        "{summary:?}"
    );
    assert_eq!(engine.stats().queue_length, 0);
    for decision in &decisions {
        let record = engine.message(decision.message_id).unwrap().unwrap();
        assert!(!record.queued);
        assert_eq!(
            record.verdict.source,
            Source::Cloud,
            "re-checked by the cloud"
        );
    }
    let next = engine.classify(&sender, &samples::ham(23), now_ms());
    assert_eq!(next.source, Source::Cloud, "{next:?}");
}

#[test]
fn with_model_store_and_cloud_all_failing_the_message_is_delivered() {
    let addr = unused_loopback_addr().unwrap();
    let work = tempfile::tempdir().unwrap();
    // A file where the store's directory should be: sled cannot open it.
    let not_a_dir = work.path().join("store");
    std::fs::write(&not_a_dir, b"not a directory").unwrap();
    let mut config = crate::online_config(
        &format!("http://{addr}"),
        smsguard_system_tests::GENEROUS_DEADLINE,
    );
    config.model = smsguard_edge::engine::ModelSource::Files {
        model: work.path().join("missing.onnx"),
        vocab: work.path().join("missing.json"),
    };
    let engine = open_engine(&not_a_dir, config).unwrap();
    let decision = engine.classify(&samples::sender(202), &samples::phishing(7), now_ms());
    assert_eq!(decision.action, Action::Allow, "fail open: {decision:?}");
    assert!(decision.degraded, "{decision:?}");
    let stats = engine.stats();
    assert!(
        stats.model_error.is_some() && stats.store_error.is_some(),
        "{stats:?}"
    );
    assert_eq!(stats.failures.fail_open, 1, "{stats:?}");
}
