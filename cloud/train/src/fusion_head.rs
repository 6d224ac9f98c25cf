//! Fitting one fusion head (training code: the server does not link it): weights by weighted L2
//! logistic regression, kept at least each input's floor so the fusion stays monotone, and
//! thresholds per market picked on out-of-fold scores of the ham, never on the rows the weights
//! were fitted on. The served side ([`smsguard_scoring::fusion`]) only reads the result.

use std::collections::BTreeMap;

use smsguard_core::Market;
use smsguard_eval::metrics::threshold_for_fpr;
use smsguard_scoring::fusion::{sigmoid, FusionInput, Head, Thresholds};

/// Per row, the part of the logit from inputs with a fixed weight.
fn pinned_offsets(rows: &[Vec<f32>], pinned: &[(usize, f64)]) -> Vec<f64> {
    rows.iter()
        .map(|r| pinned.iter().map(|&(j, w)| w * f64::from(r[j])).sum())
        .collect()
}

/// Settings of [`fit_head`].
#[derive(Debug, Clone, Copy)]
pub struct FitConfig {
    /// L2 penalty on the weights (not the bias), relative to the total sample weight.
    pub l2: f64,
    pub newton_steps: usize,
    /// Ham FPR budgets of the actions, per market, on out-of-fold dev scores.
    pub tag_fpr: f64,
    pub quarantine_fpr: f64,
    pub block_fpr: f64,
    /// Folds of the cross-fit that gives every dev row a score from weights fitted without it.
    pub folds: usize,
    /// Fewest dev ham of a market for thresholds of its own (else it uses the pooled ones).
    pub min_market_ham: usize,
    /// Ham FPR budget of each market's fraud operating point (on the multiclass model's fraud
    /// probability, which was fitted on train, so dev is out of sample for it).
    pub fraud_tag_fpr: f64,
    /// Least fraud operating point: the fraud class must hold at least this much of the
    /// probability. The corpora's ham has few of the messages that read closest to fraud (bank
    /// and anti-fraud notices, chats about money), so a point picked on it alone is too low: at
    /// 0.1 % of zh corpus dev ham (0.076) it tagged 7 of the 50 blind dev zh look-alikes, at 0.5
    /// none (README, "Fraud operating point").
    pub fraud_tag_floor: f32,
}

impl Default for FitConfig {
    fn default() -> Self {
        FitConfig {
            l2: 1e-3,
            newton_steps: 30,
            tag_fpr: 0.005,
            quarantine_fpr: 0.001,
            block_fpr: 0.0,
            folds: 5,
            min_market_ham: 200,
            fraud_tag_fpr: 0.001,
            fraud_tag_floor: 0.5,
        }
    }
}

/// Fitted weights of one head (one per input) and its bias.
#[derive(Debug, Clone, PartialEq)]
pub struct FittedWeights {
    pub weights: Vec<f32>,
    pub bias: f32,
    /// Inputs whose weight is the prior, not fitted.
    pub prior_inputs: Vec<String>,
}

impl FittedWeights {
    /// The fused score of one row of transformed inputs.
    pub fn score(&self, row: &[f32]) -> f32 {
        sigmoid(
            self.bias
                + row
                    .iter()
                    .zip(&self.weights)
                    .map(|(x, w)| x * w)
                    .sum::<f32>(),
        )
    }
}

/// How the rows of a head's fit are judged once it is fitted: each row's market (whose
/// thresholds apply), and whether something besides the threshold flags a row at a given
/// out-of-fold score (`tagged_anyway(row, score)`: the category policy).
pub struct Judging<'a> {
    pub markets: &'a [Market],
    pub tagged_anyway: &'a dyn Fn(usize, f32) -> bool,
}

impl std::fmt::Debug for Judging<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Judging")
            .field("markets", &self.markets.len())
            .finish_non_exhaustive()
    }
}

