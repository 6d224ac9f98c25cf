use smsguard_scoring::{Scorer, VariantScorer};

use crate::msg;

fn variant(text: &str) -> f32 {
    VariantScorer::default()
        .score(&msg(text).context())
        .unwrap()
        .score
}

#[test]
fn obfuscated_spam_scores_high() {
    for text in [
        "加 薇 信 领 取",
        "V1agra fr33",
        "Frее prizе clаim nоw",
        "w e i x i n 领取红包",
    ] {
        assert!(
            variant(text) > 0.6,
            "obfuscated text scored {}",
            variant(text)
        );
    }
}

#[test]
fn legitimate_traditional_and_full_width_text_scores_low() {
    for text in [
        "我們明天一起去吃飯吧，記得帶傘。",
        "ｈｅｌｌｏ，明天下午３点开会，请准时参加。",
        "Ｍｅｅｔｉｎｇ ａｔ ３ｐｍ ｔｏｍｏｒｒｏｗ",
        "Hi mum, I'll be home late tonight.",
    ] {
        assert!(variant(text) < 0.1, "ham text scored {}", variant(text));
    }
}

#[test]
fn more_obfuscation_scores_higher() {
    let light = variant("please add vx for details about the offer today");
    let heavy = variant("please add v-x for d.e.t.a.i.l.s about the 0ff3r today");
    assert!(light > 0.0);
    assert!(heavy > light, "{heavy} <= {light}");
}

#[test]
fn mixed_script_words_are_counted_on_the_original() {
    use smsguard_scoring::variant::mixed_script_words;
    assert_eq!(mixed_script_words("Pаypal аccount lоcked"), 3);
    assert_eq!(mixed_script_words("Привет, how are you"), 0);
    let scored = VariantScorer::default()
        .score(&msg("Pаypal аccount lоcked").context())
        .unwrap();
    assert!(
        scored.reason.contains("mixed_script_words"),
        "{}",
        scored.reason
    );
    assert!(!scored.reason.contains("ccount"));
}

#[test]
fn defanged_links_count_as_variants_but_hide_no_words() {
    let scorer = VariantScorer::new(Default::default());
    let evidence_of = |text: &str| scorer.evidence(&smsguard_core::normalize(text));
    let defanged =
        evidence_of("deck is at intranet[.]example-labs[.]com/q3, link broken on purpose");
    assert!(scorer.score_evidence(&defanged) >= 0.3, "{defanged:?}");
    assert_eq!(scorer.hidden_words(&defanged), 0.0);
    // Hidden words keep their weight; a defanged link beside them adds nothing to it.
    let leet = evidence_of("Gr3at d3als th1s w33k3nd 0nly");
    let both = evidence_of("Gr3at d3als th1s w33k3nd 0nly at sh0p[.]top");
    assert_eq!(scorer.hidden_words(&leet), scorer.score_evidence(&leet));
    assert!(scorer.hidden_words(&both) < scorer.score_evidence(&both));
    assert!(scorer.hidden_words(&both) >= 0.3);
}
