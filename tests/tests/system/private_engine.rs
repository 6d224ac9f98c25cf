//! The engine's private mode against the real server on loopback: with `privacy = "private"`
//! the server's `Classify` (and `Report`) are never called, only `PrivateClassify`; each verdict
//! carries the exact scores the plaintext private model gives and follows the documented fusion
//! of those scores with the local verdict; without an answer in time the local verdict stands
//! (degraded) and the message is re-checked later through `PrivateClassify` and
//! `PrivateSimilarity`, never `Classify`.

use std::path::Path;
use std::time::Duration;

use smsguard_core::{normalize, Label, Market};
use smsguard_edge::engine::{fuse_private, Decision, Engine, Privacy, ReportOutcome, Source};
use smsguard_edge::store::StoredVerdict;
use smsguard_edge::Action;
use smsguard_private::{PrivateHead, PrivateModel};
use smsguard_system_tests::{
    engine_config, now_ms, open_engine, samples, DelayProxy, TestCloud, GENEROUS_DEADLINE,
};

use crate::online_config;

/// Hand-written messages the published head raises from the local "allow" (the edge model lets
/// them through; the head, fusing its score with the private margin, crosses the tag threshold).
/// After refitting either model or the head, pick new ones: the test needs at least one.
const RAISED_BY_PRIVATE: &[&str] = &[
    // Allowed by the edge, tagged by the head.
    "Hot singles in your area want to chat tonight",
    // Tagged by the edge, quarantined by the head.
    "Urgent: your bank account will be suspended, verify now",
];

/// Hand-written messages the local model allows and whose private arg-max is not ham, which the
/// head must still leave alone (the rule before the head raised them to a tag). The first has a
/// promotion's opt-out footer, so the phone's knowledge tags it `ad` before the head is asked.
const KEPT_BY_THE_HEAD: &[&str] = &[
    "Your subscription renews tomorrow, reply STOP to cancel",
    "Cheap loans approved in minutes, no credit check",
];

fn served_model() -> PrivateModel {
    serde_json::from_str(include_str!("../../../cloud/models/private.json")).unwrap()
}

fn published_head() -> PrivateHead {
    serde_json::from_str(include_str!("../../../cloud/models/private_head.json")).unwrap()
}

fn private_engine(dir: &Path, url: &str, deadline: Duration) -> Engine {
    let mut config = online_config(url, deadline);
    config.privacy = Privacy::Private;
    open_engine(dir, config).unwrap()
}

fn verdict(decision: &Decision) -> StoredVerdict {
    StoredVerdict {
        label: decision.label,
        spam_score: decision.spam_score,
        action: decision.action,
        source: decision.source,
    }
}

fn cloud_with_metrics() -> TestCloud {
    TestCloud::start(|config| config.metrics_listen = Some(([127, 0, 0, 1], 0).into())).unwrap()
}

#[test]
fn private_mode_never_calls_classify_and_fuses_the_exact_private_scores() {
    let cloud = cloud_with_metrics();
    let dir = tempfile::tempdir().unwrap();
    let engine = private_engine(dir.path(), &cloud.url(), GENEROUS_DEADLINE);
    let local_dir = tempfile::tempdir().unwrap();
    let local_only = open_engine(local_dir.path(), engine_config(None)).unwrap();
    let model = served_model();
    let head = published_head();
    let mut texts: Vec<String> = (0..4).map(samples::ham).collect();
    texts.extend((0..4).map(samples::phishing));
    texts.extend(RAISED_BY_PRIVATE.iter().map(|t| t.to_string()));
    texts.extend(KEPT_BY_THE_HEAD.iter().map(|t| t.to_string()));
    let mut raised = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        let sender = samples::sender(700 + i);
        let decision = engine.classify(&sender, text, now_ms());
        let local = local_only.classify(&sender, text, now_ms());
        assert_eq!(decision.source, Source::Private, "{decision:?}");
        assert!(!decision.degraded && !decision.queued, "{decision:?}");
        let scores = decision.private.clone().expect("private scores");
        assert_eq!(
            scores.head_version, head.version,
            "the published head fused"
        );
        let normalized = normalize(text).text;
        let features = model.shape.features(&normalized);
        assert_eq!(
            scores.scores,
            model.plain_scores(&features).unwrap(),
            "message {i}"
        );
        let market = Market::of_text(&normalized);
        assert_eq!(
            verdict(&decision),
            fuse_private(verdict(&local), &scores, &head, market).0,
            "message {i}"
        );
        if decision.action != local.action {
            raised.push(text.as_str());
            assert!(
                decision.action > local.action,
                "never lowered: {decision:?}"
            );
            assert_ne!(decision.label, Label::Ham);
        }
        if local.action >= Action::Quarantine {
            assert_eq!(decision.action, local.action, "never lowered: {decision:?}");
        }
        if KEPT_BY_THE_HEAD.contains(&text.as_str()) {
            // Room to raise (allowed, or tagged as a promotion by the opt-out footer), not raised.
            assert!(local.action <= Action::Tag, "{local:?}");
            assert_eq!(decision.action, local.action, "{decision:?}");
            assert_ne!(scores.label(), Label::Ham, "the private arg-max says spam");
        }
    }
    let hand_written: Vec<&str> = raised
        .into_iter()
        .filter(|t| RAISED_BY_PRIVATE.contains(t) || KEPT_BY_THE_HEAD.contains(t))
        .collect();
    assert_eq!(hand_written, RAISED_BY_PRIVATE, "raised by the head");

    let spam_id = engine
        .classify(&samples::sender(760), &samples::phishing(5), now_ms())
        .message_id;
    assert_eq!(
        engine.report(spam_id, true).unwrap(),
        ReportOutcome::KeptOnPhone
    );
    assert_eq!(cloud.requests_answered("Classify").unwrap(), 0);
    assert_eq!(cloud.requests_answered("ClassifyStream").unwrap(), 0);
    assert_eq!(cloud.requests_answered("Report").unwrap(), 0);
    assert_eq!(
        cloud.requests_answered("PrivateClassify").unwrap(),
        texts.len() as u64 + 1
    );
    // The standard engine beside it does call Classify (the counter works).
    let standard_dir = tempfile::tempdir().unwrap();
    let standard = open_engine(
        standard_dir.path(),
        online_config(&cloud.url(), GENEROUS_DEADLINE),
    )
    .unwrap();
    let decision = standard.classify(&samples::sender(761), &samples::ham(9), now_ms());
    assert_eq!(decision.source, Source::Cloud, "{decision:?}");
    assert_eq!(cloud.requests_answered("Classify").unwrap(), 1);
}

