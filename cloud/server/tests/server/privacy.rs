//! Privacy: whatever a client sends, the server's logs (at debug level, every crate) never
//! contain the message text or the sender's number.

use smsguard_proto::v1;

use crate::common::{self, client, run};

const BODY_MARKER: &str = "Zqxjv-private-words";
const SENDER: &str = "+447700900123";

fn private_message(body: String, id: &str) -> v1::SmsMessage {
    v1::SmsMessage {
        sender: SENDER.into(),
        body,
        received_at_ms: 1_700_000_000_000,
        device_id: "privacy-device".into(),
        client_message_id: id.into(),
        ..v1::SmsMessage::default()
    }
}

/// Sends good and bad requests carrying the marker and the sender.
async fn exercise(addr: std::net::SocketAddr) {
    let mut client = client(addr).await;
    let body = format!("{BODY_MARKER}: your parcel is held, pay at parcel-fee.example");
    let ok = v1::ClassifyRequest {
        message: Some(private_message(body.clone(), "ok")),
    };
    let verdict = client.classify(ok).await.unwrap().into_inner().verdict;
    let oversized = v1::ClassifyRequest {
        // 57,000 bytes: over the longest concatenated SMS.
        message: Some(private_message(BODY_MARKER.repeat(3000), "big")),
    };
    assert!(client.classify(oversized).await.is_err());
    let empty_sender = v1::ClassifyRequest {
        message: Some(v1::SmsMessage {
            received_at_ms: -1,
            ..private_message(String::new(), "empty")
        }),
    };
    assert!(client.classify(empty_sender).await.is_err());
    let report = v1::ReportRequest {
        feedback: v1::Feedback::Spam as i32,
        fingerprint: verdict.unwrap().fingerprint,
        sender: SENDER.into(),
        device_id: "privacy-device".into(),
        ..v1::ReportRequest::default()
    };
    client.report(report).await.unwrap();
}

#[test]
fn logs_never_contain_message_text_or_sender_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("server.log");
    let log_file = std::fs::File::create(&log_path).unwrap();
    let (mut child, addr) =
        common::serve_process(&dir.path().join("data"), "debug", log_file.into());
    run(exercise(addr));
    common::terminate(&mut child);
    let log = std::fs::read_to_string(&log_path).unwrap();
    // The server did log these requests (refusals included), so the check below means something.
    assert!(log.contains("request refused"), "{log}");
    for secret in [BODY_MARKER, SENDER, &SENDER[1..], "parcel-fee"] {
        assert!(!log.contains(secret), "the log contains {secret:?}");
    }
}
