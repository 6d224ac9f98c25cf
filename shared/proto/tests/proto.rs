//! The generated protocol types round-trip, enums keep UNSPECIFIED at zero, and the embedded
//! descriptor set (for server reflection) describes the service.

use prost::Message;
use smsguard_core::{Action as CoreAction, Label as CoreLabel, VerdictSource as CoreVerdictSource};
use smsguard_proto::v1::{self, Action, Contribution, Label, Verdict};
use smsguard_proto::{core_action, core_label};

#[test]
fn verdict_round_trips_through_the_wire_format() {
    let verdict = Verdict {
        label: Label::Fraud as i32,
        category: "fraud:phishing_bank".into(),
        spam_score: 0.97,
        action: Action::Quarantine as i32,
        contributions: vec![Contribution {
            model: "similarity".into(),
            score: 0.9,
            weight: 1.5,
            reason: "near-duplicate of a reported campaign".into(),
            degraded: false,
        }],
        cache_ttl_seconds: 3600,
        fingerprint: "0123456789abcdef".into(),
        ..Default::default()
    };
    let bytes = verdict.encode_to_vec();
    let back = Verdict::decode(bytes.as_slice()).unwrap();
    assert_eq!(back, verdict);
    assert_eq!(back.action(), Action::Quarantine);
}

#[test]
fn malformed_bytes_are_an_error_not_a_panic() {
    let garbage = [0xff_u8, 0xff, 0xff, 0xff, 0x0f, 0x12, 0x99];
    assert!(v1::ClassifyRequest::decode(garbage.as_slice()).is_err());
}

#[test]
fn zero_is_unspecified_in_every_enum() {
    assert_eq!(Label::Unspecified as i32, 0);
    assert_eq!(Action::Unspecified as i32, 0);
    assert_eq!(v1::VerdictSource::Unspecified as i32, 0);
    assert_eq!(v1::Feedback::Unspecified as i32, 0);
    assert_eq!(v1::SenderRuleKind::Unspecified as i32, 0);
    // An unknown enum number from a newer peer reads as UNSPECIFIED.
    let verdict = Verdict {
        label: 77,
        ..Default::default()
    };
    assert_eq!(verdict.label(), Label::Unspecified);
}

#[test]
fn protocol_labels_map_onto_the_core_taxonomy_both_ways() {
    for core in CoreLabel::ALL {
        assert_eq!(core_label(Label::from(core)), Some(core));
    }
    assert_eq!(core_label(Label::Unspecified), None);
}

#[test]
fn descriptor_set_describes_the_service() {
    let set = prost_types::FileDescriptorSet::decode(v1::FILE_DESCRIPTOR_SET).unwrap();
    let file = set
        .file
        .iter()
        .find(|f| f.package() == "smsguard.v1")
        .unwrap();
    let service = file
        .service
        .iter()
        .find(|s| s.name() == "SmsGuard")
        .unwrap();
    let methods: Vec<&str> = service.method.iter().map(|m| m.name()).collect();
    assert_eq!(
        methods,
        [
            "Classify",
            "ClassifyStream",
            "Report",
            "SyncCache",
            "GetModel",
            "PrivateClassify",
            "PrivateSimilarity",
            "PrivateParams"
        ]
    );
}

#[test]
fn protocol_actions_map_onto_the_core_actions_both_ways() {
    let pairs = [
        (CoreAction::Allow, Action::Allow),
        (CoreAction::Tag, Action::Tag),
        (CoreAction::Quarantine, Action::Quarantine),
        (CoreAction::Block, Action::Block),
    ];
    for (core, wire) in pairs {
        assert_eq!(Action::from(core), wire);
        assert_eq!(core_action(wire), Some(core));
    }
    assert_eq!(core_action(Action::Unspecified), None);
}

#[test]
fn core_verdict_sources_map_onto_the_protocol() {
    let pairs = [
        (CoreVerdictSource::Cache, v1::VerdictSource::Cache),
        (CoreVerdictSource::Cloud, v1::VerdictSource::Cloud),
        (CoreVerdictSource::Local, v1::VerdictSource::Local),
        (CoreVerdictSource::Rule, v1::VerdictSource::Rule),
        (CoreVerdictSource::Private, v1::VerdictSource::Private),
    ];
    for (core, wire) in pairs {
        assert_eq!(v1::VerdictSource::from(core), wire);
    }
}
