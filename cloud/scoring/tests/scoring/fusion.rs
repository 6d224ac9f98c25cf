//! Fusion and the cloud scorer: contributions sum to the logit, degraded scorers, forced actions,
//! fitting.

use smsguard_core::{Label, Market};
use smsguard_scoring::calibration::Platt;
use smsguard_scoring::fusion::{
    self, default_inputs, FusionModel, Head, ScorerOutcome, Thresholds, EDGE_INPUT, FRAUD_FLOOR,
    OPERATING_POINT,
};
use smsguard_scoring::rules::{RuleSet, StaticRules};
use smsguard_scoring::{
    Action, CloudScorer, EdgeInput, ForcedAction, MessageContext, ModelScore, Scorer, ScoringError,
    SenderReputation, VariantScorer,
};

use crate::multiclass::toy_model;

fn head(weights: &[f32], bias: f32) -> Head {
    Head {
        weights: weights.to_vec(),
        bias,
        thresholds: Thresholds {
            tag: 0.5,
            quarantine: 0.8,
            block: 0.95,
        },
        markets: Default::default(),
        prior_inputs: Vec::new(),
    }
}

/// Inputs: multiclass, lexical, similarity, variant, rules, sender, edge.
fn hand_model() -> FusionModel {
    FusionModel {
        format: fusion::FORMAT_VERSION,
        pipeline_version: smsguard_core::PIPELINE_VERSION,
        inputs: default_inputs(),
        with_edge: head(&[0.8, 0.5, 2.0, 1.0, 3.0, 2.0, 0.7], -1.0),
        without_edge: head(&[1.0, 0.5, 2.0, 1.5, 3.0, 2.0, 0.0], -1.5),
        edge_calibration: None,
        fraud_tag: Default::default(),
        cache_ttl_seconds: Default::default(),
    }
}

/// Index of the input named `model`.
fn at(model: &str) -> usize {
    default_inputs()
        .iter()
        .position(|i| i.model == model)
        .unwrap()
}

fn real_scorers() -> Vec<Box<dyn Scorer>> {
    vec![
        Box::new(toy_model(12)),
        Box::new(Fixed("lexical", 0.3, None)),
        Box::new(VariantScorer::default()),
        Box::new(StaticRules(RuleSet::builtin().unwrap())),
        Box::new(SenderReputation::default()),
    ]
}

/// A cloud scorer running `scorers` only: the fitted scorers it lacks are declared supplied by
/// the caller ([`CloudScorer::with_supplied`]), and since nothing supplies them here they come
/// out degraded, as when a shared state fails.
pub fn cloud_of(scorers: Vec<Box<dyn Scorer>>, model: FusionModel) -> CloudScorer {
    let present: Vec<&str> = scorers.iter().map(|s| s.name()).collect();
    let missing: Vec<String> = model
        .scorer_names()
        .into_iter()
        .filter(|name| !present.contains(name))
        .map(str::to_owned)
        .collect();
    let missing: Vec<&str> = missing.iter().map(String::as_str).collect();
    CloudScorer::with_supplied(scorers, &missing, model).expect("the fitted line-up")
}

/// A scorer that only forces actions, like the server's operator list: not weighed.
struct ForcingOnly;

impl Scorer for ForcingOnly {
    fn name(&self) -> &'static str {
        "operator_list"
    }
    fn score(&self, _: &MessageContext<'_>) -> Result<ModelScore, ScoringError> {
        Ok(ModelScore::new("operator_list", 0.0, "not listed"))
    }
    fn weighed(&self) -> bool {
        false
    }
}

