//! The engine against a scripted cloud: deadline, cache, queue drain, refusals, sync, signed model updates.

use super::*;

#[test]
fn cloud_in_time_wins_and_is_cached_for_its_ttl() {
    let dir = tempfile::tempdir().unwrap();
    // The cloud overrules the local model on an obviously hammy text.
    let cloud = FakeCloud::new(answer(v1::Label::Fraud, v1::Action::Block, 3600, 0));
    let engine = with_cloud(dir.path(), &cloud, Duration::from_secs(5));
    let first = engine.classify(STRANGER, OBVIOUS_HAM[0], 0);
    assert_eq!(
        (first.source, first.action, first.label),
        (Source::Cloud, Action::Block, Label::Fraud)
    );
    assert_eq!(first.state, MessageState::Quarantined);
    assert!(!first.queued && !first.degraded);
    // The next copy is answered from the cache even with the cloud gone.
    cloud.state().classify = Some(Behaviour::Fail(CloudLinkError::Unavailable {
        reason: "x".into(),
    }));
    let second = engine.classify(STRANGER, OBVIOUS_HAM[0], 0);
    assert_eq!(
        (second.source, second.action),
        (Source::Cache, Action::Block)
    );
    // A zero TTL is not cached.
    cloud.state().classify = Some(answer(v1::Label::Ham, v1::Action::Allow, 0, 0));
    let third = engine.classify(STRANGER, OBVIOUS_HAM[1], 0);
    assert_eq!(third.source, Source::Cloud);
    assert_eq!(
        engine.classify(STRANGER, OBVIOUS_HAM[1], 0).source,
        Source::Cloud
    );
}

#[test]
fn slow_cloud_leaves_the_local_verdict_and_the_drain_fixes_it() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = FakeCloud::new(answer(v1::Label::Ham, v1::Action::Allow, 60, 2_000));
    let engine = with_cloud(dir.path(), &cloud, Duration::from_millis(50));
    let spam = engine.classify(STRANGER, OBVIOUS_SPAM[0], 0);
    let lunch = engine.classify(STRANGER, "Are we still on for lunch tomorrow at 12?", 0);
    for d in [&spam, &lunch] {
        assert_eq!(d.source, Source::Local, "{}", d.reason);
        assert!(d.degraded && d.queued, "{}", d.reason);
        assert!(
            d.timings_us.total < 1_500_000,
            "the deadline bounds the wait"
        );
    }
    assert_eq!(spam.state, MessageState::Quarantined);
    assert_eq!(lunch.state, MessageState::Delivered);
    assert_eq!(engine.stats().queue_length, 2);

    // The network is back: the batch answers "fraud" except for the lunch message.
    let summary = engine.drain_queue().unwrap();
    assert_eq!(
        (
            summary.rechecked,
            summary.flagged,
            summary.released,
            summary.remaining
        ),
        (2, 0, 0, 0)
    );
    // The quarantined spam stays (cloud agrees); the delivered lunch is not fraud either.
    assert_eq!(
        engine.message(spam.message_id).unwrap().unwrap().state,
        MessageState::Quarantined
    );
    assert!(engine.drain_events().is_empty());
}

#[test]
fn drain_releases_and_flags_with_events() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = FakeCloud::new(Behaviour::Fail(CloudLinkError::DeadlineExceeded));
    let engine = with_cloud(dir.path(), &cloud, Duration::from_millis(50));
    engine.deny_sender("LUNCHCLUB").unwrap(); // rule verdicts are not re-checked
                                              // Quarantined locally but the cloud says ham ("lunch"): released.
    let held = engine.classify(
        STRANGER,
        "URGENT! You have WON a free lunch voucher worth £500. Call 09061701461 to claim now. T&C apply",
        0,
    );
    // Delivered locally but the cloud says fraud: flagged.
    let delivered = engine.classify(STRANGER, OBVIOUS_HAM[3], 0);
    assert_eq!(held.state, MessageState::Quarantined, "{}", held.reason);
    assert_eq!(delivered.state, MessageState::Delivered);
    assert!(held.queued && delivered.queued);

    cloud.state().batch_down = true;
    let summary = engine.drain_queue().unwrap();
    assert_eq!(
        (summary.rechecked, summary.remaining),
        (0, 2),
        "kept while the cloud is down"
    );

    cloud.state().batch_down = false;
    let summary = engine.drain_queue().unwrap();
    assert_eq!(
        (summary.released, summary.flagged, summary.remaining),
        (1, 1, 0)
    );
    let events = engine.drain_events();
    assert_eq!(
        events,
        vec![
            EngineEvent::Released {
                message_id: held.message_id
            },
            EngineEvent::Flagged {
                message_id: delivered.message_id
            },
        ]
    );
    assert!(
        engine.drain_events().is_empty(),
        "events are handed out once"
    );
    let released = engine.message(held.message_id).unwrap().unwrap();
    assert_eq!(released.state, MessageState::Released);
    assert!(
        released.body.is_some(),
        "a released message's text stays for the app"
    );
    let flagged = engine.message(delivered.message_id).unwrap().unwrap();
    assert_eq!((flagged.state, flagged.body), (MessageState::Flagged, None));
    assert!(engine.quarantine_list().unwrap().is_empty());
}

