//! Durability: reports acknowledged before a `kill -9` of the server process are there after
//! a restart on the same data folder.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Stdio};

use smsguard_core::MinHasher;
use smsguard_proto::v1;

use crate::common::{self, classify_request, client, contribution, run};

/// Anonymous clients are one reporter together: a quorum of one lets one report reach the
/// sync log, which is what this test checks survives.
fn serve(data_dir: &Path) -> (Child, SocketAddr) {
    common::serve_process_with_env(
        data_dir,
        "warn",
        Stdio::null(),
        &[("SMSGUARD_REPORT_QUORUM", "1")],
    )
}

#[test]
fn reports_survive_a_kill_9_of_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let text = "URGENT: your tax refund of 312 GBP is waiting, claim it at hmrc-refunds.example before midnight";
    let normalized = smsguard_core::normalize(text);
    let fingerprint = MinHasher::new().fingerprint(&normalized.text);
    let report = v1::ReportRequest {
        feedback: v1::Feedback::Spam as i32,
        fingerprint: fingerprint.to_hex(),
        minhash: fingerprint.minhash.to_vec(),
        category: v1::Label::Fraud as i32,
        ..v1::ReportRequest::default()
    };

    let (mut first, addr) = serve(dir.path());
    let accepted = run(async move { client(addr).await.report(report).await });
    let killed = first.kill(); // SIGKILL: no graceful shutdown, no flush on exit.
    let _ = first.wait();
    assert!(accepted.expect("report answered").into_inner().accepted);
    killed.expect("kill -9");

    let (mut second, addr) = serve(dir.path());
    let (page, verdict) = run(async move {
        let mut client = client(addr).await;
        let page = client
            .sync_cache(v1::SyncCacheRequest {
                since_version: 0,
                max_entries: 0,
                device_id: String::new(),
                knowledge_revision: String::new(),
            })
            .await;
        let verdict = client.classify(classify_request(text)).await;
        (page, verdict)
    });
    let _ = second.kill();
    let _ = second.wait();
    let page = page.expect("sync answered").into_inner();
    let remembered = page
        .fingerprints
        .iter()
        .find(|f| f.fingerprint == fingerprint.to_hex())
        .expect("the report is in the sync log after the restart");
    assert_eq!(remembered.label, v1::Label::Fraud as i32);
    let verdict = verdict
        .expect("classify answered")
        .into_inner()
        .verdict
        .unwrap();
    let similarity = contribution(&verdict, "similarity");
    assert!(similarity.score > 0.5, "{}", similarity.reason);
}
