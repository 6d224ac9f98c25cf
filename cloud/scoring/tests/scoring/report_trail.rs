//! The audit trail of user reports and the reputation of reporters against the consensus.

use smsguard_core::Label;
use smsguard_scoring::similarity::{id_hash, Reputation, SimilarityStore, UserReport};

use crate::similarity::random_fingerprint;

fn report<'a>(reporter: &'a str, device: &'a str, at_ms: i64, spam: bool) -> UserReport<'a> {
    UserReport {
        reporter,
        device,
        at_ms,
        spam,
        class: spam.then_some(Label::Fraud),
    }
}

#[test]
fn every_report_is_audited_with_hashes_and_never_the_ids() {
    let dir = tempfile::tempdir().unwrap();
    let fp = random_fingerprint(61);
    {
        let store = SimilarityStore::open(dir.path()).unwrap();
        store
            .record_report(&fp, &report("key-Qz7", "device-Wq9", 1_000, true))
            .unwrap();
        store
            .record_report(&fp, &report("key-Qz7", "device-Wq9", 2_000, true))
            .unwrap();
        store
            .record_report(&fp, &report("key-Jx4", "device-Pv2", 3_000, false))
            .unwrap();
    }
    // The trail survives a reopen and keeps the repeated vote too.
    let store = SimilarityStore::open(dir.path()).unwrap();
    let trail = store.audit_trail().unwrap();
    let seen: Vec<_> = trail
        .iter()
        .map(|r| {
            (
                r.reporter_hash,
                r.device_hash,
                r.fingerprint_id,
                r.at_ms,
                r.spam,
                r.class,
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (
                id_hash("key-Qz7"),
                id_hash("device-Wq9"),
                fp.id(),
                1_000,
                true,
                Some(Label::Fraud)
            ),
            (
                id_hash("key-Qz7"),
                id_hash("device-Wq9"),
                fp.id(),
                2_000,
                true,
                Some(Label::Fraud)
            ),
            (
                id_hash("key-Jx4"),
                id_hash("device-Pv2"),
                fp.id(),
                3_000,
                false,
                None
            ),
        ]
    );
    assert!(trail.iter().all(|r| r.counted));
    drop(store);
    for file in walk(dir.path()) {
        let bytes = std::fs::read(&file).unwrap();
        for secret in ["key-Qz7", "device-Wq9", "key-Jx4", "device-Pv2"] {
            let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
            assert!(!found, "{} holds {secret}", file.display());
        }
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn a_reporter_that_keeps_voting_against_the_consensus_stops_counting() {
    let dir = tempfile::tempdir().unwrap();
    let store = SimilarityStore::open(dir.path()).unwrap();
    // Three campaigns: three honest keys report spam, the contrarian says "not spam" first.
    for seed in 0..3 {
        let campaign = random_fingerprint(70 + seed);
        store
            .record_report(&campaign, &report("contrarian", "d", 1, false))
            .unwrap();
        for key in ["honest-1", "honest-2", "honest-3"] {
            store
                .record_report(&campaign, &report(key, "d", 2, true))
                .unwrap();
        }
    }
    assert_eq!(
        store.reputation("contrarian").unwrap(),
        Reputation {
            agreed: 0,
            disagreed: 3
        }
    );
    assert!(store.reputation("contrarian").unwrap().distrusted());
    assert_eq!(store.reputation("honest-1").unwrap().agreed, 3);
    // Its spam vote on a new message is recorded but does not count towards the quorum: two
    // trusted keys and the contrarian are not three.
    let next = random_fingerprint(80);
    for key in ["contrarian", "honest-1", "honest-2"] {
        store
            .record_report(&next, &report(key, "d", 3, true))
            .unwrap();
    }
    let entry = store.entry(next.id()).unwrap().unwrap();
    assert_eq!(entry.user_spam_reports, 2);
    assert_eq!(
        store.consensus(&entry),
        smsguard_scoring::similarity::Consensus::None
    );
    let contrarian_on_next = store
        .audit_trail()
        .unwrap()
        .into_iter()
        .find(|r| r.fingerprint_id == next.id() && r.reporter_hash == id_hash("contrarian"))
        .unwrap();
    assert!(!contrarian_on_next.counted, "audited as not counted");
    // A trusted third key completes the quorum.
    store
        .record_report(&next, &report("honest-3", "d", 4, true))
        .unwrap();
    let entry = store.entry(next.id()).unwrap().unwrap();
    assert_eq!(
        store.consensus(&entry),
        smsguard_scoring::similarity::Consensus::Spam
    );
}