#[test]
fn a_lineup_other_than_the_fitted_one_is_refused() {
    let full = || {
        let mut scorers = real_scorers();
        scorers.push(Box::new(Fixed("similarity", 0.0, None)));
        scorers
    };
    let names = |scorers: &[Box<dyn Scorer>]| scorers.iter().map(|s| s.name()).collect::<Vec<_>>();
    assert!(CloudScorer::new(full(), hand_model()).is_ok());
    // In another order: fusion finds outcomes by name, so that is the same line-up.
    let mut reversed = full();
    reversed.reverse();
    assert!(CloudScorer::new(reversed, hand_model()).is_ok());
    // A scorer that only forces actions is not weighed and does not count.
    let mut forcing = full();
    forcing.push(Box::new(ForcingOnly));
    assert!(CloudScorer::new(forcing, hand_model()).is_ok());

    // One missing (lexical), one renamed, one extra: each refused, naming both line-ups.
    let mut missing = full();
    missing.retain(|s| s.name() != "lexical");
    let served: Vec<String> = names(&missing).iter().map(|n| n.to_string()).collect();
    let error = CloudScorer::new(missing, hand_model()).unwrap_err();
    assert_eq!(error.served, served);
    assert_eq!(error.fitted, hand_model().scorer_names());
    assert!(error.to_string().contains("refit the fusion"), "{error}");
    let mut renamed = full();
    renamed.retain(|s| s.name() != "lexical");
    renamed.push(Box::new(Fixed("lexical_v2", 0.3, None)));
    assert!(CloudScorer::new(renamed, hand_model()).is_err());
    let mut extra = full();
    extra.push(Box::new(Fixed("new_scorer", 0.3, None)));
    assert!(CloudScorer::new(extra, hand_model()).is_err());
    let mut twice = full();
    twice.retain(|s| s.name() != "lexical");
    twice.push(Box::new(Fixed("sender", 0.3, None)));
    assert!(CloudScorer::new(twice, hand_model()).is_err());
    // Supplied outcomes count, and only for the scorers actually missing.
    let mut shared = full();
    shared.retain(|s| !["similarity", "sender"].contains(&s.name()));
    assert!(CloudScorer::with_supplied(shared, &["similarity", "sender"], hand_model()).is_ok());
    assert!(CloudScorer::with_supplied(full(), &["sender"], hand_model()).is_err());
}

#[test]
fn the_shipped_fusion_and_line_up_agree() {
    let dir = tempfile::tempdir().unwrap();
    let options = smsguard_scoring::EmbeddedOptions {
        seed_from_corpora: false,
        ..Default::default()
    };
    match CloudScorer::embedded_with(dir.path(), &options) {
        Ok(cloud) => assert_eq!(cloud.scorer_names(), cloud.fusion().scorer_names()),
        // Only before the first training run (no cloud/models).
        Err(
            smsguard_scoring::CloudError::Multiclass(_) | smsguard_scoring::CloudError::Lexical(_),
        ) => {}
        Err(error) => panic!("{error}"),
    }
}

/// A scorer that always fails.
struct Failing;

impl Scorer for Failing {
    fn name(&self) -> &'static str {
        "similarity"
    }
    fn score(&self, _: &MessageContext<'_>) -> Result<ModelScore, ScoringError> {
        Err(ScoringError::Poisoned("test store"))
    }
}

/// A scorer with a fixed answer.
struct Fixed(&'static str, f32, Option<ForcedAction>);

impl Scorer for Fixed {
    fn name(&self) -> &'static str {
        self.0
    }
    fn score(&self, _: &MessageContext<'_>) -> Result<ModelScore, ScoringError> {
        Ok(ModelScore::new(self.0, self.1, "fixed").with_forced_action(self.2))
    }
}

fn assert_sums_to_logit(v: &smsguard_scoring::FusedVerdict) {
    let sum = v.bias + v.contributions.iter().map(|c| c.term).sum::<f32>();
    assert!(
        (sum - v.logit).abs() < 1e-4,
        "sum {sum} vs logit {}",
        v.logit
    );
    assert!((fusion::sigmoid(v.logit) - v.spam_score).abs() < 1e-6);
    if (1e-3..1.0 - 1e-3).contains(&v.spam_score) {
        assert!((fusion::logit(v.spam_score) - v.logit).abs() < 1e-2);
    }
    for c in &v.contributions {
        assert!((c.term - c.weight * c.input).abs() < 1e-6);
    }
}

