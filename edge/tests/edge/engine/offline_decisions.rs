//! The engine alone: sender lists, the local model's decisions, the README's samples, reports and the quarantine offline.

use super::*;

#[test]
fn default_config_is_offline_embedded_and_serde_round_trips() {
    let config = EngineConfig::default();
    assert!(config.cloud.is_none());
    assert_eq!(config.durability, Durability::Process);
    assert_eq!(config.model, ModelSource::Embedded);
    let parsed: EngineConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(parsed, config);
    let with_cloud: EngineConfig =
        serde_json::from_str(r#"{"cloud":{"url":"http://127.0.0.1:1","deadline_ms":50}}"#).unwrap();
    assert_eq!(
        with_cloud.cloud.unwrap().deadline,
        Duration::from_millis(50)
    );
    // The former boolean still reads: true asked for an fsync per message.
    let former: EngineConfig = serde_json::from_str(r#"{"durable_writes":true}"#).unwrap();
    assert_eq!(former.durability, Durability::Power);
    let named: EngineConfig = serde_json::from_str(r#"{"durability":"none"}"#).unwrap();
    assert_eq!(named.durability, Durability::None);
}

#[test]
fn offline_decisions_golden_table() {
    let dir = tempfile::tempdir().unwrap();
    let engine = offline(dir.path());
    engine.allow_sender("07700 900123").unwrap(); // the same number as FRIEND
    engine.deny_sender("PRIZES").unwrap();
    // (sender, body, source, action, state)
    let table = [
        (
            FRIEND,
            OBVIOUS_SPAM[0],
            Source::Rule,
            Action::Allow,
            MessageState::Delivered,
        ),
        (
            "prizes",
            OBVIOUS_HAM[0],
            Source::Rule,
            Action::Block,
            MessageState::Quarantined,
        ),
        (
            STRANGER,
            OBVIOUS_SPAM[0],
            Source::Local,
            Action::Quarantine,
            MessageState::Quarantined,
        ),
        (
            STRANGER,
            OBVIOUS_HAM[0],
            Source::Local,
            Action::Allow,
            MessageState::Delivered,
        ),
        (
            STRANGER,
            "   ",
            Source::Rule,
            Action::Allow,
            MessageState::Delivered,
        ),
    ];
    let mut ids = Vec::new();
    for (sender, body, source, action, state) in table {
        let d = engine.classify(sender, body, 1_700_000_000_000);
        let case = format!("{sender} / {} chars", body.len());
        assert_eq!(
            (d.source, d.action, d.state),
            (source, action, state),
            "{case}: {}",
            d.reason
        );
        assert_eq!(d.label == Label::Ham, d.action == Action::Allow, "{case}");
        assert!(!d.degraded && !d.queued, "{case}");
        assert!(d.message_id > 0, "{case}");
        assert!(!d.reason.contains(body.trim()) || body.trim().is_empty());
        assert!(d.timings_us.total >= d.timings_us.normalize);
        ids.push((d.message_id, state));
    }
    // Every decision is recorded with its state; nothing is queued without a cloud.
    let stats = engine.stats();
    assert_eq!(stats.counters["classified"], 5);
    assert_eq!(stats.quarantined, 2);
    assert_eq!(stats.queue_length, 0);
    engine.close().unwrap();
    let store = Store::open(dir.path(), 1 << 20).unwrap();
    for (id, state) in ids {
        assert_eq!(store.message(id).unwrap().unwrap().state, state);
    }
}

#[test]
fn decision_serialises_with_lowercase_source() {
    let dir = tempfile::tempdir().unwrap();
    let engine = offline(dir.path());
    let d = engine.classify(STRANGER, OBVIOUS_SPAM[1], 0);
    let json = serde_json::to_value(&d).unwrap();
    assert_eq!(json["source"], "local");
    assert!(json["timings_us"]["total"].is_u64());
    let back: Decision = serde_json::from_value(json).unwrap();
    assert_eq!(back, d);
}

#[test]
fn quarantine_list_restore_delete() {
    let dir = tempfile::tempdir().unwrap();
    let engine = offline(dir.path());
    let held: Vec<u64> = [OBVIOUS_SPAM[0], OBVIOUS_SPAM[2]]
        .iter()
        .map(|body| engine.classify(STRANGER, body, 5).message_id)
        .collect();
    let delivered = engine.classify(STRANGER, OBVIOUS_HAM[1], 5).message_id;
    let listed = engine.quarantine_list().unwrap();
    assert_eq!(
        listed.iter().map(|m| m.message_id).collect::<Vec<_>>(),
        held
    );
    assert_eq!(listed[0].body, OBVIOUS_SPAM[0]);
    assert_eq!(listed[0].sender, STRANGER);

    let restored = engine.quarantine_restore(held[0]).unwrap();
    assert_eq!(restored.body, OBVIOUS_SPAM[0]);
    assert_eq!(restored.message_id, held[0]);
    engine.quarantine_delete(held[1]).unwrap();
    assert!(engine.quarantine_list().unwrap().is_empty());
    assert!(matches!(
        engine.quarantine_restore(held[0]),
        Err(EngineError::NotQuarantined {
            state: MessageState::Released,
            ..
        })
    ));
    assert!(matches!(
        engine.quarantine_delete(delivered),
        Err(EngineError::NotQuarantined {
            state: MessageState::Delivered,
            ..
        })
    ));
    assert!(matches!(
        engine.quarantine_delete(123_456_789),
        Err(EngineError::NotFound { .. })
    ));
    let deleted = engine.message(held[1]).unwrap().unwrap();
    assert_eq!((deleted.state, deleted.body), (MessageState::Deleted, None));
    // A delivered message's text is not kept once nothing needs it.
    assert_eq!(engine.message(delivered).unwrap().unwrap().body, None);
}

/// The README's main command classifies `datasets/fixtures/samples.txt` offline: its two chats
/// are delivered and every other line is at least tagged, by the model or by the knowledge
/// base; line 10, a shop's sale with an opt-out, is filed as a promotion (`ad`, tagged).
#[test]
fn the_readme_samples_offline() {
    let samples = std::fs::read_to_string(
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../datasets/fixtures/samples.txt"),
    )
    .unwrap();
    let lines: Vec<&str> = samples.lines().collect();
    assert_eq!(lines.len(), 10, "the README describes ten sample lines");
    let dir = tempfile::tempdir().unwrap();
    let engine = offline(dir.path());
    for (number, text) in lines.iter().enumerate().map(|(i, t)| (i + 1, *t)) {
        let d = engine.classify(STRANGER, text, 1_700_000_000_000);
        match number {
            1 | 6 => assert_eq!(d.action, Action::Allow, "line {number}: {}", d.reason),
            10 => assert_eq!(
                (d.label, d.action),
                (Label::Ad, Action::Tag),
                "{}",
                d.reason
            ),
            _ => assert!(d.action >= Action::Tag, "line {number}: {}", d.reason),
        }
    }
}

#[test]
fn offline_report_updates_the_cache_at_once_and_waits_in_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    let engine = offline(dir.path());
    let ham = OBVIOUS_HAM[2];
    let first = engine.classify(STRANGER, ham, 0);
    assert_eq!(first.action, Action::Allow);
    assert_eq!(
        engine.report(first.message_id, true).unwrap(),
        ReportOutcome::Queued
    );
    let again = engine.classify(STRANGER, ham, 0);
    assert_eq!(
        (again.source, again.state),
        (Source::Cache, MessageState::Quarantined)
    );
    assert!(again.label.is_spam());
    // A light variant of the reported text is caught as a copy of it.
    let variant = engine.classify(STRANGER, &ham.replace("Talk", "talk!!"), 0);
    assert_eq!(variant.source, Source::Cache, "{}", variant.reason);
    // Not spam after all: the override flips, and the fingerprint is no longer hot.
    assert_eq!(
        engine.report(again.message_id, false).unwrap(),
        ReportOutcome::Queued
    );
    let third = engine.classify(STRANGER, ham, 0);
    assert_eq!((third.source, third.action), (Source::Cache, Action::Allow));
    assert_eq!(engine.stats().queue_length, 2);
    assert!(matches!(
        engine.report(987_654_321, true),
        Err(EngineError::NotFound { .. })
    ));
}

#[test]
fn a_configured_runtime_library_that_is_missing_fails_open_and_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let library = dir.path().join("lib").join("libonnxruntime.so");
    let config = EngineConfig {
        onnxruntime_library: Some(library.clone()),
        ..EngineConfig::default()
    };
    let engine = Engine::open(&dir.path().join("store"), config).unwrap();
    let reason = engine.model_error().expect("no runtime, no model");
    assert!(reason.contains(&library.display().to_string()), "{reason}");
    let d = engine.classify(STRANGER, OBVIOUS_SPAM[0], 0);
    assert_eq!(
        (d.action, d.state),
        (Action::Allow, MessageState::Delivered)
    );
    assert!(d.degraded && d.message_id > 0, "{d:?}");
    assert_eq!(engine.stats().failures.model, 1);
}

#[test]
fn fail_open_when_model_store_and_cloud_all_fail() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_dir = dir.path().join("store");
    std::fs::write(&not_a_dir, b"corrupt").unwrap();
    let config = EngineConfig {
        model: ModelSource::Files {
            model: dir.path().join("missing.onnx"),
            vocab: dir.path().join("missing.json"),
        },
        cloud: Some(cloud_config(Duration::from_millis(50))),
        ..EngineConfig::default()
    };
    let cloud = FakeCloud::new(Behaviour::Fail(CloudLinkError::Unavailable {
        reason: "down".into(),
    }));
    let engine = Engine::open_with_link(&not_a_dir, config, Some(cloud.link())).unwrap();
    assert!(engine.model_error().is_some() && engine.store_error().is_some());
    for body in [OBVIOUS_SPAM[0], OBVIOUS_HAM[0]] {
        let d = engine.classify(STRANGER, body, 0);
        assert_eq!(
            (d.action, d.state, d.label),
            (Action::Allow, MessageState::Delivered, Label::Ham)
        );
        assert!(d.degraded, "{}", d.reason);
        assert_eq!(d.message_id, 0);
        assert!(d.reason.contains("fail open"), "{}", d.reason);
    }
    let failures = engine.stats().failures;
    assert_eq!(failures.fail_open, 2);
    assert!(failures.model >= 1 && failures.store >= 1);
    assert!(matches!(
        engine.quarantine_list(),
        Err(EngineError::StoreUnavailable(_))
    ));
}

#[test]
fn corrupt_store_alone_still_classifies_with_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_dir = dir.path().join("store");
    std::fs::write(&not_a_dir, b"corrupt").unwrap();
    let engine = offline(&not_a_dir);
    let d = engine.classify(STRANGER, OBVIOUS_SPAM[0], 0);
    // Judged by the model, but a quarantine nothing records would hide the SMS: delivered tagged.
    assert_eq!((d.source, d.action), (Source::Local, Action::Tag));
    assert!(d.label.is_spam() && d.degraded && d.message_id == 0);
}
