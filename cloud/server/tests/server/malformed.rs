//! Bytes that are not the protocol, on a real socket: the client's fault is answered as such
//! (INVALID_ARGUMENT, RESOURCE_EXHAUSTED, never INTERNAL), counted as a client error, and one
//! bad message of a stream fails alone.

use std::net::SocketAddr;
use std::sync::LazyLock;

use prost::Message as _;
use smsguard_proto::v1;
use smsguard_proto::v1::classify_result::Outcome;
use tokio_stream::StreamExt;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::{Code, Status};

use crate::common::{self, classify_request, message, metric_value, run, RawCodec, TestServer};

static SERVER: LazyLock<TestServer> = LazyLock::new(|| {
    run(common::start(|config| {
        config.metrics_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    }))
});

fn metrics() -> String {
    common::metrics_text(SERVER.server.metrics_addr.expect("metrics on"))
}

fn requests(text: &str, rpc: &str, code: &str) -> f64 {
    metric_value(
        text,
        &format!("smsguard_requests_total{{rpc=\"{rpc}\",code=\"{code}\"}}"),
    )
}

/// How much the `rpc`/`code` request counter has grown since `before`, once it has grown by
/// `expected` or five seconds have passed. A stream's status is recorded when the server's
/// side of the stream finishes, which can be just after the client has seen the error.
fn counted_since(before: &str, rpc: &str, code: &str, expected: f64) -> (f64, String) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let after = metrics();
        let grown = requests(&after, rpc, code) - requests(before, rpc, code);
        if grown >= expected || std::time::Instant::now() >= deadline {
            return (grown, after);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

async fn raw_unary(addr: SocketAddr, method: &'static str, bytes: Vec<u8>) -> Status {
    let mut grpc = tonic::client::Grpc::new(common::channel(addr).await);
    grpc.ready().await.unwrap();
    grpc.unary(
        tonic::Request::new(bytes),
        PathAndQuery::from_static(method),
        RawCodec,
    )
    .await
    .expect_err("garbage must be refused")
}

/// Sends raw frames over one ClassifyStream; returns the decoded answer frames and how the
/// stream ended.
async fn raw_stream(
    addr: SocketAddr,
    frames: Vec<Vec<u8>>,
) -> (Vec<v1::ClassifyBatchResult>, Result<(), Status>) {
    let mut grpc = tonic::client::Grpc::new(common::channel(addr).await);
    grpc.ready().await.unwrap();
    let path = PathAndQuery::from_static("/smsguard.v1.SmsGuard/ClassifyStream");
    let mut answers = grpc
        .streaming(
            tonic::Request::new(tokio_stream::iter(frames)),
            path,
            RawCodec,
        )
        .await
        .expect("the stream opens")
        .into_inner();
    let mut decoded = Vec::new();
    while let Some(answer) = answers.next().await {
        match answer {
            Ok(bytes) => decoded.push(v1::ClassifyBatchResult::decode(bytes.as_slice()).unwrap()),
            Err(status) => return (decoded, Err(status)),
        }
    }
    (decoded, Ok(()))
}

#[test]
fn an_undecodable_unary_body_is_invalid_argument_and_counted_as_a_client_error() {
    let addr = SERVER.addr();
    let before = metrics();
    let status = run(async move {
        // Field 1 (message) claims 200 bytes, then garbage.
        let garbage = vec![0x0a, 0xc8, 0x01, 0xff, 0xfe, 0x00, 0x13, 0x37];
        raw_unary(addr, "/smsguard.v1.SmsGuard/Classify", garbage).await
    });
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("Classify request"), "{status:?}");
    let after = metrics();
    assert_eq!(
        requests(&after, "Classify", "INVALID_ARGUMENT")
            - requests(&before, "Classify", "INVALID_ARGUMENT"),
        1.0,
        "{after}"
    );
    assert_eq!(requests(&after, "Classify", "INTERNAL"), 0.0, "{after}");
}

#[test]
fn an_oversized_request_is_resource_exhausted_and_counted() {
    let addr = SERVER.addr();
    let before = metrics();
    let status = run(async move {
        // 5 MiB: over max_request_bytes (4 MiB), refused by the transport before decoding.
        let big = classify_request(&"x".repeat(5 << 20)).encode_to_vec();
        raw_unary(addr, "/smsguard.v1.SmsGuard/Classify", big).await
    });
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let after = metrics();
    assert_eq!(
        requests(&after, "Classify", "RESOURCE_EXHAUSTED")
            - requests(&before, "Classify", "RESOURCE_EXHAUSTED"),
        1.0,
        "{after}"
    );
    assert_eq!(requests(&after, "Classify", "OUT_OF_RANGE"), 0.0, "{after}");
}

/// A frame whose message `bad_index` has a body that is not UTF-8.
fn frame_with_a_broken_message(ids: &[&str], bad_index: usize) -> Vec<u8> {
    const MARK: &[u8] = b"BROKEN-BODY";
    let messages = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let body = if i == bad_index {
                "BROKEN-BODY"
            } else {
                "lunch at noon?"
            };
            message(body, id)
        })
        .collect();
    let mut bytes = v1::ClassifyBatch { messages }.encode_to_vec();
    let at = bytes
        .windows(MARK.len())
        .position(|w| w == MARK)
        .expect("the marked body");
    bytes[at] = 0xff;
    bytes
}

#[test]
fn one_undecodable_message_fails_alone_and_the_stream_goes_on() {
    let addr = SERVER.addr();
    let before = metrics();
    let (answers, end) = run(async move {
        let first = frame_with_a_broken_message(&["a", "b", "c"], 1);
        let second = v1::ClassifyBatch {
            messages: vec![message("running late, start without me", "d")],
        }
        .encode_to_vec();
        raw_stream(addr, vec![first, second]).await
    });
    end.expect("the stream ends normally");
    assert_eq!(answers.len(), 2, "both frames are answered");
    let first = &answers[0].results;
    assert_eq!(first.len(), 3);
    assert!(matches!(first[0].outcome, Some(Outcome::Verdict(_))));
    assert_eq!(first[0].client_message_id, "a");
    let Some(Outcome::Error(error)) = &first[1].outcome else {
        panic!("the broken message must fail: {:?}", first[1]);
    };
    assert_eq!(error.code, Code::InvalidArgument as i32);
    assert!(error.reason.contains("message #1"), "{}", error.reason);
    assert!(matches!(first[2].outcome, Some(Outcome::Verdict(_))));
    assert_eq!(first[2].client_message_id, "c");
    assert!(matches!(
        answers[1].results[0].outcome,
        Some(Outcome::Verdict(_))
    ));
    let (grown, after) = counted_since(&before, "ClassifyStream", "OK", 1.0);
    assert_eq!(grown, 1.0, "{after}");
}

#[test]
fn an_unreadable_stream_frame_ends_the_stream_as_invalid_argument_not_internal() {
    let addr = SERVER.addr();
    let before = metrics();
    let (answers, end) = run(async move {
        // Field 1 claims 200 bytes that are not there: the frame itself cannot be read.
        raw_stream(addr, vec![vec![0x0a, 0xc8, 0x01, 0xff]]).await
    });
    let status = end.expect_err("the stream must fail");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(answers.is_empty());
    let (grown, after) = counted_since(&before, "ClassifyStream", "INVALID_ARGUMENT", 1.0);
    assert_eq!(grown, 1.0, "{after}");
    assert_eq!(requests(&after, "ClassifyStream", "INTERNAL"), 0.0);
}
