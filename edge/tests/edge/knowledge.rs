//! The offline fraud knowledge beside the local model: fraud scripts the model lets through are
//! tagged with the rule named; everyday messages and what the model already flags are untouched.
//! Every message is hand-written (not from any corpus).

use smsguard_core::Label;
use smsguard_edge::engine::{Engine, EngineConfig, Source};
use smsguard_edge::model::Action;

/// (message, a fraud type (the entry's `type`) the knowledge must name, or None for a message it must leave alone)
const GOLDEN: [(&str, Option<&str>); 6] = [
    (
        "我是市公安局刑侦支队的民警，你的身份证涉嫌一起洗钱案件，请配合调查",
        Some("impersonate_authority"),
    ),
    (
        "您的学生贷款账户未注销，将影响个人征信，请联系客服注销",
        Some("fake_credit_record"),
    ),
    (
        "老同学，是我，手机掉水里了用的朋友的号，急需借两千块钱周转",
        Some("impersonate_acquaintance"),
    ),
    (
        "张总，明天上午十点的会议改到三楼会议室，材料已发您邮箱",
        None,
    ),
    ("【顺丰速运】您的快件已由前台代收，感谢使用顺丰", None),
    ("Are we still on for lunch tomorrow?", None),
];

#[test]
fn fraud_scripts_the_model_allows_are_tagged_by_the_knowledge() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), EngineConfig::default()).unwrap();
    for (i, (body, rule)) in GOLDEN.iter().enumerate() {
        let decision = engine.classify("+8613800000000", body, 1_700_000_000_000 + i as i64);
        match rule {
            Some(rule) => {
                assert_ne!(
                    decision.action,
                    Action::Allow,
                    "{body}: {}",
                    decision.reason
                );
                if decision.reason.starts_with("fraud knowledge") {
                    assert!(
                        decision.reason.contains(rule),
                        "{body}: {}",
                        decision.reason
                    );
                    assert_eq!(decision.action, Action::Tag, "the knowledge only tags");
                    assert_eq!(decision.source, Source::Rule);
                }
            }
            None => {
                assert!(
                    !decision.reason.starts_with("fraud knowledge"),
                    "{body}: {}",
                    decision.reason
                );
            }
        }
    }
}

#[test]
fn the_knowledge_catches_what_the_model_alone_misses() {
    // At least one golden fraud script is allowed by the model alone (else this test would
    // check nothing of the knowledge): the engine must tag it, naming the rule.
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), EngineConfig::default()).unwrap();
    let tagged_by_knowledge = GOLDEN
        .iter()
        .enumerate()
        .filter(|(_, (_, rule))| rule.is_some())
        .map(|(i, (body, _))| engine.classify("+8613800000000", body, i as i64 + 1))
        .filter(|d| d.reason.starts_with("fraud knowledge"))
        .count();
    assert!(
        tagged_by_knowledge >= 1,
        "the model flagged every script itself"
    );
}

/// (message, whether the engine files it as a promotion offline): an opt-out footer makes a
/// promotion of what the model leans spam on but allows; a notice from a business with the same
/// footer that the model scores as ham stays allowed; an unsubscribe question is no footer.
const PROMOTIONS: [(&str, bool); 4] = [
    ("新店开业，到店消费满100送20，回T退订", true),
    ("健身房新年特惠，年卡立减三百，回复TD退订", true),
    (
        "您的快递已放在小区驿站，取件码1234，营业到晚上九点，回复TD退订",
        false,
    ),
    ("我想退订这个会员，你知道怎么弄吗", false),
];

#[test]
fn an_opt_out_footer_files_a_leaning_spam_message_as_a_promotion() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), EngineConfig::default()).unwrap();
    for (i, (body, promotion)) in PROMOTIONS.iter().enumerate() {
        let decision = engine.classify("+8613800000001", body, 1_700_000_000_000 + i as i64);
        let filed = decision.reason.starts_with("promotion: opt-out footer");
        assert_eq!(filed, *promotion, "{body}: {}", decision.reason);
        if *promotion {
            assert_eq!(
                (decision.label, decision.action, decision.source),
                (Label::Ad, Action::Tag, Source::Rule),
                "{body}"
            );
        } else {
            assert_eq!(
                decision.action,
                Action::Allow,
                "{body}: {}",
                decision.reason
            );
        }
    }
}

/// The same contact lure on two messages: the one the model leans spam on is tagged, the
/// colleague's is delivered as it was.
#[test]
fn a_fraud_signal_tags_only_a_message_the_model_leans_spam_on() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), EngineConfig::default()).unwrap();
    let lure = engine.classify(
        "+8613800000002",
        "缺钱找我，加微信 dk8866 详谈",
        1_700_000_000_000,
    );
    assert!(
        lure.reason
            .starts_with("fraud signal: contact_lure (zh-contact-lure)"),
        "{}",
        lure.reason
    );
    assert_eq!(
        (lure.label, lure.action, lure.source),
        (Label::Spam, Action::Tag, Source::Rule)
    );
    let colleague = engine.classify(
        "+8613800000003",
        "明天开会记得带电脑，有事加我微信 abc123",
        1_700_000_000_001,
    );
    assert_eq!(colleague.action, Action::Allow, "{}", colleague.reason);
    assert_eq!(colleague.source, Source::Local);
}

/// (message, the junk entry that must name it when the model alone allows it)
const JUNK: [(&str, &str); 3] = [
    (
        "想要好运就把这条消息转发给十个人，不转者倒霉三年",
        "chain-letter",
    ),
    (
        "Forward this to 10 friends or your WhatsApp will start charging you",
        "chain-letter",
    ),
    (
        "快手抖音涨粉，真人粉低至一毛一个，联系客服",
        "social-follower-boost",
    ),
];

/// A junk type (label `spam`: chain letters, bought followers) tags what the model allows, as a
/// fraud type does; a forward request with no count or threat is left alone.
#[test]
fn a_junk_type_the_model_allows_is_tagged_spam() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), EngineConfig::default()).unwrap();
    let mut tagged_by_knowledge = 0;
    for (i, (body, id)) in JUNK.iter().enumerate() {
        let decision = engine.classify("+8613800000004", body, 1_700_000_000_000 + i as i64);
        assert_ne!(
            decision.action,
            Action::Allow,
            "{body}: {}",
            decision.reason
        );
        if decision.reason.starts_with("junk knowledge") {
            tagged_by_knowledge += 1;
            assert!(decision.reason.contains(id), "{body}: {}", decision.reason);
            assert_eq!(
                (decision.label, decision.action, decision.source),
                (Label::Spam, Action::Tag, Source::Rule),
                "{body}"
            );
        }
    }
    assert!(
        tagged_by_knowledge >= 1,
        "the model flagged every junk message itself"
    );
    let colleague = engine.classify(
        "+8613800000005",
        "请把会议纪要转发给项目组的同事，谢谢",
        1_700_000_000_010,
    );
    assert_eq!(colleague.action, Action::Allow, "{}", colleague.reason);
}
