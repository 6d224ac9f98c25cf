use super::*;
use crate::normalize;

fn ids(kb: &KnowledgeBase, text: &str) -> Vec<String> {
    kb.hits(&normalize(text))
        .into_iter()
        .map(|e| e.id.clone())
        .collect()
}

const HEADER: &str = "format = 1\nrevision = \"t\"\n";

fn table(entries: &str) -> String {
    format!("{HEADER}{entries}")
}

#[test]
fn every_builtin_entry_fires_on_its_examples_and_not_on_its_counter_examples() {
    let kb = KnowledgeBase::builtin();
    kb.check_examples().unwrap();
    for entry in kb.entries() {
        assert!(
            !entry.counter_examples.is_empty(),
            "{}: a built-in entry needs a counter-example",
            entry.id
        );
    }
}

#[test]
fn the_builtin_table_covers_the_typology() {
    let kb = KnowledgeBase::builtin();
    let types: std::collections::BTreeSet<&str> =
        kb.entries().iter().map(|e| e.kind.as_str()).collect();
    for wanted in [
        "task_rebate",
        "fake_investment",
        "fake_loan",
        "fake_customer_service",
        "impersonate_authority",
        "fake_credit_record",
        "impersonate_acquaintance",
        "game_trade",
        "romance",
        "impersonate_military",
        "gambling",
        "adult",
        "fake_documents",
        "parcel_redelivery",
        "account_lock",
        "tax_refund",
        "road_toll",
        "prize",
        "job_offer",
        "crypto_investment",
        "family_impersonation",
        "contact_lure",
        "link_lure",
        "urgency",
        "secrecy",
        "money_transfer",
        OPT_OUT,
    ] {
        assert!(types.contains(wanted), "no entry of type {wanted}");
    }
    assert_eq!(kb.revisions().len(), 1);
}

#[test]
fn every_cue_set_must_match_and_the_pattern_too() {
    let kb = KnowledgeBase::parse(
        &table(
            "[[entry]]\nid = \"r\"\ntype = \"t\"\nlabel = \"fraud\"\nweight = 0.5\n\
             description = \"d\"\ncues = [[\"甲\", \"乙\"], [\"丙\"]]\nexamples = [\"甲丙\"]\n\
             [[entry]]\nid = \"p\"\ntype = \"t\"\nweight = 0.2\ndescription = \"d\"\n\
             cues = [[\"丁\"]]\npattern = '丁.{0,3}戊'\nexamples = [\"丁一戊\"]\n",
        ),
        "t.toml",
    )
    .unwrap();
    assert_eq!(ids(&kb, "乙。。丙"), ["r"]);
    assert!(ids(&kb, "甲乙").is_empty());
    assert!(ids(&kb, "").is_empty());
    assert_eq!(ids(&kb, "丁二戊"), ["p"]);
    assert!(
        ids(&kb, "丁二三四五戊").is_empty(),
        "the pattern must match too"
    );
    assert!(kb.first_harmful(&normalize("丁二戊")).is_none(), "a signal");
    assert_eq!(kb.first_harmful(&normalize("甲丙")).unwrap().id, "r");
}

#[test]
fn ascii_terms_match_at_word_boundaries_and_hosts_match_link_hosts() {
    let kb = KnowledgeBase::parse(
        &table(
            "[[entry]]\nid = \"w\"\ntype = \"t\"\nweight = 0.5\ndescription = \"d\"\n\
             cues = [[\"toll\"]]\nexamples = [\"unpaid toll\"]\n\
             [[entry]]\nid = \"h\"\ntype = \"t\"\nweight = 0.5\ndescription = \"d\"\n\
             hosts = '\\.top$'\nexamples = [\"see http://a.top/x\"]\n",
        ),
        "t.toml",
    )
    .unwrap();
    assert_eq!(ids(&kb, "toll road"), ["w"]);
    assert!(ids(&kb, "a tollbooth").is_empty());
    assert_eq!(ids(&kb, "see https://x.top/a"), ["h"]);
    assert!(ids(&kb, "see https://top.example.com/a").is_empty());
}

#[test]
fn contact_lures_match_in_every_folded_form() {
    let kb = KnowledgeBase::builtin();
    for text in [
        "加V信 abc123",
        "加薇信: lucky888",
        "加 v x 13800138000",
        "加扣扣 12345678",
        "加vx kf9527",
        "加威信happy2024",
        "微信號：ｌｕｃｋｙ８８８",
    ] {
        let kinds: Vec<String> = kb
            .hits(&normalize(text))
            .into_iter()
            .map(|e| e.kind.clone())
            .collect();
        assert!(
            kinds.iter().any(|k| k == "contact_lure"),
            "{text}: {kinds:?}"
        );
    }
}

