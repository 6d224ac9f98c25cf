//! The `variant` scorer: how hard a message tries to hide, as a fusion input. The measure itself
//! lives in the core ([`smsguard_core::variant`]) because the phone's offline rule reads it too.

pub use smsguard_core::variant::{
    mixed_script_words, VariantConfig, VariantEvidence, VariantMeasure,
};
use smsguard_core::Normalized;

use crate::{MessageContext, ModelScore, Scorer, ScoringError};

/// The scorer's name in fusion inputs and contributions.
pub const NAME: &str = "variant";

/// The `variant` [`Scorer`]; stateless.
#[derive(Debug, Clone, Default)]
pub struct VariantScorer {
    measure: VariantMeasure,
}

impl VariantScorer {
    pub fn new(config: VariantConfig) -> Self {
        VariantScorer {
            measure: VariantMeasure::new(config),
        }
    }

    /// Collects the weighted obfuscation evidence of one normalised message.
    pub fn evidence(&self, normalized: &Normalized) -> VariantEvidence {
        self.measure.evidence(normalized)
    }

    /// Spamminess 0..1 of the evidence.
    pub fn score_evidence(&self, evidence: &VariantEvidence) -> f32 {
        self.measure.score_evidence(evidence)
    }

    /// The score without defanged links ([`VariantMeasure::hidden_words`]).
    pub fn hidden_words(&self, evidence: &VariantEvidence) -> f32 {
        self.measure.hidden_words(evidence)
    }
}

impl Scorer for VariantScorer {
    fn name(&self) -> &'static str {
        NAME
    }

    fn score(&self, msg: &MessageContext<'_>) -> Result<ModelScore, ScoringError> {
        let evidence = self.evidence(msg.normalized);
        let score = self.score_evidence(&evidence);
        Ok(ModelScore::new(NAME, score, evidence.describe())
            .with_hidden_words(self.hidden_words(&evidence)))
    }
}
