use smsguard_core::{Label, MinHasher};
use smsguard_scoring::similarity::{
    SimilarityError, SimilarityStore, UserReport, MAX_BUCKET_SCAN, ROWS,
};
use smsguard_scoring::{Scorer, ScoringError};

use crate::msg;

const SPAM: &str = "Congratulations! Your number won a 5000 pound prize in our weekly draw, call now to claim it before Friday";
const SPAM_VARIANT: &str = "Congratulations! Your number won a 7000 pound prize in our weekly draw, call now to claim it before Sunday";
const HAM: &str =
    "Hi Anna, the meeting with the design team moved to Thursday afternoon, see you in room four";

fn fp(text: &str) -> smsguard_core::Fingerprint {
    MinHasher::new().fingerprint(&smsguard_core::normalize(text).text)
}

#[test]
fn near_duplicate_of_known_spam_scores_high_and_unrelated_text_zero() {
    let dir = tempfile::tempdir().unwrap();
    let store = SimilarityStore::open(dir.path()).unwrap();
    let stored = store.add_spam(&fp(SPAM), Label::Fraud).unwrap();
    assert_eq!((stored.seed_count, stored.user_spam_reports), (1, 0));

    let variant = store.score(&msg(SPAM_VARIANT).context()).unwrap();
    assert!(
        variant.score > 0.4,
        "near duplicate scored {}",
        variant.score
    );
    assert_eq!(variant.label, Some(Label::Fraud));
    let found = store.lookup(&fp(SPAM_VARIANT)).unwrap().unwrap();
    assert_eq!(found.fingerprint_id, fp(SPAM).id());
    assert!(
        found.jaccard >= 0.5 && found.jaccard < 1.0,
        "jaccard {}",
        found.jaccard
    );

    let ham = store.score(&msg(HAM).context()).unwrap();
    assert_eq!(ham.score, 0.0);
    assert_eq!(ham.label, None);
    assert!(!ham.reason.contains("Anna"));
}

#[test]
fn more_spam_reports_raise_the_score() {
    let dir = tempfile::tempdir().unwrap();
    let store = SimilarityStore::open(dir.path()).unwrap();
    store.add_spam(&fp(SPAM), Label::Spam).unwrap();
    let once = store.score(&msg(SPAM).context()).unwrap().score;
    for reporter in ["key-a", "key-b", "key-c"] {
        let report = UserReport {
            reporter,
            device: "device-x",
            at_ms: 1_765_000_000_000,
            spam: true,
            class: None,
        };
        store.record_report(&fp(SPAM), &report).unwrap();
    }
    let thrice = store.score(&msg(SPAM).context()).unwrap().score;
    assert!(thrice > once, "{thrice} <= {once}");
    let entry = store.entry(fp(SPAM).id()).unwrap().unwrap();
    assert_eq!((entry.seed_count, entry.user_spam_reports), (1, 3));
}

#[test]
fn not_spam_report_whitelists_fingerprint_and_near_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let store = trusting_one_reporter(dir.path());
    store.add_spam(&fp(SPAM), Label::Spam).unwrap();
    store.add_spam(&fp(SPAM), Label::Spam).unwrap();
    assert!(store.score(&msg(SPAM_VARIANT).context()).unwrap().score > 0.4);

    store.report(&fp(SPAM), false).unwrap();
    for text in [SPAM, SPAM_VARIANT] {
        let score = store.score(&msg(text).context()).unwrap();
        assert!(
            score.score < 0.05,
            "whitelisted text scored {}",
            score.score
        );
        assert_eq!(score.label, Some(Label::Ham));
    }
    // Another spam entry close to the whitelisted one loses against the whitelist.
    store.add_spam(&fp(SPAM_VARIANT), Label::Fraud).unwrap();
    assert!(store.score(&msg(SPAM_VARIANT).context()).unwrap().score < 0.05);
}

