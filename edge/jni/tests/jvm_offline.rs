//! The Java wrapper on a real JVM against the built cdylib, offline (no cloud configured).

#[path = "support/jvm.rs"]
mod jvm;

#[test]
fn java_wrapper_runs_the_offline_scenario_on_the_jvm() {
    let work = tempfile::tempdir().expect("temp dir");
    let classes = work.path().join("classes");
    jvm::compile_java(&classes);

    let run = jvm::run_scenario(&classes, &work.path().join("engine"), "{}");

    jvm::assert_scenario_behaviour(&run);
    let spam = run.step("classify_spam").json("classify_spam");
    assert_ne!(spam["source"], "cloud", "no cloud configured, yet: {spam}");
    assert_eq!(run.step("stats").json("stats")["cloud_configured"], false);
    for step in ["drain_queue", "sync"] {
        let text = run.step(step).exception(step);
        assert!(text.contains("no cloud is configured"), "{step}: {text}");
    }
    let text = run.step("update_model").exception("update_model");
    assert!(text.contains("no model signing key is pinned"), "{text}");
}

#[test]
fn the_market_in_the_java_config_picks_the_thresholds() {
    let work = tempfile::tempdir().expect("temp dir");
    let classes = work.path().join("classes");
    jvm::compile_java(&classes);
    let engine_dir = work.path().join("engine");

    let run = jvm::run_scenario(&classes, &engine_dir, r#"{"market":"zh"}"#);

    // The scenario's ham is English; the device's configured market still decides.
    let ham = run.step("classify_ham").json("classify_ham");
    let reason = ham["reason"].as_str().unwrap_or_default();
    assert!(reason.contains(" the zh tag threshold "), "{ham}");
}

/// A Java `KeyProvider` supplies the device key (called once, its array wiped); a provider that
/// returns a wrong-length key or throws fails the open with a clear `SmsGuardException`, a
/// `null` one means no device key, and a key given both ways is refused.
#[test]
fn a_java_key_provider_supplies_the_device_key_or_fails_the_open_clearly() {
    let work = tempfile::tempdir().expect("temp dir");
    let classes = work.path().join("classes");
    jvm::compile_java(&classes);
    let key = "1f".repeat(32);
    let run_with = |name: &str, config: &str, key: &str| {
        let run = jvm::run_key_provider_scenario(&classes, &work.path().join(name), config, key);
        assert!(
            run.finished,
            "{name}: scenario did not finish\n{}",
            run.stderr
        );
        assert!(
            !run.stderr.contains("WARNING in native method"),
            "{name}: -Xcheck:jni flagged the bridge:\n{}",
            run.stderr
        );
        run
    };

    let good = run_with("good", "{}", &key);
    good.step("open").json("open");
    let provider = good.step("provider").json("provider");
    assert_eq!(provider["calls"], 1, "{provider}");
    assert_eq!(provider["returned_zeroed"], true, "{provider}");
    let spam = good.step("classify_spam").json("classify_spam");
    assert_eq!(spam["state"], "quarantined", "{spam}");
    let stats = good.step("stats_after").json("stats_after");
    assert_eq!(
        stats["installed_model_error"],
        serde_json::Value::Null,
        "{stats}"
    );
    let null_provider = good.step("null_provider").exception("null_provider");
    assert!(
        null_provider.contains("`keys` must not be null"),
        "{null_provider}"
    );

    let none = run_with("none", "", "null");
    none.step("open").json("open");
    assert_eq!(none.step("provider").json("provider")["calls"], 1);

    let short = run_with("short", "{}", "short");
    let text = short.step("open").exception("open");
    assert!(
        text.starts_with("com.smsguard.SmsGuardException: ")
            && text.contains("KeyProvider.deviceKey()")
            && text.contains("got 31"),
        "{text}"
    );
    assert_eq!(
        short.step("provider").json("provider")["returned_zeroed"],
        true
    );

    let throws = run_with("throws", "{}", "throw");
    let text = throws.step("open").exception("open");
    assert!(
        text.starts_with("com.smsguard.SmsGuardException: the KeyProvider failed: ")
            && text.contains("java.lang.IllegalStateException: the keystore is locked"),
        "{text}"
    );

    let twice = serde_json::json!({ "device_key": "2e".repeat(32) }).to_string();
    let text = run_with("twice", &twice, &key)
        .step("open")
        .exception("open")
        .to_owned();
    assert!(text.contains("while a KeyProvider supplies one"), "{text}");
}
