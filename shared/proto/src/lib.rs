//! Protocol v1 types and gRPC stubs, generated at build time from `proto/smsguard/v1` with
//! protox (no system `protoc`). Also the one place that maps between protocol enums and the
//! core's (label, action, verdict source).

#![allow(missing_debug_implementations, clippy::all, clippy::pedantic)]

pub mod v1 {
    tonic::include_proto!("smsguard.v1");

    /// Encoded `FileDescriptorSet` of protocol v1, for gRPC server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/smsguard_descriptor.bin"));
}

use smsguard_core::{Action as CoreAction, Label as CoreLabel, VerdictSource as CoreVerdictSource};

impl From<CoreLabel> for v1::Label {
    fn from(label: CoreLabel) -> Self {
        match label {
            CoreLabel::Ham => v1::Label::Ham,
            CoreLabel::Ad => v1::Label::Ad,
            CoreLabel::Fraud => v1::Label::Fraud,
            CoreLabel::Illegal => v1::Label::Illegal,
            CoreLabel::Spam => v1::Label::Spam,
        }
    }
}

/// The core label of a protocol label; `None` for UNSPECIFIED.
pub fn core_label(label: v1::Label) -> Option<CoreLabel> {
    match label {
        v1::Label::Unspecified => None,
        v1::Label::Ham => Some(CoreLabel::Ham),
        v1::Label::Ad => Some(CoreLabel::Ad),
        v1::Label::Fraud => Some(CoreLabel::Fraud),
        v1::Label::Illegal => Some(CoreLabel::Illegal),
        v1::Label::Spam => Some(CoreLabel::Spam),
    }
}

impl From<CoreAction> for v1::Action {
    fn from(action: CoreAction) -> Self {
        match action {
            CoreAction::Allow => v1::Action::Allow,
            CoreAction::Tag => v1::Action::Tag,
            CoreAction::Quarantine => v1::Action::Quarantine,
            CoreAction::Block => v1::Action::Block,
        }
    }
}

/// The core action of a protocol action; `None` for UNSPECIFIED.
pub fn core_action(action: v1::Action) -> Option<CoreAction> {
    match action {
        v1::Action::Unspecified => None,
        v1::Action::Allow => Some(CoreAction::Allow),
        v1::Action::Tag => Some(CoreAction::Tag),
        v1::Action::Quarantine => Some(CoreAction::Quarantine),
        v1::Action::Block => Some(CoreAction::Block),
    }
}

impl From<CoreVerdictSource> for v1::VerdictSource {
    fn from(source: CoreVerdictSource) -> Self {
        match source {
            CoreVerdictSource::Cache => v1::VerdictSource::Cache,
            CoreVerdictSource::Cloud => v1::VerdictSource::Cloud,
            CoreVerdictSource::Local => v1::VerdictSource::Local,
            CoreVerdictSource::Rule => v1::VerdictSource::Rule,
            CoreVerdictSource::Private => v1::VerdictSource::Private,
        }
    }
}