#[test]
fn entries_and_reports_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = trusting_one_reporter(dir.path());
        store.add_spam(&fp(SPAM), Label::Fraud).unwrap();
        store.report(&fp(HAM), false).unwrap();
        store.report(&fp(SPAM), true).unwrap();
    }
    let store = trusting_one_reporter(dir.path());
    assert_eq!(store.len(), 2);
    let spam = store.entry(fp(SPAM).id()).unwrap().unwrap();
    assert_eq!(
        (
            spam.label,
            spam.seed_count,
            spam.user_spam_reports,
            spam.not_spam_reports
        ),
        (Label::Fraud, 1, 1, 0)
    );
    assert_eq!(spam.minhash, fp(SPAM).minhash);
    let found = store.lookup(&fp(SPAM_VARIANT)).unwrap().unwrap();
    assert_eq!(found.fingerprint_id, fp(SPAM).id());
    let ham = store.lookup(&fp(HAM)).unwrap().unwrap();
    assert!(ham.whitelisted);
}

#[test]
fn seeding_from_corpus_spam_skips_short_texts() {
    let dir = tempfile::tempdir().unwrap();
    let store = SimilarityStore::open(dir.path()).unwrap();
    let added = store.seed_from_corpus_spam([SPAM, "ok", "", HAM]).unwrap();
    assert_eq!(added, 2);
    assert_eq!(store.len(), 2);
    assert!(store.lookup(&fp(SPAM_VARIANT)).unwrap().is_some());
}

#[test]
fn add_spam_refuses_ham_label() {
    let dir = tempfile::tempdir().unwrap();
    let store = SimilarityStore::open(dir.path()).unwrap();
    assert!(matches!(
        store.add_spam(&fp(SPAM), Label::Ham),
        Err(SimilarityError::NotSpamLabel(_))
    ));
    assert!(store.is_empty());
}

#[test]
fn unopenable_store_gives_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"plain file").unwrap();
    let err = SimilarityStore::open(&file).unwrap_err();
    assert!(matches!(err, SimilarityError::Open { .. }), "{err:?}");
    assert!(err.to_string().contains("not-a-dir"), "{err}");
}

#[test]
fn corrupt_record_gives_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SimilarityStore::open(dir.path()).unwrap();
        store.add_spam(&fp(SPAM), Label::Spam).unwrap();
        store.flush().unwrap();
    }
    {
        let config = || sled::Config::new().path(dir.path());
        let db = smsguard_sled::open_waiting_for_lock(config).unwrap();
        db.open_tree("entries")
            .unwrap()
            .insert(7u64.to_be_bytes(), &b"short"[..])
            .unwrap();
        db.flush().unwrap();
    }
    let err = SimilarityStore::open(dir.path()).unwrap_err();
    assert!(matches!(err, SimilarityError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("0000000000000007"), "{err}");
    let as_scoring: ScoringError = err.into();
    assert!(as_scoring.to_string().contains("corrupt"));
}

#[test]
fn store_of_an_older_fingerprint_version_is_refused_not_silently_unmatched() {
    let dir = tempfile::tempdir().unwrap();
    {
        // A store as written before FINGERPRINT_VERSION 2: a one-byte layout marker.
        let db = sled::open(dir.path()).unwrap();
        db.open_tree("meta")
            .unwrap()
            .insert("format", &[1u8][..])
            .unwrap();
        db.flush().unwrap();
    }
    let err = SimilarityStore::open(dir.path()).unwrap_err();
    assert!(matches!(err, SimilarityError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("fingerprint version"), "{err}");
}

#[test]
fn store_of_the_previous_record_layout_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        // Layout 1 (one spam count for seeds and user reports) with today's fingerprints.
        let db = sled::open(dir.path()).unwrap();
        let marker = [1u8, smsguard_core::fingerprint::FINGERPRINT_VERSION as u8];
        db.open_tree("meta")
            .unwrap()
            .insert("format", &marker[..])
            .unwrap();
        db.flush().unwrap();
    }
    let err = SimilarityStore::open(dir.path()).unwrap_err();
    assert!(matches!(err, SimilarityError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("another format"), "{err}");
}

/// A store whose report quorum is one reporter, for tests of what a quorum does rather than
/// of when it is reached.
fn trusting_one_reporter(dir: &std::path::Path) -> SimilarityStore {
    let config = smsguard_scoring::SimilarityConfig {
        report_quorum: 1,
        ..Default::default()
    };
    SimilarityStore::open_with(dir, config).unwrap()
}