#[test]
fn malformed_tables_name_the_source_line_and_entry() {
    let entry = |body: &str| table(&format!("[[entry]]\nid = \"e\"\n{body}"));
    let ok =
        "type = \"t\"\nweight = 0.5\ndescription = \"d\"\ncues = [[\"甲\"]]\nexamples = [\"甲\"]\n";
    assert!(KnowledgeBase::parse(&entry(ok), "t.toml").is_ok());
    for (text, line, entry_id, needle) in [
        (entry(&ok.replace("0.5", "1.5")), 4, Some("e"), "outside"),
        (
            entry(&ok.replace("\"t\"", "\"Bad Type\"")),
            4,
            Some("e"),
            "snake_case",
        ),
        (
            entry(&ok.replace("[[\"甲\"]]", "[[]]")),
            4,
            Some("e"),
            "empty",
        ),
        (
            entry(&ok.replace("examples = [\"甲\"]\n", "")),
            4,
            Some("e"),
            "examples",
        ),
        (
            entry(&format!("{ok}pattern = '('\n")),
            4,
            Some("e"),
            "bad pattern",
        ),
        (
            entry(&format!("{ok}label = \"ham\"\n")),
            4,
            Some("e"),
            "ham",
        ),
        (
            entry(&format!("{ok}action = \"tag\"\n")),
            4,
            Some("e"),
            "action",
        ),
        (
            format!("{}[[entry]]\nid = \"e\"\n{ok}", entry(ok)),
            11,
            Some("e"),
            "duplicate",
        ),
        (
            entry(&format!("{ok}wieght = 1\n")),
            10,
            None,
            "unknown field",
        ),
        (
            "format = 2\nrevision = \"x\"\n".to_owned(),
            1,
            None,
            "format",
        ),
    ] {
        let err = KnowledgeBase::parse(&text, "t.toml").unwrap_err();
        assert_eq!(err.line, line, "{err}");
        assert_eq!(err.entry.as_deref(), entry_id, "{err}");
        assert!(err.to_string().contains(needle), "{err}");
        assert!(err.to_string().starts_with("t.toml:"), "{err}");
    }
}

#[test]
fn example_checks_name_the_entry_and_the_example() {
    let kb = KnowledgeBase::parse(
        &table(
            "[[entry]]\nid = \"e\"\ntype = \"t\"\nweight = 0.5\ndescription = \"d\"\n\
             cues = [[\"甲\"]]\nexamples = [\"甲\", \"乙\"]\ncounter_examples = [\"丙\"]\n",
        ),
        "t.toml",
    )
    .unwrap();
    let err = kb.check_examples().unwrap_err();
    assert_eq!((err.line, err.entry.as_deref()), (4, Some("e")));
    assert!(err.message.contains("example 2"), "{err}");
}

#[test]
fn sources_compile_together_and_ids_stay_unique_across_them() {
    let a = table("[[entry]]\nid = \"x\"\ntype = \"t\"\nweight = 0.5\ndescription = \"d\"\ncues = [[\"甲\"]]\nexamples = [\"甲\"]\n");
    let b = a.replace("revision = \"t\"", "revision = \"u\"");
    let (fa, fb) = (
        KnowledgeFile::parse(&a, "a.toml").unwrap(),
        KnowledgeFile::parse(&b, "b.toml").unwrap(),
    );
    let err =
        KnowledgeBase::compile(&[fa.source(&a, "a.toml"), fb.source(&b, "b.toml")]).unwrap_err();
    assert_eq!(err.source_name, "b.toml");
    assert!(err.message.contains("a.toml:4"), "{err}");
    let c = b.replace("id = \"x\"", "id = \"y\"").replace("甲", "乙");
    let fc = KnowledgeFile::parse(&c, "c.toml").unwrap();
    let kb = KnowledgeBase::compile(&[fa.source(&a, "a.toml"), fc.source(&c, "c.toml")]).unwrap();
    assert_eq!(ids(&kb, "甲乙"), ["x", "y"]);
    assert_eq!(kb.revisions(), ["t", "u"]);
}

#[test]
fn a_scam_warning_switches_off_the_harmful_and_junk_entries_it_quotes() {
    let kb = KnowledgeBase::parse(
        &table(
            r#"
[[entry]]
id = "safe"
type = "money_transfer"
label = "fraud"
weight = 0.7
description = "d"
cues = [["安全账户"]]
examples = ["转入安全账户"]
[[entry]]
id = "urgent"
type = "urgency"
weight = 0.1
description = "d"
cues = [["立即"]]
examples = ["立即"]
[[entry]]
id = "chain"
type = "chain_letter"
label = "spam"
weight = 0.5
description = "d"
cues = [["转发给十个人"]]
examples = ["转发给十个人"]
[[entry]]
id = "warn"
type = "scam_warning"
weight = 0
description = "d"
pattern = '不会通过电话'
examples = ["不会通过电话"]
"#,
        ),
        "t",
    )
    .unwrap();
    let scam = "请立即把钱转入安全账户";
    let notice = "公检法不会通过电话让您立即转入安全账户";
    assert_eq!(ids(&kb, scam), ["safe", "urgent"]);
    // The notice keeps its signals and the warning, but no harmful entry.
    assert_eq!(ids(&kb, notice), ["urgent", "warn"]);
    assert!(kb.first_harmful(&normalize(notice)).is_none());
    assert_eq!(kb.first_harmful(&normalize(scam)).unwrap().id, "safe");
    // A junk type it quotes goes too: the notice is not a chain letter.
    assert_eq!(ids(&kb, "收到转发给十个人的消息"), ["chain"]);
    assert_eq!(ids(&kb, "不会通过电话要求您转发给十个人"), ["warn"]);
    // Phishing borrows the reassurance and then links out: a link keeps the harmful entries.
    let with_link = "公检法不会通过电话让您立即转入安全账户，详见 http://gov-check.top/a";
    assert_eq!(ids(&kb, with_link), ["safe", "urgent", "warn"]);
}

