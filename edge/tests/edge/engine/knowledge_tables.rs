//! Knowledge tables from `SyncCache` that must not replace the one in force: a table whose
//! text is not what the cloud named, one that contradicts its own examples, one too large,
//! one that does not parse; and a stored table damaged on disk.

use super::*;
use smsguard_core::knowledge::{TableText, BUILTIN_TOML, MAX_TABLE_BYTES};

const ENTRY: &str = include_str!("../../../../datasets/fixtures/knowledge/zorblax-entry.toml");

/// A page carrying `toml` under the id `revision`.
fn page(version: u64, revision: &str, toml: String) -> SyncCacheResponse {
    SyncCacheResponse {
        version,
        knowledge: Some(v1::KnowledgeTable {
            revision: revision.to_owned(),
            toml,
        }),
        ..SyncCacheResponse::default()
    }
}

fn id_of(toml: &str) -> String {
    TableText::new(toml.to_owned(), "test")
        .unwrap()
        .id()
        .to_owned()
}

#[test]
fn a_table_that_fails_any_check_is_refused_and_the_one_in_force_stays() {
    let good = format!("{BUILTIN_TOML}\n{ENTRY}");
    // The example says "claim your zorblax voucher today"; this entry needs "coupon" too.
    let contradicting = good.replace(
        r#"cues = [["zorblax"], ["voucher"]]"#,
        r#"cues = [["zorblax"], ["coupon"]]"#,
    );
    let oversized = format!("{good}\n#{}\n", "x".repeat(MAX_TABLE_BYTES));
    let refused = [
        page(1, &id_of(BUILTIN_TOML), good.clone()),
        page(2, &id_of(&contradicting), contradicting.clone()),
        page(3, "r+000000000000", oversized),
        page(4, "r+000000000000", "format = 1\nrevision = [".to_owned()),
    ];
    let cloud = FakeCloud::new(Behaviour::Fail(CloudLinkError::Unavailable {
        reason: "x".into(),
    }));
    let dir = tempfile::tempdir().unwrap();
    let engine = with_cloud(dir.path(), &cloud, Duration::from_millis(50));
    let builtin = TableText::builtin().id().to_owned();
    for (n, refused_page) in refused.into_iter().enumerate() {
        cloud.state().sync_pages.push_back(refused_page);
        let summary = engine.sync().unwrap();
        assert!(
            summary.knowledge_rejected && !summary.knowledge_installed,
            "page {n}: {summary:?}"
        );
        assert_eq!(engine.knowledge_revision(), builtin, "page {n}");
    }
    assert_eq!(engine.stats().counters.get("knowledge.rejected"), Some(&4));
    let lure = "your zorblax voucher is here";
    assert_eq!(engine.classify(STRANGER, lure, 0).action, Action::Allow);

    // The right table under its own id is installed.
    cloud
        .state()
        .sync_pages
        .push_back(page(5, &id_of(&good), good.clone()));
    let summary = engine.sync().unwrap();
    assert!(
        summary.knowledge_installed,
        "{summary:?} {:?}",
        cloud.state().sync_requests
    );
    assert_eq!(engine.stats().knowledge_revision, id_of(&good));
    let tagged = engine.classify(STRANGER, "here is your zorblax voucher", 1);
    assert_eq!((tagged.source, tagged.action), (Source::Rule, Action::Tag));
    engine.close().unwrap();

    // Damaged on disk: the stored table no longer loads, the built-in one serves, counted.
    let store =
        Store::open_with(dir.path(), StoreOptions::new(1 << 20, Durability::Process)).unwrap();
    store.save_knowledge_table(&contradicting).unwrap();
    store.flush().unwrap();
    drop(store);
    let engine = offline(dir.path());
    assert_eq!(engine.knowledge_revision(), builtin);
    assert_eq!(
        engine.stats().counters.get("knowledge.stored_rejected"),
        Some(&1)
    );
}
