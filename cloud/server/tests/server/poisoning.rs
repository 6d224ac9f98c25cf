//! Report poisoning: reports from one API key, however many device ids it invents, change no
//! verdict for anyone else and push nothing to the phones; an operator's allow rule outranks
//! reports; a quorum of independent keys still quarantines a real campaign.

use smsguard_proto::v1;
use smsguard_proto::v1::sms_guard_client::SmsGuardClient;
use smsguard_server::ApiKeyConfig;
use tonic::transport::Channel;

use crate::common::{self, run};

const BANK_OTP: &str = "【招商银行】您的验证码为482913，5分钟内有效，请勿泄露给他人。";
/// The same template with another code (digits are masked before fingerprinting).
const BANK_OTP_OTHER_CODE: &str = "【招商银行】您的验证码为907731，5分钟内有效，请勿泄露给他人。";
const CARRIER_SENDER: &str = "10086";
const CARRIER_BILL: &str =
    "【中国移动】尊敬的客户，您本月话费账单已出，套餐费58元，详情请登录中国移动APP查询。";
const CAMPAIGN: &str = "Dear customer, your parcel 4471 is held at the depot. Pay the customs fee of 2 pounds at parcel-fees.example to release it";
const CAMPAIGN_VARIANT: &str = "Dear customer, your parcel 9902 is held at the depot. Pay the customs fee of 3 pounds at parcel-fees.example to release it";

const KEYS: &[(&str, &str)] = &[
    ("attacker", "secret-attacker"),
    ("victim", "secret-victim"),
    ("honest-1", "secret-honest-1"),
    ("honest-2", "secret-honest-2"),
    ("honest-3", "secret-honest-3"),
];

fn keyed<T>(key: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    request
}

fn fingerprint_of(text: &str) -> smsguard_core::Fingerprint {
    smsguard_core::MinHasher::new().fingerprint(&smsguard_core::normalize(text).text)
}

fn spam_report(text: &str, sender: &str, device: &str) -> v1::ReportRequest {
    let fp = fingerprint_of(text);
    v1::ReportRequest {
        feedback: v1::Feedback::Spam as i32,
        category: v1::Label::Fraud as i32,
        fingerprint: fp.to_hex(),
        minhash: fp.minhash.to_vec(),
        sender: sender.into(),
        device_id: device.into(),
        reported_at_ms: 1_700_000_000_000,
    }
}

async fn verdict(
    client: &mut SmsGuardClient<Channel>,
    key: &str,
    sender: &str,
    body: &str,
) -> v1::Verdict {
    let mut msg = common::message(body, "p");
    msg.sender = sender.into();
    msg.device_id = "victim-phone".into();
    let request = keyed(key, v1::ClassifyRequest { message: Some(msg) });
    client
        .classify(request)
        .await
        .expect("classify")
        .into_inner()
        .verdict
        .expect("a verdict")
}

/// The fingerprint changes the phones would pull after `since`.
async fn pushed_since(
    client: &mut SmsGuardClient<Channel>,
    since: u64,
) -> Vec<v1::SpamFingerprint> {
    let request = v1::SyncCacheRequest {
        since_version: since,
        max_entries: 10_000,
        device_id: "victim-phone".into(),
        knowledge_revision: String::new(),
    };
    let page = client
        .sync_cache(keyed("secret-victim", request))
        .await
        .unwrap();
    page.into_inner().fingerprints
}

async fn sync_version(client: &mut SmsGuardClient<Channel>) -> u64 {
    let request = v1::SyncCacheRequest {
        since_version: 0,
        max_entries: 10_000,
        device_id: "victim-phone".into(),
        knowledge_revision: String::new(),
    };
    client
        .sync_cache(keyed("secret-victim", request))
        .await
        .unwrap()
        .into_inner()
        .version
}

/// A server with the keys of [`KEYS`]; the report budget is generous, as these tests are about
/// what reports do once accepted ([`reports_past_a_keys_budget_are_refused_and_counted`] tests it).
async fn start() -> common::TestServer {
    start_with_budget(10_000).await
}