/// Fits one head: weights on all rows ([`fit_weights`]), thresholds per market on out-of-fold
/// scores of the ham ([`out_of_fold_scores`], [`pick_thresholds`]): no threshold is picked on
/// scores of rows the weights were fitted on. `tagged_anyway(row, out-of-fold score)` says
/// whether something besides the threshold flags that row (the category policy): such ham
/// counts against the TAG budget whatever its score.
pub fn fit_head(
    inputs: &[FusionInput],
    rows: &[Vec<f32>],
    spam: &[bool],
    sample_weights: &[f32],
    active: &[bool],
    judging: &Judging<'_>,
    config: &FitConfig,
) -> Head {
    let Judging {
        markets,
        tagged_anyway,
    } = judging;
    let fitted = fit_weights(inputs, rows, spam, sample_weights, active, config);
    let scores = out_of_fold_scores(inputs, rows, spam, sample_weights, active, config);
    let (mut thresholds, mut by_market) = pick_thresholds(&scores, spam, markets, config);
    // The category policy tags some messages whatever their score (a knowledge-base type, a
    // fraud signal on a lean): such ham spends the TAG budget before the threshold does, so it
    // counts as scoring 1 when TAG is picked.
    let tag_scores: Vec<f32> = scores
        .iter()
        .enumerate()
        .map(|(i, &score)| match !spam[i] && tagged_anyway(i, score) {
            true => 1.0,
            false => score,
        })
        .collect();
    let (tag_pooled, tag_by_market) = pick_thresholds(&tag_scores, spam, markets, config);
    thresholds.tag = tag_pooled.tag.min(1.0);
    for (market, point) in by_market.iter_mut() {
        if let Some(tag) = tag_by_market.get(market) {
            point.tag = tag.tag.min(1.0);
        }
    }
    Head {
        weights: fitted.weights,
        bias: fitted.bias,
        thresholds,
        markets: by_market,
        prior_inputs: fitted.prior_inputs,
    }
}

/// Every row's fused score from weights fitted on the other folds (row `i` is in fold
/// `i % folds`; rows come grouped by corpus, so each fold holds a share of every corpus).
pub fn out_of_fold_scores(
    inputs: &[FusionInput],
    rows: &[Vec<f32>],
    spam: &[bool],
    sample_weights: &[f32],
    active: &[bool],
    config: &FitConfig,
) -> Vec<f32> {
    let folds = config.folds.max(2);
    let mut scores = vec![0f32; rows.len()];
    for fold in 0..folds {
        let keep: Vec<usize> = (0..rows.len()).filter(|i| i % folds != fold).collect();
        let train_rows: Vec<Vec<f32>> = keep.iter().map(|&i| rows[i].clone()).collect();
        let train_spam: Vec<bool> = keep.iter().map(|&i| spam[i]).collect();
        let train_weights: Vec<f32> = keep.iter().map(|&i| sample_weights[i]).collect();
        let fitted = fit_weights(
            inputs,
            &train_rows,
            &train_spam,
            &train_weights,
            active,
            config,
        );
        for i in (fold..rows.len()).step_by(folds) {
            scores[i] = fitted.score(&rows[i]);
        }
    }
    scores
}

/// Thresholds from the ham among `scores`: pooled, and per market with enough ham of its own
/// (`markets[i]` is row `i`'s market).
pub fn pick_thresholds(
    scores: &[f32],
    spam: &[bool],
    markets: &[Market],
    config: &FitConfig,
) -> (Thresholds, BTreeMap<Market, Thresholds>) {
    let ham_of = |market: Option<Market>| -> Vec<f32> {
        scores
            .iter()
            .zip(spam)
            .zip(markets)
            .filter(|((_, s), m)| !**s && market.is_none_or(|want| want == **m))
            .map(|((score, _), _)| *score)
            .collect()
    };
    let pick = |ham: &[f32]| Thresholds {
        tag: threshold_for_fpr(ham, config.tag_fpr),
        quarantine: threshold_for_fpr(ham, config.quarantine_fpr),
        block: threshold_for_fpr(ham, config.block_fpr),
    };
    let by_market = Market::ALL
        .iter()
        .filter_map(|&m| {
            let ham = ham_of(Some(m));
            (ham.len() >= config.min_market_ham).then(|| (m, pick(&ham)))
        })
        .collect();
    (pick(&ham_of(None)), by_market)
}

