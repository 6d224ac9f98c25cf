//! Every RPC round-trips against one shared server; health, reflection and metrics answer;
//! feedback changes the next verdict of a near-duplicate.

use std::io::{Read, Write};
use std::sync::LazyLock;

use smsguard_container::device::{open_as_device, DeviceSecret};
use smsguard_container::ContainerError;
use smsguard_core::MinHasher;
use smsguard_proto::v1;
use smsguard_signing::{PackageParts, VerifyingKey};
use tokio_stream::StreamExt;

use crate::common::{
    self, channel, classify_request, classify_verdict, client, contribution, message, run,
    TestServer,
};

static SERVER: LazyLock<TestServer> = LazyLock::new(|| {
    run(common::start(|config| {
        config.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
        // Anonymous clients are one reporter together; let that one reporter's reports act.
        config.report_quorum = 1;
    }))
});

#[test]
fn classify_answers_a_fused_verdict_with_contributions_and_fingerprint() {
    let addr = SERVER.addr();
    let verdict = run(async move {
        let mut client = client(addr).await;
        let msg = message(
            "Your account is locked, verify now at http://bank-secure.example.com/login",
            "m",
        );
        classify_verdict(&mut client, msg).await
    });
    assert_ne!(verdict.label, v1::Label::Unspecified as i32);
    assert_ne!(verdict.action, v1::Action::Unspecified as i32);
    assert!((0.0..=1.0).contains(&verdict.spam_score));
    assert_eq!(verdict.fingerprint.len(), 16);
    for model in ["multiclass", "similarity", "variant", "rules", "sender"] {
        contribution(&verdict, model);
    }
    assert!(verdict
        .model_versions
        .iter()
        .any(|m| m.model == "edge" && m.version == SERVER.server.model_version));
    assert!(!verdict.degraded);
}

/// The device's configured market picks the thresholds; without one (or with one this server
/// does not know) the message's dominant script does, as on the phone.
#[test]
fn the_devices_market_picks_the_thresholds_else_the_script_does() {
    let addr = SERVER.addr();
    let text = "Your parcel is waiting, confirm the delivery fee today";
    let reasons = run(async move {
        let mut client = client(addr).await;
        let mut reasons = Vec::new();
        for market in ["", "zh", "en", "tr"] {
            let mut msg = message(text, "m");
            msg.market = market.to_owned();
            let verdict = classify_verdict(&mut client, msg).await;
            reasons.push(contribution(&verdict, "operating_point").reason.clone());
        }
        reasons
    });
    let markets: Vec<&str> = reasons
        .iter()
        .map(|r| {
            r.split_whitespace()
                .nth(1)
                .unwrap_or_default()
                .trim_end_matches(':')
        })
        .collect();
    assert_eq!(markets, ["en", "zh", "en", "en"], "{reasons:#?}");
}

#[test]
fn a_stream_answers_every_frame_and_a_bad_message_only_fails_itself() {
    let addr = SERVER.addr();
    let answers = run(async move {
        let frames = vec![
            v1::ClassifyBatch {
                messages: vec![
                    message("See you at the station at 6, bring the tickets", "a"),
                    message("", "empty"),
                    message(
                        "WIN a FREE cruise!!! reply YES to claim your prize now",
                        "c",
                    ),
                ],
            },
            v1::ClassifyBatch {
                messages: vec![message("Dinner tonight? I booked the usual place", "d")],
            },
        ];
        stream_frames(addr, frames).await
    });
    assert_eq!(answers.len(), 2);
    let first = answers[0].as_ref().unwrap();
    let ids: Vec<&str> = first
        .results
        .iter()
        .map(|r| r.client_message_id.as_str())
        .collect();
    assert_eq!(ids, ["a", "empty", "c"]);
    match &first.results[1].outcome {
        Some(v1::classify_result::Outcome::Error(e)) => {
            assert_eq!(e.code, tonic::Code::InvalidArgument as i32);
            assert!(e.reason.contains("body"), "{}", e.reason);
        }
        other => panic!("expected an error, got {other:?}"),
    }
    for result in [&first.results[0], &first.results[2]] {
        assert!(matches!(
            result.outcome,
            Some(v1::classify_result::Outcome::Verdict(_))
        ));
    }
    let second = answers[1].as_ref().unwrap();
    assert_eq!(second.results.len(), 1);
    assert!(matches!(
        second.results[0].outcome,
        Some(v1::classify_result::Outcome::Verdict(_))
    ));
}

