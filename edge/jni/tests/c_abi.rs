//! The C ABI from a real C program: compiled with `cc` against `include/smsguard.h` and linked
//! with the built `libsmsguard_jni`, then run on an offline engine.

#[path = "support/jvm.rs"]
mod jvm;

use std::collections::BTreeMap;
use std::process::Command;

/// `step -> rest of line` for every `step<TAB>...` line the C program printed.
fn run_smoke_program() -> BTreeMap<String, String> {
    let jni = jvm::jni_crate_dir();
    let lib_dir = jvm::native_library_dir();
    let work = tempfile::tempdir().expect("temp dir");
    let exe = work.path().join("smoke");
    let compiled = Command::new("cc")
        .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&exe)
        .arg(jni.join("tests/c/smoke.c"))
        .arg("-I")
        .arg(jni.join("include"))
        .arg("-L")
        .arg(&lib_dir)
        .arg("-lsmsguard_jni")
        .output()
        .expect("run cc");
    assert!(
        compiled.status.success(),
        "cc failed:\n{}",
        String::from_utf8_lossy(&compiled.stderr)
    );

    let ran = Command::new(&exe)
        .arg(work.path().join("engine"))
        .env("LD_LIBRARY_PATH", &lib_dir)
        .output()
        .expect("run the C program");
    let stdout = String::from_utf8_lossy(&ran.stdout);
    assert!(
        ran.status.success() && stdout.contains("\ndone\n"),
        "C program failed ({}):\n{stdout}\n{}",
        ran.status,
        String::from_utf8_lossy(&ran.stderr)
    );
    stdout
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .map(|(step, rest)| (step.to_owned(), rest.to_owned()))
        .collect()
}

fn json(steps: &BTreeMap<String, String>, step: &str) -> serde_json::Value {
    let line = steps
        .get(step)
        .unwrap_or_else(|| panic!("no step {step}: {steps:?}"));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("step {step} is not JSON ({e}): {line}"))
}

fn error(steps: &BTreeMap<String, String>, step: &str) -> (i64, String) {
    let line = steps
        .get(step)
        .unwrap_or_else(|| panic!("no step {step}: {steps:?}"));
    let mut parts = line.splitn(3, '\t');
    assert_eq!(
        parts.next(),
        Some("ERROR"),
        "step {step} should have failed: {line}"
    );
    let code = parts
        .next()
        .and_then(|c| c.parse().ok())
        .expect("error code");
    (code, parts.next().unwrap_or_default().to_owned())
}

#[test]
fn c_program_classifies_through_the_generated_header() {
    let steps = run_smoke_program();

    let spam = json(&steps, "classify_spam");
    let ham = json(&steps, "classify_ham");
    assert_eq!(spam["state"], "quarantined", "{spam}");
    assert_eq!(ham["label"], "ham", "{ham}");

    let odd = json(&steps, "classify_odd");
    let odd_id = odd["message_id"].as_u64().expect("odd message id");
    let quarantine = json(&steps, "quarantine_list");
    let stored = quarantine
        .as_array()
        .and_then(|list| {
            list.iter()
                .find(|m| m["message_id"].as_u64() == Some(odd_id))
        })
        .unwrap_or_else(|| panic!("odd message not quarantined: {odd}"));
    assert_eq!(
        stored["body"],
        "WINNER!! \u{fffd} You have been selected for a £900 prize reward\u{0} call 09061701461 to claim",
        "pointer+length text keeps the NUL; invalid UTF-8 becomes U+FFFD"
    );

    assert_eq!(
        json(&steps, "set_sender_bad_list")["status"],
        2,
        "INVALID_ARGUMENT"
    );
    assert_eq!(json(&steps, "deny_sender")["status"], 0);
    let denied = json(&steps, "classify_denied");
    assert_eq!(denied["source"], "rule", "{denied}");
    assert_eq!(denied["state"], "quarantined", "{denied}");
    assert_eq!(json(&steps, "stats")["cloud_configured"], false);
    let (code, message) = error(&steps, "sync_offline");
    assert_eq!(code, 4, "SMSGUARD_STATUS_ENGINE");
    assert!(message.contains("no cloud is configured"), "{message}");

    let (code, message) = error(&steps, "null_body");
    assert_eq!(code, 1, "SMSGUARD_STATUS_NULL_ARGUMENT");
    assert!(message.contains("body"), "{message}");

    assert_eq!(json(&steps, "close")["status"], 0);
    let (code, message) = error(&steps, "classify_after_close");
    assert_eq!(code, 3, "SMSGUARD_STATUS_CLOSED_HANDLE");
    assert!(message.contains("closed"), "{message}");
    assert_eq!(json(&steps, "close_again")["status"], 3);
}
