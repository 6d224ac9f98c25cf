//! Fits the fusion ([`smsguard_scoring::fusion`]) on the scorers' dev outputs, out of fold:
//! the shipped weights are fitted on every dev row, but the thresholds are picked on, and every
//! reported figure is computed from, verdicts whose weights were fitted without the row judged
//! (k folds, row `i` in fold `i % k`, as [`crate::fusion_head::out_of_fold_scores`] splits them).

use std::collections::BTreeMap;

use smsguard_core::{Label, Market, PIPELINE_VERSION};
use smsguard_eval::metrics::threshold_for_fpr;
use smsguard_scoring::calibration::Platt;
use smsguard_scoring::fusion::{
    self, default_inputs, EdgeInput, FusedVerdict, FusionModel, Head, InputTransform,
    ScorerOutcome, EDGE_INPUT,
};
use smsguard_scoring::{policy, Action};

use crate::cloud_models::sample_weights;
use crate::fusion_head::{fit_head, fit_weights, FitConfig, Judging};

/// The fusion's dev rows: each message's scorer outcomes, the edge's verdict (when the edge
/// model was available), truth, corpus and market.
#[derive(Debug)]
pub struct DevRows<'a> {
    pub outcomes: &'a [Vec<ScorerOutcome>],
    pub edge: Option<&'a [Option<EdgeInput>]>,
    pub spam: &'a [bool],
    pub sources: &'a [usize],
    pub markets: &'a [Market],
}

impl DevRows<'_> {
    fn edge_of(&self, i: usize) -> Option<EdgeInput> {
        self.edge.and_then(|e| e[i])
    }

    fn weights(&self) -> Vec<f32> {
        let binary: Vec<usize> = self.spam.iter().map(|&s| usize::from(s)).collect();
        sample_weights(&binary, self.sources, 1000)
    }

    /// Transformed inputs of every row, with or without the edge's verdict.
    fn input_rows(&self, model: &FusionModel, with_edge: bool) -> Vec<Vec<f32>> {
        (0..self.outcomes.len())
            .map(|i| {
                let edge = if with_edge { self.edge_of(i) } else { None };
                input_row(model, &self.outcomes[i], edge)
            })
            .collect()
    }
}

/// Transformed inputs of one message, in `inputs` order (degraded or absent inputs are 0).
pub fn input_row(
    model: &FusionModel,
    outcomes: &[ScorerOutcome],
    edge: Option<EdgeInput>,
) -> Vec<f32> {
    let verdict = model.fuse(outcomes, edge, Market::En);
    model
        .inputs
        .iter()
        .map(|input| {
            verdict
                .contributions
                .iter()
                .find(|c| c.model == input.model)
                .map_or(0.0, |c| c.input)
        })
        .collect()
}

/// Platt calibration of the edge's spam score on dev (which the edge model did not train on).
pub fn edge_calibration(rows: &DevRows<'_>) -> Option<Platt> {
    let edge = rows.edge?;
    let (logits, spam): (Vec<f32>, Vec<bool>) = edge
        .iter()
        .zip(rows.spam)
        .filter_map(|(e, &s)| Some((InputTransform::Logit.apply(e.as_ref()?.spam_score), s)))
        .unzip();
    (!logits.is_empty()).then(|| crate::calibration_fit::fit_platt(&logits, &spam))
}

/// Fits both heads (without and, when the edge's verdicts are there, with the edge input).
pub fn fit_fusion(rows: &DevRows<'_>, config: &FitConfig) -> FusionModel {
    let inputs = default_inputs();
    let placeholder = Head {
        weights: vec![0.0; inputs.len()],
        bias: 0.0,
        thresholds: fusion::Thresholds {
            tag: 0.5,
            quarantine: 0.5,
            block: 0.5,
        },
        markets: Default::default(),
        prior_inputs: Vec::new(),
    };
    let mut model = FusionModel {
        format: fusion::FORMAT_VERSION,
        pipeline_version: PIPELINE_VERSION,
        inputs,
        with_edge: placeholder.clone(),
        without_edge: placeholder,
        edge_calibration: edge_calibration(rows),
        fraud_tag: fraud_operating_points(rows, config),
        cache_ttl_seconds: Default::default(),
    };
    let weights = rows.weights();
    let fit = |model: &FusionModel, with_edge: bool| {
        let active: Vec<bool> = model
            .inputs
            .iter()
            .map(|i| with_edge || i.model != EDGE_INPUT)
            .collect();
        let input_rows = rows.input_rows(model, with_edge);
        fit_head(
            &model.inputs,
            &input_rows,
            rows.spam,
            &weights,
            &active,
            &Judging {
                markets: rows.markets,
                tagged_anyway: &|i, score| {
                    policy_tags_when_allowed(model, &rows.outcomes[i], rows.markets[i], score)
                },
            },
            config,
        )
    };
    model.without_edge = fit(&model, false);
    model.with_edge = match rows.edge {
        Some(_) => fit(&model, true),
        None => model.without_edge.clone(),
    };
    model
}