/// A fingerprint with pseudo-random slots drawn from `seed`.
pub(crate) fn random_fingerprint(seed: u64) -> smsguard_core::Fingerprint {
    let mut minhash = [0u32; smsguard_core::fingerprint::NUM_HASHES];
    for (i, slot) in minhash.iter_mut().enumerate() {
        *slot = smsguard_core::fingerprint::splitmix64(seed.wrapping_mul(1000) + i as u64) as u32;
    }
    smsguard_core::Fingerprint { minhash }
}

/// `base` with the slots of band 0 copied into `other` (a "common shingles" collision).
fn sharing_band_zero(base: &smsguard_core::Fingerprint, seed: u64) -> smsguard_core::Fingerprint {
    let mut crowd = random_fingerprint(seed);
    crowd.minhash[..ROWS].copy_from_slice(&base.minhash[..ROWS]);
    crowd
}

#[test]
fn oversized_bucket_is_capped_but_near_duplicate_and_whitelist_are_still_found() {
    let dir = tempfile::tempdir().unwrap();
    let store = trusting_one_reporter(dir.path());
    let target = random_fingerprint(1);
    let whitelisted = sharing_band_zero(&target, 2);
    store.add_spam(&target, Label::Fraud).unwrap();
    store.add_spam(&whitelisted, Label::Spam).unwrap();
    store.report(&whitelisted, false).unwrap();
    // Newer unrelated entries crowd band 0 of both, pushing them past the scan cap.
    for seed in 0..(MAX_BUCKET_SCAN as u64 * 3) {
        store
            .add_spam(&sharing_band_zero(&target, 100 + seed), Label::Spam)
            .unwrap();
    }

    // A near-duplicate of `target` (J = 0.875): one slot changed in every odd band, so it
    // shares the crowded band 0 and the uncrowded even bands.
    let mut query = target.clone();
    for slot in query.minhash.iter_mut().skip(ROWS).step_by(2 * ROWS) {
        *slot ^= 0x5555;
    }
    let (found, stats) = store.lookup_with_stats(&query).unwrap();
    assert!(stats.skipped_by_cap > 0, "{stats:?}");
    assert!(stats.candidates <= MAX_BUCKET_SCAN + 2, "{stats:?}");
    let found = found.unwrap();
    assert_eq!(found.fingerprint_id, target.id());
    assert!(!found.whitelisted);

    // The whitelisted entry is deep in the crowded bucket too, and still wins for its own text.
    let found = store.lookup(&whitelisted).unwrap().unwrap();
    assert!(found.whitelisted);
    assert_eq!(found.fingerprint_id, whitelisted.id());
}

/// A shared store hands the scorer the entries of the message's buckets instead of an index:
/// given the same entries, the score is the embedded store's, case by case (seeded spam,
/// user reports at the quorum, a whitelist, nothing).
#[test]
fn scoring_fetched_candidates_gives_the_embedded_stores_score() {
    let dir = tempfile::tempdir().unwrap();
    let store = trusting_one_reporter(dir.path());
    let config = store.config().clone();
    let check = |store: &SimilarityStore, text: &str| {
        let candidates: Vec<_> = [SPAM, SPAM_VARIANT, HAM]
            .iter()
            .filter_map(|t| store.entry(fp(t).id()).unwrap())
            .collect();
        let fetched =
            smsguard_scoring::similarity::score_candidates(&config, &fp(text), &candidates);
        let embedded = store.score(&msg(text).context()).unwrap();
        assert_eq!(fetched, embedded, "{text}");
    };
    check(&store, SPAM_VARIANT);
    store.add_spam(&fp(SPAM), Label::Fraud).unwrap();
    check(&store, SPAM_VARIANT);
    check(&store, HAM);
    store.report(&fp(SPAM), true).unwrap();
    check(&store, SPAM_VARIANT);
    store.report(&fp(SPAM_VARIANT), false).unwrap();
    check(&store, SPAM_VARIANT);
    check(&store, SPAM);
}
