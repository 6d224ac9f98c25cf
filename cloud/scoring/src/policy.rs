//! What the cloud does with a message once fusion has scored it: the action follows the
//! category, not the score alone (users file promotions apart from junk, as iOS and Google
//! Messages do). Applied in one place, [`crate::CloudScorer::score`], after fusion.
//!
//! | evidence (from the `rules` scorer's knowledge hits and the fused label) | action |
//! |---|---|
//! | an operator's or a report quorum's forced action | that action (the policy stays out) |
//! | a flagged advertisement with an opt-out (`opt_out` entry), no fraud or illegal evidence | **tag**, label `ad` (a promotion) |
//! | a harmful knowledge entry (fraud or illegal type, a denied host), fusion allowed | **tag**, the entry's label |
//! | a harmful knowledge entry, fusion tagged | **quarantine** |
//! | a harmful knowledge entry, fusion quarantined or blocked | unchanged, labelled with the entry's class |
//! | a junk knowledge entry (label `spam`: a chain letter, bought followers, pharmacy spam), fusion allowed | **tag**, label `spam` (as the phone does offline) |
//! | a fraud signal (an entry of no class: contact lure, urgency, look-alike host, short link), fusion allowed at a fused score of at least 0.5 | **tag**, label `spam` (as the phone does offline) |
//! | the multiclass model's fraud probability at or above the market's fraud operating point ([`FusionModel::fraud_tag`]), fusion allowed, none of the above | **tag**, label `fraud` |
//! | a disguise: the `variant` scorer's hidden-word score (its score without defanged links) at least [`DISGUISE_MIN_SCORE`] (0.3), fusion allowed at a fused score of at least 0.5, none of the above | **tag**, label `spam` |
//! | anything else | fusion's action (its thresholds) |
//!
//! "Fraud or illegal evidence" that keeps a promotion from being let off: a harmful knowledge
//! hit, or a fused label of `fraud` or `illegal`. A knowledge entry alone never quarantines (the
//! entries have no calibrated score); it needs fusion to agree at least as far as a tag.
//!
//! Why a fraud operating point beside the fused thresholds: those are set by the ham that scores
//! highest, and in the corpora that is promotions labelled ham (telecom offers, shop sales), so
//! the tag threshold sits where a fraud script written unlike any corpus spam stays allowed. Ham
//! that reads as a promotion does not read as fraud, so the fraud probability can be judged at a
//! threshold of its own, picked on the same market's dev ham (see the trainer's
//! `fraud_operating_points`).
//! Every change adds a `policy` contribution of weight 0 (the logit still sums) saying why.

use smsguard_core::knowledge::{self, OPT_OUT, SIGNAL_MIN_SCORE};
use smsguard_core::Label;

use crate::fusion::{score_of, Action, Contribution, FusedVerdict, FusionModel, ScorerOutcome};
use crate::RuleHit;
use crate::{multiclass, variant};

/// The name of the contribution the policy adds when it changes a verdict.
pub const POLICY: &str = "policy";

/// Least hidden-word score that counts as a disguise (the core's, shared with the phone's
/// offline rule). Over every corpus's dev ham and the blind dev look-alikes, no ham with a fused
/// score of at least 0.5 reached it (README, "A disguise tags what fusion leans spam on").
pub use smsguard_core::variant::DISGUISE_MIN_SCORE;

/// Applies the category policy to a fused verdict (see the module's table).
pub fn apply(
    mut verdict: FusedVerdict,
    outcomes: &[ScorerOutcome],
    fusion: &FusionModel,
) -> FusedVerdict {
    if verdict.forced_action.is_some() {
        return verdict;
    }
    let hits: Vec<&RuleHit> = outcomes
        .iter()
        .filter_map(|o| o.result.as_ref().ok())
        .flat_map(|score| &score.hits)
        .collect();
    let harmful = hits
        .iter()
        .filter(|h| h.harmful)
        .max_by(|a, b| a.weight.total_cmp(&b.weight));
    let opt_out = hits.iter().find(|h| h.kind == OPT_OUT);
    let harmful_label = matches!(verdict.label, Label::Fraud | Label::Illegal);
    let signal = hits
        .iter()
        .find(|h| knowledge::is_signal(h.label, h.weight, &h.kind));
    let junk = hits.iter().find(|h| knowledge::is_junk(h.label));
    let change = match (harmful, junk, opt_out, signal) {
        (Some(hit), ..) => raise(&verdict, hit),
        (None, Some(hit), ..) if verdict.action == Action::Allow => Some(junk_tag(hit)),
        (None, _, Some(opt_out), _) if !harmful_label => promotion(&verdict, opt_out),
        (None, _, None, Some(signal)) => signal_tag(&verdict, signal),
        _ => None,
    }
    .or_else(|| fraud_operating_point(&verdict, outcomes, fusion))
    .or_else(|| disguise_tag(&verdict, outcomes));
    if let Some((action, label, reason)) = change {
        verdict.action = action;
        verdict.label = label;
        verdict.cache_ttl_seconds = fusion.ttl(action, verdict.degraded);
        verdict.contributions.push(Contribution {
            model: POLICY.to_owned(),
            score: 0.0,
            input: 0.0,
            weight: 0.0,
            term: 0.0,
            reason,
            degraded: false,
        });
    }
    verdict
}

