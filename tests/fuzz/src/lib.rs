//! Fuzzing harnesses for every decoder that reads bytes from outside: the normaliser, each
//! protocol request type (prost decoding, then the server's own validation and handling on a
//! real [`AppState`] over real sled stores), the similarity store's record codec, the edge
//! decision log's replay, the rules file and the signed model package.
//!
//! Each harness takes arbitrary bytes and must return without panicking, whatever they are;
//! a panic (or an abort) is the bug the fuzzer looks for. The same functions run under AFL++
//! (`src/bin/fuzz-afl.rs`) and in `tests/replay.rs`, which replays the committed seed corpus
//! and every crash reproducer on each `cargo test`.

use std::sync::OnceLock;

use prost::Message;
use smsguard_core::knowledge::TableText;
use smsguard_proto::v1;
use smsguard_server::metrics::Metrics;
use smsguard_server::state::AppState;
use smsguard_server::ServerConfig;

/// One fuzz target: its name (the corpus folder and the AFL binary's argument) and harness.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]),
}

/// Every target, in the order the README lists them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "normalize",
        run: normalize,
    },
    Target {
        name: "classify_request",
        run: classify_request,
    },
    Target {
        name: "classify_batch",
        run: classify_batch,
    },
    Target {
        name: "report_request",
        run: report_request,
    },
    Target {
        name: "sync_request",
        run: sync_request,
    },
    Target {
        name: "model_request",
        run: model_request,
    },
    Target {
        name: "similarity_record",
        run: similarity_record,
    },
    Target {
        name: "decision_log",
        run: decision_log,
    },
    Target {
        name: "rules_file",
        run: rules_file,
    },
    Target {
        name: "model_package",
        run: model_package,
    },
    Target {
        name: "knowledge_table",
        run: knowledge_table,
    },
];

/// The target called `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|target| target.name == name)
}

/// Arbitrary bytes, read as text the way the edge and the cloud receive it (lossy UTF-8),
/// through `normalize` and the fingerprint.
pub fn normalize(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let normalized = smsguard_core::normalize(&text);
    let _ = smsguard_core::MinHasher::new().fingerprint(&normalized.text);
}

/// The server state every protocol harness shares: opened once per process (the models take
/// seconds to load), over sled stores in a folder removed at exit. No report budget, so the
/// harness reaches the report validation however many inputs it runs.
fn state() -> &'static AppState {
    static STATE: OnceLock<(AppState, tempfile::TempDir)> = OnceLock::new();
    let (state, _dir) = STATE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary folder for the fuzzed server");
        let mut config = ServerConfig::for_tests(dir.path());
        config.report_budget_per_minute = 0;
        let state = AppState::open(config, std::sync::Arc::new(Metrics::new()))
            .expect("the server state opens");
        (state, dir)
    });
    state
}

/// A `Classify` body: decoded, validated and, when valid, scored.
pub fn classify_request(data: &[u8]) {
    let Ok(request) = v1::ClassifyRequest::decode(data) else {
        return;
    };
    let state = state();
    if let Ok(message) = state.validate(request.message.as_ref()) {
        let _ = state.score(&message);
    }
}

/// One `ClassifyStream` frame: decoded, each message validated (and scored when valid).
pub fn classify_batch(data: &[u8]) {
    let Ok(batch) = v1::ClassifyBatch::decode(data) else {
        return;
    };
    let state = state();
    for message in &batch.messages {
        if let Ok(message) = state.validate(Some(message)) {
            let _ = state.score(&message);
        }
    }
}

/// A `Report` body: decoded and filed as an anonymous caller's report.
pub fn report_request(data: &[u8]) {
    if let Ok(request) = v1::ReportRequest::decode(data) {
        let _ = state().report(&request, None);
    }
}

/// A `SyncCache` body: decoded and answered from the sync log.
pub fn sync_request(data: &[u8]) {
    if let Ok(request) = v1::SyncCacheRequest::decode(data) {
        let _ = state().sync_page(&request);
    }
}

/// A `GetModel` body: decoded and answered.
pub fn model_request(data: &[u8]) {
    if let Ok(request) = v1::GetModelRequest::decode(data) {
        let _ = state().get_model(&request);
    }
}

