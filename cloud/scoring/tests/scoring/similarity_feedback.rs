//! How user reports act on the similarity score: golden tables over synthetic fingerprints whose
//! Jaccard estimate to the reported one is exact (`64 - changed` equal slots of 64).

use smsguard_core::{Fingerprint, Label};
use smsguard_scoring::similarity::{SimilarityConfig, SimilarityStore, UserReport};
use smsguard_scoring::{ForceAuthority, ForcedAction, ModelScore, PreparedMessage, Scorer};

use crate::similarity::random_fingerprint;

/// `base` with its first `changed` slots altered: Jaccard estimate `(64 - changed) / 64`, and
/// the bands past the changed slots still equal, so LSH finds it.
fn near(base: &Fingerprint, changed: usize) -> Fingerprint {
    let mut variant = base.clone();
    for slot in variant.minhash.iter_mut().take(changed) {
        *slot ^= 0x00a5_5a00;
    }
    variant
}

/// Jaccard 0.875: a near-duplicate for user reports (at or above 0.7).
const CLOSE: usize = 8;
/// Jaccard 39/64 = 0.609: a match, but too far for user reports to act.
const LOOSE: usize = 25;

fn vote(store: &SimilarityStore, fp: &Fingerprint, reporter: &str, spam: bool) {
    let report = UserReport {
        reporter,
        device: "device-x",
        at_ms: 1_765_000_000_000,
        spam,
        class: None,
    };
    store.record_report(fp, &report).unwrap();
}

/// Scores `fp` through the [`Scorer`] interface (the message text is irrelevant: the context
/// carries the fingerprint).
fn score_of(store: &SimilarityStore, fp: &Fingerprint) -> ModelScore {
    let mut prepared = PreparedMessage::new("+8613800000000", "irrelevant", 0, "device-z");
    prepared.fingerprint = fp.clone();
    store.score(&prepared.context()).unwrap()
}

struct Case {
    name: &'static str,
    seeds: u32,
    /// Votes in order: (reporter, spam?).
    votes: &'static [(&'static str, bool)],
    changed: usize,
    score: f32,
    forced: Option<ForcedAction>,
    label: Option<Label>,
}

/// With the default quorum of 3 reporters.
const CASES: &[Case] = &[
    Case {
        name: "seeded once: the fitted score, 0.7 * (0.5 + 0.5 * 0.75)",
        seeds: 1,
        votes: &[],
        changed: CLOSE,
        score: 0.6125,
        forced: None,
        label: Some(Label::Spam),
    },
    Case {
        name: "seeded five times, exact copy: seeds never force an action",
        seeds: 5,
        votes: &[],
        changed: 0,
        score: 0.94,
        forced: None,
        label: Some(Label::Spam),
    },
    Case {
        name: "one user spam report, below the quorum, changes nothing",
        seeds: 0,
        votes: &[("a", true)],
        changed: CLOSE,
        score: 0.0,
        forced: None,
        label: None,
    },
    Case {
        name: "two reporters below the quorum add nothing to a seeded entry",
        seeds: 1,
        votes: &[("a", true), ("b", true)],
        changed: CLOSE,
        score: 0.6125,
        forced: None,
        label: Some(Label::Spam),
    },
    Case {
        name: "one reporter reporting three times is one report",
        seeds: 0,
        votes: &[("a", true), ("a", true), ("a", true)],
        changed: CLOSE,
        score: 0.0,
        forced: None,
        label: None,
    },
    Case {
        name: "a quorum of three reporters quarantines a near-duplicate",
        seeds: 1,
        votes: &[("a", true), ("b", true), ("c", true)],
        changed: CLOSE,
        score: 1.0 - 0.1 / 3.0,
        forced: Some(ForcedAction::Quarantine),
        label: Some(Label::Spam),
    },
    Case {
        name:
            "a quorum, match too loose for reports: the evidence score, 0.9 * (0.5 + 0.5 * 0.21875)",
        seeds: 0,
        votes: &[("a", true), ("b", true), ("c", true)],
        changed: LOOSE,
        score: 0.9 * (0.5 + 0.5 * 0.218_75),
        forced: None,
        label: Some(Label::Spam),
    },
    Case {
        name: "not-spam reports beat spam reports of the same count",
        seeds: 1,
        votes: &[
            ("a", true),
            ("b", true),
            ("c", true),
            ("d", false),
            ("e", false),
            ("f", false),
        ],
        changed: CLOSE,
        score: 0.0,
        forced: None,
        label: Some(Label::Ham),
    },
    Case {
        name: "two not-spam reports, below the quorum, do not whitelist",
        seeds: 1,
        votes: &[("d", false), ("e", false)],
        changed: CLOSE,
        score: 0.6125,
        forced: None,
        label: Some(Label::Spam),
    },
    Case {
        name: "four spam reports outweigh three not-spam reports",
        seeds: 0,
        votes: &[
            ("a", true),
            ("b", true),
            ("c", true),
            ("g", true),
            ("d", false),
            ("e", false),
            ("f", false),
        ],
        changed: CLOSE,
        score: 1.0 - 0.1 / 4.0,
        forced: Some(ForcedAction::Quarantine),
        label: Some(Label::Spam),
    },
    Case {
        name: "a reporter changing its mind moves its vote (and loses the quorum)",
        seeds: 0,
        votes: &[("a", true), ("b", true), ("c", true), ("c", false)],
        changed: CLOSE,
        score: 0.0,
        forced: None,
        label: None,
    },
];

