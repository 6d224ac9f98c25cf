//! The engine offline and against a scripted cloud (the real server is exercised by the
//! top-level tests/ crate): sender rules, cache, local model, deadline, queue drain, reports,
//! sync, signed model updates, fail open, and a kill -9 in the middle of a burst.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use smsguard_core::{normalize, Label, MinHasher};
use smsguard_edge::cloud_link::{CloudConfig, CloudLinkError};
use smsguard_edge::engine::{
    CloudFuture, CloudLink, Decision, Durability, Engine, EngineConfig, EngineError, EngineEvent,
    MessageState, ModelSource, ModelUpdate, ReportOutcome, Source, CLOUD_REFUSED_COUNTER,
};
use smsguard_edge::model::Action;
use smsguard_edge::store::{Store, StoreKey, StoreOptions};
use smsguard_proto::v1::{
    self, classify_result, ClassifyResult, GetModelResponse, ModelManifest, ReportRequest,
    ReportResponse, SenderRule, SenderRuleKind, SmsMessage, SpamFingerprint, SyncCacheResponse,
    Verdict,
};
use smsguard_signing::{sha256_hex, PackageParts, SigningKey};

use crate::fixtures::{int8_model, vocab_json, OBVIOUS_HAM, OBVIOUS_SPAM};

mod device_bound;

const FRIEND: &str = "+44 7700 900123";
const STRANGER: &str = "+15550100";

fn offline(dir: &Path) -> Engine {
    Engine::open(dir, EngineConfig::default()).unwrap()
}

// ---------------------------------------------------------------- offline

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
/// are delivered and every harmful line is at least tagged, by the model or by the knowledge
/// base. Line 10, a shop's sale with an opt-out, is a promotion: the phone tags only harmful
/// types, the cloud tags promotions (its category policy), so it is not judged here.
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
            10 => {}
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

// ---------------------------------------------------------------- scripted cloud

#[derive(Debug, Clone)]
enum Behaviour {
    /// Answer with this label and action (and cache TTL), after a delay.
    Answer {
        label: v1::Label,
        action: v1::Action,
        ttl: u32,
        delay: Duration,
    },
    Fail(CloudLinkError),
}

#[derive(Debug, Default)]
struct CloudState {
    classify: Option<Behaviour>,
    /// Batch answers: ham for messages whose body contains "lunch", else fraud.
    batch_down: bool,
    /// Per-message errors: "parcel" bodies get UNAVAILABLE, "iPhone" bodies INVALID_ARGUMENT.
    batch_errors: bool,
    batches: usize,
    reports: Vec<ReportRequest>,
    sync_pages: VecDeque<SyncCacheResponse>,
    sync_requests: Vec<u64>,
    model: Option<GetModelResponse>,
}

#[derive(Debug, Clone)]
struct FakeCloud(Arc<Mutex<CloudState>>);

impl FakeCloud {
    fn new(classify: Behaviour) -> FakeCloud {
        FakeCloud(Arc::new(Mutex::new(CloudState {
            classify: Some(classify),
            ..CloudState::default()
        })))
    }

    fn link(&self) -> Arc<dyn CloudLink> {
        Arc::new(self.clone())
    }

    fn state(&self) -> std::sync::MutexGuard<'_, CloudState> {
        self.0.lock().unwrap()
    }
}

fn verdict(label: v1::Label, action: v1::Action, ttl: u32) -> Verdict {
    Verdict {
        label: label as i32,
        action: action as i32,
        spam_score: if label == v1::Label::Ham { 0.05 } else { 0.97 },
        cache_ttl_seconds: ttl,
        source: v1::VerdictSource::Cloud as i32,
        ..Verdict::default()
    }
}

impl CloudLink for FakeCloud {
    fn classify(&self, _msg: SmsMessage) -> CloudFuture<Verdict> {
        let behaviour = self.state().classify.clone();
        Box::pin(async move {
            match behaviour {
                Some(Behaviour::Answer {
                    label,
                    action,
                    ttl,
                    delay,
                }) => {
                    tokio::time::sleep(delay).await;
                    Ok(verdict(label, action, ttl))
                }
                Some(Behaviour::Fail(e)) => Err(e),
                None => Err(CloudLinkError::Unavailable {
                    reason: "unset".into(),
                }),
            }
        })
    }

