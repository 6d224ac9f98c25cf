//! The fuzzers' brief mode, run by every `cargo test`: each committed seed input
//! (`corpus/TARGET/`, hand-made), each input of the minimised AFL++ queue (`queue/TARGET/`,
//! what the long runs reached, reduced with `cargo afl cmin`) and each crash reproducer
//! (`crashes/TARGET/`) goes through its harness, so a fixed crash stays fixed, the paths the
//! fuzzers found stay exercised, and CI needs no AFL. `regenerate_seed_corpus` (ignored) rewrote the
//! hand-made seeds that are not plain text files.

use std::path::{Path, PathBuf};

use prost::Message;
use smsguard_fuzz::{target, TARGETS};
use smsguard_proto::v1;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn inputs(folder: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.is_file())
        .collect();
    paths.sort();
    paths
}

#[test]
fn every_target_has_a_seed_corpus() {
    for target in TARGETS {
        let seeds = inputs(&root().join("corpus").join(target.name));
        assert!(!seeds.is_empty(), "no seeds for {}", target.name);
    }
}

#[test]
fn the_corpus_and_crash_reproducers_replay_without_a_panic() {
    let mut replayed = 0;
    for target in TARGETS {
        for folder in ["corpus", "queue", "crashes"] {
            for path in inputs(&root().join(folder).join(target.name)) {
                let bytes = std::fs::read(&path).unwrap();
                let outcome = std::panic::catch_unwind(|| (target.run)(&bytes));
                assert!(
                    outcome.is_ok(),
                    "{} panicked on {}",
                    target.name,
                    path.display()
                );
                replayed += 1;
            }
        }
    }
    assert!(replayed >= TARGETS.len());
}

#[test]
fn every_prefix_of_the_small_seeds_replays_without_a_panic() {
    // A cheap stand-in for mutation in CI: truncated inputs are what a torn write or a cut
    // connection delivers. Only the hand-made seeds: the queue's thousands of inputs times
    // their lengths would cost CI minutes, and AFL++ already truncated them while fuzzing.
    for target in TARGETS {
        for path in inputs(&root().join("corpus").join(target.name)) {
            let bytes = std::fs::read(&path).unwrap();
            if bytes.len() > 512 {
                continue;
            }
            for end in 0..bytes.len() {
                (target.run)(&bytes[..end]);
            }
        }
    }
}

#[test]
fn targets_are_found_by_name() {
    assert!(target("normalize").is_some());
    assert!(target("no-such-target").is_none());
}

// ---------------------------------------------------------------------------------------------
// The hand-made seeds (run with `--ignored` to rewrite them).

fn write_seed(target: &str, name: &str, bytes: &[u8]) {
    let folder = root().join("corpus").join(target);
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join(name), bytes).unwrap();
}

fn message(body: &str, sender: &str) -> v1::SmsMessage {
    v1::SmsMessage {
        sender: sender.into(),
        body: body.into(),
        received_at_ms: 1_700_000_000_000,
        device_id: "seed-device".into(),
        client_message_id: "1".into(),
        ..v1::SmsMessage::default()
    }
}

fn fingerprint(text: &str) -> smsguard_core::Fingerprint {
    smsguard_core::MinHasher::new().fingerprint(&smsguard_core::normalize(text).text)
}

