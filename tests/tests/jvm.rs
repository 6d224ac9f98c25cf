//! The Java wrapper `com.smsguard.SmsGuard` on this machine's JVM, against the built
//! `libsmsguard_jni` and the real cloud server running in this test process. Owner: jni-bridge.
//! (The offline run is `edge/jni/tests/jvm_offline.rs`.)

#[path = "../../edge/jni/tests/support/jvm.rs"]
mod jvm;

use smsguard_edge::engine::DeviceKey;
use smsguard_system_tests::{unused_loopback_addr, TestCloud, GENEROUS_DEADLINE};

fn config_json(url: &str, deadline_ms: u128, pinned_model_key: Option<&str>) -> String {
    serde_json::json!({
        "cloud": { "url": url, "deadline_ms": deadline_ms, "device_id": "jvm-system-test" },
        "pinned_model_key": pinned_model_key,
        // The host's device key travels in the JSON like the store key: model packages come
        // sealed to it.
        "device_key": DeviceKey::generate().to_hex(),
    })
    .to_string()
}

#[test]
fn java_wrapper_gets_fused_cloud_verdicts_from_a_running_server() {
    let cloud = TestCloud::start(|_| {}).expect("start the cloud server");
    let work = tempfile::tempdir().expect("temp dir");
    let classes = work.path().join("classes");
    jvm::compile_java(&classes);

    let config = config_json(
        &cloud.url(),
        GENEROUS_DEADLINE.as_millis(),
        Some(cloud.model_public_key()),
    );
    let run = jvm::run_scenario(&classes, &work.path().join("engine"), &config);

    jvm::assert_scenario_behaviour(&run);
    for step in ["classify_spam", "classify_ham"] {
        let decision = run.step(step).json(step);
        assert_eq!(
            decision["source"], "cloud",
            "{step}: the cloud answered in time: {decision}"
        );
        assert_eq!(decision["degraded"], false, "{step}: {decision}");
        assert_eq!(decision["queued"], false, "{step}: {decision}");
    }
    let report = run.step("report_spam").json("report_spam");
    assert_eq!(
        report["outcome"], "sent",
        "report reaches a running cloud: {report}"
    );
    assert_eq!(run.step("stats").json("stats")["cloud_configured"], true);
    let drained = run.step("drain_queue").json("drain_queue");
    assert_eq!(drained["remaining"], 0, "nothing left queued: {drained}");
    let synced = run.step("sync").json("sync");
    assert!(
        synced["to_version"].as_u64() >= synced["from_version"].as_u64(),
        "{synced}"
    );
    let update = run.step("update_model").json("update_model");
    assert!(
        update["outcome"] == "up_to_date" || update["outcome"] == "updated",
        "signed by the pinned key: {update}"
    );
}

#[test]
fn java_wrapper_falls_back_to_local_verdicts_when_the_cloud_is_down() {
    let nobody_listens = unused_loopback_addr().expect("free loopback port");
    let work = tempfile::tempdir().expect("temp dir");
    let classes = work.path().join("classes");
    jvm::compile_java(&classes);

    let config = config_json(&format!("http://{nobody_listens}"), 300, None);
    let run = jvm::run_scenario(&classes, &work.path().join("engine"), &config);

    jvm::assert_scenario_behaviour(&run);
    let spam = run.step("classify_spam").json("classify_spam");
    assert_eq!(spam["source"], "local", "{spam}");
    assert_eq!(spam["degraded"], true, "{spam}");
    assert_eq!(spam["queued"], true, "queued for re-check: {spam}");
    let report = run.step("report_spam").json("report_spam");
    assert_eq!(report["outcome"], "queued", "{report}");
    let queued = run.step("stats").json("stats")["queue_length"].as_u64();
    assert!(queued > Some(0), "messages wait for a re-check");
    let drained = run.step("drain_queue").json("drain_queue");
    assert_eq!(
        drained["remaining"].as_u64(),
        queued,
        "nothing drains without a cloud: {drained}"
    );
    let sync = run.step("sync").exception("sync");
    assert!(sync.contains("cloud unavailable"), "{sync}");
}
