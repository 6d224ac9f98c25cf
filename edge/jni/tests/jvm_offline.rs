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