#[test]
fn a_frame_over_the_message_limit_is_refused_and_the_stream_goes_on() {
    let addr = SERVER.addr();
    let answers = run(async move {
        let too_many = (0..65)
            .map(|i| message("hello there", &i.to_string()))
            .collect();
        let frames = vec![
            v1::ClassifyBatch { messages: too_many },
            v1::ClassifyBatch {
                messages: vec![message("are we still on for lunch", "ok")],
            },
        ];
        stream_frames(addr, frames).await
    });
    let refused = answers[0].as_ref().unwrap();
    assert_eq!(refused.results.len(), 65);
    assert!(refused.results.iter().all(|r| matches!(
        &r.outcome,
        Some(v1::classify_result::Outcome::Error(e))
            if e.code == tonic::Code::InvalidArgument as i32 && e.reason.contains("64")
    )));
    let next = answers[1].as_ref().unwrap();
    assert!(matches!(
        next.results[0].outcome,
        Some(v1::classify_result::Outcome::Verdict(_))
    ));
}

fn minhash_of(text: &str) -> Vec<u32> {
    let normalized = smsguard_core::normalize(text);
    MinHasher::new()
        .fingerprint(&normalized.text)
        .minhash
        .to_vec()
}

fn spam_report(fingerprint: &str, minhash: Vec<u32>) -> v1::ReportRequest {
    v1::ReportRequest {
        feedback: v1::Feedback::Spam as i32,
        fingerprint: fingerprint.into(),
        minhash,
        sender: "+15550199".into(),
        device_id: "test-device".into(),
        reported_at_ms: 1_700_000_000_000,
        ..v1::ReportRequest::default()
    }
}

#[test]
fn reports_are_pulled_incrementally_by_sync_cache() {
    let addr = SERVER.addr();
    run(async move {
        let mut client = client(addr).await;
        let sync = |since: u64, max: u32| v1::SyncCacheRequest {
            since_version: since,
            max_entries: max,
            device_id: "test-device".into(),
            knowledge_revision: String::new(),
        };
        let before = client.sync_cache(sync(0, 0)).await.unwrap().into_inner();
        assert!(!before.has_more);
        let texts = [
            "Loan approved in 5 minutes, no credit check, call 0800 111 222 to get cash",
            "Exclusive casino bonus 500% on first deposit, play now at lucky-spin.example",
        ];
        for (i, text) in texts.iter().enumerate() {
            let answer = client
                .report(spam_report(
                    &format!("00000000000000a{i}"),
                    minhash_of(text),
                ))
                .await
                .unwrap()
                .into_inner();
            assert!(answer.accepted);
            assert!(answer.report_count >= 1);
        }
        let first = client
            .sync_cache(sync(before.version, 1))
            .await
            .unwrap()
            .into_inner();
        assert!(first.has_more);
        assert_eq!(first.fingerprints.len(), 1);
        let rest = client
            .sync_cache(sync(first.version, 100))
            .await
            .unwrap()
            .into_inner();
        assert!(!rest.has_more);
        let mut ids: Vec<String> = first
            .fingerprints
            .iter()
            .chain(&rest.fingerprints)
            .map(|f| f.fingerprint.clone())
            .collect();
        ids.retain(|id| id.starts_with("00000000000000a"));
        assert_eq!(ids, ["00000000000000a0", "00000000000000a1"]);
        assert!(rest
            .fingerprints
            .iter()
            .all(|f| f.minhash.len() == 64 && !f.removed));
        let nothing = client
            .sync_cache(sync(rest.version, 100))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(nothing.version, rest.version);
        assert!(nothing.fingerprints.is_empty() && nothing.sender_rules.is_empty());
    });
}

