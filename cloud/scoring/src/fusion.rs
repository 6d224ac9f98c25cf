//! Fusion: a stacked logistic model over the scorers' scores (and the edge's own verdict when the
//! phone sent one) that turns them into one [`FusedVerdict`].
//!
//! `logit = bias + Σ weight_i · input_i`, with `input_i` the scorer's score passed through its
//! [`InputTransform`] (the log-odds for the probabilistic models, the raw 0..1 score for the
//! others); `spam_score = sigmoid(logit)`. Every verdict lists one [`Contribution`] per input with
//! its `term = weight · input`, so `bias + Σ term` is exactly the logit of the final score.
//!
//! Weights and bias are fitted on dev-split outputs by the trainer (`smsguard-train`'s
//! `fusion_head`; the server links no fitting code); there are
//! two heads, one for requests with an edge verdict and one without. Inputs that do not vary on
//! dev (the sender scorer: corpora have no senders) keep a documented prior weight.
//!
//! Monotone: every weight is at least 0 and every transform is increasing, so more evidence from
//! any input never lowers the score (a file with a negative weight is refused). When the rules
//! scorer names a fraud type (its label is `fraud`) and the phone sent its verdict, the score is
//! at least the edge's calibrated score ([`FusionModel::edge_calibration`]): the cloud cannot
//! talk the phone out of fraud it recognised. The lift is a contribution of its own
//! ([`FRAUD_FLOOR`]), so the contributions still add up to the logit.
//!
//! Operating points: each head holds action thresholds per market ([`Market`], the message's
//! dominant script unless the device says otherwise), picked by the trainer on that market's
//! dev ham from out-of-fold fused scores ([`out_of_fold_scores`]); every verdict names the
//! market and thresholds it was judged at in an [`OPERATING_POINT`] contribution (weight 0).
//!
//! A scorer that fails or is missing degrades the verdict: its contribution is flagged
//! `degraded`, its term is dropped (0), the verdict is marked degraded and gets a short cache TTL.
//! Forced actions override the thresholds (`Block > Quarantine > Allow`); an operator's (rules)
//! outranks one derived from user reports, so reports cannot flip an allow rule.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use smsguard_core::{Label, Market, PIPELINE_VERSION};

use crate::calibration::Platt;
use crate::multiclass::arg_max_among;
use crate::{ForcedAction, ModelScore};

/// Name of the edge verdict input.
pub const EDGE_INPUT: &str = "edge";
/// Name of the rules scorer, whose `fraud` label raises the floor.
pub const RULES_INPUT: &str = "rules";
/// Contribution that lifts the score to the edge's calibrated score on a fraud rule.
pub const FRAUD_FLOOR: &str = "fraud_floor";
/// Contribution (weight 0) naming the market and thresholds a verdict was judged at.
pub const OPERATING_POINT: &str = "operating_point";
/// Version of the `fusion.json` layout (2: per-market thresholds, edge calibration, weights at
/// least 0).
pub const FORMAT_VERSION: u32 = 2;

#[cfg(smsguard_embedded_fusion)]
const EMBEDDED: Option<&str> = Some(include_str!("../../models/fusion.json"));
#[cfg(not(smsguard_embedded_fusion))]
const EMBEDDED: Option<&str> = None;

#[derive(Debug, thiserror::Error)]
pub enum FusionError {
    #[error("no fusion model was embedded at build time (cloud/models/fusion.json missing)")]
    NoEmbeddedModel,
    #[error("fusion model is invalid: {0}")]
    Invalid(String),
}

/// What the cloud tells the phone to do: the core's one `Action`.
pub use smsguard_core::Action;

/// How a scorer's 0..1 score becomes a fusion input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputTransform {
    /// The score itself.
    Identity,
    /// `ln(p / (1 - p))` with `p` clamped to `[1e-4, 1 - 1e-4]`.
    Logit,
}

impl InputTransform {
    pub fn apply(self, score: f32) -> f32 {
        match self {
            InputTransform::Identity => score,
            InputTransform::Logit => logit(score.clamp(1e-4, 1.0 - 1e-4)),
        }
    }
}

pub fn logit(p: f32) -> f32 {
    (p / (1.0 - p)).ln()
}

/// `logit` of a probability clamped away from 0 and 1 (finite for any input).
fn logit_of(p: f32) -> f32 {
    InputTransform::Logit.apply(p)
}

fn operating_point(market: Market, t: &Thresholds) -> Contribution {
    Contribution {
        model: OPERATING_POINT.to_owned(),
        score: 0.0,
        input: 0.0,
        weight: 0.0,
        term: 0.0,
        reason: format!(
            "market {market}: tag >= {:.3}, quarantine >= {:.3}, block >= {:.3}",
            t.tag, t.quarantine, t.block
        ),
        degraded: false,
    }
}

pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// One input of the fusion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FusionInput {
    /// The scorer's [`crate::Scorer::name`], or [`EDGE_INPUT`].
    pub model: String,
    pub transform: InputTransform,
    /// Weight used when the input does not vary on dev (nothing to learn from).
    pub prior_weight: f32,
    /// Least weight the fit may give the input (0 keeps every input from pushing towards ham).
    #[serde(default)]
    pub min_weight: f32,
}

/// Minimum fused scores of the actions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    pub tag: f32,
    pub quarantine: f32,
    pub block: f32,
}

impl Thresholds {
    pub fn action(&self, spam_score: f32) -> Action {
        if spam_score >= self.block {
            Action::Block
        } else if spam_score >= self.quarantine {
            Action::Quarantine
        } else if spam_score >= self.tag {
            Action::Tag
        } else {
            Action::Allow
        }
    }
}

/// Weights (one per [`FusionModel::inputs`] entry), bias and action thresholds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Head {
    pub weights: Vec<f32>,
    pub bias: f32,
    /// Thresholds of a market without its own (picked on all dev ham together).
    pub thresholds: Thresholds,
    /// Thresholds picked on each market's own dev ham.
    #[serde(default)]
    pub markets: BTreeMap<Market, Thresholds>,
    /// Inputs whose weight is the prior, not fitted.
    #[serde(default)]
    pub prior_inputs: Vec<String>,
}

/// Cache lifetimes of verdicts, by action; degraded verdicts get `degraded`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CacheTtl {
    pub allow: u32,
    pub tag: u32,
    pub quarantine: u32,
    pub block: u32,
    pub degraded: u32,
}

impl Default for CacheTtl {
    fn default() -> Self {
        CacheTtl {
            allow: 6 * 3600,
            tag: 6 * 3600,
            quarantine: 24 * 3600,
            block: 7 * 24 * 3600,
            degraded: 300,
        }
    }
}

/// The fusion model file (`cloud/models/fusion.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FusionModel {
    pub format: u32,
    pub pipeline_version: u32,
    pub inputs: Vec<FusionInput>,
    /// Used when the request carries the edge verdict.
    pub with_edge: Head,
    /// Used otherwise (its edge weight is ignored).
    pub without_edge: Head,
    /// Platt calibration of the edge's spam score (fitted on dev, which the edge model did not
    /// train on): the floor a fraud rule holds the fused score at. `None`: no floor.
    #[serde(default)]
    pub edge_calibration: Option<Platt>,
    /// The fraud operating point of each market: the multiclass model's fraud probability at or
    /// above which a message fusion allows is tagged as fraud ([`crate::policy`]). Picked by the
    /// trainer at a small share of that market's dev ham, apart from the fused thresholds,
    /// because what sets those (promotions that collections label ham) is not fraud-like. A
    /// market without an entry has no fraud operating point.
    #[serde(default)]
    pub fraud_tag: BTreeMap<Market, f32>,
    #[serde(default)]
    pub cache_ttl_seconds: CacheTtl,
}

/// One input's share of a verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contribution {
    pub model: String,
    /// The scorer's 0..1 score (0 when degraded).
    pub score: f32,
    /// The score after the input transform.
    pub input: f32,
    pub weight: f32,
    /// `weight * input`; 0 when degraded.
    pub term: f32,
    pub reason: String,
    pub degraded: bool,
}

/// The cloud's verdict on one message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FusedVerdict {
    pub label: Label,
    pub spam_score: f32,
    pub action: Action,
    pub bias: f32,
    /// `bias + Σ contributions[i].term == logit(spam_score)`.
    pub logit: f32,
    pub contributions: Vec<Contribution>,
    /// The rule-forced action, if one overrode the thresholds.
    pub forced_action: Option<ForcedAction>,
    /// The market whose thresholds judged the score, and those thresholds.
    pub market: Market,
    pub thresholds: Thresholds,
    pub degraded: bool,
    pub cache_ttl_seconds: u32,
}

/// A scorer's outcome as fusion sees it: its score, or why there is none (no message text).
#[derive(Debug, Clone)]
pub struct ScorerOutcome {
    pub model: String,
    pub result: Result<ModelScore, String>,
}

/// The score of the scorer named `model` among `outcomes`, if it ran and answered.
pub fn score_of<'a>(outcomes: &'a [ScorerOutcome], model: &str) -> Option<&'a ModelScore> {
    outcomes
        .iter()
        .find(|o| o.model == model)?
        .result
        .as_ref()
        .ok()
}

/// The edge's verdict on the message, sent by the phone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EdgeInput {
    pub spam_score: f32,
    pub label: Label,
}