#[test]
fn user_reports_act_on_near_duplicates_as_the_table_says() {
    let base = random_fingerprint(41);
    for case in CASES {
        let dir = tempfile::tempdir().unwrap();
        let store = SimilarityStore::open(dir.path()).unwrap();
        for _ in 0..case.seeds {
            store.add_spam(&base, Label::Spam).unwrap();
        }
        for &(reporter, spam) in case.votes {
            vote(&store, &base, reporter, spam);
        }
        let got = score_of(&store, &near(&base, case.changed));
        assert!(
            (got.score - case.score).abs() < 1e-5,
            "{}: score {} (expected {}): {}",
            case.name,
            got.score,
            case.score,
            got.reason
        );
        assert_eq!(
            got.forced_action, case.forced,
            "{}: {}",
            case.name, got.reason
        );
        assert_eq!(got.label, case.label, "{}: {}", case.name, got.reason);
        if got.forced_action.is_some() {
            assert_eq!(got.forced_by, ForceAuthority::UserReports, "{}", case.name);
        }
    }
}

#[test]
fn quarantine_reason_names_the_report_count() {
    let dir = tempfile::tempdir().unwrap();
    let store = SimilarityStore::open(dir.path()).unwrap();
    let base = random_fingerprint(42);
    for reporter in ["key-a", "key-b", "key-c"] {
        vote(&store, &base, reporter, true);
    }
    let got = score_of(&store, &near(&base, CLOSE));
    assert!(
        got.reason.contains("reported as spam by 3 user(s)") && got.reason.contains("quarantined"),
        "{}",
        got.reason
    );
    assert!(!got.reason.contains("key-"), "{}", got.reason);
}

#[test]
fn counts_are_kept_apart_and_persist() {
    let dir = tempfile::tempdir().unwrap();
    let base = random_fingerprint(43);
    {
        let store = SimilarityStore::open(dir.path()).unwrap();
        store.add_spam(&base, Label::Fraud).unwrap();
        vote(&store, &base, "device-a", true);
        vote(&store, &base, "device-b", false);
    }
    let store = SimilarityStore::open(dir.path()).unwrap();
    // The votes persist too: device-a voting again adds nothing, device-b switching moves its vote.
    vote(&store, &base, "device-a", true);
    let entry = store.entry(base.id()).unwrap().unwrap();
    assert_eq!(
        (
            entry.label,
            entry.seed_count,
            entry.user_spam_reports,
            entry.not_spam_reports
        ),
        (Label::Fraud, 1, 1, 1)
    );
    let entry = {
        vote(&store, &base, "device-b", true);
        store.entry(base.id()).unwrap().unwrap()
    };
    assert_eq!((entry.user_spam_reports, entry.not_spam_reports), (2, 0));
    assert_eq!(entry.spam_evidence(), 3);
}

