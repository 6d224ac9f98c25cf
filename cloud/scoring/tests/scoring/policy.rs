//! The category policy after fusion: a promotion with an opt-out is tagged, not quarantined,
//! unless fraud or illegal evidence raises it; a knowledge base fraud type raises the action one
//! step (at most to quarantine); forced actions stand. Messages are hand-written.

use smsguard_core::{Label, Market};
use smsguard_scoring::fusion::{self, default_inputs, FusionModel, Head, Thresholds};
use smsguard_scoring::policy::POLICY;
use smsguard_scoring::rules::{RuleSet, StaticRules};
use smsguard_scoring::{
    Action, FusedVerdict, MessageContext, ModelScore, Scorer, ScoringError, VariantScorer,
};

use crate::fusion::cloud_of;

/// A multiclass stand-in: a fixed spam score and class probabilities.
struct Multiclass(f32, [f32; 5]);

impl Scorer for Multiclass {
    fn name(&self) -> &'static str {
        "multiclass"
    }
    fn score(&self, _: &MessageContext<'_>) -> Result<ModelScore, ScoringError> {
        Ok(ModelScore::new("multiclass", self.0, "fixed").with_probabilities(Some(self.1)))
    }
}

/// Only the multiclass input counts, so the fused score is the stand-in's score.
fn model() -> FusionModel {
    model_tagging_at(0.5)
}

