//! Compiles the Java wrapper (`edge/jni/java`) and the scenario program
//! (`edge/jni/tests/java/SmsGuardScenario.java`) with `javac`, runs the scenario on the JVM against
//! the built `libsmsguard_jni`, and parses its `step<TAB>result` lines. Shared by
//! `edge/jni/tests/jvm_offline.rs` and `tests/tests/jvm.rs` (via `#[path]`).

#![allow(dead_code)] // each including test uses a different subset

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What one scenario step printed.
#[derive(Debug, Clone)]
pub enum Step {
    /// The call returned this JSON.
    Json(serde_json::Value),
    /// The call threw; `class: message`.
    Exception(String),
}

impl Step {
    /// The JSON result; panics with the step name if the step threw or printed no JSON.
    pub fn json(&self, name: &str) -> &serde_json::Value {
        match self {
            Step::Json(value) => value,
            Step::Exception(e) => panic!("step {name} threw instead of returning JSON: {e}"),
        }
    }

    /// The exception text; panics with the step name if the step returned normally.
    pub fn exception(&self, name: &str) -> &str {
        match self {
            Step::Exception(e) => e,
            Step::Json(v) => panic!("step {name} returned {v} instead of throwing"),
        }
    }
}

/// Output of one scenario run.
#[derive(Debug)]
pub struct ScenarioRun {
    pub steps: BTreeMap<String, Step>,
    pub finished: bool,
    pub stderr: String,
}

impl ScenarioRun {
    pub fn step(&self, name: &str) -> &Step {
        self.steps
            .get(name)
            .unwrap_or_else(|| panic!("scenario printed no step {name}; stderr:\n{}", self.stderr))
    }
}

/// `edge/jni`, found from the manifest dir of whichever test crate includes this file.
pub fn jni_crate_dir() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for candidate in [manifest.clone(), manifest.join("../edge/jni")] {
        if candidate.join("java/com/smsguard/SmsGuard.java").is_file() {
            return candidate;
        }
    }
    panic!("cannot find edge/jni from {}", manifest.display());
}

/// Directory holding the freshest `libsmsguard_jni` next to the running test binary
/// (`target/<profile>/deps` or `target/<profile>`), so `CARGO_TARGET_DIR` is honoured.
pub fn native_library_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let deps = exe.parent().expect("exe dir").to_path_buf();
    let profile = deps.parent().expect("profile dir").to_path_buf();
    let file_name = format!(
        "{}smsguard_jni{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    [deps, profile]
        .into_iter()
        .filter_map(|dir| {
            let modified = std::fs::metadata(dir.join(&file_name))
                .and_then(|m| m.modified())
                .ok()?;
            Some((modified, dir))
        })
        .max()
        .map(|(_, dir)| dir)
        .unwrap_or_else(|| {
            panic!(
                "{file_name} not built next to {}; run `cargo build -p smsguard-jni`",
                exe.display()
            )
        })
}