fn protocol_seeds() {
    let mut with_verdict = message(
        "Your parcel is held, pay the fee at http://x.example",
        "+15550100",
    );
    with_verdict.local_verdict = Some(v1::LocalVerdict {
        label: v1::Label::Fraud as i32,
        action: v1::Action::Quarantine as i32,
        source: v1::VerdictSource::Local as i32,
        spam_score: 0.97,
    });
    let requests = [
        ("plain", message("Lunch at 12?", "+15550101")),
        ("with-verdict", with_verdict),
        (
            "chinese",
            message("【银行】您的账户存在异常，请点击链接验证", "95588"),
        ),
    ];
    for (name, msg) in &requests {
        let request = v1::ClassifyRequest {
            message: Some(msg.clone()),
        };
        write_seed("classify_request", name, &request.encode_to_vec());
    }
    write_seed("classify_request", "empty", &[]);
    let batch = v1::ClassifyBatch {
        messages: requests.iter().map(|(_, m)| m.clone()).collect(),
    };
    write_seed("classify_batch", "three", &batch.encode_to_vec());

    let fp = fingerprint("Congratulations, you won a voucher, call now to claim");
    let spam = v1::ReportRequest {
        feedback: v1::Feedback::Spam as i32,
        category: v1::Label::Fraud as i32,
        fingerprint: fp.to_hex(),
        minhash: fp.minhash.to_vec(),
        sender: "+15550102".into(),
        device_id: "seed-device".into(),
        reported_at_ms: 1_700_000_000_000,
    };
    write_seed("report_request", "spam-with-minhash", &spam.encode_to_vec());
    let not_spam = v1::ReportRequest {
        feedback: v1::Feedback::NotSpam as i32,
        minhash: Vec::new(),
        ..spam.clone()
    };
    write_seed("report_request", "not-spam", &not_spam.encode_to_vec());

    let sync = v1::SyncCacheRequest {
        since_version: 0,
        max_entries: 500,
        device_id: "seed-device".into(),
        knowledge_revision: String::new(),
    };
    write_seed("sync_request", "full", &sync.encode_to_vec());
    let model = v1::GetModelRequest {
        current_version: "edge-v1".into(),
        device_id: "seed-device".into(),
        device_public_key: Vec::new(),
    };
    write_seed("model_request", "versioned", &model.encode_to_vec());
    write_seed("model_request", "empty", &[]);
}

fn similarity_seeds() {
    let fp = fingerprint("Your account is suspended, verify at the link now");
    let entry = smsguard_scoring::similarity::Entry {
        id: fp.id(),
        minhash: fp.minhash,
        label: smsguard_core::Label::Fraud,
        seed_count: 1,
        user_spam_reports: 3,
        not_spam_reports: 1,
    };
    let mut record = fp.id().to_be_bytes().to_vec();
    record.extend_from_slice(&smsguard_scoring::similarity::encode_entry(&entry));
    write_seed("similarity_record", "fraud", &record);
}

fn decision_log_seeds() {
    let record = smsguard_edge::store::MessageRecord {
        id: 7,
        state: smsguard_edge::store::MessageState::Quarantined,
        sender: "+15550103".into(),
        body: Some("You won a prize, call now".into()),
        received_at_ms: 1_700_000_000_000,
        decided_at_ms: 1_700_000_000_050,
        verdict: smsguard_edge::store::StoredVerdict {
            label: smsguard_core::Label::Fraud,
            spam_score: 0.98,
            action: smsguard_core::Action::Quarantine,
            source: smsguard_edge::store::Source::Local,
        },
        fingerprint: "00000000000000ff".into(),
        minhash: vec![1, 2, 3],
        queued: true,
    };
    let mut payload = vec![1, 11];
    payload.extend_from_slice(b"quarantined");
    payload.extend_from_slice(&serde_json::to_vec(&record).unwrap());
    let mut segment = smsguard_edge::store::log_frame(&payload);
    write_seed("decision_log", "one-frame-payload", &payload);
    // A torn tail after a whole frame, as a kill mid-write leaves.
    let whole = segment.clone();
    segment.extend_from_slice(&whole[..whole.len() / 2]);
    write_seed("decision_log", "frame-and-torn-tail", &segment);
}

fn model_package_seeds() {
    let secret = smsguard_signing::SigningKey::from_hex(&"07".repeat(32)).unwrap();
    let model = b"not really onnx".to_vec();
    let vocabulary = br#"{"a":1}"#.to_vec();
    let manifest_json = r#"{"version":"seed-1"}"#.to_string();
    let signature = secret.sign(smsguard_signing::PackageParts {
        manifest_json: manifest_json.as_bytes(),
        model: &model,
        vocabulary: &vocabulary,
    });
    let response = v1::GetModelResponse {
        up_to_date: false,
        manifest: Some(v1::ModelManifest {
            version: "seed-1".into(),
            sha256: smsguard_signing::sha256_hex(&model),
            size_bytes: model.len() as u64,
            pipeline_version: 1,
            manifest_json,
        }),
        model,
        vocabulary,
        signature,
        sealed_model: Vec::new(),
        key_id: secret.verifying_key().key_id(),
    };
    write_seed("model_package", "signed", &response.encode_to_vec());
}

#[test]
#[ignore = "rewrites the committed seed corpus"]
fn regenerate_seed_corpus() {
    protocol_seeds();
    similarity_seeds();
    decision_log_seeds();
    model_package_seeds();
}
