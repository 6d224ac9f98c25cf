//! The private engine's similarity lookup against the real server on loopback: the cloud's
//! memory holds a fed spam, the engine (asking with band-key prefixes only) matches its
//! near-duplicate locally and raises the verdict one step, and the same message against a cloud
//! with an empty memory is not raised. A message delivered while the cloud was unreachable is
//! re-checked at `drain` through both private calls and gets the same verdict as online.

use std::time::Duration;

use smsguard_edge::engine::{raise_by_similarity, Engine, Privacy, Source};
use smsguard_edge::store::StoredVerdict;
use smsguard_edge::Action;
use smsguard_private::similarity::LocalMatch;
use smsguard_system_tests::{
    now_ms, open_engine, samples, DelayProxy, TestCloud, GENEROUS_DEADLINE,
};

use crate::online_config;

const SPAM: &str = "Your parcel is held at customs, pay the 2.99 release fee within 24 hours at parcel-release.example/track or it returns to sender";
const NEAR_DUPLICATE: &str = "Your parcel is held at customs, pay the 3.49 release fee within 24 hours at parcel-release.example/track or it returns to sender";

/// Unrelated filler spam: ten pseudo-random hex words each, so the memory has the size at which
/// prefix buckets reach k.
fn filler(i: u64) -> String {
    let mut state = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..10)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            format!("{:06x}", state & 0xff_ffff)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn private_engine(dir: &std::path::Path, url: &str, deadline: Duration) -> Engine {
    let mut config = online_config(url, deadline);
    config.privacy = Privacy::Private;
    open_engine(dir, config).unwrap()
}

/// A cloud whose memory holds 3,000 unrelated spam and [`SPAM`] (fed as fraud).
fn seeded_cloud(files: &std::path::Path) -> TestCloud {
    let feed = files.join("feed.tsv");
    let mut lines: String = (0..3000)
        .map(|i| format!("spam\t{}\n", filler(i)))
        .collect();
    lines.push_str(&format!("fraud\t{SPAM}\n"));
    std::fs::write(&feed, lines).unwrap();
    TestCloud::start(|config| {
        config.spam_feed_path = Some(feed);
        config.metrics_listen = Some(([127, 0, 0, 1], 0).into());
    })
    .unwrap()
}

#[test]
fn a_near_duplicate_of_cloud_spam_is_matched_through_prefixes_and_raised_one_step() {
    let files = tempfile::tempdir().unwrap();
    let seeded = seeded_cloud(files.path());
    let empty = TestCloud::start(|_| {}).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let engine = private_engine(dir.path(), &seeded.url(), GENEROUS_DEADLINE);
    // PrivateParams, fetched when private mode starts, suggests the prefix length that fits a
    // 3,001-entry memory (7 bits, not the default 16: at 16 no bucket holds k), so the first
    // lookup already finds the fed spam.
    let decision = engine.classify(&samples::sender(902), NEAR_DUPLICATE, now_ms());
    assert!(
        decision
            .reason
            .contains("(7-bit prefixes): known spam shares"),
        "{}",
        decision.reason
    );
    assert_eq!(decision.source, Source::Private);

    let plain_dir = tempfile::tempdir().unwrap();
    let plain = private_engine(plain_dir.path(), &empty.url(), GENEROUS_DEADLINE);
    let unraised = plain.classify(&samples::sender(903), NEAR_DUPLICATE, now_ms());
    assert!(unraised.reason.contains("no match"), "{}", unraised.reason);
    let expected = raise_by_similarity(
        StoredVerdict {
            label: unraised.label,
            spam_score: unraised.spam_score,
            action: unraised.action,
            source: unraised.source,
        },
        LocalMatch::Spam {
            shared_bands: 2,
            evidence: 1,
        },
    );
    assert_eq!(
        (decision.label, decision.action),
        (expected.label, expected.action)
    );
    assert!(
        decision.action > unraised.action || unraised.action >= Action::Quarantine,
        "{decision:?} vs {unraised:?}"
    );
    assert_eq!(seeded.requests_answered("Classify").unwrap(), 0);
    assert_eq!(seeded.requests_answered("PrivateSimilarity").unwrap(), 1);
    assert_eq!(seeded.requests_answered("PrivateParams").unwrap(), 1);
}

#[test]
fn a_message_queued_while_the_cloud_was_unreachable_is_rechecked_with_the_similarity_lookup() {
    let files = tempfile::tempdir().unwrap();
    let seeded = seeded_cloud(files.path());
    let proxy = DelayProxy::start(seeded.addr()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let engine = private_engine(dir.path(), &proxy.url(), GENEROUS_DEADLINE);
    // Online once (PrivateParams has already suggested the prefix length that fits).
    let warm = engine.classify(&samples::sender(910), &samples::ham(3), now_ms());
    assert_eq!(warm.source, Source::Private, "{warm:?}");

    proxy.set_refuse(true);
    proxy.cut_connections();
    let offline = engine.classify(&samples::sender(911), NEAR_DUPLICATE, now_ms());
    assert!(offline.degraded && offline.queued, "{offline:?}");
    // Decided on the phone: by the model, or beside it by the knowledge base (a fraud signal
    // and the model's lean tag this one).
    assert!(
        matches!(offline.source, Source::Local | Source::Rule),
        "{offline:?}"
    );
    let asked_before = seeded.requests_answered("PrivateSimilarity").unwrap();
    proxy.set_refuse(false);
    let summary = engine.drain_queue().unwrap();
    assert_eq!(
        (summary.rechecked, summary.remaining),
        (1, 0),
        "{summary:?}"
    );
    assert_eq!(
        seeded.requests_answered("PrivateSimilarity").unwrap(),
        asked_before + 1,
        "the drain asked the similarity lookup again"
    );
    let rechecked = engine.message(offline.message_id).unwrap().unwrap().verdict;

    // The same message online on a second engine (the same suggestion fetched): the drain
    // gave the verdict the online path gives, which the similarity match raised.
    let online_dir = tempfile::tempdir().unwrap();
    let online = private_engine(online_dir.path(), &seeded.url(), GENEROUS_DEADLINE);
    online.classify(&samples::sender(912), &samples::ham(3), now_ms());
    let decision = online.classify(&samples::sender(913), NEAR_DUPLICATE, now_ms());
    assert!(
        decision.reason.contains("known spam shares"),
        "{}",
        decision.reason
    );
    assert_eq!(
        (rechecked.label, rechecked.action, rechecked.source),
        (decision.label, decision.action, Source::Private)
    );
    assert!(
        rechecked.action > offline.action,
        "{rechecked:?} vs {offline:?}"
    );
    assert_eq!(seeded.requests_answered("Classify").unwrap(), 0);
}