#[test]
fn per_message_errors_keep_or_drop_queue_entries() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = FakeCloud::new(Behaviour::Fail(CloudLinkError::DeadlineExceeded));
    cloud.state().batch_errors = true;
    let config = EngineConfig {
        cloud: Some(cloud_config(Duration::from_millis(50))),
        recheck_batch: 1, // one entry per exchange: the drain must walk past kept entries
        ..EngineConfig::default()
    };
    let engine = Engine::open_with_link(dir.path(), config, Some(cloud.link())).unwrap();
    let kept = engine.classify(STRANGER, OBVIOUS_SPAM[3], 0); // "parcel": retry later
    let dropped = engine.classify(STRANGER, OBVIOUS_SPAM[2], 0); // "iPhone": refused for good
    let answered = engine.classify(STRANGER, OBVIOUS_HAM[0], 0);
    let summary = engine.drain_queue().unwrap();
    assert_eq!(
        (summary.rechecked, summary.dropped, summary.remaining),
        (1, 1, 1)
    );
    assert_eq!(cloud.state().batches, 3);
    assert!(engine.message(kept.message_id).unwrap().unwrap().queued);
    let dropped = engine.message(dropped.message_id).unwrap().unwrap();
    assert!(!dropped.queued);
    assert_eq!(
        dropped.state,
        MessageState::Quarantined,
        "keeps its local verdict"
    );
    assert!(!engine.message(answered.message_id).unwrap().unwrap().queued);
    // The kept entry is answered once the cloud can.
    cloud.state().batch_errors = false;
    let summary = engine.drain_queue().unwrap();
    assert_eq!((summary.rechecked, summary.remaining), (1, 0));
}

#[test]
fn engine_is_send_and_sync() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Engine>();
    // One engine classifying from several threads at once.
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(offline(dir.path()));
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let engine = Arc::clone(&engine);
            std::thread::spawn(move || {
                (0..10)
                    .map(|i| {
                        engine
                            .classify(STRANGER, &format!("{} {t} {i}", OBVIOUS_HAM[0]), 0)
                            .message_id
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut ids: Vec<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 40, "ids are unique across threads");
    assert_eq!(engine.stats().counters["classified"], 40);
}

#[test]
fn non_retryable_cloud_error_is_not_queued() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = FakeCloud::new(Behaviour::Fail(CloudLinkError::Rejected {
        code: tonic::Code::InvalidArgument,
        reason: "body too long".into(),
    }));
    let engine = with_cloud(dir.path(), &cloud, Duration::from_millis(200));
    let d = engine.classify(STRANGER, OBVIOUS_SPAM[0], 0);
    assert_eq!(d.source, Source::Local);
    assert!(d.degraded && !d.queued);
    assert_eq!(engine.stats().failures.cloud, 1);
}

#[test]
fn a_long_spam_the_cloud_refuses_keeps_its_local_verdict_and_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    // What the cloud answers for a body over its size limit.
    let cloud = FakeCloud::new(Behaviour::Fail(CloudLinkError::Rejected {
        code: tonic::Code::InvalidArgument,
        reason: "body is 2301 bytes, the limit is 2048".into(),
    }));
    let engine = with_cloud(dir.path(), &cloud, Duration::from_millis(200));
    let chat =
        "Hey, how was your weekend? We went hiking with the kids up the hill behind the old \
        mill and had a picnic by the lake. The weather was lovely and the dog chased ducks all \
        afternoon. Mum says hello and asks if you are still coming for dinner on Sunday, she is \
        making her lasagne. Let me know what time suits you. ";
    let d = engine.classify(STRANGER, &format!("{chat}{}", OBVIOUS_SPAM[0]), 0);
    // Never allowed because the cloud would not judge it: the local verdict (read whole) stands.
    assert_eq!(
        (d.source, d.action),
        (Source::Local, Action::Quarantine),
        "{}",
        d.reason
    );
    assert!(d.degraded && !d.queued);
    assert!(d.reason.contains("InvalidArgument"), "{}", d.reason);
    let stats = engine.stats();
    assert_eq!(stats.counters[CLOUD_REFUSED_COUNTER], 1);
    assert_eq!(stats.failures.cloud, 1);
}