/// A flagged advertisement with an opt-out is a promotion: tagged (never more), labelled `ad`.
fn promotion(verdict: &FusedVerdict, opt_out: &RuleHit) -> Option<(Action, Label, String)> {
    if verdict.action == Action::Allow
        || (verdict.action == Action::Tag && verdict.label == Label::Ad)
    {
        return None;
    }
    let action = match verdict.action {
        Action::Tag => "tag".to_owned(),
        held => format!("tag, not {}", held.as_str()),
    };
    Some((
        Action::Tag,
        Label::Ad,
        format!(
            "promotion: an advertisement with an opt-out ({}) and no fraud or illegal evidence -> {action}",
            opt_out.id
        ),
    ))
}

/// Fusion allowed the message at a fused score of at least [`SIGNAL_MIN_SCORE`]: the lean a
/// fraud signal or a disguise needs beside it to tag.
fn allowed_but_leaning_spam(verdict: &FusedVerdict) -> bool {
    verdict.action == Action::Allow && verdict.spam_score >= SIGNAL_MIN_SCORE
}

/// A fraud signal on a message fusion leans spam on but allows: tagged, labelled `spam`.
fn signal_tag(verdict: &FusedVerdict, signal: &RuleHit) -> Option<(Action, Label, String)> {
    if !allowed_but_leaning_spam(verdict) {
        return None;
    }
    let reason = format!(
        "fraud signal: {} ({}) and fused score {:.4} >= {SIGNAL_MIN_SCORE} -> tag, not allow",
        signal.kind, signal.id, verdict.spam_score
    );
    Some((Action::Tag, Label::Spam, reason))
}

/// A junk knowledge entry on a message fusion allows: tagged, labelled `spam`.
fn junk_tag(hit: &RuleHit) -> (Action, Label, String) {
    let reason = format!("junk type {} ({}) -> tag, not allow", hit.kind, hit.id);
    (Action::Tag, Label::Spam, reason)
}

/// The multiclass model's fraud probability, when it scored the message.
pub fn fraud_probability(outcomes: &[ScorerOutcome]) -> Option<f32> {
    let fraud = Label::ALL.iter().position(|l| *l == Label::Fraud)?;
    score_of(outcomes, multiclass::NAME)?
        .probabilities
        .map(|p| p[fraud])
}

/// A message fusion allows that the multiclass model reads as fraud at its market's fraud
/// operating point: tagged, labelled `fraud`.
fn fraud_operating_point(
    verdict: &FusedVerdict,
    outcomes: &[ScorerOutcome],
    fusion: &FusionModel,
) -> Option<(Action, Label, String)> {
    if verdict.action != Action::Allow {
        return None;
    }
    let threshold = fusion.fraud_tag(verdict.market)?;
    let p = fraud_probability(outcomes)?;
    (p >= threshold).then(|| {
        let reason = format!(
            "fraud operating point: multiclass p(fraud) {p:.4} >= the {} fraud threshold {threshold:.4} -> tag, not allow",
            verdict.market
        );
        (Action::Tag, Label::Fraud, reason)
    })
}

/// A message that hides its words (the `variant` scorer's evidence) and that fusion leans spam
/// on but allows: tagged, labelled `spam`.
fn disguise_tag(
    verdict: &FusedVerdict,
    outcomes: &[ScorerOutcome],
) -> Option<(Action, Label, String)> {
    if !allowed_but_leaning_spam(verdict) {
        return None;
    }
    let variant = score_of(outcomes, variant::NAME)?;
    let hidden = variant.hidden_words.unwrap_or(variant.score);
    (hidden >= DISGUISE_MIN_SCORE).then(|| {
        let reason = format!(
            "disguise: hidden-word score {hidden:.4} >= {DISGUISE_MIN_SCORE} ({}) and fused score {:.4} >= {SIGNAL_MIN_SCORE} -> tag, not allow",
            variant.reason, verdict.spam_score
        );
        (Action::Tag, Label::Spam, reason)
    })
}

/// A harmful knowledge hit raises an allowed message to a tag and a tagged one to quarantine,
/// and names the class (fraud or illegal) where fusion's label was ad or spam.
fn raise(verdict: &FusedVerdict, hit: &RuleHit) -> Option<(Action, Label, String)> {
    let to = match verdict.action {
        Action::Allow => Action::Tag,
        Action::Tag => Action::Quarantine,
        held => held,
    };
    let label = match verdict.label {
        Label::Ham | Label::Spam | Label::Ad => hit.label.unwrap_or(Label::Fraud),
        known => known,
    };
    if (to, label) == (verdict.action, verdict.label) {
        return None;
    }
    let action = if to == verdict.action {
        to.as_str().to_owned()
    } else {
        format!("{}, not {}", to.as_str(), verdict.action.as_str())
    };
    let reason = format!("{label} type {} ({}) -> {action}", hit.kind, hit.id);
    Some((to, label, reason))
}
