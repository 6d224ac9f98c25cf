//! Values kept in the store (JSON-encoded) and shared with the engine's public API.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use smsguard_core::Label;
use smsguard_model::Action;

/// Where a verdict was decided (defined once in the core; `Source` is the engine's name for it).
pub use smsguard_core::VerdictSource as Source;

/// Life cycle of a classified message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageState {
    /// In the inbox (allowed or tagged).
    Delivered,
    /// Held in the quarantine folder until the user restores or deletes it.
    Quarantined,
    /// Left the quarantine: restored by the user or cleared by a cloud re-check.
    Released,
    /// Delivered, then found to be spam by a cloud re-check.
    Flagged,
    /// Deleted by the user from the quarantine.
    Deleted,
}

impl MessageState {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageState::Delivered => "delivered",
            MessageState::Quarantined => "quarantined",
            MessageState::Released => "released",
            MessageState::Flagged => "flagged",
            MessageState::Deleted => "deleted",
        }
    }

    /// The state a fresh decision puts a message in.
    pub fn for_action(action: Action) -> MessageState {
        match action {
            Action::Quarantine | Action::Block => MessageState::Quarantined,
            Action::Allow | Action::Tag => MessageState::Delivered,
        }
    }
}

/// A verdict as stored with a message or in the cache.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StoredVerdict {
    pub label: Label,
    pub spam_score: f32,
    pub action: Action,
    pub source: Source,
}

/// One classified message. The body is kept while the message is (or was) quarantined or waits
/// for a cloud re-check; a delivered message's body is dropped once nothing needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageRecord {
    pub id: u64,
    pub state: MessageState,
    pub sender: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    pub received_at_ms: i64,
    pub decided_at_ms: i64,
    pub verdict: StoredVerdict,
    /// Hex id of the MinHash fingerprint of the normalised body.
    pub fingerprint: String,
    /// The MinHash signature, so a later report can index the message without its text.
    pub minhash: Vec<u32>,
    /// True while a cloud re-check is pending.
    #[serde(default)]
    pub queued: bool,
}

/// Work waiting for the network, in arrival order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum QueueItem {
    /// Ask the cloud about a message decided without it.
    Recheck { message_id: u64 },
    /// A user report made while offline.
    Report {
        message_id: u64,
        spam: bool,
        reported_at_ms: i64,
    },
}

/// A cached verdict for one fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CacheEntry {
    pub verdict: StoredVerdict,
    /// Wall-clock expiry (ms since the epoch).
    pub expires_at_ms: i64,
    /// Insertion sequence (the eviction order key).
    pub order: u64,
}

/// A spam fingerprint pulled by `SyncCache` (or learned from a user report).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HotFingerprint {
    pub fingerprint: String,
    pub minhash: Vec<u32>,
    pub label: Label,
}

/// A synced sender rule: an anchored regular expression over sender addresses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SenderRuleEntry {
    pub pattern: String,
    pub allow: bool,
}

/// A verified model package kept in the store after `update_model`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredModel {
    pub version: String,
    pub sha256: String,
    /// The model sealed in a `smsguard-container` (never plain ONNX), stored under its own sled
    /// key as raw bytes (see `Store::save_model`).
    #[serde(skip)]
    pub sealed_model: Vec<u8>,
    pub vocabulary: String,
    pub manifest_json: String,
}

/// What the app is told after the fact (polled: no callbacks cross the JNI boundary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EngineEvent {
    /// A quarantined message was cleared by the cloud and moved to the inbox.
    Released { message_id: u64 },
    /// A delivered message was found to be spam by the cloud.
    Flagged { message_id: u64 },
}

/// Counter name -> value.
pub type Counters = BTreeMap<String, u64>;