#[test]
fn queued_reports_and_rechecks_survive_a_restart_and_drain_later() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = FakeCloud::new(Behaviour::Fail(CloudLinkError::Unavailable {
        reason: "x".into(),
    }));
    cloud.state().batch_down = true;
    let engine = with_cloud(dir.path(), &cloud, Duration::from_millis(50));
    let d = engine.classify(STRANGER, OBVIOUS_HAM[0], 0);
    assert_eq!(
        engine.report(d.message_id, true).unwrap(),
        ReportOutcome::Queued
    );
    engine.close().unwrap();

    cloud.state().batch_down = false;
    let engine = with_cloud(dir.path(), &cloud, Duration::from_millis(50));
    assert_eq!(engine.stats().queue_length, 2);
    let summary = engine.drain_queue().unwrap();
    assert_eq!(
        (summary.rechecked, summary.reports_sent, summary.remaining),
        (1, 1, 0)
    );
    let reports = cloud.state().reports.clone();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].fingerprint, d.fingerprint);
    assert_eq!(reports[0].minhash.len(), 64);
    assert_eq!(reports[0].feedback, v1::Feedback::Spam as i32);
    // Online, a report goes straight out.
    let outcome = engine.report(d.message_id, false).unwrap();
    assert_eq!(outcome, ReportOutcome::Sent { report_count: 2 });
}

#[test]
fn sync_pulls_campaigns_and_rules_for_offline_use() {
    let dir = tempfile::tempdir().unwrap();
    let campaign = "Your parcel is held at our depot. Pay the 2.99 customs fee at http://parcel-fee.example.top within 24 hours";
    let fp = MinHasher::default().fingerprint(&normalize(campaign).text);
    let cloud = FakeCloud::new(Behaviour::Fail(CloudLinkError::Unavailable {
        reason: "x".into(),
    }));
    let hot = |fingerprint: &str, minhash: Vec<u32>, removed: bool| SpamFingerprint {
        fingerprint: fingerprint.into(),
        minhash,
        label: v1::Label::Fraud as i32,
        report_count: 3,
        removed,
    };
    cloud.state().sync_pages.extend([
        SyncCacheResponse {
            version: 5,
            fingerprints: vec![
                hot(&fp.to_hex(), fp.minhash.to_vec(), false),
                hot("bad", vec![1, 2], false),
            ],
            sender_rules: vec![SenderRule {
                pattern: "scam[0-9]+".into(),
                kind: SenderRuleKind::Deny as i32,
                removed: false,
            }],
            has_more: true,
            knowledge: None,
        },
        SyncCacheResponse {
            version: 7,
            fingerprints: vec![hot("0123456789abcdef", vec![7; 64], false)],
            sender_rules: vec![SenderRule {
                pattern: "(".into(),
                kind: SenderRuleKind::Allow as i32,
                removed: false,
            }],
            has_more: false,
            knowledge: None,
        },
    ]);
    let engine = with_cloud(dir.path(), &cloud, Duration::from_millis(50));
    let summary = engine.sync().unwrap();
    assert_eq!((summary.from_version, summary.to_version), (0, 7));
    assert_eq!(
        (
            summary.fingerprints_added,
            summary.rules_added,
            summary.skipped
        ),
        (2, 1, 2)
    );
    assert_eq!(cloud.state().sync_requests, vec![0, 5]);
    engine.close().unwrap();

    // Rules see the canonical sender (lower case), as in the cloud: "SCAM42" is "scam42".
    // Offline now: a variant of the campaign is caught from the synced fingerprint.
    let engine = offline(dir.path());
    assert_eq!(engine.stats().sync_version, 7);
    let variant = campaign.replace("24 hours", "48 hours");
    let d = engine.classify(STRANGER, &variant, 0);
    assert_eq!(
        (d.source, d.label, d.state),
        (Source::Cache, Label::Fraud, MessageState::Quarantined),
        "{}",
        d.reason
    );
    let ruled = engine.classify("SCAM42", OBVIOUS_HAM[0], 0);
    assert_eq!((ruled.source, ruled.action), (Source::Rule, Action::Block));
    assert_eq!(
        engine.classify("xSCAM42", OBVIOUS_HAM[0], 0).source,
        Source::Local
    );
    engine.close().unwrap();

    // A later sync removes the campaign and the rule, starting from the stored version.
    cloud.state().sync_pages.push_back(SyncCacheResponse {
        version: 8,
        fingerprints: vec![hot(&fp.to_hex(), vec![], true)],
        sender_rules: vec![SenderRule {
            pattern: "scam[0-9]+".into(),
            kind: SenderRuleKind::Deny as i32,
            removed: true,
        }],
        has_more: false,
        knowledge: None,
    });
    let engine = with_cloud(dir.path(), &cloud, Duration::from_millis(50));
    let summary = engine.sync().unwrap();
    assert_eq!(
        (
            summary.from_version,
            summary.fingerprints_removed,
            summary.rules_removed
        ),
        (7, 1, 1)
    );
    assert_eq!(
        engine.classify("SCAM42", OBVIOUS_HAM[0], 0).source,
        Source::Local
    );
}