    fn classify_batch(&self, msgs: Vec<SmsMessage>) -> CloudFuture<Vec<ClassifyResult>> {
        let mut state = self.state();
        state.batches += 1;
        let down = state.batch_down;
        let errors = state.batch_errors;
        Box::pin(async move {
            if down {
                return Err(CloudLinkError::Unavailable {
                    reason: "down".into(),
                });
            }
            Ok(msgs
                .into_iter()
                .map(|m| {
                    let code = match (errors, m.body.contains("parcel"), m.body.contains("iPhone"))
                    {
                        (true, true, _) => Some(tonic::Code::Unavailable),
                        (true, _, true) => Some(tonic::Code::InvalidArgument),
                        _ => None,
                    };
                    if let Some(code) = code {
                        let error = v1::MessageError {
                            code: code as i32,
                            reason: "scripted".into(),
                        };
                        return ClassifyResult {
                            client_message_id: m.client_message_id,
                            outcome: Some(classify_result::Outcome::Error(error)),
                        };
                    }
                    let (label, action) = if m.body.contains("lunch") {
                        (v1::Label::Ham, v1::Action::Allow)
                    } else {
                        (v1::Label::Fraud, v1::Action::Block)
                    };
                    ClassifyResult {
                        client_message_id: m.client_message_id,
                        outcome: Some(classify_result::Outcome::Verdict(verdict(label, action, 0))),
                    }
                })
                .collect())
        })
    }

    fn report(&self, req: ReportRequest) -> CloudFuture<ReportResponse> {
        let mut state = self.state();
        let down = state.batch_down;
        if !down {
            state.reports.push(req);
        }
        let count = state.reports.len() as u32;
        Box::pin(async move {
            if down {
                return Err(CloudLinkError::Unavailable {
                    reason: "down".into(),
                });
            }
            Ok(ReportResponse {
                report_count: count,
                accepted: true,
            })
        })
    }

    fn sync_cache(&self, since_version: u64, _max: u32) -> CloudFuture<SyncCacheResponse> {
        let mut state = self.state();
        state.sync_requests.push(since_version);
        let page = state.sync_pages.pop_front().unwrap_or(SyncCacheResponse {
            version: since_version,
            ..SyncCacheResponse::default()
        });
        Box::pin(async move { Ok(page) })
    }

    fn get_model(&self, _current_version: &str) -> CloudFuture<GetModelResponse> {
        let model = self.state().model.clone();
        Box::pin(async move {
            model.ok_or(CloudLinkError::Unavailable {
                reason: "no model".into(),
            })
        })
    }
}

fn cloud_config(deadline: Duration) -> CloudConfig {
    CloudConfig {
        url: "http://127.0.0.1:9".into(),
        deadline,
        device_id: "test-device".into(),
        ..CloudConfig::default()
    }
}

fn with_cloud(dir: &Path, cloud: &FakeCloud, deadline: Duration) -> Engine {
    let config = EngineConfig {
        cloud: Some(cloud_config(deadline)),
        ..EngineConfig::default()
    };
    Engine::open_with_link(dir, config, Some(cloud.link())).unwrap()
}

fn answer(label: v1::Label, action: v1::Action, ttl: u32, delay_ms: u64) -> Behaviour {
    Behaviour::Answer {
        label,
        action,
        ttl,
        delay: Duration::from_millis(delay_ms),
    }
}

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

