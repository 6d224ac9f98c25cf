//! Hot reload: a changed rules file and a changed spam feed take effect on an open connection.

use smsguard_core::knowledge::{TableText, BUILTIN_TOML};
use smsguard_proto::v1;
use smsguard_scoring::rules::{DEFAULT_RULES_TOML, DEFAULT_SPAM_HOSTS};

use crate::common::{self, classify_verdict, client, contribution, message, run};

const FEED_SPAM: &str = "Your electricity will be cut off tonight, settle the overdue bill of 87 dollars at power-bill.example";
const FEED_NEAR_DUPLICATE: &str = "Your electricity will be cut off tonight, settle the overdue bill of 93 dollars at power-bill.example";

#[test]
fn rules_and_the_spam_feed_reload_without_dropping_the_connection() {
    let files = tempfile::tempdir().unwrap();
    let rules_path = files.path().join("rules.toml");
    let feed_path = files.path().join("feed.tsv");
    std::fs::write(&rules_path, DEFAULT_RULES_TOML).unwrap();
    std::fs::write(files.path().join("spam-hosts.txt"), DEFAULT_SPAM_HOSTS).unwrap();
    let (rules, feed) = (rules_path.clone(), feed_path.clone());
    run(async move {
        let server = common::start(|config| {
            config.rules_path = Some(rules);
            config.spam_feed_path = Some(feed);
        })
        .await;
        let mut client = client(server.addr()).await;
        let sync = |since| v1::SyncCacheRequest {
            since_version: since,
            max_entries: 0,
            device_id: String::new(),
            knowledge_revision: String::new(),
        };
        let start = client.sync_cache(sync(0)).await.unwrap().into_inner();
        let before = classify(&mut client, FEED_NEAR_DUPLICATE, "+15550300").await;
        assert_eq!(contribution(&before, "similarity").score, 0.0);

        let mut rules_text = DEFAULT_RULES_TOML.to_owned();
        rules_text.push_str(
            "\n[[sender]]\nid = \"test-deny\"\npattern = '^99999$'\naction = \"block\"\n",
        );
        std::fs::write(&rules_path, rules_text).unwrap();
        std::fs::write(&feed_path, format!("fraud\t{FEED_SPAM}\n")).unwrap();
        let summary = server.server.reload().await.unwrap();
        assert!(summary.rules_reloaded);
        assert_eq!(summary.sender_rule_changes, 1);
        assert_eq!(summary.feed_fingerprints_added, 1);

        // Same client, same connection.
        let changes = client
            .sync_cache(sync(start.version))
            .await
            .unwrap()
            .into_inner();
        assert!(changes
            .sender_rules
            .iter()
            .any(|r| r.pattern == "^99999$" && r.kind == v1::SenderRuleKind::Deny as i32));
        assert_eq!(changes.fingerprints.len(), 1);
        let after = classify(&mut client, FEED_NEAR_DUPLICATE, "+15550301").await;
        assert!(contribution(&after, "similarity").score > 0.4);
        let denied = classify(&mut client, "hello, lunch tomorrow?", "99999").await;
        assert_eq!(denied.action, v1::Action::Block as i32);
        assert_eq!(denied.source, v1::VerdictSource::Rule as i32);

        // Unchanged files: nothing to do.
        let again = server.server.reload().await.unwrap();
        assert_eq!(again, Default::default());

        // A broken edit: the old rules stay in force and the edges are told nothing.
        let synced = client.sync_cache(sync(0)).await.unwrap().into_inner();
        std::fs::write(&rules_path, "[[sender]]\npattern = '^99999$\n").unwrap();
        let broken = server.server.reload().await;
        assert!(broken.map_or(true, |summary| summary.sender_rule_changes == 0));
        let after_broken = client.sync_cache(sync(synced.version)).await.unwrap();
        assert!(after_broken.into_inner().sender_rules.is_empty());
        let still_denied = classify(&mut client, "hello, lunch tomorrow?", "99999").await;
        assert_eq!(still_denied.action, v1::Action::Block as i32);
        server.server.shutdown().await.unwrap();
    });
}

#[test]
fn the_knowledge_table_reaches_phones_once_per_revision_and_follows_reloads() {
    let files = tempfile::tempdir().unwrap();
    let rules_path = files.path().join("rules.toml");
    let table_path = files.path().join("knowledge.toml");
    let rules = DEFAULT_RULES_TOML.replacen(
        "version = 2\n",
        "version = 2\nknowledge = \"knowledge.toml\"\n",
        1,
    );
    std::fs::write(&rules_path, rules).unwrap();
    std::fs::write(files.path().join("spam-hosts.txt"), DEFAULT_SPAM_HOSTS).unwrap();
    std::fs::write(&table_path, BUILTIN_TOML).unwrap();
    let rules = rules_path.clone();
    run(async move {
        let server = common::start(|config| config.rules_path = Some(rules)).await;
        let mut client = client(server.addr()).await;
        let sync = |known: &str| v1::SyncCacheRequest {
            knowledge_revision: known.to_owned(),
            ..v1::SyncCacheRequest::default()
        };
        let table_of = |known: String| {
            let mut client = client.clone();
            async move {
                let page = client.sync_cache(sync(&known)).await.unwrap().into_inner();
                page.knowledge
            }
        };
        let first = table_of(String::new())
            .await
            .expect("a phone without it gets the table");
        assert_eq!(first.revision, TableText::builtin().id());
        assert_eq!(first.toml, BUILTIN_TOML);
        assert!(
            table_of(first.revision.clone()).await.is_none(),
            "not sent twice"
        );

        // An edit of the table (not of the rules file) is picked up and sent under a new id.
        let edited = format!("{BUILTIN_TOML}\n# reviewed\n");
        std::fs::write(&table_path, &edited).unwrap();
        assert!(server.server.reload().await.unwrap().rules_reloaded);
        let second = table_of(first.revision.clone()).await.expect("the edit");
        assert_eq!(second.toml, edited);
        assert_ne!(second.revision, first.revision);

        // A broken table is refused by the reload: phones keep getting the last good one.
        std::fs::write(&table_path, "format = 1\nrevision = [").unwrap();
        let _ = server.server.reload().await;
        let still = table_of(first.revision.clone())
            .await
            .expect("the last good table");
        assert_eq!(still.revision, second.revision);
        // A knowledge_revision longer than any id is refused like any oversized field.
        let status = client
            .sync_cache(sync(&"r".repeat(4096)))
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        server.server.shutdown().await.unwrap();
    });
}

async fn classify(
    client: &mut smsguard_proto::v1::sms_guard_client::SmsGuardClient<tonic::transport::Channel>,
    text: &str,
    sender: &str,
) -> v1::Verdict {
    let mut msg = message(text, "r");
    msg.sender = sender.into();
    classify_verdict(client, msg).await
}
