//! Private mode's published parameters (`PrivateParams`) against the real server on loopback:
//! the engine fetches them once when private mode starts; when the cloud moves to a BFV
//! parameter set this phone does not support (a relay in front of the real server publishes
//! another set, and the server refuses the phone's queries under it with FAILED_PRECONDITION),
//! the engine fetches them again, refuses private mode with a clear reason and keeps the local
//! verdict, sending nothing more. A cloud without the call is used as before.

use std::sync::Arc;

use smsguard_edge::engine::{Engine, Privacy, Source};
use smsguard_system_tests::{
    engine_config, now_ms, open_engine, samples, TamperingRelay, TestCloud, GENEROUS_DEADLINE,
    MOVED_TO,
};

use crate::online_config;

fn private_engine(dir: &std::path::Path, url: &str) -> Engine {
    let mut config = online_config(url, GENEROUS_DEADLINE);
    config.privacy = Privacy::Private;
    open_engine(dir, config).unwrap()
}

fn cloud_with_metrics() -> TestCloud {
    TestCloud::start(|config| config.metrics_listen = Some(([127, 0, 0, 1], 0).into())).unwrap()
}

#[test]
fn private_mode_fetches_the_params_once() {
    let cloud = cloud_with_metrics();
    let dir = tempfile::tempdir().unwrap();
    let engine = private_engine(dir.path(), &cloud.url());
    for i in 0..3 {
        let decision = engine.classify(&samples::sender(930 + i), &samples::ham(i), now_ms());
        assert_eq!(decision.source, Source::Private, "{decision:?}");
        assert!(!decision.degraded, "{decision:?}");
    }
    assert_eq!(cloud.requests_answered("PrivateParams").unwrap(), 1);
    assert_eq!(cloud.requests_answered("PrivateClassify").unwrap(), 3);
}

#[test]
fn a_cloud_on_another_parameter_set_is_refused_and_the_local_verdict_kept() {
    let cloud = cloud_with_metrics();
    let relay = TamperingRelay::start(&cloud.url(), Arc::new(|_| {})).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let engine = private_engine(dir.path(), &relay.url());
    let before = engine.classify(&samples::sender(940), &samples::ham(1), now_ms());
    assert_eq!(before.source, Source::Private, "{before:?}");

    relay.move_parameters();
    // The next query is refused by the server (FAILED_PRECONDITION): the local verdict stands.
    let refused = engine.classify(&samples::sender(941), &samples::phishing(1), now_ms());
    assert_eq!(refused.source, Source::Local, "{refused:?}");
    assert!(
        refused.reason.contains("FailedPrecondition"),
        "{}",
        refused.reason
    );
    // The one after fetches the parameters again and refuses private mode without asking.
    let text = samples::phishing(2);
    let local = engine.classify(&samples::sender(942), &text, now_ms());
    assert_eq!(local.source, Source::Local, "{local:?}");
    assert!(local.degraded && !local.queued, "{local:?}");
    assert!(
        local.reason.contains("private mode refused")
            && local.reason.contains(MOVED_TO)
            && local.reason.contains("this phone supports only"),
        "{}",
        local.reason
    );
    assert_eq!(cloud.requests_answered("PrivateParams").unwrap(), 2);
    assert_eq!(cloud.requests_answered("PrivateClassify").unwrap(), 2);
    assert_eq!(cloud.requests_answered("PrivateSimilarity").unwrap(), 2);
    assert_eq!(cloud.requests_answered("Classify").unwrap(), 0);

    // The verdict is the local model's, as an engine without a cloud gives it.
    let offline_dir = tempfile::tempdir().unwrap();
    let offline = open_engine(offline_dir.path(), engine_config(None)).unwrap();
    let alone = offline.classify(&samples::sender(942), &text, now_ms());
    assert_eq!((local.label, local.action), (alone.label, alone.action));
}

#[test]
fn a_cloud_without_private_params_is_used_as_before() {
    let cloud = cloud_with_metrics();
    let relay = TamperingRelay::start(&cloud.url(), Arc::new(|_| {})).unwrap();
    relay.hide_parameters();
    let dir = tempfile::tempdir().unwrap();
    let engine = private_engine(dir.path(), &relay.url());
    for i in 0..2 {
        let decision = engine.classify(&samples::sender(950 + i), &samples::ham(i), now_ms());
        assert_eq!(decision.source, Source::Private, "{decision:?}");
        assert!(!decision.degraded, "{decision:?}");
        // The first lookup asks at the default 16 bits: no suggestion was fetched.
        let bits = if i == 0 { "(16-bit" } else { "(4-bit" };
        assert!(decision.reason.contains(bits), "{}", decision.reason);
    }
    assert_eq!(cloud.requests_answered("PrivateParams").unwrap(), 0);
    assert_eq!(cloud.requests_answered("PrivateClassify").unwrap(), 2);
}

/// A private engine that pins the cloud's model signing key.
fn pinned_private_engine(dir: &std::path::Path, url: &str, cloud: &TestCloud) -> Engine {
    let mut config = online_config(url, GENEROUS_DEADLINE);
    config.privacy = Privacy::Private;
    config.pinned_model_key = Some(cloud.model_public_key().to_owned());
    open_engine(dir, config).unwrap()
}

#[test]
fn a_pinned_phone_fuses_only_with_the_head_the_model_key_signed() {
    let cloud = cloud_with_metrics();
    let sender = samples::sender(960);
    let dir = tempfile::tempdir().unwrap();
    let direct = pinned_private_engine(dir.path(), &cloud.url(), &cloud);
    let signed = direct.classify(&sender, &samples::ham(60), now_ms());
    assert_eq!(signed.source, Source::Private, "{signed:?}");
    assert!(!signed.degraded, "{signed:?}");
    drop(direct);

    // One byte of the head changed in flight: the pinned phone keeps its local verdict.
    let relay = TamperingRelay::start(&cloud.url(), Arc::new(|_| {})).unwrap();
    relay.alter_heads();
    let dir = tempfile::tempdir().unwrap();
    let pinned = pinned_private_engine(dir.path(), &relay.url(), &cloud);
    let refused = pinned.classify(&sender, &samples::ham(61), now_ms());
    assert_eq!(refused.source, Source::Local, "{refused:?}");
    assert!(refused.degraded, "{refused:?}");
    assert!(
        refused.reason.contains("fusion head is not the operator's"),
        "{}",
        refused.reason
    );
    assert!(refused.private.is_none(), "no private scores took part");
    drop(pinned);

    // Without a pinned key the head is taken as the connection delivers it (documented).
    let dir = tempfile::tempdir().unwrap();
    let unpinned = private_engine(dir.path(), &relay.url());
    let taken = unpinned.classify(&sender, &samples::ham(62), now_ms());
    assert_eq!(taken.source, Source::Private, "{taken:?}");
}
