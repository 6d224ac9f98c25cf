//! Bad requests get INVALID_ARGUMENT with a reason, and none of them (nor a malformed protobuf
//! frame) stops the server from answering the next request.

use std::net::SocketAddr;
use std::sync::LazyLock;

use smsguard_proto::v1;
use tonic::{Code, Status};

use crate::common::{
    self, classify_request, classify_verdict, client, message, run, RawCodec, TestServer,
};

static SERVER: LazyLock<TestServer> = LazyLock::new(|| run(common::start(|_| {})));

async fn classify_status(addr: SocketAddr, request: v1::ClassifyRequest) -> Status {
    client(addr)
        .await
        .classify(request)
        .await
        .expect_err("the request must be refused")
}

async fn still_serving(addr: SocketAddr) {
    let verdict = client(addr)
        .await
        .classify(classify_request("still there? call me back"))
        .await
        .expect("the server keeps serving")
        .into_inner()
        .verdict;
    assert!(verdict.is_some());
}

#[test]
fn an_oversized_body_is_refused_with_the_limit_and_the_server_keeps_serving() {
    let addr = SERVER.addr();
    run(async move {
        // 51,256 UTF-8 bytes: one more than the longest concatenated SMS.
        let body = "é".repeat(25_628);
        let status = classify_status(addr, classify_request(&body)).await;
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains("51256"), "{}", status.message());
        assert!(status.message().contains("51255"), "{}", status.message());
        still_serving(addr).await;
    });
}

#[test]
fn empty_bodies_missing_messages_and_unknown_enums_are_invalid_arguments() {
    let addr = SERVER.addr();
    run(async move {
        let empty = classify_status(addr, classify_request("")).await;
        assert_eq!(empty.code(), Code::InvalidArgument);
        assert!(empty.message().contains("body"));

        let missing = classify_status(addr, v1::ClassifyRequest { message: None }).await;
        assert_eq!(missing.code(), Code::InvalidArgument);
        assert!(missing.message().contains("message is required"));

        let mut msg = message("hello", "x");
        msg.local_verdict = Some(v1::LocalVerdict {
            label: 99,
            spam_score: 0.5,
            ..v1::LocalVerdict::default()
        });
        let bad_enum = classify_status(addr, v1::ClassifyRequest { message: Some(msg) }).await;
        assert_eq!(bad_enum.code(), Code::InvalidArgument);
        assert!(bad_enum.message().contains("99"), "{}", bad_enum.message());

        let report = v1::ReportRequest {
            fingerprint: "0123456789abcdef".into(),
            ..v1::ReportRequest::default()
        };
        let unspecified = client(addr).await.report(report).await.unwrap_err();
        assert_eq!(unspecified.code(), Code::InvalidArgument);
        assert!(unspecified.message().contains("feedback"));

        let report = v1::ReportRequest {
            feedback: v1::Feedback::Spam as i32,
            fingerprint: "not-hex".into(),
            ..v1::ReportRequest::default()
        };
        let bad_id = client(addr).await.report(report).await.unwrap_err();
        assert_eq!(bad_id.code(), Code::InvalidArgument);
        still_serving(addr).await;
    });
}

#[test]
fn the_edge_verdict_is_taken_into_account() {
    let addr = SERVER.addr();
    run(async move {
        let text = "Reminder: your dentist appointment is on Tuesday at 10am";
        let mut with_edge = message(text, "e");
        with_edge.local_verdict = Some(v1::LocalVerdict {
            label: v1::Label::Fraud as i32,
            spam_score: 0.99,
            action: v1::Action::Block as i32,
            source: v1::VerdictSource::Local as i32,
        });
        let mut client = client(addr).await;
        let plain = classify_verdict(&mut client, message(text, "m")).await;
        let fused = classify_verdict(&mut client, with_edge).await;
        let lists_edge =
            |verdict: &v1::Verdict| verdict.contributions.iter().any(|c| c.model == "edge");
        assert!(lists_edge(&fused), "the edge input is listed");
        assert!(!lists_edge(&plain));
    });
}

#[test]
fn a_malformed_protobuf_frame_is_refused_without_crashing_the_server() {
    let addr = SERVER.addr();
    run(async move {
        let channel = common::channel(addr).await;
        let mut grpc = tonic::client::Grpc::new(channel);
        // A field 1 (message) of length-delimited type claiming 200 bytes, then garbage.
        let garbage = vec![0x0a, 0xc8, 0x01, 0xff, 0xfe, 0x00, 0x13, 0x37];
        grpc.ready().await.unwrap();
        let path =
            tonic::codegen::http::uri::PathAndQuery::from_static("/smsguard.v1.SmsGuard/Classify");
        let status = grpc
            .unary(tonic::Request::new(garbage), path, RawCodec)
            .await
            .expect_err("garbage must not decode");
        assert_ne!(status.code(), Code::Ok);
        still_serving(addr).await;
    });
}

#[test]
fn a_stream_ends_with_deadline_exceeded_when_its_deadline_passes() {
    use tokio_stream::StreamExt;
    let addr = SERVER.addr();
    run(async move {
        let (frames, inbound) = tokio::sync::mpsc::channel::<v1::ClassifyBatch>(4);
        let mut request = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(inbound));
        request.set_timeout(std::time::Duration::from_millis(500));
        let mut answers = client(addr)
            .await
            .classify_stream(request)
            .await
            .unwrap()
            .into_inner();
        frames
            .send(v1::ClassifyBatch {
                messages: vec![message("on my way", "1")],
            })
            .await
            .unwrap();
        assert!(answers.next().await.unwrap().is_ok());
        // The client keeps the stream open past its deadline.
        let end = answers.next().await.unwrap().unwrap_err();
        assert_eq!(end.code(), Code::DeadlineExceeded, "{end:?}");
        drop(frames);
    });
}

#[test]
fn requests_beyond_the_in_flight_limit_are_resource_exhausted() {
    use smsguard_server::error::RequestError;
    use smsguard_server::state::AppState;
    let dir = tempfile::tempdir().unwrap();
    let mut config = smsguard_server::ServerConfig::for_tests(dir.path());
    config.max_in_flight = 1;
    let metrics = std::sync::Arc::new(smsguard_server::metrics::Metrics::new());
    let state = AppState::open(config, metrics.clone()).unwrap();
    let held = state.admit().unwrap();
    let refused = state.admit().unwrap_err();
    assert_eq!(refused, RequestError::Overloaded { limit: 1 });
    assert_eq!(Status::from(refused).code(), Code::ResourceExhausted);
    drop(held);
    assert!(state.admit().is_ok(), "a freed slot admits again");
    assert!(metrics
        .encode()
        .contains("smsguard_rejected_total{reason=\"overloaded\"} 1"));
}

#[test]
fn a_request_over_the_transport_limit_is_refused_and_the_server_keeps_serving() {
    let addr = SERVER.addr();
    run(async move {
        // 5 MiB: over max_request_bytes (4 MiB), refused while decoding.
        let status = classify_status(addr, classify_request(&"x".repeat(5 << 20))).await;
        assert_ne!(status.code(), Code::Ok);
        assert_ne!(
            status.code(),
            Code::Unavailable,
            "the server must not drop: {status:?}"
        );
        still_serving(addr).await;
    });
}
