//! Long messages: the longest text a concatenated SMS can carry (255 segments of 67 UCS-2
//! characters, 3 UTF-8 bytes each for CJK: 51,255 bytes) is accepted and scored, and scoring
//! time grows linearly with the body, so a long body cannot stall a scoring thread.

use std::time::{Duration, Instant};

use smsguard_proto::v1;
use smsguard_server::metrics::Metrics;
use smsguard_server::state::AppState;
use smsguard_server::ServerConfig;
use tonic::Code;

use crate::common::{self, classify_request, run};

/// The longest concatenated SMS in UTF-8 bytes (see `max_body_bytes`).
const LONGEST_SMS_BYTES: usize = 255 * 67 * 3;

/// `unit` repeated up to at most `bytes` UTF-8 bytes.
fn repeated_to(unit: &str, bytes: usize) -> String {
    unit.repeat(bytes / unit.len())
}

const CJK_CHAT: &str = "今天下班后一起去吃火锅吗？我在公司楼下等你，记得带伞。";
const CJK_SCAM: &str =
    "恭喜您获得幸运大奖，请立即点击 http://prize-claim.example 领取奖金，逾期作废。";

#[test]
fn the_longest_concatenated_sms_is_scored_and_one_byte_more_is_refused() {
    run(async {
        let server = common::start(|_| {}).await;
        let mut client = common::client(server.addr()).await;
        // Chat, then the scam at the very end of a maximal message.
        let mut body = repeated_to(CJK_CHAT, LONGEST_SMS_BYTES - CJK_SCAM.len());
        body.push_str(CJK_SCAM);
        assert!(body.len() <= LONGEST_SMS_BYTES && body.len() > LONGEST_SMS_BYTES - 200);
        let verdict = client
            .classify(classify_request(&body))
            .await
            .expect("the longest SMS is accepted (before: INVALID_ARGUMENT over 2,048 bytes)")
            .into_inner()
            .verdict
            .expect("a verdict");
        assert!(!verdict.degraded, "{verdict:?}");

        let too_long = "界".repeat(LONGEST_SMS_BYTES / 3 + 1);
        let refused = client
            .classify(classify_request(&too_long))
            .await
            .expect_err("longer than any SMS");
        assert_eq!(refused.code(), Code::InvalidArgument);
        assert!(refused.message().contains("51255"), "{}", refused.message());
        server.server.shutdown().await.unwrap();
    });
}

/// The fastest of five scorings of `body` (the fastest is the least disturbed by other tests).
fn scoring_time(state: &AppState, body: &str) -> Duration {
    let message = v1::SmsMessage {
        sender: "+8610690000".into(),
        body: body.into(),
        client_message_id: "long".into(),
        ..v1::SmsMessage::default()
    };
    let valid = state.validate(Some(&message)).expect("a valid message");
    (0..5)
        .map(|_| {
            let started = Instant::now();
            let verdict = state.score(&valid);
            assert!(!verdict.degraded);
            started.elapsed()
        })
        .min()
        .unwrap()
}

#[test]
fn scoring_time_grows_linearly_with_the_body() {
    let dir = tempfile::tempdir().unwrap();
    let state = AppState::open(
        ServerConfig::for_tests(dir.path()),
        std::sync::Arc::new(Metrics::new()),
    )
    .unwrap();
    let mixed = format!("{CJK_CHAT}Meet at 6? {CJK_SCAM} WIN a FREE iPhone now!!! ");
    // Plain text, and what stresses the normaliser: separator stuffing, one endless token, look-
    // alikes, numbers and links to mask.
    let inputs = [
        ("CJK", CJK_CHAT),
        ("mixed", mixed.as_str()),
        ("stuffed", "免.费-领_取 奖*金 "),
        ("one token", "a"),
        ("look-alikes", "ＷＩＮ Ｆ𝐑𝐄𝐄 ρrιzе "),
        (
            "numbers and links",
            "call 13800138000 or visit http://a.example/x?id=123456 ",
        ),
    ];
    for (name, unit) in inputs {
        let short = scoring_time(&state, &repeated_to(unit, LONGEST_SMS_BYTES / 4));
        let long = scoring_time(&state, &repeated_to(unit, LONGEST_SMS_BYTES));
        let ratio = long.as_secs_f64() / short.as_secs_f64();
        println!(
            "{name}: scoring {} bytes took {:.1} ms, {} bytes {:.1} ms (x{ratio:.1} for x4 the text)",
            LONGEST_SMS_BYTES / 4,
            short.as_secs_f64() * 1e3,
            LONGEST_SMS_BYTES,
            long.as_secs_f64() * 1e3
        );
        // Linear is about x4; a quadratic step would make it about x16.
        assert!(ratio < 10.0, "{name}: x{ratio:.1} for x4 the text");
    }
}
