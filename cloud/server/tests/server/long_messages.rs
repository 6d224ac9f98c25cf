//! Long messages: the longest text a concatenated SMS can carry (255 segments of 67 UCS-2
//! characters, 3 UTF-8 bytes each for CJK: 51,255 bytes) is accepted and scored, and scoring
//! time grows linearly with the body (measured as CPU time, which other tests sharing the cores
//! do not inflate), so a long body cannot stall a scoring thread.

use std::time::{Duration, Instant};

use smsguard_proto::v1;
use smsguard_server::metrics::Metrics;
use smsguard_server::state::{AppState, ValidMessage};
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

fn valid(state: &AppState, body: &str) -> ValidMessage {
    let message = v1::SmsMessage {
        sender: "+8610690000".into(),
        body: body.into(),
        client_message_id: "long".into(),
        ..v1::SmsMessage::default()
    };
    state.validate(Some(&message)).expect("a valid message")
}

/// CPU time this thread has used (user + system, 10 ms ticks): unlike wall time, it does not
/// grow when other tests or processes share the cores. Scoring runs on the calling thread.
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("Linux /proc");
    let after_name = &stat[stat.rfind(')').expect("a command name") + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

/// Wall time of the fastest of `times` scorings of `msg`, and the CPU time of all of them.
fn scoring_time(state: &AppState, msg: &ValidMessage, times: usize) -> (Duration, Duration) {
    let cpu_before = thread_cpu();
    let fastest = (0..times)
        .map(|_| {
            let started = Instant::now();
            assert!(!state.score(msg).degraded);
            started.elapsed()
        })
        .min()
        .unwrap();
    (fastest, thread_cpu() - cpu_before)
}

#[cfg(target_os = "linux")]
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
        let long = valid(&state, &repeated_to(unit, LONGEST_SMS_BYTES));
        let quarter = valid(&state, &repeated_to(unit, LONGEST_SMS_BYTES / 4));
        // The same amount of text either way: 3 longest bodies, or 12 bodies a quarter as long.
        let (long_wall, long_cpu) = scoring_time(&state, &long, 3);
        let (quarter_wall, quarter_cpu) = scoring_time(&state, &quarter, 12);
        let ratio = long_cpu.as_secs_f64() / quarter_cpu.as_secs_f64().max(0.01);
        println!(
            "{name}: {} bytes scored in {:.1} ms, {} bytes in {:.1} ms (fastest of 3 / 12); CPU \
             for the same text in long vs quarter bodies: x{ratio:.2}",
            long.body.len(),
            long_wall.as_secs_f64() * 1e3,
            quarter.body.len(),
            quarter_wall.as_secs_f64() * 1e3,
        );
        // Linear: about x1. A quadratic step would make it about x4.
        assert!(
            ratio < 2.0,
            "{name}: x{ratio:.2} the CPU for the same text in longer bodies"
        );
    }
}
