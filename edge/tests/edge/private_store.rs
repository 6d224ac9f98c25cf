//! The store holds quarantined and queued message bodies and sender numbers: its directory is
//! owner-only (0700) and so is every file in it (0600), whatever the umask and whatever mode an
//! existing directory had.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use smsguard_edge::engine::{DeviceKey, Engine, EngineConfig, StoreKey};
use smsguard_edge::store::{DIR_MODE, FILE_MODE};

use crate::fixtures::{OBVIOUS_HAM, OBVIOUS_SPAM};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Every directory and file under `dir` (`dir` included), with its mode.
fn modes(dir: &Path) -> Vec<(String, bool, u32)> {
    let mut found = vec![(dir.display().to_string(), true, mode(dir))];
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(modes(&path));
        } else {
            found.push((path.display().to_string(), false, mode(&path)));
        }
    }
    found
}

fn assert_owner_only(dir: &Path) {
    let found = modes(dir);
    assert!(found.iter().any(|(_, is_dir, _)| !is_dir), "no files yet");
    for (path, is_dir, mode) in found {
        let expected = if is_dir { DIR_MODE } else { FILE_MODE };
        assert_eq!(mode, expected, "{path}: {mode:o}");
    }
}

#[test]
fn an_open_store_and_a_closed_one_are_owner_only() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("store");
    std::fs::create_dir(&dir).unwrap();
    // As a default umask of 022 leaves it, set explicitly so the test does not rely on it.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(dir.join("left-over"), b"x").unwrap();
    std::fs::set_permissions(
        dir.join("left-over"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();

    let engine = Engine::open(&dir, EngineConfig::default()).unwrap();
    for body in [OBVIOUS_SPAM[0], OBVIOUS_HAM[0]] {
        assert!(engine.classify("+15550100", body, 0).message_id > 0);
    }
    // While open: sled's files and the decision log segment.
    assert!(modes(&dir).iter().any(|(path, ..)| path.ends_with(".log")));
    assert_owner_only(&dir);
    engine.close().unwrap();
    assert_owner_only(&dir);
}

#[test]
fn the_cli_creates_its_data_dir_owner_only() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("new").join("smsguard");
    let output = Command::new(env!("CARGO_BIN_EXE_smsguard"))
        .arg("--data-dir")
        .arg(&dir)
        .args(["classify", "--json", OBVIOUS_SPAM[1]])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_owner_only(&dir);
}

const SENDER: &str = "+44 7700 900777";
/// A sender the user put on the deny list.
const DENIED: &str = "+44 7700 900888";
/// Parts of the senders and the body that must not appear in any file of a sealed store (the
/// last 8 digits are in every canonical form of a number).
const SECRETS: [&str; 4] = ["00900777", "00 900777", "00900888", "ZEBRAMARK"];

fn lure() -> String {
    format!("ZEBRAMARK {}", OBVIOUS_SPAM[0])
}