/// A similarity store record: the first 8 bytes are the key, the rest the value. A record
/// that decodes must encode back to the same bytes.
pub fn similarity_record(data: &[u8]) {
    let (key, value) = data.split_at(data.len().min(8));
    if let Ok(entry) = smsguard_scoring::similarity::decode_entry(key, value) {
        let encoded = smsguard_scoring::similarity::encode_entry(&entry);
        assert_eq!(&encoded[..], value, "a decoded record re-encodes unchanged");
    }
}

/// A decision log segment as replay reads it: the frames found in the bytes (damaged spans
/// skipped) and each payload decoded. The bytes are also framed whole and read back, so the
/// decision decoder sees them even though random bytes rarely carry a valid CRC.
pub fn decision_log(data: &[u8]) {
    let (payloads, _spans, skipped) = smsguard_edge::store::read_log_frames(data);
    assert!(skipped as usize <= data.len());
    for payload in payloads {
        let _ = smsguard_edge::store::log_decision_id(payload);
    }
    let framed = smsguard_edge::store::log_frame(data);
    let (payloads, spans, _) = smsguard_edge::store::read_log_frames(&framed);
    if !data.is_empty() && data.len() <= smsguard_edge::store::MAX_LOG_PAYLOAD_BYTES {
        assert_eq!(
            (payloads.len(), spans),
            (1, 0),
            "one framed payload reads back"
        );
    }
    for payload in payloads {
        let _ = smsguard_edge::store::log_decision_id(payload);
    }
}

/// A rules file (TOML, lossy UTF-8): parsed and compiled by the scorer's loader, and read by
/// the server's sender-rule export.
pub fn rules_file(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    // Any `deny_file` reads as a two-host list, so the whole compile path runs.
    let _ = smsguard_scoring::rules::RuleSet::parse(&text, "fuzz.toml", |_| {
        Ok("evil.example\n# a comment\nphish.example.top\n".to_owned())
    });
    let _ = smsguard_server::state::sender_rules(&text);
}

/// A knowledge table as a phone receives it through `SyncCache`: named (size, parse, digest) and
/// compiled with its examples checked, the path `engine::knowledge` takes before a table may
/// replace the one in force. No table may panic the phone; a table that is named names the same
/// way again, and one that compiles answers a lookup.
pub fn knowledge_table(data: &[u8]) {
    let text = String::from_utf8_lossy(data).into_owned();
    let Ok(table) = TableText::new(text, "fuzz") else {
        return;
    };
    let again = TableText::new(table.text().to_owned(), "fuzz").expect("a named table names again");
    assert_eq!(again.id(), table.id());
    if let Ok(base) = table.compile_checked("fuzz") {
        let probe = smsguard_core::normalize("加微信领取免费礼品 http://win.example reply STOP");
        let _ = base.hits(&probe);
    }
}

/// A `GetModel` answer as the edge receives it: decoded and verified against a pinned key.
/// No malformed package may panic the verifier, and one it accepts must be whole: a manifest
/// whose digest and size are the model's.
pub fn model_package(data: &[u8]) {
    let Ok(response) = v1::GetModelResponse::decode(data) else {
        return;
    };
    if smsguard_edge::cloud_link::verify_model_package(&response, pinned_key()).is_ok() {
        let manifest = response
            .manifest
            .as_ref()
            .expect("a verified package has a manifest");
        assert_eq!(
            manifest.sha256,
            smsguard_signing::sha256_hex(&response.model)
        );
        assert_eq!(manifest.size_bytes, response.model.len() as u64);
    }
}

/// A fixed verifying key (the public half of an all-sevens secret), so inputs replay alike.
fn pinned_key() -> &'static smsguard_signing::VerifyingKey {
    static KEY: OnceLock<smsguard_signing::VerifyingKey> = OnceLock::new();
    KEY.get_or_init(|| {
        smsguard_signing::SigningKey::from_hex(&"07".repeat(32))
            .expect("a 32-byte hex secret")
            .verifying_key()
    })
}
