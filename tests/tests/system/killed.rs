//! The cloud is killed in the middle of a run and restarted on the same address.

use std::time::Duration;

use smsguard_edge::engine::Source;
use smsguard_system_tests::{now_ms, samples, DelayProxy, TestCloud};

use crate::online_engine;

#[test]
fn killed_and_restarted_cloud_misses_nothing() {
    let mut cloud = TestCloud::start(|_| {}).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let engine = online_engine(dir.path(), &cloud.url());
    let sender = samples::sender(500);
    let mut decisions = Vec::new();
    for i in 0..30 {
        if i == 10 {
            cloud.kill();
        }
        if i == 20 {
            cloud.restart().unwrap();
        }
        decisions.push(engine.classify(&sender, &samples::ham(50 + i), now_ms()));
    }
    let (up_before, rest) = decisions.split_at(10);
    let (down, up_after) = rest.split_at(10);
    for decision in up_before.iter().chain(up_after) {
        assert_eq!(decision.source, Source::Cloud, "{decision:?}");
    }
    for decision in down {
        assert_eq!(decision.source, Source::Local, "{decision:?}");
        assert!(decision.queued && decision.degraded, "{decision:?}");
    }
    assert_eq!(engine.stats().queue_length, 10);
    let summary = engine.drain_queue().unwrap();
    assert_eq!(
        (summary.rechecked, summary.remaining),
        (10, 0),
        "{summary:?}"
    );
    assert_eq!(engine.stats().failures.fail_open, 0);
}

#[test]
fn a_cloud_killed_during_a_drain_keeps_the_queue_for_the_next_one() {
    let mut cloud = TestCloud::start(|_| {}).unwrap();
    let proxy = DelayProxy::start(cloud.addr()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let engine = online_engine(dir.path(), &proxy.url());
    let sender = samples::sender(501);
    proxy.set_refuse(true);
    for i in 0..5 {
        assert!(
            engine
                .classify(&sender, &samples::ham(90 + i), now_ms())
                .queued
        );
    }
    proxy.set_refuse(false);
    // The drain's request is held in the network while the cloud dies under it.
    proxy.pause();
    let interrupted = std::thread::scope(|scope| {
        let drain = scope.spawn(|| engine.drain_queue());
        std::thread::sleep(Duration::from_millis(300));
        cloud.kill();
        proxy.cut_connections();
        proxy.resume();
        drain.join().expect("drain thread")
    });
    let summary = interrupted.unwrap();
    assert_eq!(
        (summary.rechecked, summary.remaining),
        (0, 5),
        "{summary:?}"
    );

    cloud.restart().unwrap();
    let summary = engine.drain_queue().unwrap();
    assert_eq!(
        (summary.rechecked, summary.remaining),
        (5, 0),
        "{summary:?}"
    );
}

#[test]
fn reports_survive_a_graceful_cloud_restart() {
    let mut cloud = TestCloud::start(|_| {}).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let engine = online_engine(dir.path(), &cloud.url());
    let sender = samples::sender(502);
    let decision = engine.classify(&sender, &samples::campaign(4), now_ms());
    engine.report(decision.message_id, true).unwrap();
    cloud.stop().unwrap();
    cloud.restart().unwrap();
    // A phone that never saw the campaign learns it from the restarted cloud.
    let fresh_dir = tempfile::tempdir().unwrap();
    let fresh = online_engine(fresh_dir.path(), &cloud.url());
    let summary = fresh.sync().unwrap();
    assert!(summary.fingerprints_added >= 1, "{summary:?}");
}
