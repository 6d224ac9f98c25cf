//! Protocol v1 types and gRPC stubs, generated at build time from `proto/smsguard/v1` with
//! protox (no system `protoc`). Also maps between protocol enums and the core taxonomy.

#![allow(missing_debug_implementations, clippy::all, clippy::pedantic)]

pub mod v1 {
    tonic::include_proto!("smsguard.v1");

    /// Encoded `FileDescriptorSet` of protocol v1, for gRPC server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/smsguard_descriptor.bin"));
}

use smsguard_core::Label as CoreLabel;

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