/// Fits the weights by weighted L2 logistic regression (Newton's method) on rows of transformed
/// inputs (`rows[i][j]` = input `j` of example `i`; columns not in `active` get weight 0).
/// Weights are kept at least each input's `min_weight` (at least 0: fusion stays monotone); one
/// under it is fixed there and the rest refitted. Constant columns keep their prior weight.
pub fn fit_weights(
    inputs: &[FusionInput],
    rows: &[Vec<f32>],
    spam: &[bool],
    sample_weights: &[f32],
    active: &[bool],
    config: &FitConfig,
) -> FittedWeights {
    let n_inputs = inputs.len();
    let least = |j: usize| f64::from(inputs[j].min_weight.max(0.0));
    let (mut free, priors): (Vec<usize>, Vec<usize>) = (0..n_inputs)
        .filter(|&j| active[j])
        .partition(|&j| varies(rows, j));
    let prior_inputs = priors.iter().map(|&j| inputs[j].model.clone()).collect();
    // Inputs with a weight fixed before the fit: constant ones at their prior weight, and any
    // the fit would put under its least weight, at that least weight (then the rest refit).
    let mut pinned: Vec<(usize, f64)> = priors
        .iter()
        .map(|&j| (j, f64::from(inputs[j].prior_weight).max(least(j))))
        .collect();
    let (mut beta, mut bias);
    loop {
        let offsets = pinned_offsets(rows, &pinned);
        (beta, bias) = newton(rows, spam, sample_weights, &free, &offsets, config);
        let under = free.iter().zip(&beta).position(|(&j, &b)| b < least(j));
        match under {
            Some(k) => {
                let j = free.remove(k);
                pinned.push((j, least(j)));
            }
            None => break,
        }
    }
    let mut weights = vec![0f32; n_inputs];
    for &(j, w) in &pinned {
        weights[j] = w as f32;
    }
    for (k, &j) in free.iter().enumerate() {
        weights[j] = beta[k] as f32;
    }
    FittedWeights {
        weights,
        bias: bias as f32,
        prior_inputs,
    }
}

fn varies(rows: &[Vec<f32>], j: usize) -> bool {
    rows.first()
        .is_some_and(|first| rows.iter().any(|r| (r[j] - first[j]).abs() > 1e-6))
}

/// Newton-Raphson for weighted L2 logistic regression over columns `cols` plus a bias, with a
/// fixed per-row offset added to the logit. Returns (weights of `cols`, bias).
fn newton(
    rows: &[Vec<f32>],
    spam: &[bool],
    sample_weights: &[f32],
    cols: &[usize],
    offsets: &[f64],
    config: &FitConfig,
) -> (Vec<f64>, f64) {
    let d = cols.len() + 1; // last parameter: bias
    let total: f64 = sample_weights.iter().map(|&w| f64::from(w)).sum();
    let penalty = config.l2 * total.max(1.0);
    let mut theta = vec![0.0f64; d];
    for _ in 0..config.newton_steps {
        let mut grad = vec![0.0; d];
        let mut hess = vec![vec![0.0; d]; d];
        for (i, row) in rows.iter().enumerate() {
            let x: Vec<f64> = cols
                .iter()
                .map(|&j| f64::from(row[j]))
                .chain(std::iter::once(1.0))
                .collect();
            let z = offsets[i] + x.iter().zip(&theta).map(|(a, b)| a * b).sum::<f64>();
            let p = 1.0 / (1.0 + (-z).exp());
            let w = f64::from(sample_weights[i]);
            let r = w * (p - f64::from(u8::from(spam[i])));
            let curvature = w * p * (1.0 - p);
            for a in 0..d {
                grad[a] += r * x[a];
                for b in 0..d {
                    hess[a][b] += curvature * x[a] * x[b];
                }
            }
        }
        for a in 0..d - 1 {
            grad[a] += penalty * theta[a];
            hess[a][a] += penalty;
        }
        hess[d - 1][d - 1] += 1e-9 * total.max(1.0);
        let Some(delta) = solve(hess, grad) else {
            break;
        };
        for (t, dlt) in theta.iter_mut().zip(&delta) {
            *t -= dlt;
        }
        if delta.iter().map(|v| v.abs()).fold(0.0, f64::max) < 1e-9 {
            break;
        }
    }
    let bias = theta.pop().unwrap_or(0.0);
    (theta, bias)
}

/// Solves `a x = b` by Gaussian elimination with partial pivoting; `None` if singular.
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let n = b.len();
    for col in 0..n {
        let pivot = (col..n).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        let (upper, lower) = a.split_at_mut(col + 1);
        let pivot_row = &upper[col];
        for (offset, row) in lower.iter_mut().enumerate() {
            let factor = row[col] / pivot_row[col];
            for (x, p) in row[col..].iter_mut().zip(&pivot_row[col..]) {
                *x -= factor * p;
            }
            b[col + 1 + offset] -= factor * b[col];
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let rest: f64 = (row + 1..n).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - rest) / a[row][row];
    }
    Some(x)
}
