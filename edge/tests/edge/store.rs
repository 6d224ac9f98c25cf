//! The sled store on its own: cache TTL and eviction, records with the quarantine index,
//! the queue, events, sender lists and the stored model, across reopening.

use smsguard_core::Label;
use smsguard_edge::model::Action;
use smsguard_edge::store::{
    Durability, Effects, EngineEvent, MessageRecord, MessageState, QueueItem, Source, Store,
    StoreOptions, StoredModel, StoredVerdict, Transitioned,
};

const CACHE_BYTES: u64 = 1 << 20;

fn verdict(label: Label, action: Action) -> StoredVerdict {
    StoredVerdict {
        label,
        spam_score: if label.is_spam() { 0.9 } else { 0.1 },
        action,
        source: Source::Cloud,
    }
}

fn record(store: &Store, state: MessageState, queued: bool) -> MessageRecord {
    MessageRecord {
        id: store.next_id().unwrap(),
        state,
        sender: "+15550100".into(),
        body: Some("held message".into()),
        received_at_ms: 10,
        decided_at_ms: 11,
        verdict: verdict(Label::Fraud, Action::Quarantine),
        fingerprint: "00aa".into(),
        minhash: vec![1; 64],
        queued,
    }
}

#[test]
fn cache_expires_and_evicts_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), CACHE_BYTES).unwrap();
    let spam = verdict(Label::Spam, Action::Quarantine);
    // (key, expires_at_ms) inserted in order into a cache of capacity 3.
    for (key, expires) in [("a", 1_000), ("b", 5_000), ("c", 5_000)] {
        assert_eq!(store.cache_put(key, spam, expires, 3).unwrap(), 0);
    }
    assert_eq!(store.cache_len(), 3);
    // Re-inserting "a" refreshes its place in the eviction order without growing the cache.
    assert_eq!(store.cache_put("a", spam, 9_000, 3).unwrap(), 0);
    assert_eq!(store.cache_len(), 3);
    // A fourth key evicts the oldest insertion, now "b".
    assert_eq!(store.cache_put("d", spam, 9_000, 3).unwrap(), 1);
    let golden = [
        // (key, now_ms, live?)
        ("a", 2_000, true),
        ("b", 2_000, false),
        ("c", 2_000, true),
        ("d", 2_000, true),
        ("c", 5_000, false), // expiry is exclusive: expires_at_ms == now is gone
        ("a", 8_999, true),
    ];
    for (key, now, live) in golden {
        let got = store.cache_get(key, now).unwrap();
        assert_eq!(got.is_some(), live, "{key} at {now}");
        if let Some(entry) = got {
            assert_eq!(entry.verdict, spam);
        }
    }
    // The expired "c" was dropped when met.
    assert_eq!(store.cache_len(), 2);
    assert!(store.cache_remove("a").unwrap());
    assert!(!store.cache_remove("a").unwrap());
    drop(store);
    let reopened = Store::open(dir.path(), CACHE_BYTES).unwrap();
    assert_eq!(reopened.cache_len(), 1);
    assert!(reopened.cache_get("d", 2_000).unwrap().is_some());
}