fn model_tagging_at(tag: f32) -> FusionModel {
    let head = Head {
        weights: vec![1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        bias: 0.0,
        thresholds: Thresholds {
            tag,
            quarantine: 0.8,
            block: 0.95,
        },
        markets: Default::default(),
        prior_inputs: Vec::new(),
    };
    FusionModel {
        format: fusion::FORMAT_VERSION,
        pipeline_version: smsguard_core::PIPELINE_VERSION,
        inputs: default_inputs(),
        with_edge: head.clone(),
        without_edge: head,
        edge_calibration: None,
        fraud_tag: Default::default(),
        cache_ttl_seconds: Default::default(),
    }
}

const AD: [f32; 5] = [0.01, 0.95, 0.02, 0.01, 0.01];
const FRAUD: [f32; 5] = [0.01, 0.05, 0.9, 0.02, 0.02];

fn verdict(sender: &str, text: &str, score: f32, probabilities: [f32; 5]) -> FusedVerdict {
    verdict_under(model(), sender, text, score, probabilities)
}

fn verdict_under(
    model: FusionModel,
    sender: &str,
    text: &str,
    score: f32,
    probabilities: [f32; 5],
) -> FusedVerdict {
    verdict_with(model, Vec::new(), sender, text, score, probabilities)
}

/// [`verdict_under`] with more scorers beside the multiclass stand-in and the built-in rules.
fn verdict_with(
    model: FusionModel,
    more: Vec<Box<dyn Scorer>>,
    sender: &str,
    text: &str,
    score: f32,
    probabilities: [f32; 5],
) -> FusedVerdict {
    let mut scorers: Vec<Box<dyn Scorer>> = vec![
        Box::new(Multiclass(score, probabilities)),
        Box::new(StaticRules(RuleSet::builtin().unwrap())),
    ];
    scorers.extend(more);
    cloud_of(scorers, model).score_text(sender, text, 0, "d", None)
}

fn policy_reason(v: &FusedVerdict) -> Option<&str> {
    v.contributions
        .iter()
        .find(|c| c.model == POLICY)
        .map(|c| c.reason.as_str())
}

const SALE: &str = "【某某商城】双十一狂欢，全场五折起，满300减50，回T退订";
const SALE_EN: &str = "Summer sale: 30% off all shoes this weekend only. Reply STOP to opt out";
const SALE_WITH_TASK: &str = "双十一兼职招募，点赞员日结佣金，一单一结，回T退订";
const POLICE: &str = "我是市公安局民警，你的银行卡涉嫌洗钱，请配合调查";

#[test]
fn a_promotion_with_an_opt_out_is_tagged_not_quarantined() {
    for text in [SALE, SALE_EN] {
        let v = verdict("+8613800000000", text, 0.99, AD);
        assert_eq!((v.action, v.label), (Action::Tag, Label::Ad), "{text}");
        let reason = policy_reason(&v).expect("the policy explains itself");
        assert!(
            reason.starts_with("promotion:") && reason.contains("not block"),
            "{reason}"
        );
        let sum = v.bias + v.contributions.iter().map(|c| c.term).sum::<f32>();
        assert!((sum - v.logit).abs() < 1e-4, "the policy adds no term");
        assert_eq!(v.cache_ttl_seconds, model().ttl(Action::Tag, v.degraded));
    }
    // Below the tag threshold it stays allowed: the policy never raises a promotion.
    let v = verdict("+8613800000000", SALE, 0.2, AD);
    assert_eq!(v.action, Action::Allow);
    assert!(policy_reason(&v).is_none());
    // Tagged by fusion as generic spam: still tagged, filed as a promotion.
    let spam = [0.3, 0.1, 0.1, 0.1, 0.4];
    let v = verdict("+8613800000000", SALE_EN, 0.6, spam);
    assert_eq!((v.action, v.label), (Action::Tag, Label::Ad));
    assert!(policy_reason(&v).unwrap().ends_with("-> tag"));
    let v = verdict("+8613800000000", SALE_EN, 0.6, AD);
    assert!(policy_reason(&v).is_none(), "nothing to change");
}

#[test]
fn fraud_evidence_keeps_a_promotion_from_being_let_off() {
    // A knowledge base fraud type beside the opt-out.
    let v = verdict("+8613800000000", SALE_WITH_TASK, 0.99, AD);
    assert_eq!(v.action, Action::Block);
    // The fused label says fraud.
    let v = verdict("+8613800000000", SALE, 0.9, FRAUD);
    assert_eq!((v.action, v.label), (Action::Quarantine, Label::Fraud));
    assert!(policy_reason(&v).is_none());
}

#[test]
fn a_knowledge_fraud_type_raises_the_action_one_step_at_most_to_quarantine() {
    let cases = [
        (0.1, Action::Allow, Action::Tag),
        (0.6, Action::Tag, Action::Quarantine),
        (0.85, Action::Quarantine, Action::Quarantine),
    ];
    for (score, fused, expected) in cases {
        let v = verdict("+8613800000000", POLICE, score, AD);
        assert_eq!(v.action, expected, "fusion said {fused:?}");
        assert_eq!(v.label, Label::Fraud);
        let reason = policy_reason(&v).expect("the class or the action changed");
        assert!(
            reason.contains("fraud type impersonate_authority (zh-authority-case)"),
            "{reason}"
        );
        assert_eq!(reason.contains("not"), fused != expected, "{reason}");
    }
    let ham = verdict("+8613800000000", "明天下午三点开会，记得带电脑", 0.1, AD);
    assert_eq!((ham.action, ham.label), (Action::Allow, Label::Ham));
}

#[test]
fn a_junk_type_tags_what_fusion_allows_and_raises_nothing() {
    const CHAIN: &str = "收到请转发给十个人，不转者倒霉一年";
    const FOLLOWERS: &str = "Get 10k real & active followers in 24h, cheapest prices, DM us";
    let spam = [0.7, 0.05, 0.05, 0.05, 0.15];
    for (text, id) in [
        (CHAIN, "chain-letter"),
        (FOLLOWERS, "social-follower-boost"),
    ] {
        // Fused 0.2: allowed by fusion, tagged as junk, whatever the lean.
        let v = verdict("+8613800000000", text, 0.2, spam);
        assert_eq!((v.action, v.label), (Action::Tag, Label::Spam), "{text}");
        let reason = policy_reason(&v).expect("the policy explains itself");
        assert!(
            reason.starts_with("junk type ") && reason.contains(id),
            "{reason}"
        );
        // Tagged or held by fusion: a junk type raises nothing (unlike a fraud type).
        for (score, action) in [(0.6, Action::Tag), (0.85, Action::Quarantine)] {
            let v = verdict("+8613800000000", text, score, spam);
            assert_eq!(v.action, action, "{text} at {score}");
            assert!(policy_reason(&v).is_none());
        }
    }
    // A forward request with no count or threat is no chain letter.
    let v = verdict(
        "+8613800000000",
        "请把会议纪要转发给项目组的同事",
        0.2,
        spam,
    );
    assert_eq!(v.action, Action::Allow);
}

#[test]
fn a_forced_action_stands() {
    // The default rules allow the carrier's service number whatever the text says.
    let v = verdict("10086", POLICE, 0.99, FRAUD);
    assert_eq!(v.action, Action::Allow);
    assert!(policy_reason(&v).is_none());
}

#[test]
fn a_fraud_signal_tags_what_fusion_leans_spam_on_but_allows() {
    const LURE: &str = "急用钱吗？无需审核，当天到账，加微信 dk8866 详谈";
    let spam = [0.3, 0.1, 0.1, 0.1, 0.4];
    // Fused 0.7, under a tag threshold of 0.9: the contact lure tags it, as on the phone.
    let v = verdict_under(model_tagging_at(0.9), "+8613800000000", LURE, 0.7, spam);
    assert_eq!((v.action, v.label), (Action::Tag, Label::Spam));
    let reason = policy_reason(&v).expect("the policy explains itself");
    assert!(
        reason.starts_with("fraud signal: contact_lure (zh-contact-lure) and fused score 0.7"),
        "{reason}"
    );
    // Leaning ham, the same lure changes nothing.
    let v = verdict_under(model_tagging_at(0.9), "+8613800000000", LURE, 0.3, spam);
    assert_eq!(v.action, Action::Allow);
    assert!(policy_reason(&v).is_none());
    // Without a signal, a lean alone changes nothing either.
    let v = verdict_under(
        model_tagging_at(0.9),
        "+8613800000000",
        "明天下午开会",
        0.7,
        spam,
    );
    assert_eq!(v.action, Action::Allow);
}

#[test]
fn a_fraud_operating_point_tags_what_the_multiclass_model_reads_as_fraud() {
    // No knowledge entry fires on this script; only the multiclass model's fraud class can.
    const SCRIPT: &str = "你好，我是你们班主任，这学期的资料费麻烦家长今天交一下，直接转给我就行";
    const SCRIPT_EN: &str =
        "Hello dear, it is me from the office, are you free now? I need a small favour";
    let mut model = model_tagging_at(0.9);
    model.fraud_tag = [(Market::Zh, 0.3), (Market::En, 0.6)].into();
    let leaning_fraud = [0.3, 0.05, 0.5, 0.05, 0.1];
    // Fused 0.7 is under the tag threshold; p(fraud) 0.5 is at least zh's fraud point 0.3.
    let v = verdict_under(model.clone(), "+8613800000000", SCRIPT, 0.7, leaning_fraud);
    assert_eq!((v.action, v.label), (Action::Tag, Label::Fraud));
    let reason = policy_reason(&v).expect("the policy explains itself");
    assert!(
        reason.starts_with(
            "fraud operating point: multiclass p(fraud) 0.5000 >= the zh fraud threshold 0.3000"
        ),
        "{reason}"
    );
    // The same probability is under en's point: allowed.
    let v = verdict_under(
        model.clone(),
        "+447700900000",
        SCRIPT_EN,
        0.7,
        leaning_fraud,
    );
    assert_eq!((v.action, v.label), (Action::Allow, Label::Ham));
    assert!(policy_reason(&v).is_none());
    // Under zh's point: allowed.
    let unsure = [0.7, 0.05, 0.2, 0.02, 0.03];
    let v = verdict_under(model.clone(), "+8613800000000", SCRIPT, 0.7, unsure);
    assert_eq!(v.action, Action::Allow);
    // Fusion already tagged it: the operating point changes nothing.
    let v = verdict_under(model.clone(), "+8613800000000", SCRIPT, 0.85, leaning_fraud);
    assert_eq!(v.action, Action::Quarantine);
    assert!(policy_reason(&v).is_none());
    // A model without fraud operating points allows it.
    let v = verdict_under(
        model_tagging_at(0.9),
        "+8613800000000",
        SCRIPT,
        0.7,
        leaning_fraud,
    );
    assert_eq!(v.action, Action::Allow);
}

#[test]
fn a_disguise_tags_what_fusion_leans_spam_on_but_allows() {
    const DISGUISED: &str = "Gr3at d3als th1s w33k3nd 0nly at 0ur st0r3, d0nt m1ss 0ut";
    const PLAIN: &str = "Great deals this weekend only at our store, dont miss out";
    let spam = [0.3, 0.1, 0.1, 0.1, 0.4];
    let with_variant = |score: f32, text: &str| {
        let variant: Vec<Box<dyn Scorer>> = vec![Box::new(VariantScorer::new(Default::default()))];
        verdict_with(
            model_tagging_at(0.9),
            variant,
            "+447700900000",
            text,
            score,
            spam,
        )
    };
    // Fused 0.7 (the variant input weighs 0 here), under the tag threshold: the disguise tags it.
    let v = with_variant(0.7, DISGUISED);
    assert_eq!((v.action, v.label), (Action::Tag, Label::Spam));
    let reason = policy_reason(&v).expect("the policy explains itself");
    assert!(
        reason.starts_with("disguise: hidden-word score"),
        "{reason}"
    );
    assert!(reason.contains("leetspeak"), "{reason}");
    assert!(
        !reason.contains("d3als"),
        "no message text in reasons: {reason}"
    );
    // Leaning ham, the same disguise changes nothing; nor does the same lean without one.
    assert_eq!(with_variant(0.3, DISGUISED).action, Action::Allow);
    let plain = with_variant(0.7, PLAIN);
    assert_eq!(plain.action, Action::Allow);
    assert!(policy_reason(&plain).is_none());
    // Defanged links alone hide no words: people who know phishing write links that way.
    const DEFANGED: &str =
        "deck is at intranet[.]example-labs[.]com/q3, I broke the link on purpose, outlook flags it";
    let defanged = with_variant(0.7, DEFANGED);
    assert_eq!(
        defanged.action,
        Action::Allow,
        "{:?}",
        policy_reason(&defanged)
    );
}
