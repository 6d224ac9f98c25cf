//! A store that cannot record (held by another handle, a directory nobody can write in, a full
//! disk) never hides a message: a quarantine verdict that cannot be recorded is delivered
//! tagged, marked degraded with the store's reason and counted; the CLI refuses to start on a
//! store that does not open and fails a run in which decisions went unrecorded.
//!
//! Each condition is real: a second sled handle holding the lock, a procfs directory (no file
//! can be created there, root included, unlike a chmod'ed directory), and a file-size limit
//! (`ulimit -f`, RLIMIT_FSIZE) under which writes fail with EFBIG as on a full disk.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use smsguard_edge::engine::{Engine, EngineConfig, MessageState, Source};
use smsguard_edge::model::Action;
use smsguard_edge::store::Store;

use crate::fixtures::{OBVIOUS_HAM, OBVIOUS_SPAM};

/// A directory that exists but in which no process, root included, can create a file.
const UNWRITABLE_DIR: &str = "/proc/self/fdinfo";

fn smsguard(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smsguard"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .expect("smsguard starts")
}

fn json_lines(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON line"))
        .collect()
}

/// Classifies spam and ham on an engine whose store did not open and checks that the spam is
/// delivered tagged (not quarantined into nowhere) and everything is counted.
fn assert_delivers_what_it_cannot_record(engine: &Engine) {
    assert!(engine.store_error().is_some());
    let spam = engine.classify("+15550100", OBVIOUS_SPAM[0], 0);
    assert_eq!(
        (spam.source, spam.action, spam.state, spam.message_id),
        (Source::Local, Action::Tag, MessageState::Delivered, 0),
        "{}",
        spam.reason
    );
    assert!(spam.label.is_spam() && spam.degraded && !spam.queued);
    assert!(
        spam.reason.contains("not recorded") && spam.reason.contains("instead of quarantine"),
        "{}",
        spam.reason
    );
    let ham = engine.classify("+15550100", OBVIOUS_HAM[0], 0);
    assert_eq!((ham.action, ham.message_id), (Action::Allow, 0));
    assert!(ham.degraded && ham.reason.contains("not recorded"));
    let failures = engine.stats().failures;
    assert_eq!((failures.unrecorded, failures.delivered_unrecorded), (2, 1));
}

#[test]
fn engine_whose_store_is_locked_by_another_handle_delivers_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let holder = Store::open(dir.path(), 1 << 20).unwrap();
    let engine = Engine::open(dir.path(), EngineConfig::default()).unwrap();
    assert!(
        engine.store_error().unwrap().contains("lock"),
        "{:?}",
        engine.store_error()
    );
    assert_delivers_what_it_cannot_record(&engine);
    drop(holder);
}

#[test]
fn engine_on_an_unwritable_directory_delivers_and_counts() {
    let engine = Engine::open(Path::new(UNWRITABLE_DIR), EngineConfig::default()).unwrap();
    assert_delivers_what_it_cannot_record(&engine);
}

#[test]
fn cli_refuses_a_store_held_by_another_handle() {
    let dir = tempfile::tempdir().unwrap();
    let _holder = Store::open(dir.path(), 1 << 20).unwrap();
    let output = smsguard(dir.path(), &["classify", "--json", OBVIOUS_SPAM[0]]);
    assert!(!output.status.success());
    assert!(output.stdout.is_empty(), "no verdict is printed");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("store") && stderr.contains("unavailable") && stderr.contains("lock"),
        "{stderr}"
    );
}

#[test]
fn cli_refuses_an_unwritable_directory() {
    let output = smsguard(
        Path::new(UNWRITABLE_DIR),
        &["classify", "--json", OBVIOUS_SPAM[0]],
    );
    assert!(!output.status.success());
    assert!(output.stdout.is_empty(), "no verdict is printed");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(UNWRITABLE_DIR), "{stderr}");
}

/// Classifies `lines` spam messages with the process's file size limited to `limit_blocks`
/// (`ulimit -f`: 512-byte blocks in dash, 1 KiB in bash); SIGXFSZ is ignored so that a write
/// past the limit fails with EFBIG, as on a full disk, instead of killing the process.
fn classify_on_a_full_disk(dir: &Path, lines: usize, limit_blocks: u32) -> Output {
    let input = dir.join("messages.txt");
    let messages: Vec<String> = (0..lines)
        .map(|n| format!("{} {n}", OBVIOUS_SPAM[n % OBVIOUS_SPAM.len()]))
        .collect();
    std::fs::write(&input, messages.join("\n")).unwrap();
    let store = dir.join("store");
    Command::new("sh")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f {limit_blocks} && exec \"$0\" --data-dir \"$1\" classify --json --file \"$2\""
        ))
        .arg(env!("CARGO_BIN_EXE_smsguard"))
        .arg(&store)
        .arg(&input)
        .output()
        .expect("sh starts")
}

#[test]
fn cli_on_a_full_disk_quarantines_only_what_it_recorded_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let output = classify_on_a_full_disk(dir.path(), 300, 64);
    let verdicts = json_lines(&output);
    assert_eq!(verdicts.len(), 300, "every message gets a verdict");
    let (recorded, unrecorded): (Vec<&Value>, Vec<&Value>) =
        verdicts.iter().partition(|v| v["id"].as_u64() != Some(0));
    assert!(
        !unrecorded.is_empty(),
        "the file-size limit never bit: raise the message count"
    );
    for verdict in &unrecorded {
        assert_eq!(
            (&verdict["state"], &verdict["degraded"]),
            (&Value::from("delivered"), &Value::from(true)),
            "{verdict}"
        );
        assert!(verdict["reason"].as_str().unwrap().contains("not recorded"));
    }
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "could not record {} of 300 messages",
            unrecorded.len()
        )),
        "{stderr}"
    );
    // Every message shown as quarantined is in the quarantine (read without the limit).
    let shown: Vec<u64> = recorded
        .iter()
        .filter(|v| v["state"] == "quarantined")
        .map(|v| v["id"].as_u64().unwrap())
        .collect();
    let listed = smsguard(&dir.path().join("store"), &["quarantine", "--json", "list"]);
    assert!(listed.status.success());
    let held: Vec<u64> = json_lines(&listed)
        .iter()
        .map(|m| m["message_id"].as_u64().unwrap())
        .collect();
    for id in shown {
        assert!(held.contains(&id), "message {id} was shown quarantined");
    }
}
