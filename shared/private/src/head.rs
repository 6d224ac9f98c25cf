//! The private-mode fusion head: how the phone combines its local calibrated spam score with the
//! K class scores it decrypted. Fitted on dev by `smsguard-train fit-private-head`, published by
//! the cloud with the private model (`cloud/models/private_head.json`, carried in every
//! `PrivateClassify` answer), applied on the phone (`smsguard_edge::engine::fuse_private`).
//!
//! The private evidence is one integer: the best non-ham class score minus the ham score (the
//! margin), exactly computable from the decrypted scores. Per market the head is a monotone
//! logistic model `p = sigmoid(bias + a * logit(local) + b * margin / margin_scale)` (a, b >= 0)
//! with a tag and a quarantine threshold on `p`. A threshold that is absent never fires: the fit
//! found no threshold at which the private scores add more spam than ham on every dev corpus.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use smsguard_core::{Action, Market};

use crate::PrivateError;

/// A local spam score is clamped this far from 0 and 1 before its logit (finite for any input).
const SCORE_EPSILON: f64 = 1e-6;

/// The head's local input: the logit of the local spam score, clamped to stay finite.
pub fn local_logit(local_spam_score: f32) -> f64 {
    let local = f64::from(local_spam_score).clamp(SCORE_EPSILON, 1.0 - SCORE_EPSILON);
    (local / (1.0 - local)).ln()
}

/// What the decrypted class scores say about spam.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrivateEvidence {
    /// Best non-ham class score minus the ham score (positive: the private model leans spam).
    pub margin: i64,
    /// Index of the best non-ham class (the label a raised verdict carries).
    pub best_spam_class: usize,
}

impl PrivateEvidence {
    /// The evidence of `scores`, whose class `ham` is the ham class. `None` without a ham class
    /// and at least one other.
    pub fn of(scores: &[i64], ham: usize) -> Option<PrivateEvidence> {
        let ham_score = *scores.get(ham)?;
        let (best_spam_class, best) = scores
            .iter()
            .enumerate()
            .filter(|&(k, _)| k != ham)
            // The first class wins ties, as the arg-max does.
            .fold(None, |best: Option<(usize, i64)>, (k, &s)| match best {
                Some((_, b)) if b >= s => best,
                _ => Some((k, s)),
            })?;
        Some(PrivateEvidence {
            margin: best - ham_score,
            best_spam_class,
        })
    }
}

/// One market's weights and thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MarketHead {
    /// Weight of the logit of the local spam score (>= 0).
    pub local_weight: f64,
    /// Weight of `margin / margin_scale` (>= 0).
    pub margin_weight: f64,
    pub bias: f64,
    /// Least `p` that tags; `None`: never.
    pub tag: Option<f64>,
    /// Least `p` that quarantines; `None`: never.
    pub quarantine: Option<f64>,
}

/// The published head.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrivateHead {
    /// This head's version (a digest of its content, set by the trainer).
    pub version: String,
    /// Version of the private model whose scores it was fitted on (the server's model version).
    pub model_version: String,
    /// Name of the ham class among the model's labels.
    pub ham_label: String,
    /// Margins are divided by this before weighting (keeps the weights near 1).
    pub margin_scale: f64,
    pub markets: BTreeMap<Market, MarketHead>,
}

/// The head's view of one message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeadDecision {
    /// The fused spam probability.
    pub probability: f64,
    /// The least action it asks for (`Allow`: it asks for nothing).
    pub action: Action,
}

impl PrivateHead {
    /// Checks that every market is present, weights are finite and monotone (>= 0), and
    /// thresholds are probabilities with the quarantine at or above the tag.
    pub fn validate(&self) -> Result<(), PrivateError> {
        let bad = |why: String| Err(PrivateError::InvalidModel(format!("private head: {why}")));
        if !(self.margin_scale.is_finite() && self.margin_scale > 0.0) {
            return bad(format!(
                "margin scale {} is not positive",
                self.margin_scale
            ));
        }
        for market in Market::ALL {
            let Some(head) = self.markets.get(&market) else {
                return bad(format!("no head for market {market}"));
            };
            let monotone = [head.local_weight, head.margin_weight]
                .iter()
                .all(|w| w.is_finite() && *w >= 0.0);
            if !monotone || !head.bias.is_finite() {
                return bad(format!("market {market}: weights not finite and >= 0"));
            }
            let probability = |t: Option<f64>| t.is_none_or(|t| (0.0..=1.0).contains(&t));
            if !probability(head.tag) || !probability(head.quarantine) {
                return bad(format!("market {market}: a threshold outside 0..=1"));
            }
            if let (Some(tag), Some(quarantine)) = (head.tag, head.quarantine) {
                if quarantine < tag {
                    return bad(format!("market {market}: quarantine below tag"));
                }
            }
            if head.tag.is_none() && head.quarantine.is_some() {
                return bad(format!("market {market}: a quarantine without a tag"));
            }
        }
        Ok(())
    }

