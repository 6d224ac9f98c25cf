//! Cloud too slow: the deadline passes, the local verdict stands, the message is queued, and
//! the re-check once the network recovers replaces the verdict.

use std::time::{Duration, Instant};

use smsguard_edge::engine::{EngineEvent, MessageState, Source};
use smsguard_edge::model::Action;
use smsguard_system_tests::{now_ms, open_engine, samples, DelayProxy, TestCloud};

use crate::online_config;

const DEADLINE: Duration = Duration::from_millis(300);
const NETWORK_DELAY: Duration = Duration::from_secs(3);

#[test]
fn a_late_cloud_leaves_the_local_verdict_and_the_recheck_fixes_it() {
    let cloud = TestCloud::start(|_| {}).unwrap();
    let proxy = DelayProxy::start(cloud.addr()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let engine = open_engine(dir.path(), online_config(&proxy.url(), DEADLINE)).unwrap();
    let sender = samples::sender(400);
    proxy.set_delay(NETWORK_DELAY);
    let started = Instant::now();
    // A text the committed local model only tags (picked with that model, so that a retrained
    // model keeps the test meaningful); the cloud blocks it.
    let text = only_tagged_phishing();
    let late = engine.classify(&sender, &text, now_ms());
    let waited = started.elapsed();
    assert_eq!(late.source, Source::Local, "{late:?}");
    assert!(late.degraded && late.queued, "{late:?}");
    assert!(
        waited < NETWORK_DELAY,
        "classify waited {waited:?} for a late cloud"
    );
    assert_eq!(
        late.action,
        Action::Tag,
        "precondition (local model): {late:?}"
    );
    assert_eq!(late.state, MessageState::Delivered);

    proxy.set_delay(Duration::ZERO);
    let summary = engine.drain_queue().unwrap();
    assert_eq!(
        (summary.rechecked, summary.remaining),
        (1, 0),
        "{summary:?}"
    );
    assert_eq!(summary.flagged, 1, "the cloud blocks it: {summary:?}");
    let record = engine.message(late.message_id).unwrap().unwrap();
    assert_eq!(record.state, MessageState::Flagged);
    assert_eq!(record.verdict.source, Source::Cloud);
    assert!(matches!(
        record.verdict.action,
        Action::Quarantine | Action::Block
    ));
    assert!(engine.drain_events().contains(&EngineEvent::Flagged {
        message_id: late.message_id
    }));
}

#[test]
fn a_stalled_connection_is_bounded_by_the_deadline_too() {
    let cloud = TestCloud::start(|_| {}).unwrap();
    let proxy = DelayProxy::start(cloud.addr()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let engine = open_engine(dir.path(), online_config(&proxy.url(), DEADLINE)).unwrap();
    let sender = samples::sender(401);
    proxy.pause();
    let stalled = engine.classify(&sender, &samples::ham(40), now_ms());
    assert_eq!(stalled.source, Source::Local);
    assert!(stalled.queued);
    proxy.resume();
    let summary = engine.drain_queue().unwrap();
    assert_eq!(
        (summary.rechecked, summary.remaining),
        (1, 0),
        "{summary:?}"
    );
}

/// The first phishing sample the embedded edge model scores as `Tag` on its own (the full texts
/// first, then the shorter ones, which score lower).
fn only_tagged_phishing() -> String {
    let model = smsguard_edge::EdgeModel::embedded().expect("embedded edge model");
    (0..24)
        .map(samples::phishing)
        .chain((0..24).map(samples::phishing_short))
        .find(|text| model.classify(text).is_ok_and(|p| p.action == Action::Tag))
        .expect("a phishing sample that the local model only tags")
}