#[test]
fn a_full_sync_lists_the_default_sender_rules() {
    let addr = SERVER.addr();
    let answer = run(async move {
        let request = v1::SyncCacheRequest {
            since_version: 0,
            max_entries: 10_000,
            device_id: String::new(),
            knowledge_revision: String::new(),
        };
        client(addr)
            .await
            .sync_cache(request)
            .await
            .unwrap()
            .into_inner()
    });
    assert!(answer
        .sender_rules
        .iter()
        .any(|r| r.kind == v1::SenderRuleKind::Allow as i32 && r.pattern.contains("10086")));
}

#[test]
fn get_model_serves_a_signed_package_and_says_when_the_edge_is_current() {
    let addr = SERVER.addr();
    let (full, current) = run(async move {
        let mut client = client(addr).await;
        let full = client
            .get_model(v1::GetModelRequest {
                current_version: "none".into(),
                device_id: "test-device".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let version = full.manifest.as_ref().unwrap().version.clone();
        let current = client
            .get_model(v1::GetModelRequest {
                current_version: version,
                device_id: "test-device".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        (full, current)
    });
    assert!(!full.up_to_date);
    let manifest = full.manifest.as_ref().unwrap();
    assert_eq!(manifest.size_bytes, full.model.len() as u64);
    let pinned = VerifyingKey::from_hex(&SERVER.server.model_public_key).unwrap();
    assert_eq!(full.key_id, pinned.key_id());
    let parts = PackageParts {
        manifest_json: manifest.manifest_json.as_bytes(),
        model: &full.model,
        vocabulary: &full.vocabulary,
    };
    pinned
        .verify_package(parts, &manifest.sha256, &full.signature)
        .unwrap();
    let mut tampered = full.model.clone();
    tampered[100] ^= 1;
    let parts = PackageParts {
        model: &tampered,
        ..parts
    };
    assert!(pinned.verify(parts, &full.signature).is_err());
    assert!(current.up_to_date);
    assert!(current.model.is_empty() && current.signature.is_empty());
}

#[test]
fn a_package_served_to_device_a_opens_on_a_only_and_still_verifies() {
    let addr = SERVER.addr();
    let device_a = DeviceSecret::generate();
    let device_b = DeviceSecret::generate();
    let public_a = device_a.public_key().as_bytes().to_vec();
    let (sealed, plain) = run(async move {
        let mut client = client(addr).await;
        let sealed = client
            .get_model(v1::GetModelRequest {
                current_version: "none".into(),
                device_id: "device-a".into(),
                device_public_key: public_a,
            })
            .await
            .unwrap()
            .into_inner();
        let plain = client
            .get_model(v1::GetModelRequest {
                current_version: "none".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        (sealed, plain)
    });
    assert!(
        sealed.model.is_empty(),
        "a device-bound answer carries no plain model"
    );
    assert!(!sealed.sealed_model.is_empty());
    assert!(
        plain.sealed_model.is_empty(),
        "an edge without a key gets the plain package"
    );
    assert_eq!(
        open_as_device(&device_b, &sealed.sealed_model).unwrap_err(),
        ContainerError::NotForThisDevice {
            device: device_b.public_key().key_id_hex(),
            found: device_a.public_key().key_id_hex(),
        }
    );
    let opened = open_as_device(&device_a, &sealed.sealed_model).unwrap();
    // A's copy carries A's watermark: a few int8 weights one step off the plain model.
    assert_eq!(opened.len(), plain.model.len());
    let moved = opened
        .iter()
        .zip(&plain.model)
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!(moved, smsguard_server::watermark::MARK_BITS);
    assert_eq!(
        trace_leak(&opened),
        Some(format!(
            "device {}",
            &device_a.public_key().key_id_hex()[..16]
        ))
    );
    assert_eq!(
        trace_leak(&plain.model),
        None,
        "the unsealed package is unmarked"
    );
    let manifest = sealed.manifest.as_ref().unwrap();
    let pinned = VerifyingKey::from_hex(&SERVER.server.model_public_key).unwrap();
    let parts = PackageParts {
        manifest_json: manifest.manifest_json.as_bytes(),
        model: &opened,
        vocabulary: &sealed.vocabulary,
    };
    pinned
        .verify_package(parts, &manifest.sha256, &sealed.signature)
        .unwrap();
}

/// What the operator's `watermark-trace` says of a copied model file (its stdout; `None` when it
/// finds no mark).
fn trace_leak(model: &[u8]) -> Option<String> {
    let leaked = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(leaked.path(), model).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_watermark-trace"))
        .arg("--signing-key")
        .arg(
            SERVER
                ._dir
                .path()
                .join(smsguard_server::package::SECRET_KEY_FILE),
        )
        .arg(leaked.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        assert!(stderr.contains("no watermark"), "{stderr}");
        return None;
    }
    Some(String::from_utf8(output.stdout).unwrap().trim().to_owned())
}

#[test]
fn a_malformed_device_key_is_the_clients_error() {
    let addr = SERVER.addr();
    let status = run(async move {
        client(addr)
            .await
            .get_model(v1::GetModelRequest {
                current_version: "none".into(),
                device_public_key: vec![7; 31],
                ..Default::default()
            })
            .await
            .unwrap_err()
    });
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("device_public_key"),
        "{}",
        status.message()
    );
}

#[test]
fn feedback_changes_the_next_verdict_of_a_near_duplicate() {
    // A ticket scam no model or rule flags on its own (the models learned the parcel-fee
    // smishing this test used before); only the users' reports can.
    let original = "Good news from the residents committee: the summer barbecue tickets 4471 are ready, 2 pounds each at the community hall";
    let near_duplicate = "Good news from the residents committee: the summer barbecue tickets 9902 are ready, 3 pounds each at the community hall";
    run(async move {
        // Reporters are API keys; this server's quorum is two of them.
        let server = common::start(|config| {
            config.report_quorum = 2;
            config.api_keys = (1..=4)
                .map(|i| {
                    smsguard_server::ApiKeyConfig::from_key(
                        &format!("phone-{i}"),
                        &format!("secret-{i}"),
                        1000.0,
                        1000,
                    )
                })
                .collect();
        })
        .await;
        let client = client(server.addr()).await;
        let keyed = |key: &str, mut request: tonic::Request<v1::ReportRequest>| {
            let value = format!("Bearer secret-{key}").parse().unwrap();
            request.metadata_mut().insert("authorization", value);
            request
        };
        let scorer = client.clone();
        // A new sender each time, so the sender reputation sees no burst.
        let senders = std::sync::atomic::AtomicU32::new(0);
        let score = |text: &'static str| {
            let mut client = scorer.clone();
            let mut msg = message(text, "near");
            let n = senders.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            msg.sender = format!("+1555020{n:04}");
            let mut request = tonic::Request::new(v1::ClassifyRequest { message: Some(msg) });
            let value = "Bearer secret-4".parse().unwrap();
            request.metadata_mut().insert("authorization", value);
            async move {
                let answer = client.classify(request).await.unwrap().into_inner();
                answer.verdict.unwrap()
            }
        };
        let before = score(near_duplicate).await;
        assert_eq!(contribution(&before, "similarity").score, 0.0);
        assert_eq!(before.action, v1::Action::Allow as i32, "precondition");
        // The edge reports the message it classified through the cloud by fingerprint only.
        let seen = score(original).await;
        let report = |fingerprint: &str, key: &str, feedback: v1::Feedback| {
            let mut report = spam_report(fingerprint, Vec::new());
            report.device_id = "any-device".into();
            report.feedback = feedback as i32;
            report.category = v1::Label::Fraud as i32;
            let request = keyed(key, tonic::Request::new(report));
            let mut client = client.clone();
            async move { client.report(request).await.unwrap().into_inner() }
        };
        assert!(
            report(&seen.fingerprint, "1", v1::Feedback::Spam)
                .await
                .accepted
        );
        // The same key again is still one report, and one key is below the quorum.
        let again = report(&seen.fingerprint, "1", v1::Feedback::Spam).await;
        assert_eq!(again.report_count, 1);
        let after_one = score(near_duplicate).await;
        assert_eq!(contribution(&after_one, "similarity").score, 0.0);
        assert_eq!(after_one.action, before.action);

        assert_eq!(
            report(&seen.fingerprint, "2", v1::Feedback::Spam)
                .await
                .report_count,
            2
        );
        let after_two = score(near_duplicate).await;
        assert_eq!(
            after_two.action,
            v1::Action::Quarantine as i32,
            "{after_two:?}"
        );
        assert_eq!(after_two.source, v1::VerdictSource::Rule as i32);
        let similarity = contribution(&after_two, "similarity");
        assert!(
            similarity.reason.contains("reported as spam by 2 user(s)"),
            "{}",
            similarity.reason
        );

        // One "not spam" report does not outweigh two spam reports; two do.
        let disputed = after_two.fingerprint.clone();
        assert!(report(&disputed, "3", v1::Feedback::NotSpam).await.accepted);
        let one_against_two = score(near_duplicate).await;
        assert_eq!(one_against_two.action, v1::Action::Quarantine as i32);
        assert!(report(&disputed, "4", v1::Feedback::NotSpam).await.accepted);
        let after_whitelist = score(near_duplicate).await;
        let similarity = contribution(&after_whitelist, "similarity");
        assert_eq!(similarity.score, 0.0);
        assert!(
            similarity.reason.contains("whitelisted"),
            "{}",
            similarity.reason
        );
        assert_eq!(after_whitelist.action, v1::Action::Allow as i32);
        assert!(after_whitelist.spam_score < after_two.spam_score);
        server.server.shutdown().await.unwrap();
    });
}

#[test]
fn health_reports_serving() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    let addr = SERVER.addr();
    let status = run(async move {
        let channel = channel(addr).await;
        let request = tonic_health::pb::HealthCheckRequest {
            service: "smsguard.v1.SmsGuard".into(),
        };
        HealthClient::new(channel)
            .check(request)
            .await
            .unwrap()
            .into_inner()
            .status
    });
    assert_eq!(status, ServingStatus::Serving as i32);
}

#[test]
fn reflection_lists_the_service() {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    let addr = SERVER.addr();
    let services = run(async move {
        let channel = channel(addr).await;
        let mut client = ServerReflectionClient::new(channel);
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut answers = client
            .server_reflection_info(tokio_stream::iter(vec![request]))
            .await
            .unwrap()
            .into_inner();
        let answer = answers.next().await.unwrap().unwrap();
        match answer.message_response {
            Some(MessageResponse::ListServicesResponse(list)) => {
                list.service.into_iter().map(|s| s.name).collect::<Vec<_>>()
            }
            other => panic!("unexpected reflection answer {other:?}"),
        }
    });
    assert!(
        services.iter().any(|s| s == "smsguard.v1.SmsGuard"),
        "{services:?}"
    );
}

#[test]
fn metrics_count_requests_and_verdicts() {
    let addr = SERVER.addr();
    run(async move {
        let mut client = client(addr).await;
        client
            .classify(classify_request("metrics probe message"))
            .await
            .unwrap();
    });
    let metrics_addr = SERVER.server.metrics_addr.unwrap();
    let mut stream = std::net::TcpStream::connect(metrics_addr).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(
        text.contains("smsguard_requests_total{rpc=\"Classify\",code=\"OK\"}"),
        "{text}"
    );
    assert!(
        text.contains("smsguard_request_duration_seconds_bucket{le="),
        "{text}"
    );
    assert!(text.contains("smsguard_verdicts_total{label="), "{text}");
    assert!(text.contains("smsguard_similarity_store_entries"), "{text}");
}

/// Sends `frames` over one ClassifyStream and collects every answer frame.
async fn stream_frames(
    addr: std::net::SocketAddr,
    frames: Vec<v1::ClassifyBatch>,
) -> Vec<Result<v1::ClassifyBatchResult, tonic::Status>> {
    let stream = client(addr)
        .await
        .classify_stream(tokio_stream::iter(frames))
        .await
        .unwrap()
        .into_inner();
    stream.collect().await
}