    /// The fused probability of one message from its local spam score and private margin.
    pub fn probability(&self, market: Market, local_spam_score: f32, margin: i64) -> f64 {
        let Some(head) = self.markets.get(&market) else {
            return 0.0;
        };
        let z = head.bias
            + head.local_weight * local_logit(local_spam_score)
            + head.margin_weight * margin as f64 / self.margin_scale;
        1.0 / (1.0 + (-z).exp())
    }

    /// The action the head asks for (never `Block`: the private model only confirms).
    pub fn decide(&self, market: Market, local_spam_score: f32, margin: i64) -> HeadDecision {
        let probability = self.probability(market, local_spam_score, margin);
        let reached = |t: Option<f64>| t.is_some_and(|t| probability >= t);
        let action = match self.markets.get(&market) {
            Some(head) if reached(head.quarantine) => Action::Quarantine,
            Some(head) if reached(head.tag) => Action::Tag,
            _ => Action::Allow,
        };
        HeadDecision {
            probability,
            action,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(tag: Option<f64>, quarantine: Option<f64>) -> PrivateHead {
        let market = MarketHead {
            local_weight: 1.0,
            margin_weight: 2.0,
            bias: -1.0,
            tag,
            quarantine,
        };
        PrivateHead {
            version: "h".into(),
            model_version: "m".into(),
            ham_label: "ham".into(),
            margin_scale: 1000.0,
            markets: Market::ALL.iter().map(|&m| (m, market)).collect(),
        }
    }

    #[test]
    fn evidence_is_the_best_non_ham_score_minus_ham() {
        let e = PrivateEvidence::of(&[100, 40, 130, 130, -5], 0).unwrap();
        assert_eq!(
            (e.margin, e.best_spam_class),
            (30, 2),
            "first class on ties"
        );
        let e = PrivateEvidence::of(&[-7, 2], 1).unwrap();
        assert_eq!((e.margin, e.best_spam_class), (-9, 0));
        assert_eq!(PrivateEvidence::of(&[5], 0), None);
        assert_eq!(PrivateEvidence::of(&[5, 6], 2), None);
    }

    #[test]
    fn probability_grows_with_both_inputs() {
        let h = head(Some(0.5), Some(0.9));
        let p = |local, margin| h.probability(Market::En, local, margin);
        assert!(p(0.2, 0) < p(0.4, 0));
        assert!(p(0.2, -500) < p(0.2, 500));
        // bias -1, logit(0.5) = 0, margin 500 / 1000 * 2 = 1: z = 0.
        assert!((p(0.5, 500) - 0.5).abs() < 1e-12);
        assert!(p(0.0, 0).is_finite() && p(1.0, 0) < 1.0);
    }

    #[test]
    fn thresholds_pick_the_action_and_absent_ones_never_fire() {
        let h = head(Some(0.5), Some(0.9));
        assert_eq!(h.decide(Market::Zh, 0.5, 400).action, Action::Allow);
        assert_eq!(h.decide(Market::Zh, 0.5, 500).action, Action::Tag);
        assert_eq!(h.decide(Market::Zh, 0.99, 5000).action, Action::Quarantine);
        let never = head(None, None);
        assert_eq!(never.decide(Market::Zh, 1.0, 1 << 40).action, Action::Allow);
    }

    #[test]
    fn validation_refuses_what_would_break_monotony_or_order() {
        assert!(head(Some(0.5), Some(0.9)).validate().is_ok());
        assert!(head(None, None).validate().is_ok());
        assert!(head(Some(0.9), Some(0.5)).validate().is_err());
        assert!(head(None, Some(0.5)).validate().is_err());
        assert!(head(Some(1.5), None).validate().is_err());
        let mut negative = head(Some(0.5), None);
        negative.markets.get_mut(&Market::En).unwrap().margin_weight = -1.0;
        assert!(negative.validate().is_err());
        let mut missing = head(Some(0.5), None);
        missing.markets.remove(&Market::Zh);
        assert!(missing.validate().is_err());
        let json = serde_json::to_string(&head(Some(0.5), None)).unwrap();
        let back: PrivateHead = serde_json::from_str(&json).unwrap();
        assert_eq!(back, head(Some(0.5), None));
    }
}
