//! Fitting a fusion head (`smsguard_train::fusion_head`): monotone weights, priors for inputs
//! that do not vary, least weights kept, thresholds ordered and per market.

use smsguard_core::Market;
use smsguard_scoring::fusion::default_inputs;
use smsguard_train::fusion_head::{fit_head, FitConfig, Judging};

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
    let fit = |tagged_anyway: &dyn Fn(usize, f32) -> bool| {
        let judging = Judging {
            markets: &markets,
            tagged_anyway,
        };
        fit_head(
            &inputs,
            &rows,
            &spam,
            &weights,
            &active,
            &judging,
            &FitConfig::default(),
        )
    };
    let head = fit(&|_, _| false);
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
    // Ham that the policy tags whatever its score spends the TAG budget first: the threshold
    // rises to keep the total within it; quarantine and block are the threshold's alone.
    let first_ham = spam.iter().position(|s| !s).unwrap();
    let with_policy = fit(&|row, _| row == first_ham);
    let p = with_policy.thresholds;
    assert!(p.tag > t.tag, "{p:?} vs {t:?}");
    assert_eq!((p.quarantine, p.block), (t.quarantine, t.block));
    assert_eq!(with_policy.markets.get(&Market::En), Some(&p));
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
            &Judging {
                markets: &vec![Market::Zh; rows.len()],
                tagged_anyway: &|_, _| false,
            },
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

#[test]
fn a_fraud_operating_point_flags_at_most_its_budget_of_a_markets_ham() {
    use smsguard_scoring::fusion::ScorerOutcome;
    use smsguard_scoring::ModelScore;
    use smsguard_train::fusion_fit::{fraud_operating_points, DevRows};

    let outcome = |p_fraud: f32| {
        let probabilities = [1.0 - p_fraud, 0.0, p_fraud, 0.0, 0.0];
        vec![ScorerOutcome {
            model: "multiclass".into(),
            result: Ok(ModelScore::new("multiclass", p_fraud, "test")
                .with_probabilities(Some(probabilities))),
        }]
    };
    // 2,000 zh ham with p(fraud) 0.0000 .. 0.1999, 50 zh fraud at 0.9, 20 en ham (too few).
    let (mut outcomes, mut spam, mut markets) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..2000 {
        outcomes.push(outcome(i as f32 / 10_000.0));
        spam.push(false);
        markets.push(Market::Zh);
    }
    for _ in 0..50 {
        outcomes.push(outcome(0.9));
        spam.push(true);
        markets.push(Market::Zh);
    }
    for _ in 0..20 {
        outcomes.push(outcome(0.5));
        spam.push(false);
        markets.push(Market::En);
    }
    let sources = vec![0; outcomes.len()];
    let rows = DevRows {
        outcomes: &outcomes,
        edge: None,
        spam: &spam,
        sources: &sources,
        markets: &markets,
    };
    let unfloored = FitConfig {
        fraud_tag_floor: 0.0,
        ..FitConfig::default()
    };
    let points = fraud_operating_points(&rows, &unfloored);
    // 0.1 % of 2,000 ham: the two highest (0.1999, 0.1998) may be flagged, not the third.
    let zh = points[&Market::Zh];
    assert!(zh > 0.1997 && zh <= 0.1998, "zh fraud point {zh}");
    assert!(
        !points.contains_key(&Market::En),
        "too little en ham for a point"
    );
    // The floor holds the point up where the ham alone would set it lower.
    let floored = fraud_operating_points(&rows, &FitConfig::default());
    assert_eq!(floored[&Market::Zh], FitConfig::default().fraud_tag_floor);
}
