//! The fraud knowledge table travels from the cloud's rules to the phone through `SyncCache`:
//! installed once per revision, used offline, kept across a restart.

use std::path::Path;

use smsguard_core::knowledge::{TableText, BUILTIN_TOML};
use smsguard_edge::engine::Source;
use smsguard_edge::model::Action;
use smsguard_scoring::rules::{DEFAULT_RULES_TOML, DEFAULT_SPAM_HOSTS};
use smsguard_system_tests::{engine_config, now_ms, open_engine, samples, TestCloud};

use crate::online_engine;

/// A lure no built-in entry and no corpus knows, and the entry that names it.
const LURE: &str = "Claim your zorblax voucher today before it expires";
const ENTRY: &str = include_str!("../../../datasets/fixtures/knowledge/zorblax-entry.toml");

/// The cloud's rules directory: the default rules naming `knowledge.toml`, which is the
/// built-in table plus [`ENTRY`]. Returns the table's text.
fn write_rules(dir: &Path) -> String {
    let rules = DEFAULT_RULES_TOML.replacen(
        "version = 2\n",
        "version = 2\nknowledge = \"knowledge.toml\"\n",
        1,
    );
    assert_ne!(
        rules, DEFAULT_RULES_TOML,
        "the default rules start with their version"
    );
    std::fs::write(dir.join("rules.toml"), rules).unwrap();
    std::fs::write(dir.join("spam-hosts.txt"), DEFAULT_SPAM_HOSTS).unwrap();
    let table = format!("{BUILTIN_TOML}\n{ENTRY}");
    std::fs::write(dir.join("knowledge.toml"), &table).unwrap();
    table
}

#[test]
fn a_synced_table_tags_offline_once_installed_and_survives_a_restart() {
    let rules_dir = tempfile::tempdir().unwrap();
    let table = write_rules(rules_dir.path());
    let expected = TableText::new(table, "test").unwrap().id().to_owned();
    let rules_path = rules_dir.path().join("rules.toml");
    let cloud = TestCloud::start(|config| config.rules_path = Some(rules_path)).unwrap();
    let sender = samples::sender(700);

    // Before any sync the phone knows only the built-in table: the lure goes through.
    let phone = tempfile::tempdir().unwrap();
    let offline = open_engine(phone.path(), engine_config(None)).unwrap();
    assert_eq!(offline.knowledge_revision(), TableText::builtin().id());
    let before = offline.classify(&sender, LURE, now_ms());
    assert_eq!(before.action, Action::Allow, "{before:?}");
    offline.close().unwrap();

    let online = online_engine(phone.path(), &cloud.url());
    let summary = online.sync().unwrap();
    assert!(
        summary.knowledge_installed && !summary.knowledge_rejected,
        "{summary:?}"
    );
    assert_eq!(online.knowledge_revision(), expected);
    // The phone has it now: the next sync does not carry it again.
    let again = online.sync().unwrap();
    assert!(!again.knowledge_installed, "{again:?}");
    online.close().unwrap();

    // Offline after a restart, the stored table tags the lure and the reason names its entry.
    let restarted = open_engine(phone.path(), engine_config(None)).unwrap();
    assert_eq!(restarted.knowledge_revision(), expected);
    let after = restarted.classify(&sender, LURE, now_ms());
    assert_eq!(after.source, Source::Rule, "{after:?}");
    assert_eq!(after.action, Action::Tag, "{after:?}");
    assert!(
        after.reason.contains("test-zorblax-voucher"),
        "{}",
        after.reason
    );
    let ham = restarted.classify(&sender, &samples::ham(70), now_ms());
    assert_eq!(ham.action, Action::Allow, "{ham:?}");
}