#[test]
fn a_late_or_missing_private_answer_leaves_the_local_verdict_and_is_rechecked_privately() {
    let cloud = cloud_with_metrics();
    let proxy = DelayProxy::start(cloud.addr()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let deadline = Duration::from_millis(1500);
    let engine = private_engine(dir.path(), &proxy.url(), deadline);
    // Warm the connection, then make every answer later than the deadline.
    let warm = engine.classify(&samples::sender(770), &samples::ham(1), now_ms());
    assert_eq!(warm.source, Source::Private, "{warm:?}");
    proxy.set_delay(deadline * 2);
    let spam = engine.classify(&samples::sender(771), &samples::phishing(2), now_ms());
    assert_eq!(spam.source, Source::Local, "{spam:?}");
    assert!(spam.reason.contains("private: "), "{spam:?}");
    assert_eq!(
        spam.action,
        Action::Quarantine,
        "the local quarantine stands"
    );
    assert!(
        spam.degraded && !spam.queued,
        "a quarantine is as far as the head raises: nothing to re-check {spam:?}"
    );
    assert!(
        spam.timings_us.total < 2 * deadline.as_micros() as u64,
        "{spam:?}"
    );

    // Unreachable: the local verdict stands, degraded, and the message waits for a re-check.
    proxy.set_delay(Duration::ZERO);
    proxy.set_refuse(true);
    proxy.cut_connections();
    let held = RAISED_BY_PRIVATE[1];
    let tagged = engine.classify(&samples::sender(772), held, now_ms());
    assert_eq!(
        (tagged.source, tagged.action),
        (Source::Local, Action::Tag),
        "{tagged:?}"
    );
    assert!(tagged.degraded && tagged.queued, "{tagged:?}");
    let ham = engine.classify(&samples::sender(773), &samples::ham(2), now_ms());
    assert_eq!((ham.source, ham.action), (Source::Local, Action::Allow));
    assert!(ham.degraded && ham.queued, "{ham:?}");
    assert_eq!(engine.stats().queue_length, 2);
    let answered_before = cloud.requests_answered("PrivateClassify").unwrap();
    let similar_before = cloud.requests_answered("PrivateSimilarity").unwrap();
    // Still unreachable: the drain stops at the first entry and keeps both.
    let summary = engine.drain_queue().unwrap();
    assert_eq!(
        (summary.rechecked, summary.remaining),
        (0, 2),
        "{summary:?}"
    );

    // Reachable again: both re-checked through PrivateClassify; the head holds the one it
    // raises (tag -> quarantine: the delivered message is flagged), the ham stays delivered.
    proxy.set_refuse(false);
    let summary = engine.drain_queue().unwrap();
    assert_eq!(
        (
            summary.rechecked,
            summary.flagged,
            summary.dropped,
            summary.remaining
        ),
        (2, 1, 0, 0),
        "{summary:?}"
    );
    assert_eq!(engine.stats().queue_length, 0);
    assert_eq!(
        cloud.requests_answered("PrivateClassify").unwrap(),
        answered_before + 2
    );
    assert_eq!(
        cloud.requests_answered("PrivateSimilarity").unwrap(),
        similar_before + 2,
        "the drain asks the similarity lookup again too"
    );
    assert_eq!(cloud.requests_answered("Classify").unwrap(), 0);
    assert_eq!(cloud.requests_answered("ClassifyStream").unwrap(), 0);
}
