//! The `smsguard` subcommands that use the store: classify with ids and states, quarantine,
//! report, stats, drain/sync errors, and the offline/cloud switches (no server needed).

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::fixtures::{OBVIOUS_HAM, OBVIOUS_SPAM};

/// A port nothing listens on: the cloud is unreachable.
const DEAD_CLOUD: &str = "http://127.0.0.1:9";

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smsguard"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .expect("smsguard starts")
}

fn ok_json(dir: &Path, args: &[&str]) -> Vec<Value> {
    let output = run(dir, args);
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON line"))
        .collect()
}

#[test]
fn classify_records_and_the_quarantine_can_be_managed() {
    let dir = tempfile::tempdir().unwrap();
    let spam = &ok_json(dir.path(), &["classify", "--json", OBVIOUS_SPAM[0]])[0];
    assert_eq!(
        (spam["action"].as_str(), spam["state"].as_str()),
        (Some("quarantine"), Some("quarantined"))
    );
    let id = spam["id"].as_u64().unwrap();
    assert!(id > 0);

    let held = ok_json(dir.path(), &["quarantine", "--json", "list"]);
    assert_eq!(held.len(), 1);
    assert_eq!(held[0]["message_id"].as_u64(), Some(id));
    assert_eq!(held[0]["body"], OBVIOUS_SPAM[0]);

    let restored = ok_json(
        dir.path(),
        &["quarantine", "--json", "restore", &id.to_string()],
    );
    assert_eq!(restored[0]["message_id"].as_u64(), Some(id));
    assert!(ok_json(dir.path(), &["quarantine", "--json", "list"]).is_empty());
    // Restoring twice or deleting an unknown id fails with a message naming the id.
    let again = run(dir.path(), &["quarantine", "restore", &id.to_string()]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains(&id.to_string()));
    assert!(!run(dir.path(), &["quarantine", "delete", "424242"])
        .status
        .success());

    let stats = run(dir.path(), &["stats"]);
    let stats: Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert_eq!(stats["counters"]["classified"], 1);
    assert_eq!(stats["counters"]["state.released"], 1);
    assert_eq!(stats["cloud_configured"], false);
}

#[test]
fn report_goes_to_the_queue_offline_and_changes_the_next_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let first = &ok_json(dir.path(), &["classify", "--json", OBVIOUS_HAM[1]])[0];
    assert_eq!(first["source"], "local");
    let id = first["id"].as_u64().unwrap().to_string();
    let outcome = ok_json(dir.path(), &["report", &id, "--spam"]);
    assert_eq!(outcome[0]["outcome"], "queued");
    let second = &ok_json(dir.path(), &["classify", "--json", OBVIOUS_HAM[1]])[0];
    assert_eq!(second["source"], "cache");
    assert_eq!(second["state"], "quarantined");
    // Exactly one of --spam / --not-spam.
    assert!(!run(dir.path(), &["report", &id]).status.success());
    assert!(!run(dir.path(), &["report", &id, "--spam", "--not-spam"])
        .status
        .success());
}

#[test]
fn shown_label_always_agrees_with_the_action() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("messages.txt");
    let all: Vec<&str> = OBVIOUS_SPAM.iter().chain(&OBVIOUS_HAM).copied().collect();
    std::fs::write(&file, all.join("\n")).unwrap();
    let verdicts = ok_json(
        dir.path(),
        &["classify", "--json", "--file", file.to_str().unwrap()],
    );
    assert_eq!(verdicts.len(), all.len());
    for v in &verdicts {
        assert_eq!(v["label"] == "ham", v["action"] == "allow", "{v}");
    }
    // At least one message is tagged or quarantined, so both sides of the rule are exercised.
    assert!(verdicts.iter().any(|v| v["action"] != "allow"));
}

#[test]
fn unreachable_cloud_queues_for_recheck_and_offline_overrides_it() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = ["--cloud", DEAD_CLOUD, "--deadline-ms", "100"];
    let mut args = cloud.to_vec();
    args.extend(["classify", "--json", OBVIOUS_SPAM[2]]);
    let queued = &ok_json(dir.path(), &args)[0];
    assert_eq!(queued["source"], "local");
    assert_eq!(queued["queued"], true);
    assert_eq!(queued["degraded"], true);

    let mut args = cloud.to_vec();
    args.extend(["--offline", "classify", "--json", OBVIOUS_SPAM[3]]);
    let offline = &ok_json(dir.path(), &args)[0];
    assert_eq!(offline["source"], "local");
    assert!(offline.get("queued").is_none());

    // The drain keeps the entry while the cloud is unreachable.
    let mut args = cloud.to_vec();
    args.push("drain");
    let summary = &ok_json(dir.path(), &args)[0];
    assert_eq!(summary["remaining"], 1);
    // Without a cloud, sync and drain say so.
    for command in ["sync", "drain"] {
        let output = run(dir.path(), &[command]);
        assert!(!output.status.success());
        assert!(String::from_utf8_lossy(&output.stderr).contains("no cloud"));
    }
}

#[test]
fn data_dir_comes_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_smsguard"))
        .args(["classify", "--json", OBVIOUS_SPAM[0]])
        .env("SMSGUARD_DATA_DIR", dir.path())
        .output()
        .unwrap();
    assert!(output.status.success());
    let held = ok_json(dir.path(), &["quarantine", "--json", "list"]);
    assert_eq!(held.len(), 1);
}
