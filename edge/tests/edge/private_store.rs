//! The store holds quarantined and queued message bodies and sender numbers: its directory is
//! owner-only (0700) and so is every file in it (0600), whatever the umask and whatever mode an
//! existing directory had.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use smsguard_edge::engine::{Engine, EngineConfig};
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