#[test]
fn model_update_installs_only_verified_packages() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate().unwrap();
    let cloud = FakeCloud::new(Behaviour::Fail(CloudLinkError::DeadlineExceeded));
    let config = EngineConfig {
        cloud: Some(cloud_config(Duration::from_millis(50))),
        pinned_model_key: Some(key.verifying_key().to_hex()),
        ..EngineConfig::default()
    };
    let open = || Engine::open_with_link(dir.path(), config.clone(), Some(cloud.link())).unwrap();
    let engine = open();
    let original = engine.stats().model_version.unwrap();
    // Named like the cloud names packages: 16 hex digits of the model's SHA-256.
    assert_eq!(original, sha256_hex(&int8_model())[..16]);
    cloud.state().model = Some(GetModelResponse {
        up_to_date: true,
        ..GetModelResponse::default()
    });
    assert_eq!(
        engine.update_model().unwrap(),
        ModelUpdate::UpToDate {
            version: original.clone()
        }
    );

    // Tampered bytes, then a package signed by another key: both refused, old model kept.
    cloud.state().model = Some(model_package(&key, "v2", true));
    let tampered = engine.update_model();
    assert!(
        matches!(tampered, Err(EngineError::ModelRejected(_))),
        "{tampered:?}"
    );
    let stranger = SigningKey::generate().unwrap();
    cloud.state().model = Some(model_package(&stranger, "v2", false));
    assert!(matches!(
        engine.update_model(),
        Err(EngineError::ModelRejected(_))
    ));
    assert_eq!(
        engine.stats().model_version.as_deref(),
        Some(original.as_str())
    );

    cloud.state().model = Some(model_package(&key, "v2", false));
    let update = engine.update_model().unwrap();
    assert_eq!(
        update,
        ModelUpdate::Updated {
            previous: original.clone(),
            version: "v2".into()
        }
    );
    let d = engine.classify(STRANGER, OBVIOUS_SPAM[2], 0);
    assert_eq!(d.source, Source::Local, "the new model classifies");
    engine.close().unwrap();
    // Persisted: a restarted engine runs the update.
    assert_eq!(open().stats().model_version.as_deref(), Some("v2"));

    // Without a pinned key nothing is installed.
    let unpinned = tempfile::tempdir().unwrap();
    let config = EngineConfig {
        cloud: Some(cloud_config(Duration::from_millis(50))),
        ..EngineConfig::default()
    };
    let engine = Engine::open_with_link(unpinned.path(), config, Some(cloud.link())).unwrap();
    assert!(matches!(
        engine.update_model(),
        Err(EngineError::NoPinnedKey)
    ));
}

/// The device's configured market travels with every question to the cloud (classify and
/// re-check), so the cloud judges at the same market's thresholds as the phone; without one
/// the field is empty and the cloud goes by the message's script.
#[test]
fn the_configured_market_travels_with_every_cloud_request() {
    for (market, expected) in [(Some(smsguard_core::Market::Zh), "zh"), (None, "")] {
        let dir = tempfile::tempdir().unwrap();
        let cloud = FakeCloud::new(answer(v1::Label::Ham, v1::Action::Allow, 60, 500));
        let config = EngineConfig {
            cloud: Some(cloud_config(Duration::from_millis(50))),
            market,
            ..EngineConfig::default()
        };
        let engine = Engine::open_with_link(dir.path(), config, Some(cloud.link())).unwrap();
        // Too slow for the deadline: the message is queued, then re-checked by the drain.
        engine.classify(STRANGER, OBVIOUS_SPAM[0], 0);
        engine.drain_queue().unwrap();
        let markets = cloud.state().markets.clone();
        assert_eq!(markets, [expected, expected], "classify, then the re-check");
        engine.close().unwrap();
    }
}
