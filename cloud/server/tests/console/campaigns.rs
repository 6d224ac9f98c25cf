//! The Campaigns and Reports pages and the whitelist / blacklist actions on a real server:
//! a report over gRPC shows up as a cluster, a whitelist changes the next Classify verdict of a
//! near-duplicate, enters SyncCache, and is audited; unlisting takes it back; no page carries
//! message text.

use smsguard_proto::v1;
use smsguard_proto::v1::sms_guard_client::SmsGuardClient;

use crate::common::*;

/// Two near-duplicates (one number changed) of a smishing text, and a ham text.
const SPAM: &str = "URGENT: your parcel 88412 is held at customs, pay the 2.99 release fee now at \
    http://parcel-release-fee.example/pay or it is returned to sender today";
const SPAM_VARIANT: &str = "URGENT: your parcel 88413 is held at customs, pay the 2.99 release \
    fee now at http://parcel-release-fee.example/pay or it is returned to sender today";
const HAM: &str = "Hi Marguerite, the quarterly planning meeting moved to Thursday afternoon in \
    the blue room, bring the printed budget slides please";
const HAM_VARIANT: &str = "Hi Marguerite, the quarterly planning meeting moved to Friday \
    afternoon in the blue room, bring the printed budget slides please";

/// Reports `fingerprint` (of a message the shared server classified) over gRPC.
pub fn report(fingerprint: &str, spam: bool) {
    let addr = SERVER.server.addr;
    let request = v1::ReportRequest {
        feedback: if spam {
            v1::Feedback::Spam as i32
        } else {
            v1::Feedback::NotSpam as i32
        },
        fingerprint: fingerprint.to_owned(),
        category: if spam { v1::Label::Fraud as i32 } else { 0 },
        device_id: "console-test".into(),
        ..Default::default()
    };
    let answer = run(async move {
        let mut client = SmsGuardClient::connect(format!("http://{addr}"))
            .await
            .expect("connect");
        client.report(request).await.expect("report").into_inner()
    });
    assert!(
        answer.accepted,
        "a recently classified fingerprint is known"
    );
}

fn sync_changes() -> Vec<v1::SpamFingerprint> {
    let addr = SERVER.server.addr;
    run(async move {
        let mut client = SmsGuardClient::connect(format!("http://{addr}"))
            .await
            .expect("connect");
        client
            .sync_cache(v1::SyncCacheRequest {
                since_version: 0,
                max_entries: 10_000,
                device_id: "console-test".into(),
                knowledge_revision: String::new(),
            })
            .await
            .expect("sync")
            .into_inner()
            .fingerprints
    })
}

fn action(verdict: &v1::Verdict) -> v1::Action {
    v1::Action::try_from(verdict.action).unwrap()
}

/// Words of the test messages that no page may show.
fn assert_no_text(page: &str) {
    for word in ["88412", "88413", "customs", "Marguerite", "budget slides"] {
        assert!(!page.contains(word), "message text `{word}` in a page");
    }
}

fn list(session: &Login, csrf: Option<&str>, ids: &str, what: &str) -> Reply {
    let mut fields = vec![("ids", ids), ("action", what)];
    if let Some(csrf) = csrf {
        fields.push(("csrf", csrf));
    }
    post_form("/reports/list", Some(&session.cookie), &fields)
}

#[test]
fn a_whitelisted_cluster_is_allowed_from_the_next_verdict_and_synced() {
    let before = classify_from("+15550177", SPAM);
    assert_ne!(action(&before), v1::Action::Allow, "{before:?}");
    let id = before.fingerprint.to_ascii_lowercase();
    report(&id, true);

    let session = login();
    let campaigns = get("/campaigns", Some(&session.cookie));
    assert_eq!(campaigns.status, 200);
    assert!(
        campaigns.body.contains(&id),
        "the reported fingerprint is a campaign"
    );
    assert!(campaigns.body.contains("No message text is ever stored"));
    let reports = get("/reports", Some(&session.cookie));
    assert_eq!(reports.status, 200);
    assert!(reports.body.contains(&format!(r#"name="ids" value="{id}"#)));

    // Refused without the session's token: nothing listed, the verdict unchanged.
    assert_eq!(list(&session, None, &id, "whitelist").status, 403);
    assert_eq!(list(&session, Some("00ff"), &id, "whitelist").status, 403);
    assert_ne!(
        action(&classify_from("+15550177", SPAM_VARIANT)),
        v1::Action::Allow
    );
    assert_eq!(
        list(&session, Some(&session.csrf), "xyz", "whitelist").status,
        400
    );

    let listed = list(&session, Some(&session.csrf), &id, "whitelist");
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert!(listed.body.contains("Whitelisted 1 fingerprint"));
    let after = classify_from("+15550177", SPAM_VARIANT);
    assert_eq!(action(&after), v1::Action::Allow, "{after:?}");
    assert_eq!(v1::Label::try_from(after.label).unwrap(), v1::Label::Ham);

    let synced = sync_changes();
    let change = synced
        .iter()
        .rev()
        .find(|f| f.fingerprint == id)
        .expect("the whitelist is in the sync log");
    assert!(
        change.removed,
        "a whitelisted fingerprint leaves the phones' caches"
    );

    let audit = get("/audit", Some(&session.cookie));
    assert!(audit.body.contains("whitelist"), "the action is audited");
    assert!(audit.body.contains(&id));
    for page in [&campaigns.body, &reports.body, &listed.body, &audit.body] {
        assert_no_text(page);
    }
}

#[test]
fn a_blacklisted_cluster_is_blocked_from_the_next_verdict() {
    let before = classify_from("+15550178", HAM);
    assert_eq!(action(&before), v1::Action::Allow, "{before:?}");
    let id = before.fingerprint.to_ascii_lowercase();
    report(&id, false);

    let session = login();
    let listed = list(&session, Some(&session.csrf), &id, "blacklist");
    assert_eq!(listed.status, 200, "{}", listed.body);
    let after = classify_from("+15550178", HAM_VARIANT);
    assert_eq!(action(&after), v1::Action::Block, "{after:?}");
    let change = sync_changes()
        .into_iter()
        .rev()
        .find(|f| f.fingerprint == id)
        .expect("the blacklist is in the sync log");
    assert!(!change.removed);
    for path in ["/campaigns", "/reports"] {
        let page = get(path, Some(&session.cookie));
        assert!(page.body.contains("blacklist"), "{path} shows the listing");
        assert_no_text(&page.body);
    }

    // Unlisted: the next verdict is the models' again, and the phones drop it.
    let unlisted = list(&session, Some(&session.csrf), &id, "unlist");
    assert_eq!(unlisted.status, 200, "{}", unlisted.body);
    assert!(unlisted.body.contains("Unlisted 1 fingerprint"));
    let again = classify_from("+15550178", HAM_VARIANT);
    assert_eq!(action(&again), v1::Action::Allow, "{again:?}");
    let change = sync_changes()
        .into_iter()
        .rev()
        .find(|f| f.fingerprint == id)
        .unwrap();
    assert!(change.removed, "no spam evidence left: off the phones");
    assert!(get("/audit", Some(&session.cookie)).body.contains("unlist"));
}
