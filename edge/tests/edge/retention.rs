//! Retention: old settled records and surplus events are pruned, oldest first; quarantined
//! records and records with pending work are kept; pruning survives reopening and log replay.
//! Ages are driven by explicit timestamps (`decided_at_ms`, `now_ms`), never by sleeping.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use smsguard_core::Label;
use smsguard_edge::cloud_link::{CloudConfig, CloudLinkError};
use smsguard_edge::engine::{
    now_ms, CloudFuture, CloudLink, Engine, EngineConfig, MessageState, ReportOutcome,
    RECORDS_PRUNED_COUNTER,
};
use smsguard_edge::model::Action;
use smsguard_edge::store::{
    Durability, Effects, EngineEvent, MessageRecord, QueueItem, Retention, Source, Store,
    StoreOptions, StoredVerdict, Transitioned, EVENTS_PRUNED_COUNTER,
};
use smsguard_proto::v1::{
    self, classify_result, ClassifyResult, GetModelResponse, ReportRequest, ReportResponse,
    SmsMessage, SyncCacheResponse, Verdict,
};

use crate::fixtures::{OBVIOUS_HAM, OBVIOUS_SPAM};

const CACHE_BYTES: u64 = 1 << 20;
const DAY_MS: i64 = 24 * 3600 * 1000;
/// "Now" of the store-level tests: day 100 after the epoch.
const NOW: i64 = 100 * DAY_MS;
const STRANGER: &str = "+15550100";

fn thirty_days(max_records: usize) -> Retention {
    Retention {
        max_age_ms: 30 * DAY_MS,
        max_records,
        max_events: 1_000,
    }
}

fn record(store: &Store, state: MessageState, decided_at_ms: i64, queued: bool) -> MessageRecord {
    MessageRecord {
        id: store.next_id().unwrap(),
        state,
        sender: STRANGER.into(),
        body: Some("held message".into()),
        received_at_ms: decided_at_ms - 5,
        decided_at_ms,
        verdict: StoredVerdict {
            label: Label::Spam,
            spam_score: 0.9,
            action: Action::Quarantine,
            source: Source::Local,
        },
        fingerprint: "00aa".into(),
        minhash: vec![1; 64],
        queued,
    }
}

/// Stores a decision; returns its id.
fn decide(store: &Store, state: MessageState, decided_at_ms: i64, queued: bool) -> u64 {
    let record = record(store, state, decided_at_ms, queued);
    store.record_decision(&record, &["classified"]).unwrap();
    record.id
}

fn stored_ids(store: &Store) -> Vec<u64> {
    store.messages().unwrap().iter().map(|r| r.id).collect()
}

fn counter(store: &Store, name: &str) -> u64 {
    store.counters().unwrap().get(name).copied().unwrap_or(0)
}

#[test]
fn old_settled_records_go_and_quarantined_ones_of_any_age_stay() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), CACHE_BYTES).unwrap();
    let old = NOW - 31 * DAY_MS;
    let ancient_held = decide(&store, MessageState::Quarantined, 1, false);
    let settled: Vec<u64> = [
        MessageState::Delivered,
        MessageState::Released,
        MessageState::Flagged,
        MessageState::Deleted,
    ]
    .into_iter()
    .map(|state| decide(&store, state, old, false))
    .collect();
    let old_held = decide(&store, MessageState::Quarantined, old, false);
    let young = decide(&store, MessageState::Delivered, NOW - 29 * DAY_MS, false);

    let pruned = store.prune(&thirty_days(1_000), NOW, 512, 10).unwrap();
    assert_eq!((pruned.records, pruned.finished), (4, true), "{pruned:?}");
    assert_eq!(stored_ids(&store), vec![ancient_held, old_held, young]);
    for id in settled {
        assert_eq!(store.message(id).unwrap(), None, "{id}");
    }
    let held: Vec<u64> = store.quarantined().unwrap().iter().map(|r| r.id).collect();
    assert_eq!(held, vec![ancient_held, old_held]);
    assert_eq!(counter(&store, RECORDS_PRUNED_COUNTER), 4);
    assert_eq!(store.message_count_hint(), 3);
    // Nothing is left to prune: a second pass is a no-op and the counter stays.
    assert_eq!(
        store
            .prune(&thirty_days(1_000), NOW, 512, 10)
            .unwrap()
            .records,
        0
    );
    assert_eq!(counter(&store, RECORDS_PRUNED_COUNTER), 4);
    // Records kept for the quarantine outlive any age, until the user acts.
    let far_future = NOW + 10_000 * DAY_MS;
    assert_eq!(
        store
            .prune(&thirty_days(0), far_future, 512, 10)
            .unwrap()
            .records,
        1
    );
    assert_eq!(stored_ids(&store), vec![ancient_held, old_held]);
}

