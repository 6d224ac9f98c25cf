//! The cloud's scorers: each looks at one normalised message from one angle and answers a
//! [`ModelScore`] (0..1 spamminess, optional label, a reason, optional forced action).
//!
//! * [`similarity`]: near-duplicate memory of known spam (MinHash LSH, persisted in sled), fed
//!   by user reports once a quorum of reporters agrees; "not spam" reports whitelist a fingerprint
//!   and its near-duplicates. Every report is audited; reporters that keep disagreeing with the
//!   consensus stop counting.
//! * [`lexical`]: one pooled linear model over TF-IDF character n-grams, calibrated (Platt).
//! * [`variant`]: how hard the message tries to hide (obfuscation evidence from normalisation).
//! * [`rules`]: weighted regex / keyword / URL-host / sender rules from a hot-reloaded TOML file.
//! * [`sender`]: per-sender sliding-window reputation with bounded memory.
//!
//! Every scorer implements [`Scorer`], so a fusion stage (and later the multiclass model) can hold
//! them as `Vec<Box<dyn Scorer>>` and combine their [`ModelScore`]s. A scorer that has no evidence
//! answers `score = 0.0` with `label = None`; fusion should treat that as an abstention rather than
//! as evidence of ham (`label = Some(Label::Ham)` is explicit ham evidence, e.g. a whitelist hit).
//!
//! Privacy: no scorer stores message text or sender numbers (fingerprints and salted hashes only),
//! and no [`ModelScore::reason`] or error quotes either.

pub mod calibration;
pub mod cloud_scorer;
pub mod error;
pub mod fusion;
pub mod lexical;
pub mod multiclass;
pub mod policy;
pub mod rules;
pub mod sender;
pub mod similarity;
pub mod variant;

use smsguard_core::{Fingerprint, Label, MinHasher, Normalized};

pub use cloud_scorer::{CloudError, CloudScorer, EmbeddedOptions, LineupError};
pub use error::ScoringError;
pub use fusion::{Action, Contribution, EdgeInput, FusedVerdict, FusionModel};
pub use lexical::LexicalModel;
pub use multiclass::MulticlassModel;
pub use rules::{RuleSet, RulesError, RulesHandle, RulesScorer};
pub use sender::{SenderConfig, SenderReputation};
pub use similarity::{LookupStats, SimilarityConfig, SimilarityMatch, SimilarityStore};
pub use variant::{VariantConfig, VariantScorer};

/// Everything a scorer may look at for one message. The raw body is only reachable through
/// `normalized.original`; scorers must not copy it into reasons, errors or storage.
#[derive(Debug, Clone, Copy)]
pub struct MessageContext<'a> {
    pub sender: &'a str,
    pub normalized: &'a Normalized,
    pub fingerprint: &'a Fingerprint,
    pub received_at_ms: i64,
    pub device_id: &'a str,
}

/// An owned, prepared message (normalised and fingerprinted once), convenient for callers that
/// run several scorers over the same message.
#[derive(Debug, Clone)]
pub struct PreparedMessage {
    pub sender: String,
    pub normalized: Normalized,
    pub fingerprint: Fingerprint,
    pub received_at_ms: i64,
    pub device_id: String,
}

impl PreparedMessage {
    /// Normalises and fingerprints `body` with the default [`MinHasher`].
    pub fn new(sender: &str, body: &str, received_at_ms: i64, device_id: &str) -> Self {
        let normalized = smsguard_core::normalize(body);
        let fingerprint = MinHasher::new().fingerprint(&normalized.text);
        PreparedMessage {
            sender: sender.to_owned(),
            normalized,
            fingerprint,
            received_at_ms,
            device_id: device_id.to_owned(),
        }
    }

    pub fn context(&self) -> MessageContext<'_> {
        MessageContext {
            sender: &self.sender,
            normalized: &self.normalized,
            fingerprint: &self.fingerprint,
            received_at_ms: self.received_at_ms,
            device_id: &self.device_id,
        }
    }
}

/// An action a scorer demands regardless of the fused score (e.g. a sender allow rule).
/// Among actions of the same [`ForceAuthority`] the most restrictive wins:
/// `Block > Quarantine > Allow` (see [`ForcedAction::most_restrictive`]), so an allow rule never
/// overrides a block rule. An operator's action outranks any action derived from user reports
/// (see [`ForcedAction::decide`]).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ForcedAction {
    Allow,
    Quarantine,
    Block,
}

impl ForcedAction {
    /// The more restrictive of two optional actions (`Block > Quarantine > Allow > None`).
    pub fn most_restrictive(
        a: Option<ForcedAction>,
        b: Option<ForcedAction>,
    ) -> Option<ForcedAction> {
        a.max(b)
    }