/// Compiles the wrapper and the scenario into `classes_dir` (warnings are errors).
pub fn compile_java(classes_dir: &Path) {
    let jni = jni_crate_dir();
    let output = Command::new("javac")
        .args(["-encoding", "UTF-8", "-Xlint:all", "-Werror", "-d"])
        .arg(classes_dir)
        .arg(jni.join("java/com/smsguard/SmsGuard.java"))
        .arg(jni.join("java/com/smsguard/SmsGuardException.java"))
        .arg(jni.join("java/com/smsguard/KeyProvider.java"))
        .arg(jni.join("tests/java/SmsGuardScenario.java"))
        .arg(jni.join("tests/java/KeyProviderScenario.java"))
        .output()
        .expect("run javac (Java 17 JDK)");
    assert!(
        output.status.success(),
        "javac failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs the scenario with `-Xcheck:jni` (the JVM then validates every JNI call the bridge makes).
pub fn run_scenario(classes_dir: &Path, data_dir: &Path, config_json: &str) -> ScenarioRun {
    run_main(
        classes_dir,
        "SmsGuardScenario",
        &[data_dir.as_os_str(), config_json.as_ref()],
    )
}

/// Runs `KeyProviderScenario DATA_DIR CONFIG_JSON KEY` (KEY: 64 hex digits, `null`, `short` or
/// `throw`): the engine opened with a Java `KeyProvider`.
pub fn run_key_provider_scenario(
    classes_dir: &Path,
    data_dir: &Path,
    config_json: &str,
    key: &str,
) -> ScenarioRun {
    run_main(
        classes_dir,
        "KeyProviderScenario",
        &[data_dir.as_os_str(), config_json.as_ref(), key.as_ref()],
    )
}

/// Runs `main_class` with `-Xcheck:jni` and parses its step lines.
fn run_main(classes_dir: &Path, main_class: &str, args: &[&std::ffi::OsStr]) -> ScenarioRun {
    let logs = tempfile::tempdir().expect("temp dir");
    let stdout_path = logs.path().join("stdout");
    let stderr_path = logs.path().join("stderr");
    let mut child = Command::new("java")
        .arg("-Xcheck:jni")
        .arg(format!(
            "-Djava.library.path={}",
            native_library_dir().display()
        ))
        .arg("-cp")
        .arg(classes_dir)
        .arg(main_class)
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).expect("stdout file"))
        .stderr(std::fs::File::create(&stderr_path).expect("stderr file"))
        .spawn()
        .expect("run java");
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for java") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("java scenario timed out");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = std::fs::read_to_string(&stdout_path).expect("read stdout");
    let stderr = std::fs::read_to_string(&stderr_path).expect("read stderr");
    assert!(
        status.success(),
        "java exited with {status}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    parse(&stdout, stderr)
}

fn parse(stdout: &str, stderr: String) -> ScenarioRun {
    let mut steps = BTreeMap::new();
    let mut finished = false;
    for line in stdout.lines() {
        if line == "done" {
            finished = true;
            continue;
        }
        let Some((name, rest)) = line.split_once('\t') else {
            continue; // JVM diagnostics
        };
        let step = match rest.strip_prefix("EXCEPTION\t") {
            Some(exception) => Step::Exception(exception.to_owned()),
            None => Step::Json(
                serde_json::from_str(rest)
                    .unwrap_or_else(|e| panic!("step {name} printed invalid JSON ({e}): {rest}")),
            ),
        };
        steps.insert(name.to_owned(), step);
    }
    ScenarioRun {
        steps,
        finished,
        stderr,
    }
}

/// Message ids listed in a quarantine-list JSON array.
pub fn quarantined_ids(list: &serde_json::Value) -> Vec<u64> {
    list.as_array()
        .expect("quarantine list is a JSON array")
        .iter()
        .filter_map(|m| m.get("message_id").and_then(serde_json::Value::as_u64))
        .collect()
}

/// `SmsGuardScenario.ODD_BODY` as the engine must receive it: the lone surrogate replaced by
/// U+FFFD, the NUL and the emoji (a surrogate pair in Java) intact.
pub const ODD_BODY_AS_STORED: &str =
    "WINNER!! \u{fffd} You have been selected for a £900 prize\u{0} reward \u{1F600} call 09061701461 to claim";

/// Assertions that hold for the scenario whether or not a cloud is configured, step by step.
pub fn assert_scenario_behaviour(run: &ScenarioRun) {
    assert_ran_cleanly(run);
    let spam_id = assert_spam_and_ham_decided(run);
    let quarantine = assert_odd_text_survives(run);
    assert_quarantine_operations(run, quarantine, spam_id);
    assert_user_lists_win(run);
    assert_bad_arguments_refused(run);
    assert_quarantine_survives_reopen(run, spam_id);
    assert_concurrent_calls_return_or_throw(run);
}

/// The scenario finished and `-Xcheck:jni` found nothing.
fn assert_ran_cleanly(run: &ScenarioRun) {
    assert!(
        run.finished,
        "scenario did not finish; stderr:\n{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("WARNING in native method")
            && !run.stderr.contains("FATAL ERROR in native method"),
        "-Xcheck:jni flagged the bridge:\n{}",
        run.stderr
    );
}

/// Spam is quarantined and ham delivered, under distinct ids; returns the spam's id.
fn assert_spam_and_ham_decided(run: &ScenarioRun) -> u64 {
    let spam = run.step("classify_spam").json("classify_spam");
    let ham = run.step("classify_ham").json("classify_ham");
    assert_ne!(spam["label"], "ham", "spam decision: {spam}");
    assert_eq!(spam["state"], "quarantined", "spam decision: {spam}");
    assert_eq!(ham["label"], "ham", "ham decision: {ham}");
    assert_eq!(ham["state"], "delivered", "ham decision: {ham}");
    let spam_id = spam["message_id"].as_u64().expect("spam message_id");
    assert_ne!(
        Some(spam_id),
        ham["message_id"].as_u64(),
        "message ids must differ"
    );
    spam_id
}

/// A lone surrogate becomes U+FFFD; the NUL and everything after it (emoji included) survive,
/// into the quarantine list, which is returned.
fn assert_odd_text_survives(run: &ScenarioRun) -> &serde_json::Value {
    let odd = run.step("classify_odd").json("classify_odd");
    let replaced = run
        .step("classify_odd_replaced")
        .json("classify_odd_replaced");
    let before_nul = run
        .step("classify_odd_before_nul")
        .json("classify_odd_before_nul");
    assert_eq!(
        odd["fingerprint"], replaced["fingerprint"],
        "lossy UTF-16 must equal U+FFFD text"
    );
    assert_ne!(
        odd["fingerprint"], before_nul["fingerprint"],
        "text after the NUL was lost"
    );

    let odd_id = odd["message_id"].as_u64().expect("odd message_id");
    let quarantine = run.step("quarantine_list").json("quarantine_list");
    let stored_odd = quarantine
        .as_array()
        .and_then(|list| {
            list.iter()
                .find(|m| m["message_id"].as_u64() == Some(odd_id))
        })
        .unwrap_or_else(|| panic!("odd spam {odd_id} not quarantined: {odd}"));
    assert_eq!(
        stored_odd["body"], ODD_BODY_AS_STORED,
        "body mangled on the way in"
    );
    assert_eq!(
        stored_odd["sender"], "+44\u{fffd}",
        "sender mangled on the way in"
    );
    quarantine
}

/// Reports, quarantine listing by either call, a refused op, draining events.
fn assert_quarantine_operations(run: &ScenarioRun, quarantine: &serde_json::Value, spam_id: u64) {
    run.step("report_spam").json("report_spam");
    let listed = quarantined_ids(quarantine);
    assert!(
        listed.contains(&spam_id),
        "spam {spam_id} not quarantined: {listed:?}"
    );
    assert_eq!(
        run.step("quarantine_op_list").json("quarantine_op_list"),
        run.step("quarantine_list").json("quarantine_list")
    );
    assert!(run
        .step("quarantine_bad_op")
        .exception("quarantine_bad_op")
        .contains("unknown quarantine op"));
    assert!(run.step("drain_events").json("drain_events").is_array());
}

/// The user's lists win over the model both ways.
fn assert_user_lists_win(run: &ScenarioRun) {
    run.step("allow_sender").json("allow_sender");
    let allowed = run
        .step("classify_allowed_spam")
        .json("classify_allowed_spam");
    assert_eq!(allowed["source"], "rule", "{allowed}");
    assert_eq!(allowed["state"], "delivered", "{allowed}");
    run.step("deny_sender").json("deny_sender");
    let denied = run.step("classify_denied_ham").json("classify_denied_ham");
    assert_eq!(denied["source"], "rule", "{denied}");
    assert_eq!(denied["state"], "quarantined", "{denied}");
    run.step("forget_sender").json("forget_sender");
    assert_exception(run, "null_sender_rule", "`sender` must not be null");
    let stats = run.step("stats").json("stats");
    assert!(
        stats["quarantined"].as_u64().unwrap_or(0) >= 2,
        "spam + denied sender: {stats}"
    );
}

/// Null and out-of-range arguments, and calls on a closed engine, throw SmsGuardException.
fn assert_bad_arguments_refused(run: &ScenarioRun) {
    assert_exception(run, "null_body", "`body` must not be null");
    assert_exception(run, "null_sender", "`sender` must not be null");
    assert_exception(run, "negative_id", "messageId");
    assert_exception(run, "restore_unknown", "engine error");
    for step in [
        "classify_after_close",
        "report_after_close",
        "list_after_close",
    ] {
        assert_exception(run, step, "closed");
    }
    assert_exception(run, "open_null_dir", "`dataDir` must not be null");
    assert_exception(run, "open_bad_config", "configJson");
}

/// The quarantine survives close and reopen, and a restore takes the spam out of it.
fn assert_quarantine_survives_reopen(run: &ScenarioRun, spam_id: u64) {
    let reopened = quarantined_ids(
        run.step("reopen_quarantine_list")
            .json("reopen_quarantine_list"),
    );
    assert!(
        reopened.contains(&spam_id),
        "quarantine lost across close/reopen: {reopened:?}"
    );
    run.step("reopen_restore_spam").json("reopen_restore_spam");
    let after_restore = quarantined_ids(
        run.step("reopen_quarantine_list_after_restore")
            .json("reopen_quarantine_list_after_restore"),
    );
    assert!(
        !after_restore.contains(&spam_id),
        "restored message still quarantined"
    );
}

/// Concurrent calls around a close: each returned or threw SmsGuardException, and the store was
/// released for the next engine.
fn assert_concurrent_calls_return_or_throw(run: &ScenarioRun) {
    let concurrent = run.step("concurrent").json("concurrent");
    assert_eq!(
        concurrent["unexpected"], 0,
        "only SmsGuardException may escape: {concurrent}"
    );
    assert_eq!(
        concurrent["decided"].as_u64().unwrap_or(0) + concurrent["refused"].as_u64().unwrap_or(0),
        100,
        "every call returned or threw: {concurrent}"
    );
    let reopened = run.step("concurrent_reopen").json("concurrent_reopen");
    // message_id is 0 exactly when the engine could not use its store (still locked).
    assert_ne!(
        reopened["message_id"], 0,
        "store not released after close: {reopened}"
    );
}

fn assert_exception(run: &ScenarioRun, step: &str, needle: &str) {
    let text = run.step(step).exception(step);
    assert!(
        text.starts_with("com.smsguard.SmsGuardException: "),
        "{step}: {text}"
    );
    assert!(
        text.contains(needle),
        "{step}: expected `{needle}` in `{text}`"
    );
}