#[test]
fn records_with_pending_work_stay_until_their_queue_entry_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), CACHE_BYTES).unwrap();
    let old = NOW - 60 * DAY_MS;
    let rechecked = decide(&store, MessageState::Delivered, old, true);
    let reported = decide(&store, MessageState::Delivered, old, false);
    let report = QueueItem::Report {
        message_id: reported,
        spam: true,
        reported_at_ms: old,
    };
    let report_key = store
        .enqueue_for_message(reported, &report)
        .unwrap()
        .expect("the record is there");
    let retention = thirty_days(1_000);
    assert_eq!(store.prune(&retention, NOW, 512, 10).unwrap().records, 0);
    assert_eq!(stored_ids(&store), vec![rechecked, reported]);

    // The re-check is answered (record and queue entry change together): the record may go.
    let answered = store
        .transition(rechecked, Some(rechecked), |r| {
            r.queued = false;
            Some(Effects::default())
        })
        .unwrap();
    assert!(matches!(answered, Transitioned::Changed(_)));
    assert_eq!(store.prune(&retention, NOW, 512, 10).unwrap().records, 1);
    assert_eq!(stored_ids(&store), vec![reported]);
    // The report is sent: now the reported record goes too.
    store.dequeue(report_key).unwrap();
    assert_eq!(store.prune(&retention, NOW, 512, 10).unwrap().records, 1);
    assert!(stored_ids(&store).is_empty());
    // A report on a record retention already removed is refused, not queued for nothing.
    assert_eq!(store.enqueue_for_message(reported, &report).unwrap(), None);
    assert_eq!(store.queue_len(), 0);
    assert_eq!(counter(&store, RECORDS_PRUNED_COUNTER), 2);
}

#[test]
fn the_count_cap_keeps_the_newest_in_small_steps() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), CACHE_BYTES).unwrap();
    // Ten young records, oldest first; the second is quarantined, the fourth waits for a re-check.
    let ids: Vec<u64> = (0..10)
        .map(|i| {
            let state = if i == 1 {
                MessageState::Quarantined
            } else {
                MessageState::Delivered
            };
            decide(&store, state, NOW - DAY_MS + i, i == 3)
        })
        .collect();
    // Keep 5: the five oldest that nothing needs go (0, 2, 4, 5, 6), walked three at a time.
    let pruned = store.prune(&thirty_days(5), NOW, 3, usize::MAX).unwrap();
    assert_eq!(pruned.records, 5, "{pruned:?}");
    let expected: Vec<u64> = [1, 3, 7, 8, 9].iter().map(|&i| ids[i]).collect();
    assert_eq!(stored_ids(&store), expected);
    assert_eq!(store.message_count_hint(), 5);
    assert_eq!(store.message_count(), 5);
    // Within the cap and young: nothing more goes.
    assert_eq!(
        store
            .prune(&thirty_days(5), NOW, 3, usize::MAX)
            .unwrap()
            .records,
        0
    );
    assert_eq!(counter(&store, RECORDS_PRUNED_COUNTER), 5);
    assert_eq!(counter(&store, "classified"), 10);
}