#[test]
fn contributions_sum_to_the_logit_of_the_score() {
    let mut scorers = real_scorers();
    scorers.push(Box::new(Fixed("similarity", 0.0, None)));
    let cloud = cloud_of(scorers, hand_model());
    for text in [
        "congratulations you have won a prize call now to claim",
        "are we still meeting for lunch tomorrow",
        "加 薇 信 领 取 免 费 礼 品",
    ] {
        let v = cloud.score_text("+447700900123", text, 0, "d", None);
        assert!(!v.degraded);
        let scorers: Vec<_> = v
            .contributions
            .iter()
            .filter(|c| c.model != "policy")
            .collect();
        assert_eq!(
            scorers.len(),
            7,
            "six scorers and the operating point, no edge contribution without edge"
        );
        let point = scorers.last().unwrap();
        assert_eq!((point.model.as_str(), point.term), (OPERATING_POINT, 0.0));
        assert!(point.reason.starts_with(&format!("market {}", v.market)));
        assert_sums_to_logit(&v);
    }
    let with_edge = EdgeInput {
        spam_score: 0.9,
        label: Label::Fraud,
    };
    let v = cloud.score_text(
        "+447700900123",
        "free prize call now",
        0,
        "d",
        Some(with_edge),
    );
    assert_eq!(v.contributions.len(), 8);
    assert_eq!(v.bias, -1.0, "the with-edge head is used");
    let edge = v
        .contributions
        .iter()
        .find(|c| c.model == EDGE_INPUT)
        .unwrap();
    assert!(edge.input > 2.0, "edge enters as log-odds");
    assert_sums_to_logit(&v);
}

#[test]
fn a_failing_or_missing_scorer_degrades_the_verdict_but_never_fails_it() {
    let mut scorers = real_scorers();
    scorers.push(Box::new(Failing));
    let healthy = cloud_of(
        {
            let mut s = real_scorers();
            s.push(Box::new(Fixed("similarity", 0.0, None)));
            s
        },
        hand_model(),
    );
    let broken = cloud_of(scorers, hand_model());
    let text = "you have won a free holiday call now to claim your prize";
    let good = healthy.score_text("s", text, 0, "d", None);
    let v = broken.score_text("s", text, 0, "d", None);
    assert!(v.degraded && !good.degraded);
    let failed = v
        .contributions
        .iter()
        .find(|c| c.model == "similarity")
        .unwrap();
    assert!(failed.degraded && failed.term == 0.0);
    assert!(failed.reason.contains("failed"));
    assert_sums_to_logit(&v);
    assert_eq!(v.cache_ttl_seconds, hand_model().cache_ttl_seconds.degraded);
    assert!(v.cache_ttl_seconds < good.cache_ttl_seconds);
    // The similarity term was 0 for the healthy one too, so the scores agree.
    assert!((v.spam_score - good.spam_score).abs() < 1e-6);

    // Without a multiclass model at all: still a verdict, flagged.
    let bare = cloud_of(vec![Box::new(VariantScorer::default())], hand_model());
    let v = bare.score_text("s", text, 0, "d", None);
    assert!(v.degraded);
    let missing: Vec<&str> = v
        .contributions
        .iter()
        .filter(|c| c.degraded)
        .map(|c| c.model.as_str())
        .collect();
    assert_eq!(
        missing,
        ["multiclass", "lexical", "similarity", "rules", "sender"]
    );
    assert_sums_to_logit(&v);
}

#[test]
fn forced_actions_override_the_thresholds() {
    let cloud = |forced| {
        cloud_of(
            vec![
                Box::new(Fixed("multiclass", 0.999, None)),
                Box::new(Fixed("rules", 0.0, forced)),
            ],
            hand_model(),
        )
    };
    let v = cloud(None).score_text("s", "x", 0, "d", None);
    assert_eq!(v.action, Action::Block);
    assert_eq!(v.label, Label::Spam, "no probabilities: generic spam");
    let v = cloud(Some(ForcedAction::Allow)).score_text("s", "x", 0, "d", None);
    assert_eq!((v.action, v.label), (Action::Allow, Label::Ham));
    assert_eq!(v.forced_action, Some(ForcedAction::Allow));
    let low = cloud_of(
        vec![
            Box::new(Fixed("multiclass", 0.01, None)),
            Box::new(Fixed("rules", 0.0, Some(ForcedAction::Quarantine))),
        ],
        hand_model(),
    );
    assert_eq!(
        low.score_text("s", "x", 0, "d", None).action,
        Action::Quarantine
    );
}

/// The similarity memory's quarantine from a quorum of user reports.
struct ReportQuorum;

impl Scorer for ReportQuorum {
    fn name(&self) -> &'static str {
        "similarity"
    }
    fn score(&self, _: &MessageContext<'_>) -> Result<ModelScore, ScoringError> {
        Ok(ModelScore::new("similarity", 0.97, "reported")
            .with_report_forced_action(Some(ForcedAction::Quarantine)))
    }
}