/// Every file under `dir` that contains one of the secrets in plain.
fn files_with_secrets(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for (path, is_dir, _) in modes(dir) {
        if is_dir {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        for secret in SECRETS {
            if bytes.windows(secret.len()).any(|w| w == secret.as_bytes()) {
                found.push(format!("{path}: {secret}"));
            }
        }
    }
    found
}

fn keyed(key: Option<StoreKey>) -> EngineConfig {
    EngineConfig {
        store_key: key,
        ..EngineConfig::default()
    }
}

#[test]
fn with_a_key_no_sender_or_body_lies_in_plain_in_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let key = StoreKey::generate();
    let engine = Engine::open(dir.path(), keyed(Some(key))).unwrap();
    engine.deny_sender(DENIED).unwrap();
    let held = engine.classify(SENDER, &lure(), 0);
    assert!(held.message_id > 0, "{}", held.reason);
    assert_eq!(engine.quarantine_list().unwrap()[0].body, lure());
    // While open, the decision log holds the decision; it is sealed too.
    assert_eq!(files_with_secrets(dir.path()), Vec::<String>::new());
    engine.close().unwrap();
    assert_eq!(files_with_secrets(dir.path()), Vec::<String>::new());

    let engine = Engine::open(dir.path(), keyed(Some(key))).unwrap();
    let listed = engine.quarantine_list().unwrap();
    assert_eq!(
        (listed[0].sender.as_str(), listed[0].body.as_str()),
        (SENDER, lure().as_str())
    );
    // The deny list still answers for the number it cannot show.
    let denied = engine.classify(DENIED, OBVIOUS_HAM[0], 0);
    assert_eq!(
        denied.action,
        smsguard_edge::model::Action::Block,
        "{}",
        denied.reason
    );
    engine.forget_sender(DENIED).unwrap();
    let forgotten = engine.classify(DENIED, OBVIOUS_HAM[0], 0);
    assert_eq!(forgotten.action, smsguard_edge::model::Action::Allow);
    engine.close().unwrap();

    // Without its key, or with another, the store does not open (nothing is written plain
    // beside what was sealed); classify still answers.
    for (other, expected) in [
        (None, "no store key"),
        (Some(StoreKey::generate()), "not the key"),
    ] {
        let engine = Engine::open(dir.path(), keyed(other)).unwrap();
        let error = engine.store_error().unwrap_or_default().to_string();
        assert!(error.contains(expected), "{error}");
        assert_eq!(engine.classify(SENDER, OBVIOUS_HAM[0], 0).message_id, 0);
    }
}

#[test]
fn without_a_key_the_store_stays_plain_as_before() {
    // The control for the test above: the same message does lie in the files unsealed.
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), keyed(None)).unwrap();
    engine.deny_sender(DENIED).unwrap();
    assert!(engine.classify(SENDER, &lure(), 0).message_id > 0);
    engine.close().unwrap();
    let found = files_with_secrets(dir.path()).join("\n");
    assert!(
        found.contains("900777") && found.contains("00900888") && found.contains("ZEBRAMARK"),
        "{found}"
    );

    // Sealing a plain store later: its list entries are rehashed and still answer.
    let engine = Engine::open(dir.path(), keyed(Some(StoreKey::generate()))).unwrap();
    let denied = engine.classify(DENIED, OBVIOUS_HAM[0], 0);
    assert_eq!(
        denied.action,
        smsguard_edge::model::Action::Block,
        "{}",
        denied.reason
    );
    assert_eq!(
        engine.quarantine_list().unwrap().len(),
        2,
        "plain records stay readable"
    );
}

#[test]
fn the_cli_creates_an_owner_only_key_file_and_seals_with_it() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("store");
    let smsguard = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_smsguard"))
            .arg("--data-dir")
            .arg(&dir)
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    smsguard(&["classify", "--sender", SENDER, "--json", &lure()]);
    let key_file = dir.join("store.key");
    assert_eq!(mode(&key_file), 0o600);
    let key = StoreKey::from_hex(&std::fs::read_to_string(&key_file).unwrap()).unwrap();
    assert_eq!(files_with_secrets(&dir), Vec::<String>::new());
    // The device key (model packages are sealed to it) is kept the same way, and kept.
    let device_key_file = dir.join("device.key");
    assert_eq!(mode(&device_key_file), 0o600);
    let device_key = std::fs::read_to_string(&device_key_file).unwrap();
    assert!(DeviceKey::from_hex(&device_key).is_ok(), "not a device key");
    // A second run reads the same key back.
    let listed = smsguard(&["quarantine", "--json", "list"]);
    assert!(
        listed.contains("ZEBRAMARK") && listed.contains(SENDER),
        "{listed}"
    );
    assert_eq!(
        std::fs::read_to_string(&device_key_file).unwrap(),
        device_key
    );
    let engine = Engine::open(&dir, keyed(Some(key))).unwrap();
    assert_eq!(engine.quarantine_list().unwrap().len(), 1);
}