#[test]
fn events_beyond_the_cap_go_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), CACHE_BYTES).unwrap();
    for message_id in 1..=7 {
        store
            .push_event(&EngineEvent::Flagged { message_id })
            .unwrap();
    }
    let retention = Retention {
        max_events: 3,
        ..thirty_days(1_000)
    };
    let pruned = store.prune(&retention, NOW, 512, 10).unwrap();
    assert_eq!((pruned.records, pruned.events), (0, 4));
    assert_eq!(counter(&store, EVENTS_PRUNED_COUNTER), 4);
    let kept: Vec<EngineEvent> = (5..=7)
        .map(|message_id| EngineEvent::Flagged { message_id })
        .collect();
    assert_eq!(store.drain_events().unwrap(), kept);
}

/// The `decisions-*.log` segments in `dir`.
fn log_segments(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            name.starts_with("decisions-") && name.ends_with(".log")
        })
        .collect()
}

/// A process killed after pruning can leave the decision log that still holds the pruned
/// records' decisions; replaying it on the next open must not bring them back.
#[test]
fn a_pruned_record_is_not_brought_back_by_log_replay() {
    let dir = tempfile::tempdir().unwrap();
    let saved = tempfile::tempdir().unwrap();
    let options = StoreOptions::new(CACHE_BYTES, Durability::Process);
    let store = Store::open_with(dir.path(), options).unwrap();
    let old = NOW - 40 * DAY_MS;
    let gone = decide(&store, MessageState::Delivered, old, false);
    let held = decide(&store, MessageState::Quarantined, old, false);
    let queued = decide(&store, MessageState::Delivered, old, true);
    assert_eq!(store.message_count(), 3);
    // What a kill -9 now would leave: the log (its decisions are in sled already).
    for segment in log_segments(dir.path()) {
        std::fs::copy(&segment, saved.path().join(segment.file_name().unwrap())).unwrap();
    }
    assert!(!log_segments(saved.path()).is_empty());
    assert_eq!(
        store
            .prune(&thirty_days(1_000), NOW, 512, 10)
            .unwrap()
            .records,
        1
    );
    drop(store);
    for segment in log_segments(saved.path()) {
        std::fs::copy(&segment, dir.path().join(segment.file_name().unwrap())).unwrap();
    }

    let store = Store::open_with(dir.path(), options).unwrap();
    let recovery = store.recovery();
    assert_eq!(
        (recovery.replayed, recovery.already_stored, recovery.pruned),
        (0, 2, 1),
        "{recovery:?}"
    );
    assert_eq!(stored_ids(&store), vec![held, queued]);
    assert_eq!(store.message(gone).unwrap(), None);
    assert_eq!(store.message_count_hint(), 2);
    // The reopened store works as before: the quarantine lists, the queue drains.
    assert_eq!(store.quarantined().unwrap()[0].id, held);
    let head = store.queue_head(10).unwrap();
    assert_eq!(
        head,
        vec![(queued, QueueItem::Recheck { message_id: queued })]
    );
    let drained = store
        .transition(queued, Some(queued), |r| {
            r.queued = false;
            Some(Effects::default())
        })
        .unwrap();
    assert!(matches!(drained, Transitioned::Changed(_)));
    assert_eq!(store.queue_len(), 0);
    assert_eq!(
        store
            .prune(&thirty_days(1_000), NOW, 512, 10)
            .unwrap()
            .records,
        1
    );
    assert_eq!(stored_ids(&store), vec![held]);
    assert_eq!(counter(&store, RECORDS_PRUNED_COUNTER), 2);
    store.flush().unwrap();
    drop(store);
    // A clean reopen replays nothing and keeps the pruned records pruned.
    let store = Store::open_with(dir.path(), options).unwrap();
    assert_eq!(store.recovery().segments, 0);
    assert_eq!(stored_ids(&store), vec![held]);
}

// ---------------------------------------------------------------- through the engine