impl FusionModel {
    /// The model compiled in from `cloud/models/fusion.json`.
    pub fn embedded() -> Result<Self, FusionError> {
        Self::from_json(EMBEDDED.ok_or(FusionError::NoEmbeddedModel)?)
    }

    pub fn from_json(json: &str) -> Result<Self, FusionError> {
        let model: FusionModel =
            serde_json::from_str(json).map_err(|e| FusionError::Invalid(e.to_string()))?;
        model.validate()?;
        Ok(model)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }

    fn validate(&self) -> Result<(), FusionError> {
        let invalid = |why: String| Err(FusionError::Invalid(why));
        if self.format != FORMAT_VERSION {
            return invalid(format!(
                "format {} (expected {FORMAT_VERSION})",
                self.format
            ));
        }
        if self.pipeline_version != PIPELINE_VERSION {
            return invalid(format!(
                "pipeline version {} (code is {PIPELINE_VERSION})",
                self.pipeline_version
            ));
        }
        for head in [&self.with_edge, &self.without_edge] {
            if head.weights.len() != self.inputs.len() {
                return invalid("a head's weight count differs from the input count".into());
            }
            if let Some((input, w)) = self
                .inputs
                .iter()
                .zip(&head.weights)
                .find(|(_, w)| !w.is_finite() || **w < 0.0)
            {
                return invalid(format!(
                    "weight {w} of {}: fusion must be monotone (weights at least 0)",
                    input.model
                ));
            }
            for t in std::iter::once(&head.thresholds).chain(head.markets.values()) {
                if !(t.tag <= t.quarantine && t.quarantine <= t.block) {
                    return invalid("thresholds must rise from tag to quarantine to block".into());
                }
            }
        }
        if let Some((market, p)) = self
            .fraud_tag
            .iter()
            .find(|(_, p)| !(**p > 0.0 && **p <= 1.0))
        {
            return invalid(format!(
                "fraud operating point {p} of market {market}: a probability in (0, 1] is needed"
            ));
        }
        if self
            .edge_calibration
            .is_some_and(|c| !(c.a > 0.0 && c.b.is_finite()))
        {
            return invalid("the edge calibration must have a positive slope".into());
        }
        Ok(())
    }

    /// The scorers this model was fitted on, in its input order (its inputs but the edge's).
    pub fn scorer_names(&self) -> Vec<&str> {
        self.inputs
            .iter()
            .map(|input| input.model.as_str())
            .filter(|model| *model != EDGE_INPUT)
            .collect()
    }

    /// The head for a request with or without the edge verdict.
    pub fn head(&self, with_edge: bool) -> &Head {
        if with_edge {
            &self.with_edge
        } else {
            &self.without_edge
        }
    }

    /// The multiclass fraud probability at or above which `market`'s allowed messages are
    /// tagged as fraud, if that market has a fraud operating point.
    pub fn fraud_tag(&self, market: Market) -> Option<f32> {
        self.fraud_tag.get(&market).copied()
    }

    /// The thresholds a head judges a market at.
    pub fn thresholds(&self, with_edge: bool, market: Market) -> Thresholds {
        let head = self.head(with_edge);
        *head.markets.get(&market).unwrap_or(&head.thresholds)
    }

    /// Fuses the scorers' outcomes (and the edge verdict, if any) into a verdict, judged at the
    /// thresholds of `market`.
    pub fn fuse(
        &self,
        outcomes: &[ScorerOutcome],
        edge: Option<EdgeInput>,
        market: Market,
    ) -> FusedVerdict {
        let head = self.head(edge.is_some());
        let mut contributions = Vec::with_capacity(self.inputs.len());
        for (input, &weight) in self.inputs.iter().zip(&head.weights) {
            if input.model == EDGE_INPUT {
                if let Some(edge) = edge {
                    let reason = format!("edge verdict {} ({:.3})", edge.label, edge.spam_score);
                    contributions.push(contribution(input, weight, edge.spam_score, reason));
                }
                continue;
            }
            let found = outcomes.iter().find(|o| o.model == input.model);
            contributions.push(match found.map(|o| &o.result) {
                Some(Ok(score)) => contribution(input, weight, score.score, score.reason.clone()),
                Some(Err(why)) => degraded(input, weight, format!("scorer failed: {why}")),
                None => degraded(input, weight, "scorer not configured".to_owned()),
            });
        }
        let mut logit = head.bias + contributions.iter().map(|c| c.term).sum::<f32>();
        if let Some(floor) = self.fraud_floor(outcomes, edge, logit) {
            logit += floor.term;
            contributions.push(floor);
        }
        let spam_score = sigmoid(logit);
        let thresholds = self.thresholds(edge.is_some(), market);
        contributions.push(operating_point(market, &thresholds));
        let forced = ForcedAction::decide(outcomes.iter().filter_map(|o| {
            let score = o.result.as_ref().ok()?;
            Some((score.forced_action?, score.forced_by))
        }))
        .map(|(action, _)| action);
        let action = match forced {
            Some(ForcedAction::Allow) => Action::Allow,
            Some(ForcedAction::Quarantine) => Action::Quarantine,
            Some(ForcedAction::Block) => Action::Block,
            None => thresholds.action(spam_score),
        };
        let degraded = contributions.iter().any(|c| c.degraded);
        FusedVerdict {
            label: verdict_label(action, outcomes),
            spam_score,
            action,
            bias: head.bias,
            logit,
            contributions,
            forced_action: forced,
            market,
            thresholds,
            degraded,
            cache_ttl_seconds: self.ttl(action, degraded),
        }
    }