#[test]
fn the_builtin_warnings_spare_anti_fraud_notices_but_not_scams_posing_as_them() {
    let kb = KnowledgeBase::builtin();
    let harmful = |text: &str| kb.first_harmful(&normalize(text)).map(|e| e.id.clone());
    assert_eq!(
        harmful("【反诈中心】提醒：公检法机关不会通过电话办案，不存在安全账户，请勿向陌生人转账"),
        None
    );
    assert!(harmful("【反诈中心】民警提醒您的账户涉嫌洗钱，请转入安全账户配合调查").is_some());
}

#[test]
fn the_offline_rule_tags_by_type_then_by_lean() {
    let kb = KnowledgeBase::builtin();
    // (message, model spam score, the label the phone tags it with, if any)
    let golden: [(&str, f32, Option<Label>); 18] = [
        (
            "我是市公安局民警，你的银行卡涉嫌洗钱，请配合调查",
            0.1,
            Some(Label::Fraud),
        ),
        ("收到请转发给十个人，不转者倒霉一年", 0.1, Some(Label::Spam)),
        ("新店开业，到店消费满100送20，回T退订", 0.6, Some(Label::Ad)),
        ("新店开业，到店消费满100送20，回T退订", 0.3, None),
        (
            "滨江花园90-140平准现房，看房专线4008123456",
            0.6,
            Some(Label::Ad),
        ),
        ("滨江花园90-140平准现房，看房专线4008123456", 0.3, None),
        ("本期六肖：猴鸡狗猪鼠牛", 0.1, Some(Label::Illegal)),
        ("本地正规{票}，联系张会计", 0.1, Some(Label::Illegal)),
        ("回复A参加答题赢话费，信息费1元/条", 0.1, Some(Label::Spam)),
        (
            "每天送三只牛gu，教你选gu，进群体验",
            0.1,
            Some(Label::Fraud),
        ),
        (
            "You have been chosen for our holiday draw, call to claim",
            0.1,
            Some(Label::Fraud),
        ),
        (
            "Ur ringtone will arrive by service msg, terms and conditions apply",
            0.1,
            Some(Label::Spam),
        ),
        (
            "Please confirm your booking https://x.example/a",
            0.6,
            Some(Label::Spam),
        ),
        ("Please confirm your booking https://x.example/a", 0.3, None),
        ("缺钱找我，加微信 dk8866 详谈", 0.6, Some(Label::Spam)),
        ("缺钱找我，加微信 dk8866 详谈", 0.3, None),
        ("明天下午三点开会，记得带电脑", 0.9, None),
        (
            "【国家反诈中心】公检法机关不会通过电话办案，更没有安全账户",
            0.1,
            None,
        ),
    ];
    for (text, score, label) in golden {
        let tag = offline_tag(&kb.hits(&normalize(text)), score);
        assert_eq!(
            tag.as_ref().map(|t| t.label),
            label,
            "{text} at {score}: {tag:?}"
        );
    }
}

#[test]
fn a_disguise_tags_offline_only_what_the_model_leans_spam_on_hard() {
    let kb = KnowledgeBase::builtin();
    // Cyrillic look-alikes and leetspeak in every word: the words are hidden.
    let hidden = "Yоur раrcеl is hеld, p4y the f33 t0day";
    let plain = "Your parcel is held at the depot, pick it up today";
    // (message, model spam score, tagged)
    let golden = [
        (hidden, 0.8, true),
        (hidden, 0.6, false),
        (plain, 0.9, false),
    ];
    for (text, score, tagged) in golden {
        let tag = offline_rule(kb, &normalize(text), score);
        assert_eq!(tag.is_some(), tagged, "{text} at {score}: {tag:?}");
        if let Some(tag) = tag {
            assert_eq!(tag.label, Label::Spam);
            assert!(
                tag.why.starts_with("disguise: hidden-word score"),
                "{}",
                tag.why
            );
        }
    }
}
