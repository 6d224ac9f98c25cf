//! Replicas sharing their state in a real `redis-server`: two servers on real sockets (in
//! process, or a `smsguard-cloud` child process where a kill is the point) on one Redis.

use std::process::Stdio;
use std::time::{Duration, Instant};

use smsguard_proto::v1;
use smsguard_proto::v1::sms_guard_client::SmsGuardClient;
use smsguard_server::{ApiKeyConfig, ServerConfig};
use tonic::transport::Channel;

use crate::common::{self, contribution, run, with_bearer, TestServer};
use crate::test_redis::TestRedis;

const CAMPAIGN: &str = "Dear customer, your parcel 4471 is held at the depot. Pay the customs fee of 2 pounds at parcel-fees.example to release it";
const CAMPAIGN_VARIANT: &str = "Dear customer, your parcel 9902 is held at the depot. Pay the customs fee of 3 pounds at parcel-fees.example to release it";

fn fingerprint_of(text: &str) -> smsguard_core::Fingerprint {
    smsguard_core::MinHasher::new().fingerprint(&smsguard_core::normalize(text).text)
}

fn spam_report(text: &str) -> v1::ReportRequest {
    let fp = fingerprint_of(text);
    v1::ReportRequest {
        feedback: v1::Feedback::Spam as i32,
        category: v1::Label::Fraud as i32,
        fingerprint: fp.to_hex(),
        minhash: fp.minhash.to_vec(),
        sender: "+15550100".into(),
        device_id: "phone".into(),
        reported_at_ms: 1_700_000_000_000,
    }
}

/// A replica on `url` where one reporter is a quorum (anonymous clients are one reporter); its
/// state timeout is `common::start`'s generous one, so only a dead Redis degrades a verdict.
async fn replica(url: &str, tweak: impl FnOnce(&mut ServerConfig)) -> TestServer {
    let url = url.to_owned();
    common::start(move |config| {
        config.state = Some(url);
        config.report_quorum = 1;
        config.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
        tweak(config);
    })
    .await
}

async fn verdict(client: &mut SmsGuardClient<Channel>, body: &str) -> v1::Verdict {
    let mut msg = common::message(body, "m");
    msg.sender = "+15550199".into();
    common::classify_verdict(client, msg).await
}

async fn sync_page(client: &mut SmsGuardClient<Channel>) -> v1::SyncCacheResponse {
    sync_page_as(client, None).await
}

/// Every change since version 0, asked with API key `key` when given.
async fn sync_page_as(
    client: &mut SmsGuardClient<Channel>,
    key: Option<&str>,
) -> v1::SyncCacheResponse {
    let request = v1::SyncCacheRequest {
        since_version: 0,
        max_entries: 10_000,
        device_id: "phone".into(),
        knowledge_revision: String::new(),
    };
    let request = match key {
        Some(key) => with_bearer(key, request),
        None => tonic::Request::new(request),
    };
    client.sync_cache(request).await.unwrap().into_inner()
}

#[test]
fn a_report_through_one_replica_changes_the_verdict_on_the_other_and_both_sync_alike() {
    let redis = TestRedis::start();
    run(async {
        let a = replica(&redis.url(0), |_| {}).await;
        let b = replica(&redis.url(0), |_| {}).await;
        let (mut ca, mut cb) = (
            common::client(a.addr()).await,
            common::client(b.addr()).await,
        );
        let before = verdict(&mut cb, CAMPAIGN_VARIANT).await;
        assert_ne!(before.action, v1::Action::Quarantine as i32, "{before:?}");
        assert!(!before.degraded, "{before:?}");

        let answer = ca.report(spam_report(CAMPAIGN)).await.unwrap().into_inner();
        assert!(answer.accepted);
        assert_eq!(answer.report_count, 1);

        let after = verdict(&mut cb, CAMPAIGN_VARIANT).await;
        assert_eq!(after.action, v1::Action::Quarantine as i32, "{after:?}");
        let reason = &contribution(&after, "similarity").reason;
        assert!(reason.contains("reported as spam by 1 user(s)"), "{reason}");

        let (page_a, page_b) = (sync_page(&mut ca).await, sync_page(&mut cb).await);
        assert_eq!(page_a, page_b);
        let campaign = fingerprint_of(CAMPAIGN).to_hex();
        assert!(
            page_a
                .fingerprints
                .iter()
                .any(|f| f.fingerprint == campaign),
            "{page_a:?}"
        );
        // Every key is namespaced and versioned.
        let reply = redis.command("KEYS *");
        let names: Vec<&str> = reply
            .lines()
            .filter(|line| !line.starts_with('*') && !line.starts_with('$'))
            .collect();
        assert!(names.len() > 16, "{names:?}");
        assert!(
            names.iter().all(|k| k.starts_with("smsguard:v1:")),
            "{names:?}"
        );
        // The default rules' sender rules were logged once, by whichever replica came first.
        let rules = page_a.sender_rules.len();
        assert!(
            rules > 0 && page_a.version as usize == rules + 1,
            "{page_a:?}"
        );
        a.server.shutdown().await.unwrap();
        b.server.shutdown().await.unwrap();
    });
}

