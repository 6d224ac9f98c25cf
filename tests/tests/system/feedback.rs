//! A user reports spam: the reporting phone catches the next near-duplicate at once, the cloud
//! judges near-duplicates from other phones differently, and a third phone learns the campaign
//! through `SyncCache`.

use smsguard_edge::cloud_link::CloudClient;
use smsguard_edge::engine::{ReportOutcome, Source};
use smsguard_edge::model::Action;
use smsguard_proto::v1;
use smsguard_system_tests::{
    cloud_config, engine_config, now_ms, open_engine, samples, TestCloud, GENEROUS_DEADLINE,
};

use crate::online_engine;

fn severity(action: Action) -> u8 {
    match action {
        Action::Allow => 0,
        Action::Tag => 1,
        Action::Quarantine => 2,
        Action::Block => 3,
    }
}

fn quarantined(action: Action) -> bool {
    matches!(action, Action::Quarantine | Action::Block)
}

/// The cloud's similarity contribution for `body` from a sender nobody reported.
fn similarity_score(cloud: &TestCloud, body: &str) -> f32 {
    let client = CloudClient::new(&cloud_config(&cloud.url(), GENEROUS_DEADLINE)).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let verdict = runtime
        .block_on(client.classify(v1::SmsMessage {
            sender: samples::sender(999),
            body: body.to_owned(),
            received_at_ms: now_ms(),
            ..v1::SmsMessage::default()
        }))
        .unwrap();
    verdict
        .contributions
        .iter()
        .find(|c| c.model == "similarity")
        .map(|c| c.score)
        .expect("the cloud reports a similarity contribution")
}

#[test]
fn a_spam_report_changes_the_verdict_of_the_next_near_duplicate() {
    let cloud = TestCloud::start(|_| {}).unwrap();
    let sender = samples::sender(900);
    assert_eq!(similarity_score(&cloud, &samples::campaign(5)), 0.0);

    let dir = tempfile::tempdir().unwrap();
    let reporter = online_engine(dir.path(), &cloud.url());
    let first = reporter.classify(&sender, &samples::campaign(0), now_ms());
    assert_eq!(first.source, Source::Cloud);
    assert!(
        !quarantined(first.action),
        "precondition: not caught yet: {first:?}"
    );
    assert!(matches!(
        reporter.report(first.message_id, true).unwrap(),
        ReportOutcome::Sent { report_count: 1 }
    ));

    // The reporting phone: its own cache knows the campaign at once.
    let near = reporter.classify(&sender, &samples::campaign(1), now_ms());
    assert_ne!(near.fingerprint, first.fingerprint);
    assert_eq!(near.source, Source::Cache, "{near:?}");
    assert!(quarantined(near.action), "{near:?}");

    // Another phone asking the cloud: the fused verdict moved.
    let other_dir = tempfile::tempdir().unwrap();
    let other = online_engine(other_dir.path(), &cloud.url());
    let elsewhere = other.classify(&sender, &samples::campaign(2), now_ms());
    assert_eq!(elsewhere.source, Source::Cloud, "{elsewhere:?}");
    assert!(
        elsewhere.spam_score >= first.spam_score + 0.1,
        "one report moves the fused score: {first:?} -> {elsewhere:?}"
    );
    assert!(severity(elsewhere.action) >= severity(first.action));
    // Even from an unknown sender, the cloud now sees the near-duplicate.
    assert!(similarity_score(&cloud, &samples::campaign(5)) > 0.5);

    // A third phone syncs, then catches the campaign with no network at all.
    let synced_dir = tempfile::tempdir().unwrap();
    {
        let syncing = online_engine(synced_dir.path(), &cloud.url());
        let summary = syncing.sync().unwrap();
        assert!(summary.fingerprints_added >= 1, "{summary:?}");
        syncing.close().unwrap();
    }
    let offline = open_engine(synced_dir.path(), engine_config(None)).unwrap();
    let caught = offline.classify(&samples::sender(901), &samples::campaign(3), now_ms());
    assert_eq!(caught.source, Source::Cache, "{caught:?}");
    assert!(quarantined(caught.action), "{caught:?}");
}