    /// The lift that holds the logit at the edge's calibrated score when the rules scorer named
    /// a fraud type; `None` when no fraud rule fired, there is no edge verdict or calibration,
    /// or the score is already there.
    fn fraud_floor(
        &self,
        outcomes: &[ScorerOutcome],
        edge: Option<EdgeInput>,
        logit: f32,
    ) -> Option<Contribution> {
        let (edge, calibration) = (edge?, self.edge_calibration?);
        let fired = score_of(outcomes, RULES_INPUT)?.label == Some(Label::Fraud);
        let floor = calibration.probability(InputTransform::Logit.apply(edge.spam_score));
        let floor_logit = logit_of(floor);
        (fired && floor_logit > logit).then(|| Contribution {
            model: FRAUD_FLOOR.to_owned(),
            score: floor,
            input: floor_logit - logit,
            weight: 1.0,
            term: floor_logit - logit,
            reason: format!("a fraud rule fired: score held at the edge's calibrated {floor:.3}"),
            degraded: false,
        })
    }

    /// How long the edge may cache a verdict with this action.
    pub fn ttl(&self, action: Action, degraded: bool) -> u32 {
        let ttl = &self.cache_ttl_seconds;
        if degraded {
            return ttl.degraded;
        }
        match action {
            Action::Allow => ttl.allow,
            Action::Tag => ttl.tag,
            Action::Quarantine => ttl.quarantine,
            Action::Block => ttl.block,
        }
    }
}

fn contribution(input: &FusionInput, weight: f32, score: f32, reason: String) -> Contribution {
    let value = input.transform.apply(score);
    Contribution {
        model: input.model.clone(),
        score,
        input: value,
        weight,
        term: weight * value,
        reason,
        degraded: false,
    }
}

fn degraded(input: &FusionInput, weight: f32, reason: String) -> Contribution {
    Contribution {
        model: input.model.clone(),
        score: 0.0,
        input: 0.0,
        weight,
        term: 0.0,
        reason,
        degraded: true,
    }
}

/// Ham when the action is Allow; otherwise the multiclass model's most likely spam class, else a
/// spam class another scorer named, else `Spam`.
fn verdict_label(action: Action, outcomes: &[ScorerOutcome]) -> Label {
    if action == Action::Allow {
        return Label::Ham;
    }
    let scores = || outcomes.iter().filter_map(|o| o.result.as_ref().ok());
    if let Some(probs) = scores().find_map(|s| s.probabilities) {
        return Label::ALL[arg_max_among(&probs, 1..Label::ALL.len())];
    }
    scores()
        .find_map(|s| s.label.filter(|l| l.is_spam()))
        .unwrap_or(Label::Spam)
}

/// The default fusion inputs: multiclass, lexical and edge as log-odds, the others as raw scores; the
/// sender's prior weight (corpora have no senders to learn it from) makes a clear burst (score
/// 1) add 3 to the logit.
pub fn default_inputs() -> Vec<FusionInput> {
    let input = |model: &str, transform, prior_weight, min_weight| FusionInput {
        model: model.to_owned(),
        transform,
        prior_weight,
        min_weight,
    };
    vec![
        input("multiclass", InputTransform::Logit, 1.0, 0.0),
        input(crate::lexical::NAME, InputTransform::Logit, 1.0, 0.0),
        // The similarity memory earns its keep on what dev cannot show: new campaigns and user
        // reports. On dev its seeded matches repeat what the multiclass learned from the same
        // training spam, so the fit alone drove its weight to 0 and a report then changed no
        // verdict; 0.5 keeps a report (score 0.9) worth +0.45 logit.
        input("similarity", InputTransform::Identity, 3.0, 0.5),
        input("variant", InputTransform::Identity, 1.0, 0.0),
        input("rules", InputTransform::Identity, 3.0, 0.0),
        input("sender", InputTransform::Identity, 3.0, 0.0),
        input(EDGE_INPUT, InputTransform::Logit, 0.5, 0.0),
    ]
}