async fn start_with_budget(reports_per_minute: u32) -> common::TestServer {
    common::start(|config| {
        config.api_keys = KEYS
            .iter()
            .map(|(id, key)| ApiKeyConfig::from_key(id, key, 1000.0, 1000))
            .collect();
        config.report_budget_per_minute = reports_per_minute;
        config.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await
}

/// What a verdict looks like to another user: action, label and the similarity memory's say.
fn seen(verdict: &v1::Verdict) -> (i32, i32, f32) {
    let similarity = common::contribution(verdict, "similarity").score;
    (verdict.action, verdict.label, similarity)
}

#[test]
fn one_key_with_invented_devices_changes_no_verdict_of_another_key() {
    run(async {
        let server = start().await;
        let mut client = common::client(server.addr()).await;
        let before_otp = verdict(&mut client, "secret-victim", "95555", BANK_OTP_OTHER_CODE).await;
        let before_bill = verdict(&mut client, "secret-victim", CARRIER_SENDER, CARRIER_BILL).await;
        let version = sync_version(&mut client).await;

        // The attack of the issue: two invented devices, then a Sybil of 30 more.
        let mut counts = Vec::new();
        for device in (0..32).map(|i| format!("invented-{i}")) {
            for (text, sender) in [(BANK_OTP, "95555"), (CARRIER_BILL, CARRIER_SENDER)] {
                let report = keyed("secret-attacker", spam_report(text, sender, &device));
                let answer = client.report(report).await.unwrap().into_inner();
                assert!(answer.accepted);
                counts.push(answer.report_count);
            }
        }

        let after_otp = verdict(&mut client, "secret-victim", "95555", BANK_OTP_OTHER_CODE).await;
        let after_bill = verdict(&mut client, "secret-victim", CARRIER_SENDER, CARRIER_BILL).await;
        assert_eq!(seen(&after_otp), seen(&before_otp), "{after_otp:?}");
        assert_eq!(seen(&after_bill), seen(&before_bill), "{after_bill:?}");
        assert_ne!(
            after_otp.action,
            v1::Action::Quarantine as i32,
            "{after_otp:?}"
        );
        assert_eq!(
            after_bill.action,
            v1::Action::Allow as i32,
            "{after_bill:?}"
        );
        assert!(pushed_since(&mut client, version).await.is_empty());
        assert!(
            counts.iter().all(|&n| n == 1),
            "one key is one reporter: {counts:?}"
        );
        server.server.shutdown().await.unwrap();
    });
}

#[test]
fn a_quorum_of_independent_keys_quarantines_a_campaign_but_not_an_allow_ruled_message() {
    run(async {
        let server = start().await;
        let mut client = common::client(server.addr()).await;
        let before = verdict(&mut client, "secret-victim", "+15550300", CAMPAIGN_VARIANT).await;
        assert_ne!(before.action, v1::Action::Quarantine as i32, "precondition");
        // Phones classify bank OTPs through the cloud all the time; digits are masked, so every
        // code has the template's one fingerprint.
        let otp_before = verdict(&mut client, "secret-victim", "95555", BANK_OTP_OTHER_CODE).await;
        assert_eq!(otp_before.fingerprint, fingerprint_of(BANK_OTP).to_hex());
        let version = sync_version(&mut client).await;
        let keys = ["secret-honest-1", "secret-honest-2", "secret-honest-3"];
        for (i, key) in keys.iter().enumerate() {
            let pushed = pushed_since(&mut client, version).await;
            assert!(pushed.is_empty(), "pushed after {i} key(s)");
            let reported = [
                (CAMPAIGN, "+15550301"),
                (CARRIER_BILL, CARRIER_SENDER),
                (BANK_OTP, "95555"),
            ];
            for (text, sender) in reported {
                let report = keyed(key, spam_report(text, sender, "phone"));
                assert!(client.report(report).await.unwrap().into_inner().accepted);
            }
        }
        let after = verdict(&mut client, "secret-victim", "+15550302", CAMPAIGN_VARIANT).await;
        assert_eq!(after.action, v1::Action::Quarantine as i32, "{after:?}");
        let reason = &common::contribution(&after, "similarity").reason;
        assert!(reason.contains("reported as spam by 3 user(s)"), "{reason}");
        let pushed = pushed_since(&mut client, version).await;
        let campaign = fingerprint_of(CAMPAIGN).to_hex();
        assert!(
            pushed
                .iter()
                .any(|f| f.fingerprint == campaign && !f.removed),
            "{pushed:?}"
        );
        // The operator-allowed template is kept off the phones, whose cache would otherwise
        // quarantine it before asking the cloud.
        assert!(
            pushed
                .iter()
                .all(|f| f.fingerprint != otp_before.fingerprint),
            "{pushed:?}"
        );
        // The same quorum cannot flip the operator's allow rules: the carrier's sender and the
        // bank OTP template.
        let bill = verdict(&mut client, "secret-victim", CARRIER_SENDER, CARRIER_BILL).await;
        assert_eq!(bill.action, v1::Action::Allow as i32, "{bill:?}");
        let otp = verdict(&mut client, "secret-victim", "95555", BANK_OTP_OTHER_CODE).await;
        assert_eq!(otp.action, v1::Action::Allow as i32, "{otp:?}");
        server.server.shutdown().await.unwrap();
    });
}

const BANK_SENDER: &str = "95588";
const BANK_NOTICE: &str =
    "【工商银行】您尾号3321的卡于12月05日14:22消费人民币268.00元，余额5,402.17元。";

fn sender_score(verdict: &v1::Verdict) -> f32 {
    common::contribution(verdict, "sender").score
}

#[test]
fn one_key_reporting_a_sender_150_times_moves_it_for_nobody() {
    run(async {
        let server = start().await;
        let mut client = common::client(server.addr()).await;
        let before = verdict(&mut client, "secret-victim", BANK_SENDER, BANK_NOTICE).await;
        for i in 0..150 {
            let device = format!("invented-{i}");
            let report = spam_report(BANK_NOTICE, BANK_SENDER, &device);
            let answer = client.report(keyed("secret-attacker", report)).await;
            assert!(answer.unwrap().into_inner().accepted);
        }
        let after = verdict(&mut client, "secret-victim", BANK_SENDER, BANK_NOTICE).await;
        assert!(
            sender_score(&after) < 0.05 && sender_score(&after) <= sender_score(&before) + 1e-3,
            "{} -> {}: {}",
            sender_score(&before),
            sender_score(&after),
            common::contribution(&after, "sender").reason
        );
        // Independent keys still move it.
        for key in ["secret-honest-1", "secret-honest-2", "secret-honest-3"] {
            let report = spam_report(BANK_NOTICE, BANK_SENDER, "phone");
            client.report(keyed(key, report)).await.unwrap();
        }
        let reported = verdict(&mut client, "secret-victim", BANK_SENDER, BANK_NOTICE).await;
        assert!(sender_score(&reported) > 0.3, "{reported:?}");
        server.server.shutdown().await.unwrap();
    });
}

/// The "age N min" of a sender contribution's reason.
fn sender_age_minutes(verdict: &v1::Verdict) -> i64 {
    let reason = &common::contribution(verdict, "sender").reason;
    let after = reason.split("age ").nth(1).expect("an age");
    after.split(' ').next().unwrap().parse().expect("minutes")
}

#[test]
fn a_client_clock_of_zero_does_not_make_a_sender_look_old() {
    run(async {
        let server = start().await;
        let client = common::client(server.addr()).await;
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let classify_at = |received_at_ms: i64| {
            let mut msg = common::message("Your table for two is booked for 8pm", "t");
            msg.sender = "+15550404".into();
            msg.received_at_ms = received_at_ms;
            let request = keyed(
                "secret-attacker",
                v1::ClassifyRequest { message: Some(msg) },
            );
            let mut client = client.clone();
            async move {
                client
                    .classify(request)
                    .await
                    .unwrap()
                    .into_inner()
                    .verdict
                    .unwrap()
            }
        };
        classify_at(0).await;
        let now = classify_at(now_ms).await;
        // At most the allowed clock skew (10 minutes), not 1970.
        assert!(
            sender_age_minutes(&now) <= 10,
            "{}",
            common::contribution(&now, "sender").reason
        );
        server.server.shutdown().await.unwrap();
    });
}

/// The Prometheus text of the server's metrics listener.
fn scrape(addr: std::net::SocketAddr) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text
}

#[test]
fn reports_past_a_keys_budget_are_refused_and_counted() {
    run(async {
        let server = start_with_budget(5).await;
        let mut client = common::client(server.addr()).await;
        let mut codes = Vec::new();
        for i in 0..8 {
            let report = spam_report(CAMPAIGN, "+15550501", &format!("invented-{i}"));
            let answer = client.report(keyed("secret-attacker", report)).await;
            codes.push(answer.map(|_| tonic::Code::Ok).unwrap_or_else(|s| s.code()));
        }
        let mut expected = vec![tonic::Code::Ok; 5];
        expected.extend([tonic::Code::ResourceExhausted; 3]);
        assert_eq!(codes, expected);
        // Another key has its own budget.
        let report = spam_report(CAMPAIGN, "+15550501", "phone");
        client
            .report(keyed("secret-honest-1", report))
            .await
            .unwrap();
        let metrics = scrape(server.server.metrics_addr.unwrap());
        let refused = metrics
            .lines()
            .find(|l| l.contains("report_budget") && !l.starts_with('#'))
            .unwrap_or_else(|| panic!("no report_budget rejections in {metrics}"));
        assert!(refused.ends_with(" 3"), "{refused}");
        server.server.shutdown().await.unwrap();
    });
}
