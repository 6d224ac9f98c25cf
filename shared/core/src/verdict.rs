//! What a verdict tells the phone to do (`Action`) and where it was decided (`VerdictSource`):
//! one definition for the edge model, the engine, the cloud's fusion and the protocol mapping
//! (`smsguard-proto` converts to and from its enums).

use serde::{Deserialize, Serialize};

use crate::market::ActionThresholds;

/// What the phone should do with a message. Ordered from the mildest to the strongest.
///
/// The local model alone never answers `Block`: a false positive must stay recoverable, so the
/// strongest local verdict is `Quarantine`. `Block` is reserved for confirmed verdicts (cloud,
/// user deny-list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Below the tag threshold: deliver normally.
    Allow,
    /// At least the tag threshold (0.5 % ham FPR for the edge model): deliver with a
    /// "likely spam" tag.
    Tag,
    /// At least the quarantine threshold (0.1 % ham FPR for the edge model): hold in the
    /// quarantine folder.
    Quarantine,
    Block,
}

impl Action {
    /// The local action for `spam_score` at an operating point (never `Block`).
    pub fn for_score(spam_score: f32, point: &ActionThresholds) -> Action {
        if spam_score >= point.quarantine {
            Action::Quarantine
        } else if spam_score >= point.tag {
            Action::Tag
        } else {
            Action::Allow
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Tag => "tag",
            Action::Quarantine => "quarantine",
            Action::Block => "block",
        }
    }
}

/// Where a verdict was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VerdictSource {
    /// An earlier cloud verdict, a user report or a synced hot fingerprint.
    Cache,
    /// The fused cloud verdict, in time.
    Cloud,
    /// The on-device model.
    Local,
    /// An allow/deny list entry or a sender rule.
    Rule,
    /// The on-device model fused with the class scores the cloud computed under homomorphic
    /// encryption (private mode: the cloud never read the message).
    Private,
}

impl VerdictSource {
    pub fn as_str(self) -> &'static str {
        match self {
            VerdictSource::Cache => "cache",
            VerdictSource::Cloud => "cloud",
            VerdictSource::Local => "local",
            VerdictSource::Rule => "rule",
            VerdictSource::Private => "private",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_serde_names() {
        for action in [
            Action::Allow,
            Action::Tag,
            Action::Quarantine,
            Action::Block,
        ] {
            let json = serde_json::to_string(&action).unwrap();
            assert_eq!(json, format!("\"{}\"", action.as_str()));
            assert_eq!(serde_json::from_str::<Action>(&json).unwrap(), action);
        }
        for source in [
            VerdictSource::Cache,
            VerdictSource::Cloud,
            VerdictSource::Local,
            VerdictSource::Rule,
            VerdictSource::Private,
        ] {
            let json = serde_json::to_string(&source).unwrap();
            assert_eq!(json, format!("\"{}\"", source.as_str()));
        }
    }

    #[test]
    fn actions_order_from_mildest_to_strongest() {
        assert!(Action::Allow < Action::Tag);
        assert!(Action::Tag < Action::Quarantine);
        assert!(Action::Quarantine < Action::Block);
    }
}
