//! The engine restarts with a full queue: the queue survives and drains once the cloud is up.

use smsguard_edge::engine::{ReportOutcome, Source};
use smsguard_server::ServerConfig;
use smsguard_system_tests::{now_ms, samples, unused_loopback_addr, TestCloud};

use crate::online_engine;

/// More than one `ClassifyStream` frame (64 messages).
const QUEUED: usize = 70;

#[test]
fn a_full_queue_survives_an_engine_restart_and_drains_in_frames() {
    let addr = unused_loopback_addr().unwrap();
    let url = format!("http://{addr}");
    let dir = tempfile::tempdir().unwrap();
    let sender = samples::sender(700);
    let reported_id = {
        let engine = online_engine(dir.path(), &url);
        let mut last = 0;
        for i in 0..QUEUED {
            let decision = engine.classify(&sender, &samples::ham(100 + i), now_ms());
            assert!(decision.queued, "{decision:?}");
            last = decision.message_id;
        }
        assert_eq!(engine.report(last, true).unwrap(), ReportOutcome::Queued);
        engine.close().unwrap();
        last
    };

    let engine = online_engine(dir.path(), &url);
    let stats = engine.stats();
    assert_eq!(
        stats.queue_length,
        QUEUED + 1,
        "re-checks and the report survive: {stats:?}"
    );

    let data = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::for_tests(data.path());
    config.listen = addr;
    let _cloud = TestCloud::start_with(config, Some(data)).unwrap();
    let summary = engine.drain_queue().unwrap();
    assert_eq!(summary.rechecked, QUEUED, "{summary:?}");
    assert_eq!(summary.reports_sent, 1, "{summary:?}");
    assert_eq!(summary.remaining, 0, "{summary:?}");
    assert_eq!(engine.stats().queue_length, 0);
    let record = engine.message(reported_id).unwrap().unwrap();
    assert!(!record.queued);
    assert_ne!(record.verdict.source, Source::Local);
}
