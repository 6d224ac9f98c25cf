use std::path::Path;
use std::time::{Duration, SystemTime};

use smsguard_core::Label;
use smsguard_scoring::rules::{RuleSet, RulesError, StaticRules};
use smsguard_scoring::{ForcedAction, PreparedMessage, RulesHandle, Scorer};

use crate::msg;

fn builtin() -> StaticRules {
    StaticRules(RuleSet::builtin().unwrap())
}

#[test]
fn builtin_rules_load_and_match_keywords_through_normalisation() {
    let rules = builtin();
    assert!(rules.0.rule_count() > 10);
    let spam = rules
        .score(&msg("加 薇 信 lucky888，领取红包，六合彩内部资料").context())
        .unwrap();
    assert!(spam.score > 0.6, "{}: {}", spam.score, spam.reason);
    assert!(
        spam.reason.contains("zh-contact-lure")
            && spam.reason.contains("zh-gambling")
            && spam.reason.contains("zh-gift-lure"),
        "{}",
        spam.reason
    );
    // A red packet for adding a WeChat is the gift lure (fraud), beside gambling and the lure.
    assert!(
        spam.reason
            .contains("types: prize (fraud) 0.50, gambling (illegal) 0.60, contact_lure 0.30"),
        "hits per type: {}",
        spam.reason
    );
    let kinds: Vec<&str> = spam.hits.iter().map(|h| h.kind.as_str()).collect();
    assert_eq!(kinds, ["prize", "gambling", "contact_lure"]);
    assert!(spam.hits[0].harmful && spam.hits[1].harmful && !spam.hits[2].harmful);
    // The heaviest harmful type names the label.
    assert_eq!(spam.label, Some(Label::Illegal));
    let ham = rules
        .score(&msg("明天下午三点开会，记得带电脑").context())
        .unwrap();
    assert_eq!(ham.score, 0.0);
    assert_eq!(ham.label, None);
}

#[test]
fn ascii_keywords_need_word_boundaries() {
    let rules = builtin();
    assert!(rules.score(&msg("Buy V1agra now").context()).unwrap().score > 0.5);
    assert_eq!(
        rules
            .score(&msg("the viagrafield festival").context())
            .unwrap()
            .score,
        0.0
    );
}

#[test]
fn url_hosts_on_deny_list_and_shorteners_score() {
    let rules = builtin();
    let denied = rules
        .score(&msg("Your parcel is waiting: https://postnl-pakketdienst.me/track").context())
        .unwrap();
    let short = rules
        .score(&msg("see https://bit.ly/abc for the photos").context())
        .unwrap();
    let plain = rules
        .score(&msg("see https://example.org/photos for the photos").context())
        .unwrap();
    assert!(
        denied.score >= 0.7 && denied.reason.contains("host-deny"),
        "{}",
        denied.reason
    );
    assert!(
        !denied.reason.contains("postnl"),
        "reason must not quote the host"
    );
    assert!(short.score > 0.0 && short.score < denied.score);
    assert_eq!(plain.score, 0.0);
}

fn write(path: &Path, text: &str, stamp_secs: u64) {
    std::fs::write(path, text).unwrap();
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(stamp_secs))
        .unwrap();
}

const GOOD_V1: &str = r#"version = 2
knowledge = "none"
[hosts]
deny = ["evil.example"]
[[entry]]
id = "promo"
type = "sale"
cues = [["big sale"]]
weight = 0.5
label = "ad"
description = "a sale"
examples = ["big sale now"]
[[sender]]
id = "vip"
pattern = '^4470000$'
action = "allow"
"#;

const BROKEN_REGEX: &str = r#"version = 2
knowledge = "none"
[[entry]]
id = "ok-rule"
type = "t"
pattern = 'fine'
weight = 0.2
description = "d"
examples = ["fine"]

[[entry]]
id = "bad-rule"
type = "t"
pattern = '(unclosed'
weight = 0.5
description = "d"
examples = ["x"]
"#;

const GOOD_V2: &str = r#"version = 2
knowledge = "none"
[[entry]]
id = "loan"
type = "fake_loan"
pattern = 'cheap loan'
weight = 0.8
label = "fraud"
action = "quarantine"
description = "d"
examples = ["a cheap loan"]
counter_examples = ["a loan"]
"#;