#[test]
fn records_keep_the_quarantine_index_and_queue_in_step() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), CACHE_BYTES).unwrap();
    let held = record(&store, MessageState::Quarantined, true);
    let delivered = record(&store, MessageState::Delivered, false);
    assert!(held.id > 0 && delivered.id > held.id);
    store
        .record_decision(&held, &["classified", "state.quarantined"])
        .unwrap();
    store
        .record_decision(&delivered, &["classified", "state.delivered"])
        .unwrap();
    assert_eq!(store.quarantined().unwrap(), vec![held.clone()]);
    let queue = store.queue_head(10).unwrap();
    assert_eq!(
        queue,
        vec![(
            held.id,
            QueueItem::Recheck {
                message_id: held.id
            }
        )]
    );
    assert_eq!((store.queue_len(), store.queue_len_hint()), (1, 1));

    // Releasing the held message removes it from the quarantine and the queue and records an
    // event, in one step.
    let released = store
        .transition(held.id, Some(held.id), |r| {
            r.state = MessageState::Released;
            r.queued = false;
            Some(Effects {
                counters: vec!["state.released"],
                event: Some(EngineEvent::Released { message_id: r.id }),
            })
        })
        .unwrap();
    assert!(matches!(released, Transitioned::Changed(ref r) if r.state == MessageState::Released));
    assert!(store.quarantined().unwrap().is_empty());
    assert_eq!((store.queue_len(), store.queue_len_hint()), (0, 0));
    // A declined change leaves the record alone; an unknown id is reported.
    let declined = store.transition(delivered.id, None, |_| None).unwrap();
    assert_eq!(declined, Transitioned::Unchanged(delivered.clone()));
    assert_eq!(
        store.transition(999_999_999, None, |_| None).unwrap(),
        Transitioned::Missing
    );

    drop(store);
    let store = Store::open(dir.path(), CACHE_BYTES).unwrap();
    let counters = store.counters().unwrap();
    assert_eq!(counters["classified"], 2);
    assert_eq!(counters["state.released"], 1);
    assert_eq!(
        store.message(held.id).unwrap().unwrap().state,
        MessageState::Released
    );
    assert_eq!(
        store.drain_events().unwrap(),
        vec![EngineEvent::Released {
            message_id: held.id
        }]
    );
    assert!(store.drain_events().unwrap().is_empty());
    // Ids stay unique after reopening.
    assert!(store.next_id().unwrap() > delivered.id);
}

#[test]
fn queue_is_fifo_and_sender_lists_exclude_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), CACHE_BYTES).unwrap();
    let first = store
        .enqueue(&QueueItem::Report {
            message_id: 5,
            spam: true,
            reported_at_ms: 1,
        })
        .unwrap();
    let second = store
        .enqueue(&QueueItem::Recheck { message_id: 6 })
        .unwrap();
    let head = store.queue_head(1).unwrap();
    assert_eq!(head.len(), 1);
    assert_eq!(head[0].0, first);
    store.dequeue(first).unwrap();
    assert_eq!(store.queue_head(5).unwrap()[0].0, second);

    store.allow_sender("bankuk").unwrap();
    assert_eq!(store.sender_list("bankuk").unwrap(), Some(true));
    store.deny_sender("bankuk").unwrap();
    assert_eq!(store.sender_list("bankuk").unwrap(), Some(false));
    store.remove_sender("bankuk").unwrap();
    assert_eq!(store.sender_list("bankuk").unwrap(), None);
}

#[test]
fn stored_model_round_trips_and_is_replaced_whole() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), CACHE_BYTES).unwrap();
    assert!(store.load_model().unwrap().is_none());
    let model = StoredModel {
        version: "v2".into(),
        sha256: "ab".into(),
        sealed_model: vec![0, 1, 2, 255],
        vocabulary: "{}".into(),
        manifest_json: "{\"version\":\"v2\"}".into(),
    };
    store.save_model(&model).unwrap();
    let newer = StoredModel {
        version: "v3".into(),
        sealed_model: vec![9; 10],
        ..model.clone()
    };
    store.save_model(&newer).unwrap();
    drop(store);
    let store = Store::open(dir.path(), CACHE_BYTES).unwrap();
    assert_eq!(store.load_model().unwrap(), Some(newer));
}

#[test]
fn a_file_in_place_of_the_directory_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"garbage").unwrap();
    assert!(Store::open(&file, CACHE_BYTES).is_err());
}

/// Bytes of the decision log segments in `dir`.
fn log_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap())
        .filter(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .starts_with("decisions-")
        })
        .map(|entry| match entry.metadata() {
            Ok(metadata) => metadata.len(),
            // The writer deleted this segment between listing and stat: it holds no bytes now.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => panic!("cannot stat a log segment: {e}"),
        })
        .sum()
}

