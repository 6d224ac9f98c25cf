//! Fitting a fusion head (`smsguard_train::fusion_head`): monotone weights, priors for inputs
//! that do not vary, least weights kept, thresholds ordered and per market.

use smsguard_core::Market;
use smsguard_scoring::fusion::default_inputs;
use smsguard_train::fusion_head::{fit_head, FitConfig};

fn at(model: &str) -> usize {
    default_inputs()
        .iter()
        .position(|i| i.model == model)
        .unwrap()
}

#[test]
fn fit_learns_positive_weights_priors_and_ordered_thresholds() {
    let inputs = default_inputs();
    let n = inputs.len();
    // Multiclass separates (noisily), rules fire only on some spam, lexical, similarity and
    // sender never vary.
    let (mut rows, mut spam, mut markets) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..400 {
        let is_spam = i % 2 == 0;
        let noise = ((i * 37) % 11) as f32 / 5.0 - 1.0;
        let mut row = vec![0.0; n];
        row[at("multiclass")] = if is_spam { 1.5 } else { -1.5 } + 1.5 * noise;
        row[at("variant")] = ((i * 13) % 7) as f32 / 7.0;
        row[at("rules")] = if is_spam && i % 3 == 0 { 1.0 } else { 0.0 };
        rows.push(row);
        spam.push(is_spam);
        markets.push(Market::En);
    }
    let weights = vec![1.0; rows.len()];
    let mut active = vec![true; n];
    active[n - 1] = false;
    let head = fit_head(
        &inputs,
        &rows,
        &spam,
        &weights,
        &active,
        &markets,
        &FitConfig::default(),
    );
    assert!(
        head.weights[at("multiclass")] > 0.5 && head.weights[at("rules")] > 0.5,
        "{:?}",
        head.weights
    );
    assert!(head.weights.iter().all(|&w| w >= 0.0));
    assert_eq!(head.weights[n - 1], 0.0, "inactive input");
    assert_eq!(head.prior_inputs, ["lexical", "similarity", "sender"]);
    assert_eq!(
        head.weights[at("sender")],
        inputs[at("sender")].prior_weight
    );
    let t = head.thresholds;
    assert!(t.tag <= t.quarantine && t.quarantine <= t.block);
    // 200 ham of one market: it gets thresholds of its own; the other market has none.
    assert_eq!(head.markets.get(&Market::En), Some(&t));
    assert!(!head.markets.contains_key(&Market::Zh));
}

#[test]
fn an_input_the_fit_would_drop_keeps_its_least_weight() {
    let mut inputs = default_inputs();
    let n = inputs.len();
    // Multiclass separates; variant is noise that the fit alone weighs near 0.
    let (mut rows, mut spam) = (Vec::new(), Vec::new());
    let noise = at("variant");
    for i in 0..400 {
        let is_spam = i % 2 == 0;
        let mut row = vec![0.0; n];
        row[0] = if is_spam { 1.0 } else { -1.0 } + ((i * 37) % 11) as f32 / 5.0 - 1.0;
        row[noise] = ((i * 13) % 7) as f32 / 7.0;
        rows.push(row);
        spam.push(is_spam);
    }
    let fit = |inputs: &[smsguard_scoring::fusion::FusionInput]| {
        fit_head(
            inputs,
            &rows,
            &spam,
            &vec![1.0; rows.len()],
            &vec![true; n],
            &vec![Market::Zh; rows.len()],
            &FitConfig::default(),
        )
    };
    inputs[noise].min_weight = 0.0;
    let free = fit(&inputs);
    assert!(free.weights[noise] < 0.3, "{:?}", free.weights);
    inputs[noise].min_weight = 0.7;
    let floored = fit(&inputs);
    assert_eq!(floored.weights[noise], 0.7);
    assert!(floored.weights[0] > 0.5, "{:?}", floored.weights);
    assert!(
        default_inputs()[at("similarity")].min_weight > 0.0,
        "reports must move verdicts"
    );
}