#[test]
fn hot_reload_swaps_good_rules_and_keeps_old_on_bad_edit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rules.toml");
    write(&path, GOOD_V1, 1_000);
    let handle = RulesHandle::open(&path, Duration::from_secs(3600)).unwrap();
    let sale = PreparedMessage::new("+1", "BIG SALE today only", 0, "d");
    let loan = PreparedMessage::new("+1", "cheap loan for you", 0, "d");
    assert!(handle.score(&sale.context()).unwrap().score >= 0.5);
    assert!(!handle.reload_if_changed().unwrap());

    write(&path, BROKEN_REGEX, 2_000);
    let err = handle.reload_if_changed().unwrap_err();
    match &err {
        RulesError::Knowledge(e) => {
            assert_eq!((e.entry.as_deref(), e.line), (Some("bad-rule"), 12))
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert!(
        err.to_string()
            .contains(":12: entry `bad-rule`: bad pattern"),
        "{err}"
    );
    assert!(handle.last_error().is_some());
    assert!(
        handle.score(&sale.context()).unwrap().score >= 0.5,
        "old rules must stay active"
    );

    write(&path, GOOD_V2, 3_000);
    assert!(handle.reload_if_changed().unwrap());
    assert!(handle.last_error().is_none());
    assert_eq!(handle.score(&sale.context()).unwrap().score, 0.0);
    let scored = handle.score(&loan.context()).unwrap();
    assert!(scored.score >= 0.8);
    assert_eq!(scored.forced_action, Some(ForcedAction::Quarantine));
}

#[test]
fn score_checks_for_changes_on_its_own_when_interval_is_zero() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rules.toml");
    write(&path, GOOD_V1, 1_000);
    let handle = RulesHandle::open(&path, Duration::ZERO).unwrap();
    let loan = PreparedMessage::new("+1", "cheap loan for you", 0, "d");
    assert_eq!(handle.score(&loan.context()).unwrap().score, 0.0);
    write(&path, GOOD_V2, 2_000);
    assert!(handle.score(&loan.context()).unwrap().score >= 0.8);
}

#[test]
fn syntax_and_validation_errors_name_line_and_rule() {
    let parse = |text: &str| RuleSet::parse(text, "test.toml", |_| Err("no files".to_owned()));
    let entry = "[[entry]]\nid = \"x\"\ntype = \"t\"\ncues = [[\"a\"]]\nweight = 0.3\ndescription = \"d\"\nexamples = [\"a\"]\n";
    let v2 = |body: &str| format!("version = 2\nknowledge = \"none\"\n{body}");
    assert!(parse(&v2(entry)).is_ok());
    let syntax = parse(&v2(&entry.replace("[[\"a\"]]", "[[\"a\"]"))).unwrap_err();
    assert!(
        matches!(syntax, RulesError::Syntax { line: 6..=7, .. }),
        "{syntax:?}"
    );

    let dup = parse(&v2(&format!("{entry}{entry}"))).unwrap_err();
    assert!(
        matches!(&dup, RulesError::Knowledge(e) if e.line == 11 && e.message.contains("duplicate")),
        "{dup:?}"
    );
    let heavy = parse(&v2(&entry.replace("0.3", "1.5"))).unwrap_err();
    assert!(
        matches!(&heavy, RulesError::Knowledge(e) if e.entry.as_deref() == Some("x") && e.line == 4),
        "{heavy:?}"
    );
    let example = parse(&v2(
        &entry.replace("examples = [\"a\"]", "examples = [\"b\"]")
    ))
    .unwrap_err();
    assert!(
        example
            .to_string()
            .contains("test.toml:4: entry `x`: does not fire on its example 1"),
        "{example}"
    );
    let unknown_field = parse(&v2(&format!("{entry}wieght = 0.5\n"))).unwrap_err();
    assert!(matches!(unknown_field, RulesError::Syntax { line: 10, .. }));

    let missing_hosts = "version = 2\n[hosts]\ndeny_file = \"nope.txt\"\n";
    assert!(matches!(
        parse(missing_hosts).unwrap_err(),
        RulesError::File {
            what: "host list",
            ..
        }
    ));
    let missing_table = "version = 2\nknowledge = \"kb.toml\"\n";
    assert!(matches!(
        parse(missing_table).unwrap_err(),
        RulesError::File {
            what: "knowledge table",
            ..
        }
    ));
    assert!(matches!(
        parse("version = 3\n").unwrap_err(),
        RulesError::Syntax { line: 1, .. }
    ));
    let old = parse("version = 1\n[[keyword]]\nid = \"k\"\nwords = [\"a\"]\n").unwrap_err();
    assert!(old.to_string().contains("[[entry]]"), "{old}");
}

