use smsguard_scoring::{PreparedMessage, Scorer, SenderConfig, SenderReputation};

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;

fn score_at(rep: &SenderReputation, sender: &str, device: &str, at_ms: i64) -> f32 {
    let msg = PreparedMessage::new(sender, "hello there", at_ms, device);
    rep.score(&msg.context()).unwrap().score
}

#[test]
fn burst_from_new_sender_raises_score() {
    let rep = SenderReputation::default();
    let first = score_at(&rep, "+15550001", "d0", 0);
    let mut last = first;
    for i in 1..40 {
        last = score_at(&rep, "+15550001", &format!("d{i}"), i * 1_000);
    }
    assert!(first < 0.1, "first message scored {first}");
    assert!(last > 0.7, "burst scored {last}");
    let snap = rep.snapshot("+15550001", 39_000).unwrap();
    assert_eq!(snap.last_minute, 40);
    assert_eq!(snap.devices_last_hour, 32);
}

#[test]
fn windows_slide_with_passed_in_time() {
    let rep = SenderReputation::default();
    for i in 0..10 {
        score_at(&rep, "106900", "d", i * 1_000);
    }
    let now = rep.snapshot("106900", 10_000).unwrap();
    assert_eq!((now.last_minute, now.last_hour), (10, 10));
    let later = rep.snapshot("106900", 5 * MIN).unwrap();
    assert_eq!((later.last_minute, later.last_hour), (0, 10));
    let much_later = rep.snapshot("106900", 2 * HOUR).unwrap();
    assert_eq!((much_later.last_minute, much_later.last_hour), (0, 0));
}

#[test]
fn established_ham_sender_is_damped_and_spam_verdicts_raise() {
    let rep = SenderReputation::default();
    score_at(&rep, "bank", "d", 0);
    score_at(&rep, "fresh", "d", 0);
    for _ in 0..20 {
        rep.record_verdict("bank", false).unwrap();
    }
    let start = 2 * 24 * HOUR;
    let (mut bank, mut fresh) = (0.0, 0.0);
    for i in 0..15 {
        bank = score_at(&rep, "bank", &format!("d{i}"), start + i * 1_000);
        fresh = score_at(&rep, "fresh2", &format!("d{i}"), start + i * 1_000);
    }
    assert!(bank < fresh / 2.0, "known ham sender {bank} vs new {fresh}");

    let quiet = score_at(&rep, "fresh", "d", start);
    for reporter in ["key-1", "key-2", "key-3", "key-4", "key-5"] {
        rep.record_verdict("fresh", true).unwrap();
        rep.record_report("fresh", reporter, true).unwrap();
    }
    let reported = score_at(&rep, "fresh", "d", start + 1);
    assert!(reported > quiet + 0.3, "{reported} vs {quiet}");
}

#[test]
fn tracked_senders_stay_bounded_and_oldest_is_evicted() {
    let rep = SenderReputation::new(SenderConfig {
        max_senders: 50,
        ..SenderConfig::default()
    });
    score_at(&rep, "first", "d", 0);
    for i in 0..500 {
        score_at(&rep, &format!("+1555{i:04}"), "d", i);
        if i % 10 == 0 {
            score_at(&rep, "kept", "d", i);
        }
        assert!(rep.tracked_senders() <= 50);
    }
    assert_eq!(rep.tracked_senders(), 50);
    assert!(
        rep.snapshot("first", 500).is_none(),
        "least recently used sender survived"
    );
    assert_eq!(rep.snapshot("kept", 500).unwrap().last_minute, 50);
}

#[test]
fn sender_is_hashed_with_salt_and_not_in_reason() {
    let rep = SenderReputation::default();
    let other = SenderReputation::new(SenderConfig {
        salt: b"other".to_vec(),
        ..SenderConfig::default()
    });
    assert_eq!(rep.sender_key("+86 138-0000"), rep.sender_key("+861380000"));
    assert_ne!(rep.sender_key("+861380000"), other.sender_key("+861380000"));
    let msg = PreparedMessage::new("+8613812345678", "hi", 0, "d");
    let reason = rep.score(&msg.context()).unwrap().reason;
    assert!(!reason.contains("13812345678"), "{reason}");
}

#[test]
fn one_reporter_repeating_itself_moves_no_sender_and_a_quorum_does() {
    // Before: 150 reports from one device took a bank's number from 0.00 to 0.99.
    let rep = SenderReputation::default();
    let start = 2 * 24 * HOUR;
    let quiet = score_at(&rep, "95588", "d", start);
    for _ in 0..150 {
        rep.record_report("95588", "key-attacker", true).unwrap();
    }
    let after_one_key = score_at(&rep, "95588", "d", start + MIN);
    assert!(
        (after_one_key - quiet).abs() < 1e-6,
        "{quiet} -> {after_one_key}"
    );
    let snap = rep.snapshot("95588", start + MIN).unwrap();
    assert_eq!(snap.spam_reports, 1, "one reporter, one vote");
    for reporter in ["key-2", "key-3"] {
        rep.record_report("95588", reporter, true).unwrap();
    }
    let after_quorum = score_at(&rep, "95588", "d", start + 2 * MIN);
    assert!(after_quorum > quiet + 0.3, "{quiet} -> {after_quorum}");
    // A reporter changing its mind moves its vote, and the quorum is lost again.
    rep.record_report("95588", "key-3", false).unwrap();
    let changed = score_at(&rep, "95588", "d", start + 3 * MIN);
    assert!((changed - quiet).abs() < 0.05, "{quiet} -> {changed}");
}