/// Whether the message would be flagged at a fused `score` that its market's thresholds allow:
/// by a forced action, or by the category policy ([`policy::apply`], as `CloudScorer::score`
/// applies it after fusion). Reads the model's fraud operating points, not its heads.
fn policy_tags_when_allowed(
    model: &FusionModel,
    outcomes: &[ScorerOutcome],
    market: Market,
    score: f32,
) -> bool {
    let mut verdict = model.fuse(outcomes, None, market);
    if verdict.forced_action.is_some() {
        return verdict.action != Action::Allow;
    }
    (verdict.spam_score, verdict.action, verdict.label) = (score, Action::Allow, Label::Ham);
    policy::apply(verdict, outcomes, model).action != Action::Allow
}

/// The fraud operating point of each market with enough dev ham: the least multiclass fraud
/// probability that flags at most `config.fraud_tag_fpr` of that market's dev ham, and at
/// least `config.fraud_tag_floor`.
pub fn fraud_operating_points(rows: &DevRows<'_>, config: &FitConfig) -> BTreeMap<Market, f32> {
    Market::ALL
        .iter()
        .filter_map(|&market| {
            let ham: Vec<f32> = (0..rows.outcomes.len())
                .filter(|&i| !rows.spam[i] && rows.markets[i] == market)
                .filter_map(|i| policy::fraud_probability(&rows.outcomes[i]))
                .collect();
            let threshold =
                threshold_for_fpr(&ham, config.fraud_tag_fpr).max(config.fraud_tag_floor);
            (ham.len() >= config.min_market_ham && threshold <= 1.0).then_some((market, threshold))
        })
        .collect()
}

/// Every dev row's verdict from a model whose weights (both heads) were fitted on the other
/// folds; thresholds, calibration and everything else as in `model`.
pub fn out_of_fold_verdicts(
    model: &FusionModel,
    rows: &DevRows<'_>,
    with_edge: bool,
    config: &FitConfig,
) -> Vec<FusedVerdict> {
    let folds = config.folds.max(2);
    let n = rows.outcomes.len();
    let weights = rows.weights();
    let input_rows = rows.input_rows(model, with_edge);
    let active: Vec<bool> = model
        .inputs
        .iter()
        .map(|i| with_edge || i.model != EDGE_INPUT)
        .collect();
    let mut verdicts: Vec<Option<FusedVerdict>> = vec![None; n];
    for fold in 0..folds {
        let keep: Vec<usize> = (0..n).filter(|i| i % folds != fold).collect();
        let fitted = fit_weights(
            &model.inputs,
            &keep
                .iter()
                .map(|&i| input_rows[i].clone())
                .collect::<Vec<_>>(),
            &keep.iter().map(|&i| rows.spam[i]).collect::<Vec<_>>(),
            &keep.iter().map(|&i| weights[i]).collect::<Vec<_>>(),
            &active,
            config,
        );
        let mut fold_model = model.clone();
        let head = if with_edge {
            &mut fold_model.with_edge
        } else {
            &mut fold_model.without_edge
        };
        (head.weights, head.bias) = (fitted.weights, fitted.bias);
        for i in (fold..n).step_by(folds) {
            let edge = if with_edge { rows.edge_of(i) } else { None };
            verdicts[i] = Some(fold_model.fuse(&rows.outcomes[i], edge, rows.markets[i]));
        }
    }
    verdicts.into_iter().flatten().collect()
}

/// The index of a verdict's label in [`Label::ALL`].
pub fn label_index(label: Label) -> usize {
    Label::ALL.iter().position(|l| *l == label).unwrap_or(0)
}