#[test]
fn a_spam_report_with_a_class_sets_the_label() {
    let dir = tempfile::tempdir().unwrap();
    let store = SimilarityStore::open(dir.path()).unwrap();
    let base = random_fingerprint(44);
    vote(&store, &base, "key-b", true);
    vote(&store, &base, "key-c", true);
    let report = UserReport {
        reporter: "device-a",
        device: "device-x",
        at_ms: 1_765_000_000_000,
        spam: true,
        class: Some(Label::Fraud),
    };
    let entry = store.record_report(&base, &report).unwrap();
    assert_eq!(
        (entry.label, entry.seed_count, entry.user_spam_reports),
        (Label::Fraud, 0, 3)
    );
    assert_eq!(
        score_of(&store, &near(&base, CLOSE)).label,
        Some(Label::Fraud)
    );
}

#[test]
fn a_whitelisted_near_duplicate_beats_reports_of_the_same_count_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = SimilarityStore::open(dir.path()).unwrap();
    let campaign = random_fingerprint(45);
    let disputed = near(&campaign, 4);
    for reporter in ["a", "b", "c"] {
        vote(&store, &campaign, reporter, true);
    }
    vote(&store, &disputed, "d", false);
    vote(&store, &disputed, "e", false);
    let two_against_three = score_of(&store, &near(&campaign, CLOSE));
    assert_eq!(
        two_against_three.forced_action,
        Some(ForcedAction::Quarantine),
        "{}",
        two_against_three.reason
    );
    vote(&store, &disputed, "f", false);
    let three_against_three = score_of(&store, &near(&campaign, CLOSE));
    assert_eq!(three_against_three.forced_action, None);
    assert_eq!(three_against_three.label, Some(Label::Ham));
    assert!(
        store
            .lookup(&near(&campaign, CLOSE))
            .unwrap()
            .unwrap()
            .whitelisted
    );
}

#[test]
fn quarantine_threshold_and_report_jaccard_are_configurable() {
    let dir = tempfile::tempdir().unwrap();
    let config = SimilarityConfig {
        report_quorum: 4,
        report_min_jaccard: 0.9,
        ..SimilarityConfig::default()
    };
    let store = SimilarityStore::open_with(dir.path(), config).unwrap();
    let base = random_fingerprint(46);
    for reporter in ["a", "b", "c"] {
        vote(&store, &base, reporter, true);
    }
    let close = score_of(&store, &near(&base, 2));
    assert_eq!(
        close.score, 0.0,
        "below this store's quorum of 4: {}",
        close.reason
    );
    assert_eq!(close.forced_action, None);
    vote(&store, &base, "d", true);
    let close = score_of(&store, &near(&base, 2));
    assert_eq!(close.forced_action, Some(ForcedAction::Quarantine));
    // Jaccard 0.875 is below this store's 0.9: the evidence score, no forced action.
    let looser = score_of(&store, &near(&base, CLOSE));
    assert_eq!(looser.forced_action, None);
    assert!(looser.score < 0.9, "{}", looser.score);
}

#[test]
fn user_reported_entries_are_not_lost_in_a_crowded_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let store = SimilarityStore::open(dir.path()).unwrap();
    let base = random_fingerprint(47);
    for reporter in ["a", "b", "c"] {
        vote(&store, &base, reporter, true);
    }
    // Newer seeded entries sharing every band but the last with `base` push it past the
    // per-bucket scan cap in those bands.
    let cap = smsguard_scoring::similarity::MAX_BUCKET_SCAN as u64;
    for seed in 0..cap * 2 {
        let mut crowd = random_fingerprint(1000 + seed);
        crowd.minhash[..60].copy_from_slice(&base.minhash[..60]);
        store.add_spam(&crowd, Label::Spam).unwrap();
    }
    let mut query = base.clone();
    for slot in query.minhash.iter_mut().skip(60) {
        *slot ^= 1;
    }
    let (found, stats) = store.lookup_with_stats(&query).unwrap();
    assert!(stats.skipped_by_cap > 0, "{stats:?}");
    let found = found.unwrap();
    assert_eq!(found.fingerprint_id, base.id());
    assert_eq!(found.user_spam_reports, 3);
}