/// A cloud whose interactive calls time out (so decisions wait for a re-check) and whose batch
/// and report calls answer while `up`.
#[derive(Debug, Clone, Default)]
struct RecheckCloud {
    up: Arc<std::sync::atomic::AtomicBool>,
}

impl RecheckCloud {
    fn set_up(&self, up: bool) {
        self.up.store(up, std::sync::atomic::Ordering::SeqCst);
    }

    fn unavailable<T>(&self) -> Result<T, CloudLinkError> {
        Err(CloudLinkError::Unavailable {
            reason: "down".into(),
        })
    }
}

impl CloudLink for RecheckCloud {
    fn classify(&self, _msg: SmsMessage) -> CloudFuture<Verdict> {
        Box::pin(async { Err(CloudLinkError::DeadlineExceeded) })
    }

    fn classify_batch(&self, msgs: Vec<SmsMessage>) -> CloudFuture<Vec<ClassifyResult>> {
        let answer = if self.up.load(std::sync::atomic::Ordering::SeqCst) {
            // Fraud: quarantined messages stay held, delivered ones are flagged.
            Ok(msgs
                .into_iter()
                .map(|m| ClassifyResult {
                    client_message_id: m.client_message_id,
                    outcome: Some(classify_result::Outcome::Verdict(Verdict {
                        label: v1::Label::Fraud as i32,
                        action: v1::Action::Block as i32,
                        spam_score: 0.97,
                        source: v1::VerdictSource::Cloud as i32,
                        ..Verdict::default()
                    })),
                })
                .collect())
        } else {
            self.unavailable()
        };
        Box::pin(async move { answer })
    }

    fn report(&self, _req: ReportRequest) -> CloudFuture<ReportResponse> {
        let answer = if self.up.load(std::sync::atomic::Ordering::SeqCst) {
            Ok(ReportResponse {
                report_count: 1,
                accepted: true,
            })
        } else {
            self.unavailable()
        };
        Box::pin(async move { answer })
    }

    fn sync_cache(&self, _since: u64, _max: u32, _known: String) -> CloudFuture<SyncCacheResponse> {
        let answer = self.unavailable();
        Box::pin(async move { answer })
    }

    fn get_model(&self, _current: &str) -> CloudFuture<GetModelResponse> {
        let answer = self.unavailable();
        Box::pin(async move { answer })
    }
}

fn with_cloud(dir: &Path, cloud: &RecheckCloud) -> Engine {
    let config = EngineConfig {
        cloud: Some(CloudConfig {
            url: "http://127.0.0.1:9".into(),
            deadline: Duration::from_millis(50),
            device_id: "test-device".into(),
            ..CloudConfig::default()
        }),
        ..EngineConfig::default()
    };
    let link: Arc<dyn CloudLink> = Arc::new(cloud.clone());
    Engine::open_with_link(dir, config, Some(link)).unwrap()
}