    /// The action that overrides the thresholds: the most restrictive operator action if there
    /// is one, else the most restrictive action derived from user reports. Reports are votes
    /// anyone holding an API key can cast, so they must never flip what an operator pinned in
    /// the rules file (a carrier's service number, a bank's OTP template): only the operator can.
    pub fn decide(
        forced: impl IntoIterator<Item = (ForcedAction, ForceAuthority)>,
    ) -> Option<(ForcedAction, ForceAuthority)> {
        let (mut operator, mut reports) = (None, None);
        for (action, authority) in forced {
            let slot = match authority {
                ForceAuthority::Operator => &mut operator,
                ForceAuthority::UserReports => &mut reports,
            };
            *slot = Self::most_restrictive(*slot, Some(action));
        }
        operator
            .map(|a| (a, ForceAuthority::Operator))
            .or(reports.map(|a| (a, ForceAuthority::UserReports)))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ForcedAction::Allow => "allow",
            ForcedAction::Quarantine => "quarantine",
            ForcedAction::Block => "block",
        }
    }
}

/// Who stands behind a [`ForcedAction`].
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ForceAuthority {
    /// The operator: the rules file (sender and text rules).
    #[default]
    Operator,
    /// A quorum of user reports (the similarity memory).
    UserReports,
}

/// One scorer's answer for one message.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelScore {
    /// The scorer's [`Scorer::name`].
    pub model: &'static str,
    /// Spamminess in 0..=1.
    pub score: f32,
    /// The class the scorer believes in, if it has an opinion.
    pub label: Option<Label>,
    /// Human-readable explanation; never quotes message text or the sender.
    pub reason: String,
    pub forced_action: Option<ForcedAction>,
    /// Who demands `forced_action` (an operator's action outranks one from user reports).
    pub forced_by: ForceAuthority,
    /// Per-class probabilities in [`Label::ALL`] order, from scorers that have them (the
    /// multiclass model); fusion picks the spam class from them.
    pub probabilities: Option<[f32; 5]>,
    /// The knowledge entries and rules that fired, with their types (the `rules` scorer); the
    /// cloud's policy reads them (a promotion's opt-out, a fraud type).
    pub hits: Vec<RuleHit>,
    /// How hard the message hides its words, 0..=1, from scorers that tell it apart from their
    /// score (the `variant` scorer: its score without defanged links); the policy's disguise
    /// rule reads it.
    pub hidden_words: Option<f32>,
}

/// One knowledge entry or rule that fired on a message.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleHit {
    pub id: String,
    /// Its type, e.g. `impersonate_authority`, `opt_out`, `host_deny`.
    pub kind: String,
    pub label: Option<Label>,
    pub weight: f32,
    /// Evidence of fraud or illegal content (see `smsguard_core::knowledge::Entry::is_harmful`).
    pub harmful: bool,
}

impl ModelScore {
    /// A score with no label and no forced action; `score` is clamped to 0..=1 (NaN -> 0).
    pub fn new(model: &'static str, score: f32, reason: impl Into<String>) -> Self {
        ModelScore {
            model,
            score: clamp_unit(score),
            label: None,
            reason: reason.into(),
            forced_action: None,
            forced_by: ForceAuthority::Operator,
            probabilities: None,
            hits: Vec::new(),
            hidden_words: None,
        }
    }

    pub fn with_hidden_words(mut self, hidden_words: f32) -> Self {
        self.hidden_words = Some(clamp_unit(hidden_words));
        self
    }

    pub fn with_hits(mut self, hits: Vec<RuleHit>) -> Self {
        self.hits = hits;
        self
    }

    pub fn with_probabilities(mut self, probabilities: Option<[f32; 5]>) -> Self {
        self.probabilities = probabilities;
        self
    }

    pub fn with_label(mut self, label: Option<Label>) -> Self {
        self.label = label;
        self
    }

    /// An action forced by the operator (a rule).
    pub fn with_forced_action(mut self, action: Option<ForcedAction>) -> Self {
        self.forced_action = action;
        self.forced_by = ForceAuthority::Operator;
        self
    }

    /// An action forced by a quorum of user reports; any operator action outranks it.
    pub fn with_report_forced_action(mut self, action: Option<ForcedAction>) -> Self {
        self.forced_action = action;
        self.forced_by = ForceAuthority::UserReports;
        self
    }
}

/// One way of scoring a message. Implementations are shared across request threads.
pub trait Scorer: Send + Sync {
    /// Stable short name, used as [`ModelScore::model`] and in metrics.
    fn name(&self) -> &'static str;
    fn score(&self, msg: &MessageContext<'_>) -> Result<ModelScore, ScoringError>;
    /// Pays first-use costs (dictionaries, lookup tables) now, so that the first request does
    /// not; changes nothing a later verdict depends on. Most scorers have none.
    fn warm_up(&self) {}
    /// Whether fusion weighs this scorer's score (it was fitted with it). `false` for a scorer
    /// that only forces actions, like the server's operator list: fusion has no weight for it.
    fn weighed(&self) -> bool {
        true
    }
}

/// Clamps to 0..=1, mapping NaN to 0.
pub(crate) fn clamp_unit(x: f32) -> f32 {
    if x.is_nan() {
        0.0
    } else {
        x.clamp(0.0, 1.0)
    }
}