#[test]
fn sender_rules_force_actions_and_block_beats_allow() {
    let text = r#"version = 2
knowledge = "none"
[[sender]]
id = "vip"
pattern = '^4470000$'
action = "allow"
[[sender]]
id = "bad-prefix"
pattern = '^99'
action = "block"
weight = 0.9
label = "fraud"
[[entry]]
id = "phish"
type = "account_lock"
cues = [["verify now"]]
weight = 0.0
action = "block"
description = "d"
examples = ["verify now"]
"#;
    let rules = StaticRules(RuleSet::parse(text, "t.toml", |_| Err(String::new())).unwrap());
    let vip = PreparedMessage::new("+44 70-000", "hello", 0, "d");
    let vip_phish = PreparedMessage::new("+4470000", "Verify now please", 0, "d");
    let bad = PreparedMessage::new("+99123", "hello", 0, "d");
    assert_eq!(
        rules.score(&vip.context()).unwrap().forced_action,
        Some(ForcedAction::Allow)
    );
    assert_eq!(
        rules.score(&vip_phish.context()).unwrap().forced_action,
        Some(ForcedAction::Block)
    );
    let blocked = rules.score(&bad.context()).unwrap();
    assert_eq!(
        (blocked.forced_action, blocked.label),
        (Some(ForcedAction::Block), Some(Label::Fraud))
    );
    assert!(!blocked.reason.contains("99123"));
}

#[test]
fn allow_hosts_beat_deny_hosts() {
    let text = "version = 2\n[hosts]\ndeny = [\"shop.example\"]\nallow = [\"good.shop.example\"]\n";
    let rules = StaticRules(RuleSet::parse(text, "t.toml", |_| Err(String::new())).unwrap());
    let bad = rules
        .score(&msg("go to https://x.shop.example/a now").context())
        .unwrap();
    let good = rules
        .score(&msg("go to https://good.shop.example/a now").context())
        .unwrap();
    assert!(bad.score > 0.5);
    assert_eq!(good.score, 0.0);
}

const TABLE: &str = r#"format = 1
revision = "r1"
[[entry]]
id = "loan"
type = "fake_loan"
label = "fraud"
weight = 0.8
description = "d"
cues = [["cheap loan"]]
examples = ["a cheap loan for you"]
"#;

#[test]
fn a_knowledge_table_beside_the_file_reloads_when_it_changes_and_bad_tables_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rules.toml");
    let table = dir.path().join("kb.toml");
    write(&path, "version = 2\nknowledge = \"kb.toml\"\n", 1_000);
    write(&table, TABLE, 1_000);
    let handle = RulesHandle::open(&path, Duration::from_secs(3600)).unwrap();
    let loan = PreparedMessage::new("+1", "cheap loan for you", 0, "d");
    let scored = handle.score(&loan.context()).unwrap();
    assert!(scored.score >= 0.8, "{}", scored.reason);
    assert!(
        scored.reason.contains("fake_loan (fraud) 0.80"),
        "{}",
        scored.reason
    );

    // An entry that no longer fires on its own example: refused, named, the old table stays.
    write(
        &table,
        &TABLE.replace("cheap loan\"]]", "payday loan\"]]"),
        2_000,
    );
    let err = handle.reload_if_changed().unwrap_err().to_string();
    assert!(
        err.contains("kb.toml:4: entry `loan`: does not fire on its example 1"),
        "{err}"
    );
    assert!(handle.score(&loan.context()).unwrap().score >= 0.8);

    write(
        &table,
        &TABLE
            .replace("cheap loan\"]]", "payday loan\"]]")
            .replace("a cheap loan for you", "a payday loan"),
        3_000,
    );
    assert!(handle.reload_if_changed().unwrap());
    assert_eq!(handle.score(&loan.context()).unwrap().score, 0.0);
    assert_eq!(handle.current().unwrap().knowledge().revisions(), ["r1"]);
}

#[test]
fn a_template_allow_yields_to_fraud_evidence_on_the_same_text_but_a_sender_allow_stands() {
    let rules = builtin();
    let forced = |sender: &str, text: &str| {
        let message = PreparedMessage::new(sender, text, 0, "d");
        rules.score(&message.context()).unwrap().forced_action
    };
    let notice = "You spent 23.40 at TESCO with your card ending 4821.";
    // A scam wearing the card notice's words with no number or link for the template to see (a
    // number spelled out is read back as <phone> since pipeline version 5).
    let scam = "Dear customer, your card ending 4471 is blocked after suspicious activity. \
                Call us now to unblock it.";
    assert_eq!(forced("+447700900000", notice), Some(ForcedAction::Allow));
    assert_eq!(
        forced("+447700900000", scam),
        None,
        "the template must not let it through"
    );
    // The carrier's service number is allowed whatever its text says (an operator's sender rule).
    assert_eq!(forced("10086", scam), Some(ForcedAction::Allow));
}