#[test]
fn an_operator_allow_rule_outranks_a_quarantine_from_user_reports() {
    // Before: the most restrictive action won whoever forced it, so reports overrode the
    // rules file's allow rule for a carrier's service number.
    let cloud = |rule: Option<ForcedAction>| {
        cloud_of(
            vec![
                Box::new(Fixed("multiclass", 0.2, None)),
                Box::new(ReportQuorum),
                Box::new(Fixed("rules", 0.0, rule)),
            ],
            hand_model(),
        )
    };
    let allowed = cloud(Some(ForcedAction::Allow)).score_text("10086", "x", 0, "d", None);
    assert_eq!((allowed.action, allowed.label), (Action::Allow, Label::Ham));
    assert_eq!(allowed.forced_action, Some(ForcedAction::Allow));
    // Without an operator rule the reports' quarantine stands; an operator block still wins.
    let reported = cloud(None).score_text("s", "x", 0, "d", None);
    assert_eq!(reported.action, Action::Quarantine);
    let blocked = cloud(Some(ForcedAction::Block)).score_text("s", "x", 0, "d", None);
    assert_eq!(blocked.action, Action::Block);
    assert_eq!(
        ForcedAction::decide([
            (
                ForcedAction::Quarantine,
                smsguard_scoring::ForceAuthority::UserReports
            ),
            (
                ForcedAction::Allow,
                smsguard_scoring::ForceAuthority::Operator
            ),
        ]),
        Some((
            ForcedAction::Allow,
            smsguard_scoring::ForceAuthority::Operator
        ))
    );
}

#[test]
fn the_spam_label_is_the_most_likely_spam_class() {
    let model = hand_model();
    let probs = [0.3, 0.1, 0.45, 0.05, 0.1];
    let outcome = ScorerOutcome {
        model: "multiclass".into(),
        result: Ok(ModelScore::new("multiclass", 0.9, "r").with_probabilities(Some(probs))),
    };
    let v = model.fuse(&[outcome], None, Market::En);
    assert_ne!(v.action, Action::Allow);
    assert_eq!(v.label, Label::Fraud);
    let ham_probs = [0.55, 0.05, 0.1, 0.2, 0.1];
    let outcome = ScorerOutcome {
        model: "multiclass".into(),
        result: Ok(ModelScore::new("multiclass", 0.45, "r").with_probabilities(Some(ham_probs))),
    };
    let rules = ScorerOutcome {
        model: "rules".into(),
        result: Ok(ModelScore::new("rules", 1.0, "r")),
    };
    let v = model.fuse(&[outcome, rules], None, Market::En);
    assert_ne!(v.action, Action::Allow);
    assert_eq!(
        v.label,
        Label::Illegal,
        "arg-max among spam classes, not ham"
    );
}

#[test]
fn fusion_json_round_trips_and_a_bad_one_is_refused() {
    let model = hand_model();
    assert_eq!(FusionModel::from_json(&model.to_json()).unwrap(), model);
    let mut bad = hand_model();
    bad.with_edge.weights.pop();
    assert!(FusionModel::from_json(&bad.to_json()).is_err());
    let mut negative = hand_model();
    negative.without_edge.weights[at("variant")] = -0.1;
    let refused = FusionModel::from_json(&negative.to_json()).unwrap_err();
    assert!(refused.to_string().contains("monotone"), "{refused}");
    for point in [0.0, 1.5, -0.2] {
        let mut bad_point = hand_model();
        bad_point.fraud_tag = [(smsguard_core::Market::Zh, point)].into();
        let refused = FusionModel::from_json(&bad_point.to_json()).unwrap_err();
        assert!(
            refused.to_string().contains("fraud operating point"),
            "{refused}"
        );
    }
    assert!(FusionModel::from_json("{}").is_err());
}

#[test]
fn the_embedded_cloud_scores_the_fixture_spam_above_the_fixture_ham() {
    let dir = tempfile::tempdir().unwrap();
    let options = smsguard_scoring::EmbeddedOptions {
        seed_from_corpora: false,
        ..Default::default()
    };
    let cloud = CloudScorer::embedded_with(dir.path(), &options).unwrap();
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../datasets/fixtures/mixed/dev.tsv");
    let corpus = smsguard_corpus::read_tsv(fixtures).unwrap();
    let (mut ham, mut spam) = (Vec::new(), Vec::new());
    for (i, record) in corpus.records.iter().enumerate() {
        let v = cloud.score_text(&format!("s{i}"), &record.text, 0, "d", None);
        assert!(!v.degraded);
        assert_sums_to_logit(&v);
        if record.label == Label::Ham {
            ham.push(v.spam_score);
        } else {
            spam.push(v.spam_score);
        }
    }
    let mean = |xs: &[f32]| xs.iter().sum::<f32>() / xs.len() as f32;
    assert!(mean(&spam) > mean(&ham) + 0.3, "spam {spam:?} ham {ham:?}");
}

