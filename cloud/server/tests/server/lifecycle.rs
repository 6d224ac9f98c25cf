//! Start-up validation, key generation, graceful shutdown (in process and on SIGTERM).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use smsguard_proto::v1;
use tokio_stream::StreamExt;

use crate::common::{self, client, message, run};

fn cloud() -> Command {
    Command::new(env!("CARGO_BIN_EXE_smsguard-cloud"))
}

#[test]
fn plaintext_on_a_public_address_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let output = cloud()
        .args([
            "serve",
            "--plaintext",
            "--no-seed",
            "--listen",
            "0.0.0.0:0",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("force-plaintext"), "{stderr}");
}

#[test]
fn a_bad_environment_variable_is_named_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let output = cloud()
        .args(["serve", "--plaintext", "--no-seed", "--data-dir"])
        .arg(dir.path())
        .env("SMSGUARD_MAX_BODY_BYTES", "lots")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("SMSGUARD_MAX_BODY_BYTES"), "{stderr}");
}

#[test]
fn keygen_writes_a_key_pair_the_server_signs_with() {
    let dir = tempfile::tempdir().unwrap();
    let output = cloud()
        .args(["keygen", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(output.status.success());
    let public = std::fs::read_to_string(dir.path().join("signing.pub")).unwrap();
    let again = cloud()
        .args(["keygen", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        !again.status.success(),
        "an existing key is not overwritten"
    );
    let key_path = dir.path().join("signing.key");
    let served_key = run(async move {
        let server = common::start(|config| config.signing_key_path = Some(key_path)).await;
        let key = server.server.model_public_key.clone();
        server.server.shutdown().await.unwrap();
        key
    });
    assert_eq!(served_key, public.trim());
}

#[test]
fn shutdown_lets_an_open_stream_finish_then_refuses_new_connections() {
    run(async {
        let server = common::start(|_| {}).await;
        let addr = server.addr();
        let mut client = client(addr).await;
        let (frames, inbound) = tokio::sync::mpsc::channel::<v1::ClassifyBatch>(4);
        let mut answers = client
            .classify_stream(tokio_stream::wrappers::ReceiverStream::new(inbound))
            .await
            .unwrap()
            .into_inner();
        let frame = |id: &str| v1::ClassifyBatch {
            messages: vec![message("see you soon", id)],
        };
        frames.send(frame("before")).await.unwrap();
        assert!(answers.next().await.unwrap().is_ok());

        let started = Instant::now();
        let stopping = tokio::spawn(server.server.shutdown());
        tokio::time::sleep(Duration::from_millis(200)).await;
        frames.send(frame("during")).await.unwrap();
        let during = answers.next().await.unwrap().unwrap();
        assert_eq!(during.results[0].client_message_id, "during");
        drop(frames);
        assert!(answers.next().await.is_none());
        stopping.await.unwrap().unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "finished before the grace period"
        );
        let refused = v1::sms_guard_client::SmsGuardClient::connect(format!("http://{addr}")).await;
        assert!(refused.is_err());
    });
}

#[test]
fn sigterm_stops_the_process_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, _) = common::serve_process(dir.path(), "info", Stdio::null());
    let exit = common::terminate(&mut child);
    assert!(exit.success(), "{exit:?}");
}