fn model_package(key: &SigningKey, version: &str, tamper: bool) -> GetModelResponse {
    let model = int8_model();
    let vocabulary = vocab_json().into_bytes();
    let manifest_json = format!("{{\"version\":\"{version}\"}}");
    let signature = key.sign(PackageParts {
        manifest_json: manifest_json.as_bytes(),
        model: &model,
        vocabulary: &vocabulary,
    });
    let mut package = GetModelResponse {
        up_to_date: false,
        manifest: Some(ModelManifest {
            version: version.into(),
            sha256: sha256_hex(&model),
            size_bytes: model.len() as u64,
            pipeline_version: smsguard_core::PIPELINE_VERSION,
            manifest_json,
        }),
        model,
        vocabulary,
        signature,
        key_id: key.verifying_key().key_id(),
        sealed_model: Vec::new(),
    };
    if tamper {
        let middle = package.model.len() / 2;
        package.model[middle] ^= 0x01;
    }
    package
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

// ---------------------------------------------------------------- crash safety

/// Runs `smsguard crash-burst` with `durability` in `dir`, kills it with SIGKILL after `lines`
/// returned decisions, and returns every `id state` line it printed (each one a `classify`
/// that returned).
/// The store a `smsguard` process left in `dir`, opened with the key file it created there.
fn open_cli_store(dir: &Path) -> Store {
    let key = std::fs::read_to_string(dir.join("store.key")).expect("the CLI's key file");
    let options = StoreOptions {
        key: Some(StoreKey::from_hex(&key).unwrap()),
        ..StoreOptions::new(1 << 20, Durability::Process)
    };
    Store::open_with(dir, options).unwrap()
}

fn burst_then_kill_9(dir: &Path, durability: &str, lines: usize) -> Vec<String> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_smsguard"))
        .args([
            "crash-burst",
            "--count",
            "100000",
            "--durability",
            durability,
        ])
        .arg("--data-dir")
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("smsguard starts");
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    for line in out.by_ref().take(lines) {
        printed.push(line.unwrap());
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    // Lines already in the pipe were returned too.
    printed.extend(out.map_while(Result::ok));
    assert!(printed.len() >= lines, "the child died early");
    printed
}

/// Kills a `smsguard crash-burst` child with SIGKILL in the middle of its burst and checks that
/// every id it printed (i.e. every `classify` that returned) is stored in the printed state, and
/// that nothing else but at most the one in-flight message was stored. With the default
/// durability nothing is fsynced: the decision log in the page cache carries the decisions sled
/// had not written yet. (With `--durability none` this test fails: sled loses up to its last
/// 500 ms of writes.)
#[test]
fn kill_9_mid_burst_loses_no_returned_decision() {
    let dir = tempfile::tempdir().unwrap();
    let printed = burst_then_kill_9(dir.path(), "process", 300);
    let store = open_cli_store(dir.path());
    let mut seen = std::collections::HashSet::new();
    for line in &printed {
        let (id, state) = line.split_once(' ').expect("`id state` lines");
        let id: u64 = id.parse().unwrap();
        assert!(
            id > 0 && seen.insert(id),
            "id {id} returned twice or unstored"
        );
        let record = store
            .message(id)
            .unwrap()
            .unwrap_or_else(|| panic!("id {id} lost"));
        assert_eq!(record.state.as_str(), state);
        assert!(matches!(
            record.state,
            MessageState::Delivered | MessageState::Quarantined
        ));
    }
    let stored = store.messages().unwrap();
    assert!(
        stored.len() <= printed.len() + 1,
        "{} records for {} returned decisions",
        stored.len(),
        printed.len()
    );
    assert!(stored.iter().any(|r| r.state == MessageState::Quarantined));
    assert!(stored.iter().any(|r| r.state == MessageState::Delivered));
    let quarantined = stored
        .iter()
        .filter(|r| r.state == MessageState::Quarantined)
        .count();
    assert_eq!(
        store.quarantined().unwrap().len(),
        quarantined,
        "index matches records"
    );
    // New ids after the crash never collide with stored ones.
    let next = store.next_id().unwrap();
    assert!(stored.iter().all(|r| r.id < next));
}

/// The log segments (`decisions-*.log`) in `dir`, oldest first.
fn log_segments(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut segments: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            name.starts_with("decisions-") && name.ends_with(".log")
        })
        .collect();
    segments.sort();
    segments
}

/// After a kill -9, the decision log alone (copied into an empty directory, with a write torn
/// in half appended) brings back every returned decision; the torn tail is skipped and counted,
/// and a second open replays nothing.
#[test]
fn a_torn_log_tail_is_skipped_and_counted_and_earlier_decisions_replay() {
    let dir = tempfile::tempdir().unwrap();
    let printed = burst_then_kill_9(dir.path(), "process", 40);
    let segments = log_segments(dir.path());
    assert!(!segments.is_empty(), "the killed process left its log");
    let fresh = tempfile::tempdir().unwrap();
    for segment in &segments {
        std::fs::copy(segment, fresh.path().join(segment.file_name().unwrap())).unwrap();
    }
    // The log's records are sealed with the CLI's key.
    std::fs::copy(dir.path().join("store.key"), fresh.path().join("store.key")).unwrap();
    let last = fresh
        .path()
        .join(segments.last().unwrap().file_name().unwrap());
    let bytes = std::fs::read(&last).unwrap();
    let (frames, damaged, _) = smsguard_edge::store::read_log_frames(&bytes);
    assert_eq!(damaged, 0, "the kill fell between writes");
    let whole = smsguard_edge::store::log_frame(frames.last().unwrap());
    let torn = &whole[..whole.len() / 2];
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(&last)
        .unwrap();
    std::io::Write::write_all(&mut log, torn).unwrap();
    drop(log);

    let store = open_cli_store(fresh.path());
    let recovery = store.recovery();
    assert_eq!(
        (recovery.damaged_spans, recovery.damaged_bytes),
        (1, torn.len() as u64)
    );
    assert!(recovery.replayed >= printed.len(), "{recovery:?}");
    assert_eq!(recovery.already_stored, 0);
    for line in &printed {
        let (id, state) = line.split_once(' ').unwrap();
        let record = store
            .message(id.parse().unwrap())
            .unwrap()
            .unwrap_or_else(|| panic!("id {id} lost"));
        assert_eq!(record.state.as_str(), state);
    }
    let counters = store.counters().unwrap();
    assert_eq!(counters["log.damaged_spans"], 1);
    assert_eq!(counters["log.replayed"], recovery.replayed as u64);
    assert_eq!(counters["classified"], recovery.replayed as u64);
    let stored = store.message_count();
    drop(store);

    // Replay emptied the log: a second open finds nothing to replay or skip.
    let store = open_cli_store(fresh.path());
    let again = store.recovery();
    assert_eq!((again.replayed, again.damaged_spans), (0, 0), "{again:?}");
    assert_eq!(store.message_count(), stored);
    assert_eq!(store.counters().unwrap()["log.damaged_spans"], 1);
}
