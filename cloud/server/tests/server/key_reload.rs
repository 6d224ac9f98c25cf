//! Key revocation without a restart: a key removed from the config file is refused once the
//! server reloads (what SIGHUP runs), its open streams stop, and the kept key still works.

use std::path::Path;

use smsguard_proto::v1;
use smsguard_server::{auth::key_sha256_hex, ServerConfig};
use tokio_stream::StreamExt;
use tonic::Code;

use crate::common::{self, classify_request, message, run, with_bearer};

const KEPT: &str = "kept-key";
const REMOVED: &str = "removed-key";

fn config_text(data_dir: &Path, keys: &[(&str, &str)]) -> String {
    let mut text = format!(
        "listen = \"127.0.0.1:0\"\nplaintext = true\nseed_from_corpora = false\ndata_dir = {:?}\n",
        data_dir.display().to_string()
    );
    for (id, key) in keys {
        text.push_str(&format!(
            "\n[[api_keys]]\nid = \"{id}\"\nkey_sha256 = \"{}\"\n",
            key_sha256_hex(key)
        ));
    }
    text
}

#[test]
fn a_key_removed_from_the_config_file_is_refused_after_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("cloud.toml");
    let data_dir = dir.path().join("data");
    let both = [("fleet-kept", KEPT), ("fleet-removed", REMOVED)];
    std::fs::write(&config_path, config_text(&data_dir, &both)).unwrap();
    let config = ServerConfig::load(Some(&config_path), |_| {}).unwrap();
    run(async move {
        let server = smsguard_server::spawn(config).await.unwrap();
        let mut client = common::client(server.addr).await;
        for key in [KEPT, REMOVED] {
            client
                .classify(with_bearer(key, classify_request("dinner at 8?")))
                .await
                .expect("both keys work before the reload");
        }
        // A stream opened with the key about to be removed.
        let (frames, inbound) = tokio::sync::mpsc::channel::<v1::ClassifyBatch>(4);
        let mut answers = client
            .classify_stream(with_bearer(
                REMOVED,
                tokio_stream::wrappers::ReceiverStream::new(inbound),
            ))
            .await
            .unwrap()
            .into_inner();
        let frame = || v1::ClassifyBatch {
            messages: vec![message("on my way", "s")],
        };
        frames.send(frame()).await.unwrap();
        answers
            .next()
            .await
            .unwrap()
            .expect("served before the reload");

        std::fs::write(&config_path, config_text(&data_dir, &both[..1])).unwrap();
        server.reload().await.expect("the reload SIGHUP runs");

        let refused = client
            .classify(with_bearer(REMOVED, classify_request("dinner at 8?")))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::Unauthenticated);
        client
            .classify(with_bearer(KEPT, classify_request("dinner at 8?")))
            .await
            .expect("the kept key still works");
        frames.send(frame()).await.unwrap();
        let stopped = answers.next().await.unwrap().unwrap_err();
        assert_eq!(stopped.code(), Code::Unauthenticated, "{stopped:?}");

        // A config file broken mid-edit fails the reload and keeps the keys as they were.
        std::fs::write(&config_path, "api_keys = [").unwrap();
        assert!(server.reload().await.is_err());
        client
            .classify(with_bearer(KEPT, classify_request("dinner at 8?")))
            .await
            .expect("the kept key survives a failed reload");
        server.shutdown().await.unwrap();
    });
}

#[cfg(unix)]
#[test]
fn sighup_to_the_real_binary_revokes_a_removed_key() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("cloud.toml");
    let data_dir = dir.path().join("data");
    let both = [("fleet-kept", KEPT), ("fleet-removed", REMOVED)];
    std::fs::write(&config_path, config_text(&data_dir, &both)).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_smsguard-cloud"))
        .arg("serve")
        .arg("--config")
        .arg(&config_path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr: std::net::SocketAddr = line
        .trim()
        .strip_prefix("listening ")
        .unwrap()
        .parse()
        .unwrap();
    run(async move {
        let client = common::client(addr).await;
        let classify = |key: &'static str| {
            let mut client = client.clone();
            async move {
                let request = with_bearer(key, classify_request("dinner at 8?"));
                client
                    .classify(request)
                    .await
                    .map(|_| ())
                    .map_err(|status| status.code())
            }
        };
        assert_eq!(classify(REMOVED).await, Ok(()));
        std::fs::write(&config_path, config_text(&data_dir, &both[..1])).unwrap();
        let hangup = std::process::Command::new("kill")
            .args(["-HUP", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(hangup.success());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while classify(REMOVED).await.is_ok() {
            assert!(
                std::time::Instant::now() < deadline,
                "the removed key still works 10 s after SIGHUP"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(classify(REMOVED).await, Err(Code::Unauthenticated));
        assert_eq!(classify(KEPT).await, Ok(()));
        common::terminate(&mut child);
    });
}