#[test]
fn each_market_is_judged_at_its_own_thresholds() {
    let mut model = hand_model();
    let strict = Thresholds {
        tag: 0.9,
        quarantine: 0.95,
        block: 0.99,
    };
    model.without_edge.markets.insert(Market::Zh, strict);
    let outcome = ScorerOutcome {
        model: "multiclass".into(),
        result: Ok(ModelScore::new("multiclass", 0.95, "r")),
    };
    let en = model.fuse(std::slice::from_ref(&outcome), None, Market::En);
    let zh = model.fuse(&[outcome], None, Market::Zh);
    assert_eq!(en.spam_score, zh.spam_score);
    assert_eq!(
        (en.market, en.thresholds),
        (Market::En, model.without_edge.thresholds)
    );
    assert_eq!((zh.market, zh.thresholds), (Market::Zh, strict));
    assert_ne!(en.action, Action::Allow);
    assert_eq!(zh.action, Action::Allow, "{}", zh.spam_score);
    // The cloud scorer picks the market from the dominant script unless told.
    let cloud = cloud_of(vec![Box::new(Fixed("multiclass", 0.8, None))], model);
    let prepared = smsguard_scoring::PreparedMessage::new("s", "加微信领取免费礼品", 0, "d");
    assert_eq!(cloud.score(&prepared.context(), None).market, Market::Zh);
    let told = cloud.score_in(&prepared.context(), None, Some(Market::En));
    assert_eq!(told.market, Market::En);
}

#[test]
fn a_fraud_rule_holds_the_score_at_the_edges_calibrated_score() {
    let mut model = hand_model();
    model.edge_calibration = Some(Platt { a: 1.0, b: 0.0 });
    let rules = |label| ScorerOutcome {
        model: "rules".into(),
        result: Ok(ModelScore::new("rules", 0.2, "r").with_label(label)),
    };
    let lexical = ScorerOutcome {
        model: "lexical".into(),
        result: Ok(ModelScore::new("lexical", 0.01, "r")),
    };
    let edge = Some(EdgeInput {
        spam_score: 0.97,
        label: Label::Fraud,
    });
    let fired = model.fuse(
        &[rules(Some(Label::Fraud)), lexical.clone()],
        edge,
        Market::Zh,
    );
    let plain = model.fuse(&[rules(None), lexical.clone()], edge, Market::Zh);
    assert!(plain.spam_score < 0.97, "{}", plain.spam_score);
    assert!(
        (fired.spam_score - 0.97).abs() < 1e-4,
        "{}",
        fired.spam_score
    );
    let floor = fired
        .contributions
        .iter()
        .find(|c| c.model == FRAUD_FLOOR)
        .expect("the floor is explained");
    assert!(floor.reason.contains("fraud rule") && floor.term > 0.0);
    assert_sums_to_logit(&fired);
    assert!(!plain.contributions.iter().any(|c| c.model == FRAUD_FLOOR));
    // No edge verdict: no floor.
    let alone = model.fuse(&[rules(Some(Label::Fraud)), lexical], None, Market::Zh);
    assert!(!alone.contributions.iter().any(|c| c.model == FRAUD_FLOOR));
}

#[test]
fn more_evidence_never_lowers_the_score() {
    let model = hand_model();
    let outcome = |name: &str, score| ScorerOutcome {
        model: name.to_owned(),
        result: Ok(ModelScore::new("x", score, "r")),
    };
    for input in default_inputs().iter().filter(|i| i.model != EDGE_INPUT) {
        let mut last = 0.0;
        for step in 0..=10 {
            let v = model.fuse(
                &[outcome(&input.model, step as f32 / 10.0)],
                None,
                Market::En,
            );
            assert!(v.spam_score >= last, "{} at {step}", input.model);
            last = v.spam_score;
        }
    }
}