#[test]
fn engine_prunes_settled_records_after_the_drain_and_keeps_the_quarantine() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = RecheckCloud::default();
    let engine = with_cloud(dir.path(), &cloud);
    let ham = engine.classify(STRANGER, OBVIOUS_HAM[0], 0);
    let spam = engine.classify(STRANGER, OBVIOUS_SPAM[0], 0);
    let reported = engine.classify(STRANGER, OBVIOUS_HAM[1], 0);
    assert!(
        ham.queued && spam.queued,
        "{} / {}",
        ham.reason,
        spam.reason
    );
    assert_eq!(
        (ham.state, spam.state),
        (MessageState::Delivered, MessageState::Quarantined)
    );
    assert_eq!(
        engine.report(reported.message_id, false).unwrap(),
        ReportOutcome::Queued
    );
    // A month and a day later everything is old, but all of it still waits for the cloud.
    let later = now_ms() + 31 * DAY_MS;
    assert_eq!(engine.prune_as_of(later).unwrap().records, 0);
    assert_eq!(engine.stats().stored_messages, 3);
    engine.close().unwrap();

    // Reopened (the open-time pass prunes nothing young), the queue drains...
    cloud.set_up(true);
    let engine = with_cloud(dir.path(), &cloud);
    let summary = engine.drain_queue().unwrap();
    assert_eq!(
        (summary.rechecked, summary.reports_sent, summary.remaining),
        (3, 1, 0),
        "{summary:?}"
    );
    // ... and then the delivered ones may go; the quarantined spam stays.
    assert_eq!(engine.prune_as_of(later).unwrap().records, 2);
    let held: Vec<u64> = engine
        .quarantine_list()
        .unwrap()
        .iter()
        .map(|m| m.message_id)
        .collect();
    assert_eq!(held, vec![spam.message_id]);
    assert_eq!(engine.message(ham.message_id).unwrap(), None);
    let stats = engine.stats();
    assert_eq!(stats.counters[RECORDS_PRUNED_COUNTER], 2);
    assert_eq!((stats.stored_messages, stats.quarantined), (1, 1));
    // The user can still act on the kept message after all this.
    engine.quarantine_delete(spam.message_id).unwrap();
    assert_eq!(engine.prune_as_of(later).unwrap().records, 1);
    assert_eq!(engine.stats().stored_messages, 0);
}

#[test]
fn background_passes_hold_the_record_cap_while_classifying() {
    let dir = tempfile::tempdir().unwrap();
    let config = EngineConfig {
        max_message_records: 3,
        prune_every_decisions: 4,
        ..EngineConfig::default()
    };
    let engine = Engine::open(dir.path(), config.clone()).unwrap();
    let ids: Vec<u64> = (0..12)
        .map(|i| {
            let d = engine.classify(STRANGER, OBVIOUS_HAM[i % OBVIOUS_HAM.len()], 0);
            assert_eq!(d.state, MessageState::Delivered, "{}", d.reason);
            d.message_id
        })
        .collect();
    // Dropping the engine finishes the pass the last decision asked for.
    drop(engine);
    let store = Store::open(dir.path(), CACHE_BYTES).unwrap();
    assert_eq!(stored_ids(&store), ids[9..].to_vec());
    assert_eq!(counter(&store, RECORDS_PRUNED_COUNTER), 9);
    assert_eq!(counter(&store, "classified"), 12);
    drop(store);
    // Opening with a smaller cap prunes at once.
    let engine = Engine::open(
        dir.path(),
        EngineConfig {
            max_message_records: 1,
            ..config
        },
    )
    .unwrap();
    assert_eq!(engine.stats().stored_messages, 1);
    assert_eq!(engine.message(ids[11]).unwrap().unwrap().id, ids[11]);
}

// ---------------------------------------------------------------- command line

#[test]
fn retention_flags_reach_the_engine_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let smsguard = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_smsguard"))
            .arg("--data-dir")
            .arg(dir.path())
            .args(args)
            .output()
            .expect("smsguard starts");
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    };
    for body in [OBVIOUS_HAM[0], OBVIOUS_SPAM[0], OBVIOUS_HAM[2]] {
        smsguard(&["classify", body]);
    }
    // Keep one record: the two delivered ones go when the engine opens, the held one stays.
    let stats: serde_json::Value =
        serde_json::from_slice(&smsguard(&["--max-records", "1", "stats"])).unwrap();
    assert_eq!(stats["counters"][RECORDS_PRUNED_COUNTER], 2, "{stats}");
    assert_eq!(
        (
            stats["stored_messages"].as_u64(),
            stats["quarantined"].as_u64()
        ),
        (Some(1), Some(1))
    );
    // The age flag parses too (a year keeps everything that is left).
    let stats: serde_json::Value = serde_json::from_slice(&smsguard(&[
        "stats",
        "--retention-days",
        "365",
        "--max-events",
        "10",
    ]))
    .unwrap();
    assert_eq!(stats["stored_messages"].as_u64(), Some(1));
}
