//! The Java wrapper `com.smsguard.SmsGuard` on this machine's JVM, against the built
//! `libsmsguard_jni` and the real cloud server running in this test process. Owner: jni-bridge.
//! (The offline run is `edge/jni/tests/jvm_offline.rs`.)

#[path = "../../edge/jni/tests/support/jvm.rs"]
mod jvm;

use std::sync::Arc;

use smsguard_container::device::seal_to_device;
use smsguard_edge::engine::DeviceKey;
use smsguard_system_tests::{
    other_model_dir, unused_loopback_addr, TamperingRelay, TestCloud, GENEROUS_DEADLINE,
};

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

/// The device key from a Java `KeyProvider`: a package the real server seals to it opens and
/// serves (also after a restart); a package sealed to another device is refused with a clear
/// error and the previous model keeps serving; a wrong key at the next start cannot open the
/// installed update, says so in `stats`, and the embedded model serves until the right key
/// comes back.
#[test]
fn a_java_key_provider_opens_packages_sealed_to_its_key_only() {
    let models = other_model_dir().expect("model folder");
    let cloud =
        TestCloud::start(|config| config.edge_model_dir = Some(models.path().to_path_buf()))
            .expect("start the cloud server");
    let other_device = DeviceKey::generate();
    // A package captured for another phone, replayed to this one.
    let replayed = TamperingRelay::start(
        &cloud.url(),
        Arc::new(move |package| {
            package.sealed_model = seal_to_device(&other_device.public_key(), &package.model)
                .expect("seal to the other device");
            package.model.clear();
        }),
    )
    .expect("relay");
    let work = tempfile::tempdir().expect("temp dir");
    let classes = work.path().join("classes");
    jvm::compile_java(&classes);
    let engine_dir = work.path().join("engine");
    let (key, wrong_key) = (
        DeviceKey::generate().to_hex(),
        DeviceKey::generate().to_hex(),
    );
    let config = |url: &str| {
        serde_json::json!({
            "cloud": { "url": url, "deadline_ms": GENEROUS_DEADLINE.as_millis() as u64 },
            "pinned_model_key": cloud.model_public_key(),
        })
        .to_string()
    };
    let run = |config: &str, key: &str| {
        let run = jvm::run_key_provider_scenario(&classes, &engine_dir, config, key);
        assert!(run.finished, "scenario did not finish\n{}", run.stderr);
        let spam = run.step("classify_spam").json("classify_spam");
        assert_eq!(spam["state"], "quarantined", "a model serves: {spam}");
        run
    };
    let version = |run: &jvm::ScenarioRun, step: &str| {
        run.step(step).json(step)["model_version"]
            .as_str()
            .expect("a model is loaded")
            .to_owned()
    };

    let refused = run(&config(&replayed.url()), &key);
    let embedded = version(&refused, "stats_before");
    let text = refused.step("update_model").exception("update_model");
    assert!(
        text.contains("model package rejected, the current model stays")
            && text.contains("sealed to device"),
        "{text}"
    );
    assert_eq!(replayed.packages_tampered(), 1);
    assert_eq!(
        version(&refused, "stats_after"),
        embedded,
        "the old model stays"
    );

    let updated = run(&config(&cloud.url()), &key);
    let update = updated.step("update_model").json("update_model");
    assert_eq!(update["outcome"], "updated", "{update}");
    assert_eq!(version(&updated, "stats_after"), cloud.model_version());
    // Neither the installed update (in the data dir) nor the embedded model (in the library the
    // JVM loaded) lies there in the clear: none of their graphs' node names is in any file.
    let names: Vec<String> = [
        models.path().join("edge-int8.onnx"),
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../edge/models/edge-int8.onnx"),
    ]
    .iter()
    .flat_map(|model| graph_node_names(&std::fs::read(model).expect("model file")))
    .collect();
    let library = jvm::native_library_dir().join(format!(
        "{}smsguard_jni{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    for file in files_under(&engine_dir).into_iter().chain([library]) {
        assert_holds_none_of(&file, &names);
    }

    let offline = serde_json::json!({ "pinned_model_key": cloud.model_public_key() }).to_string();
    let wrong = run(&offline, &wrong_key);
    assert_eq!(version(&wrong, "stats_before"), embedded);
    let stats = wrong.step("stats_before").json("stats_before");
    let reason = stats["installed_model_error"].as_str().unwrap_or_default();
    assert!(
        reason.contains(cloud.model_version()) && reason.contains("did not open"),
        "{stats}"
    );

    let right_again = run(&offline, &key);
    assert_eq!(version(&right_again, "stats_before"), cloud.model_version());
    let stats = right_again.step("stats_before").json("stats_before");
    assert_eq!(
        stats["installed_model_error"],
        serde_json::Value::Null,
        "{stats}"
    );
}

/// `"privacy": "private"` in the Java config: the verdicts fuse `PrivateClassify`'s scores
/// (`source` private), reports stay on the phone.
#[test]
fn java_wrapper_in_private_mode_gets_private_verdicts() {
    let cloud = TestCloud::start(|_| {}).expect("start the cloud server");
    let work = tempfile::tempdir().expect("temp dir");
    let classes = work.path().join("classes");
    jvm::compile_java(&classes);
    let config = serde_json::json!({
        "cloud": { "url": cloud.url(), "deadline_ms": GENEROUS_DEADLINE.as_millis() as u64 },
        "privacy": "private",
    })
    .to_string();

    let run = jvm::run_scenario(&classes, &work.path().join("engine"), &config);

    jvm::assert_scenario_behaviour(&run);
    for step in ["classify_spam", "classify_ham"] {
        let decision = run.step(step).json(step);
        assert_eq!(decision["source"], "private", "{step}: {decision}");
        assert_eq!(
            decision["private"]["scores"].as_array().map(Vec::len),
            Some(5)
        );
        // Fused with the head the cloud publishes with the private model.
        let head: serde_json::Value =
            serde_json::from_str(include_str!("../../cloud/models/private_head.json")).unwrap();
        assert_eq!(
            decision["private"]["head_version"], head["version"],
            "{step}: {decision}"
        );
        assert!(
            decision["reason"]
                .as_str()
                .is_some_and(|r| r.contains("head ")),
            "{step}: {decision}"
        );
    }
    let report = run.step("report_spam").json("report_spam");
    assert_eq!(report["outcome"], "kept_on_phone", "{report}");
}

/// The node names of an ONNX graph (`QLinearConv_3`, `Gather_10`, ...): text only a plain copy
/// of that model holds. At least three, so a change of the export cannot empty the check.
fn graph_node_names(model: &[u8]) -> Vec<String> {
    let mut names: Vec<String> = model
        .split(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
        .filter_map(|run| std::str::from_utf8(run).ok())
        .filter(|run| {
            let Some((op, index)) = run.rsplit_once('_') else {
                return false;
            };
            op.len() >= 4
                && op.starts_with(|c: char| c.is_ascii_uppercase())
                && op.chars().all(|c| c.is_ascii_alphabetic())
                && !index.is_empty()
                && index.chars().all(|c| c.is_ascii_digit())
        })
        .map(str::to_owned)
        .collect();
    names.sort();
    names.dedup();
    assert!(names.len() >= 3, "too few node names found: {names:?}");
    names
}

fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

fn assert_holds_none_of(file: &std::path::Path, names: &[String]) {
    let bytes = std::fs::read(file).expect("read file");
    for name in names {
        assert!(
            memchr::memmem::find(&bytes, name.as_bytes()).is_none(),
            "{} holds the model's node name {name}: a plain model",
            file.display()
        );
    }
}