#[test]
fn a_keys_rate_limit_holds_across_replicas() {
    let redis = TestRedis::start();
    run(async {
        // A burst of 4 and next to no refill: each replica alone would allow 4.
        let keys = || vec![ApiKeyConfig::from_key("k", "secret-k", 0.001, 4)];
        let a = replica(&redis.url(0), |c| c.api_keys = keys()).await;
        let b = replica(&redis.url(0), |c| c.api_keys = keys()).await;
        let mut allowed = 0;
        let mut refused_on_b = 0;
        for (i, addr) in [a.addr(), a.addr(), b.addr(), b.addr()]
            .into_iter()
            .cycle()
            .take(8)
            .enumerate()
        {
            let mut client = common::client(addr).await;
            let request = with_bearer("secret-k", common::classify_request(&format!("hello {i}")));
            match client.classify(request).await {
                Ok(_) => allowed += 1,
                Err(status) => {
                    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
                    refused_on_b += usize::from(addr == b.addr());
                }
            }
        }
        assert_eq!(allowed, 4, "the burst of 4 holds across both replicas");
        assert!(refused_on_b > 0);
        a.server.shutdown().await.unwrap();
        b.server.shutdown().await.unwrap();
    });
}

#[test]
fn concurrent_reports_through_both_replicas_keep_one_vote_per_reporter() {
    let redis = TestRedis::start();
    let reporters: Vec<(String, String)> = (0..8)
        .map(|i| (format!("r{i}"), format!("secret-r{i}")))
        .collect();
    run(async {
        let keys: Vec<ApiKeyConfig> = reporters
            .iter()
            .map(|(id, key)| ApiKeyConfig::from_key(id, key, 1000.0, 1000))
            .collect();
        let a = replica(&redis.url(0), |c| {
            c.api_keys = keys.clone();
            c.report_quorum = 3;
        })
        .await;
        let b = replica(&redis.url(0), |c| {
            c.api_keys = keys.clone();
            c.report_quorum = 3;
        })
        .await;
        let mut tasks = Vec::new();
        for (i, (_, key)) in reporters.iter().enumerate() {
            for round in 0..4 {
                let addr = if (i + round) % 2 == 0 {
                    a.addr()
                } else {
                    b.addr()
                };
                let key = key.clone();
                tasks.push(tokio::spawn(async move {
                    let mut client = common::client(addr).await;
                    let request = with_bearer(&key, spam_report(CAMPAIGN));
                    client.report(request).await.unwrap().into_inner().accepted
                }));
            }
        }
        for task in tasks {
            assert!(task.await.unwrap());
        }
        let mut client = common::client(a.addr()).await;
        let again = with_bearer("secret-r0", spam_report(CAMPAIGN));
        let answer = client.report(again).await.unwrap().into_inner();
        assert_eq!(answer.report_count, 8, "8 reporters, 33 reports");
        // The quorum was reached once: one change in the log for the campaign.
        let page = sync_page_as(&mut common::client(b.addr()).await, Some("secret-r1")).await;
        let campaign = fingerprint_of(CAMPAIGN).to_hex();
        let logged = page
            .fingerprints
            .iter()
            .filter(|f| f.fingerprint == campaign)
            .count();
        assert_eq!(logged, 1, "{page:?}");
        a.server.shutdown().await.unwrap();
        b.server.shutdown().await.unwrap();
    });
}

