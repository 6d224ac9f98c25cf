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
        .score(&msg("加 薇 信，领取红包，六合彩内部资料").context())
        .unwrap();
    assert!(spam.score > 0.6, "{}: {}", spam.score, spam.reason);
    assert!(
        spam.reason.contains("zh-add-contact") && spam.reason.contains("zh-gambling"),
        "{}",
        spam.reason
    );
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

const GOOD_V1: &str = r#"version = 1
[hosts]
deny = ["evil.example"]
[[keyword]]
id = "promo"
words = ["big sale"]
weight = 0.5
label = "ad"
[[sender]]
id = "vip"
pattern = '^4470000$'
action = "allow"
"#;

const BROKEN_REGEX: &str = r#"version = 1

[[regex]]
id = "ok-rule"
pattern = 'fine'
weight = 0.2

[[regex]]
id = "bad-rule"
pattern = '(unclosed'
weight = 0.5
"#;

const GOOD_V2: &str = r#"version = 1
[[regex]]
id = "loan"
pattern = 'cheap loan'
weight = 0.8
label = "fraud"
action = "quarantine"
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
        RulesError::Invalid { id, line, .. } => assert_eq!((id.as_str(), *line), ("bad-rule", 9)),
        other => panic!("unexpected error {other:?}"),
    }
    assert!(err.to_string().contains(":9: rule `bad-rule`"), "{err}");
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
    let syntax =
        parse("version = 1\n[[keyword]]\nid = \"x\"\nwords = [\"a\"\nweight = 0.3\n").unwrap_err();
    assert!(
        matches!(syntax, RulesError::Syntax { line: 4..=5, .. }),
        "{syntax:?}"
    );

    let dup = "version = 1\n[[keyword]]\nid = \"same\"\nwords = [\"a\"]\nweight = 0.3\n[[regex]]\nid = \"same\"\npattern = 'b'\nweight = 0.3\n";
    assert!(matches!(
        parse(dup).unwrap_err(),
        RulesError::Invalid { line: 7, .. }
    ));

    let weight = "version = 1\n[[keyword]]\nid = \"heavy\"\nwords = [\"a\"]\nweight = 1.5\n";
    let err = parse(weight).unwrap_err();
    assert!(
        matches!(&err, RulesError::Invalid { id, line: 3, .. } if id == "heavy"),
        "{err:?}"
    );

    let unknown_field = "version = 1\n[[keyword]]\nid = \"k\"\nwords = [\"a\"]\nwieght = 0.5\n";
    assert!(matches!(
        parse(unknown_field).unwrap_err(),
        RulesError::Syntax { line: 5, .. }
    ));

    let missing_hosts = "version = 1\n[hosts]\ndeny_file = \"nope.txt\"\n";
    assert!(matches!(
        parse(missing_hosts).unwrap_err(),
        RulesError::HostList { .. }
    ));
    assert!(matches!(
        parse("version = 2\n").unwrap_err(),
        RulesError::Syntax { line: 1, .. }
    ));
}

#[test]
fn sender_rules_force_actions_and_block_beats_allow() {
    let text = r#"version = 1
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
[[keyword]]
id = "phish"
words = ["verify now"]
action = "block"
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
    let text = "version = 1\n[hosts]\ndeny = [\"shop.example\"]\nallow = [\"good.shop.example\"]\n";
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