/// Log bytes once they drop below `bound`, or after a few seconds. Readers only wait for the
/// writer to apply decisions; the checkpoint after the last batch (sled flush, segment deletion)
/// runs on the writer thread afterwards, so a loaded machine may not have finished it yet.
fn log_bytes_settling_below(dir: &std::path::Path, bound: u64) -> u64 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let bytes = log_bytes(dir);
        if bytes < bound || std::time::Instant::now() >= deadline {
            return bytes;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[test]
fn the_decision_log_is_checkpointed_as_it_grows_and_emptied_by_flush() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions {
        log_checkpoint_bytes: 4096,
        ..StoreOptions::new(CACHE_BYTES, Durability::Process)
    };
    let store = Store::open_with(dir.path(), options).unwrap();
    let mut ids = Vec::new();
    for i in 0..200 {
        let state = if i % 2 == 0 {
            MessageState::Quarantined
        } else {
            MessageState::Delivered
        };
        let record = record(&store, state, i % 5 == 0);
        store
            .record_decision(&record, &["classified", "test.decision"])
            .unwrap();
        ids.push(record.id);
    }
    // Reads wait for the writer: every decision is visible at once.
    assert_eq!(store.message_count(), 200);
    assert_eq!(store.quarantined().unwrap().len(), 100);
    assert_eq!(store.queue_len(), 40);
    // 200 records are far more than 4 KiB: applied segments were deleted on the way.
    let written = 200 * 300;
    let remaining = log_bytes_settling_below(dir.path(), written / 2);
    assert!(remaining < written / 2, "{remaining}");
    store.flush().unwrap();
    assert_eq!(log_bytes(dir.path()), 0);
    drop(store);

    let store = Store::open(dir.path(), CACHE_BYTES).unwrap();
    assert_eq!(store.recovery().replayed, 0);
    assert_eq!(store.counters().unwrap()["test.decision"], 200);
    for id in ids {
        assert!(store.message(id).unwrap().is_some(), "{id}");
    }
}

#[test]
fn decisions_from_many_threads_all_land_once() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions {
        log_checkpoint_bytes: 2048,
        ..StoreOptions::new(CACHE_BYTES, Durability::Process)
    };
    let store = Store::open_with(dir.path(), options).unwrap();
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..50 {
                    let record = record(&store, MessageState::Quarantined, false);
                    store.record_decision(&record, &["classified"]).unwrap();
                }
            });
        }
        // Checkpoints from another thread meanwhile never drop a decision.
        scope.spawn(|| {
            for _ in 0..5 {
                store.flush().unwrap();
            }
        });
    });
    assert_eq!(store.counters().unwrap()["classified"], 200);
    assert_eq!(store.quarantined().unwrap().len(), 200);
    drop(store);
    let store = Store::open(dir.path(), CACHE_BYTES).unwrap();
    assert_eq!(store.message_count(), 200);
}

#[test]
fn without_a_log_decisions_go_straight_to_sled() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Store::open_with(dir.path(), StoreOptions::new(CACHE_BYTES, Durability::None)).unwrap();
    let held = record(&store, MessageState::Quarantined, true);
    store.record_decision(&held, &["classified"]).unwrap();
    assert_eq!(store.quarantined().unwrap(), vec![held]);
    assert_eq!(log_bytes(dir.path()), 0);
    assert_eq!(store.durability(), Durability::None);
}

#[test]
fn a_closed_store_leaves_no_decision_log_behind() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), CACHE_BYTES).unwrap();
    let held = record(&store, MessageState::Quarantined, false);
    store.record_decision(&held, &["classified"]).unwrap();
    drop(store);
    let logs = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy().starts_with("decisions-")
        })
        .count();
    assert_eq!(logs, 0);
    let store = Store::open(dir.path(), CACHE_BYTES).unwrap();
    assert_eq!(store.recovery().segments, 0);
    assert_eq!(store.quarantined().unwrap(), vec![held]);
}