/// Classifies until a verdict is not degraded (the connection manager reconnects in the
/// background), for at most 15 s.
async fn first_full_verdict(client: &mut SmsGuardClient<Channel>, body: &str) -> v1::Verdict {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let verdict = verdict(client, body).await;
        if !verdict.degraded {
            return verdict;
        }
        assert!(Instant::now() < deadline, "still degraded: {verdict:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn redis_killed_and_restarted_degrades_verdicts_then_recovers_with_its_data() {
    let mut redis = TestRedis::start();
    run(async {
        let a = replica(&redis.url(0), |_| {}).await;
        let mut client = common::client(a.addr()).await;
        assert!(
            client
                .report(spam_report(CAMPAIGN))
                .await
                .unwrap()
                .into_inner()
                .accepted
        );
        let full = verdict(&mut client, CAMPAIGN_VARIANT).await;
        assert_eq!(full.action, v1::Action::Quarantine as i32, "{full:?}");

        redis.kill();
        for _ in 0..3 {
            let degraded = verdict(&mut client, CAMPAIGN_VARIANT).await;
            assert!(degraded.degraded, "{degraded:?}");
            assert!(contribution(&degraded, "similarity").degraded);
            assert!(contribution(&degraded, "sender").degraded);
            assert!(!contribution(&degraded, "multiclass").degraded);
        }
        let metrics_addr = a.server.metrics_addr.expect("metrics listener");
        let text = common::metrics_text(metrics_addr);
        assert!(
            common::metric_value(&text, "smsguard_shared_state_degraded_total") >= 3.0,
            "{text}"
        );
        // The console's degraded share counts each of those verdicts once (two inputs failed).
        assert_eq!(
            common::metric_value(&text, "smsguard_degraded_verdicts_total"),
            common::metric_value(&text, "smsguard_shared_state_degraded_total"),
            "{text}"
        );
        // A report cannot be recorded: the phone is told to retry, nothing is lost silently.
        let refused = client
            .report(spam_report(CAMPAIGN_VARIANT))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");

        redis.restart();
        let recovered = first_full_verdict(&mut client, CAMPAIGN_VARIANT).await;
        assert_eq!(
            recovered.action,
            v1::Action::Quarantine as i32,
            "{recovered:?}"
        );
        a.server.shutdown().await.unwrap();
    });
}

#[test]
fn an_acknowledged_report_survives_a_kill_9_of_its_replica() {
    let redis = TestRedis::start();
    let url = redis.url(0);
    let dir = tempfile::tempdir().unwrap();
    let (mut process, addr) = common::serve_process_with_env(
        dir.path(),
        "warn",
        Stdio::null(),
        &[
            ("SMSGUARD_STATE", &url),
            ("SMSGUARD_STATE_TIMEOUT_MS", "1000"),
            ("SMSGUARD_REPORT_QUORUM", "1"),
        ],
    );
    run(async {
        let mut client = common::client(addr).await;
        let answer = client
            .report(spam_report(CAMPAIGN))
            .await
            .unwrap()
            .into_inner();
        assert!(answer.accepted);
    });
    process.kill().expect("kill -9");
    process.wait().expect("reap");
    run(async {
        let b = replica(&url, |_| {}).await;
        let mut client = common::client(b.addr()).await;
        let after = verdict(&mut client, CAMPAIGN_VARIANT).await;
        assert_eq!(after.action, v1::Action::Quarantine as i32, "{after:?}");
        b.server.shutdown().await.unwrap();
    });
}

#[test]
fn a_senders_window_counts_its_messages_through_both_replicas() {
    let redis = TestRedis::start();
    run(async {
        let a = replica(&redis.url(0), |_| {}).await;
        let b = replica(&redis.url(0), |_| {}).await;
        let (mut ca, mut cb) = (
            common::client(a.addr()).await,
            common::client(b.addr()).await,
        );
        let mut last = None;
        for i in 0..12 {
            let client = if i % 2 == 0 { &mut ca } else { &mut cb };
            last = Some(verdict(client, &format!("see you at the station at {i} pm")).await);
        }
        let last = last.expect("12 verdicts");
        let reason = &contribution(&last, "sender").reason;
        assert!(reason.contains("12 msg/min"), "{reason}");
        a.server.shutdown().await.unwrap();
        b.server.shutdown().await.unwrap();
    });
}

#[test]
fn an_operator_whitelist_through_one_replica_reaches_the_others_at_their_reload() {
    use smsguard_server::console::campaigns;
    use smsguard_server::operator_list::{self, Listing};
    let redis = TestRedis::start();
    run(async {
        let a = replica(&redis.url(0), |_| {}).await;
        let b = replica(&redis.url(0), |_| {}).await;
        let (mut ca, mut cb) = (
            common::client(a.addr()).await,
            common::client(b.addr()).await,
        );
        assert!(
            ca.report(spam_report(CAMPAIGN))
                .await
                .unwrap()
                .into_inner()
                .accepted
        );
        let quarantined = verdict(&mut cb, CAMPAIGN_VARIANT).await;
        assert_eq!(quarantined.action, v1::Action::Quarantine as i32);
        let id = fingerprint_of(CAMPAIGN).id();

        // Both replicas read the one trail of reports.
        let app_b = std::sync::Arc::clone(b.server.app());
        let trail =
            tokio::task::spawn_blocking(move || app_b.state_backend().recent_reports(10).unwrap())
                .await
                .unwrap();
        assert_eq!(trail.len(), 1);
        assert_eq!(trail[0].fingerprint_id, id);
        assert!(trail[0].spam);

        let app_a = std::sync::Arc::clone(a.server.app());
        tokio::task::spawn_blocking(move || {
            operator_list::list(&app_a, id, Listing::Whitelist, "operator", 1).unwrap()
        })
        .await
        .unwrap();
        let on_a = verdict(&mut ca, CAMPAIGN_VARIANT).await;
        assert_eq!(on_a.action, v1::Action::Allow as i32, "{on_a:?}");
        // Replica b applies it at its next reload tick.
        b.server.reload().await.unwrap();
        let on_b = verdict(&mut cb, CAMPAIGN_VARIANT).await;
        assert_eq!(on_b.action, v1::Action::Allow as i32, "{on_b:?}");

        let app_b = std::sync::Arc::clone(b.server.app());
        let view = tokio::task::spawn_blocking(move || campaigns::gather(&app_b, 2).unwrap())
            .await
            .unwrap();
        let cluster = view
            .clusters
            .iter()
            .find(|c| c.ids().contains(&id))
            .expect("the reported fingerprint is a campaign");
        assert_eq!(cluster.listing(), Some(Listing::Whitelist));
        assert_eq!(cluster.spam_reports, 1);
        let page = sync_page(&mut cb).await;
        let change = page
            .fingerprints
            .iter()
            .rev()
            .find(|f| f.fingerprint == fingerprint_of(CAMPAIGN).to_hex())
            .unwrap();
        assert!(change.removed, "{page:?}");

        // Unlisted through b: gone from the shared store, and a's verdict after its reload is
        // the report quorum's again.
        let app_b = std::sync::Arc::clone(b.server.app());
        let left = tokio::task::spawn_blocking(move || {
            operator_list::unlist(&app_b, id).unwrap();
            app_b.state_backend().operator_listings().unwrap()
        })
        .await
        .unwrap();
        assert!(left.is_empty(), "{left:?}");
        a.server.reload().await.unwrap();
        let on_a = verdict(&mut ca, CAMPAIGN_VARIANT).await;
        assert_eq!(on_a.action, v1::Action::Quarantine as i32, "{on_a:?}");
        a.server.shutdown().await.unwrap();
        b.server.shutdown().await.unwrap();
    });
}
