//! Model updates: a package signed by the pinned key is installed and survives a restart; a
//! tampered, partial or foreign-signed one is refused and the old model stays.

use std::path::Path;
use std::sync::Arc;

use smsguard_edge::cloud_link::{CloudClient, CloudConfig};
use smsguard_edge::engine::{DeviceKey, Engine, EngineError, ModelSource, ModelUpdate, Source};
use smsguard_signing::SigningKey;
use smsguard_system_tests::{
    engine_config, now_ms, open_engine, samples, Tamper, TamperingRelay, TestCloud,
    GENEROUS_DEADLINE,
};

use crate::online_config;

fn other_model_dir() -> tempfile::TempDir {
    smsguard_system_tests::other_model_dir().unwrap()
}

fn pinned_engine(dir: &Path, url: &str, key: &str) -> Engine {
    let mut config = online_config(url, GENEROUS_DEADLINE);
    config.pinned_model_key = Some(key.to_owned());
    open_engine(dir, config).unwrap()
}

fn model_version(engine: &Engine) -> String {
    engine.stats().model_version.expect("a model is loaded")
}

#[test]
fn a_signed_model_is_installed_and_kept_across_restarts() {
    let models = other_model_dir();
    let cloud =
        TestCloud::start(|config| config.edge_model_dir = Some(models.path().to_path_buf()))
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let engine = pinned_engine(dir.path(), &cloud.url(), cloud.model_public_key());
    let before = model_version(&engine);
    let update = engine.update_model().unwrap();
    assert_eq!(
        update,
        ModelUpdate::Updated {
            previous: before.clone(),
            version: cloud.model_version().to_owned()
        }
    );
    assert_eq!(
        engine.update_model().unwrap(),
        ModelUpdate::UpToDate {
            version: cloud.model_version().to_owned()
        }
    );
    engine.close().unwrap();

    // Offline after a restart: the installed model is the one that judges.
    let engine = open_engine(dir.path(), engine_config(None)).unwrap();
    assert_eq!(model_version(&engine), cloud.model_version());
    let decision = engine.classify(&samples::sender(800), &samples::phishing(8), now_ms());
    assert_eq!(decision.source, Source::Local);
    assert!(decision.spam_score > 0.5, "{decision:?}");
}

fn assert_refused_through(tamper: Tamper, what: &str) {
    let models = other_model_dir();
    let cloud =
        TestCloud::start(|config| config.edge_model_dir = Some(models.path().to_path_buf()))
            .unwrap();
    let relay = TamperingRelay::start(&cloud.url(), tamper).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let engine = pinned_engine(dir.path(), &relay.url(), cloud.model_public_key());
    let before = model_version(&engine);
    let refused = engine.update_model();
    assert!(
        matches!(refused, Err(EngineError::ModelRejected(_))),
        "{what}: {refused:?}"
    );
    assert_eq!(relay.packages_tampered(), 1, "{what}");
    assert_eq!(
        model_version(&engine),
        before,
        "{what}: the old model stays"
    );
    let decision = engine.classify(&samples::sender(801), &samples::phishing(9), now_ms());
    assert!(
        !decision.degraded || decision.source == Source::Local,
        "{decision:?}"
    );
    engine.close().unwrap();
    let reopened = open_engine(dir.path(), engine_config(None)).unwrap();
    assert_eq!(
        model_version(&reopened),
        before,
        "{what}: nothing was stored"
    );
}

#[test]
fn a_package_with_a_flipped_model_byte_is_refused() {
    assert_refused_through(
        Arc::new(|package| {
            let middle = package.model.len() / 2;
            package.model[middle] ^= 0x01;
        }),
        "flipped model byte",
    );
}

#[test]
fn a_partial_download_is_refused() {
    assert_refused_through(
        Arc::new(|package| {
            let half = package.vocabulary.len() / 2;
            package.vocabulary.truncate(half);
        }),
        "truncated vocabulary",
    );
}

#[test]
fn a_package_re_signed_by_another_key_is_refused() {
    assert_refused_through(
        Arc::new(|package| {
            let impostor = SigningKey::generate().unwrap();
            let Some(manifest) = package.manifest.as_ref() else {
                return;
            };
            package.signature = impostor.sign(smsguard_signing::PackageParts {
                manifest_json: manifest.manifest_json.as_bytes(),
                model: &package.model,
                vocabulary: &package.vocabulary,
            });
            package.key_id = impostor.verifying_key().key_id();
        }),
        "impostor signature",
    );
}

#[test]
fn without_a_pinned_key_no_update_is_accepted() {
    let models = other_model_dir();
    let cloud =
        TestCloud::start(|config| config.edge_model_dir = Some(models.path().to_path_buf()))
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let engine = open_engine(dir.path(), online_config(&cloud.url(), GENEROUS_DEADLINE)).unwrap();
    let before = model_version(&engine);
    assert!(matches!(
        engine.update_model(),
        Err(EngineError::NoPinnedKey)
    ));
    let foreign = SigningKey::generate().unwrap().verifying_key().to_hex();
    let engine_with_wrong_pin = {
        drop(engine);
        pinned_engine(dir.path(), &cloud.url(), &foreign)
    };
    assert!(matches!(
        engine_with_wrong_pin.update_model(),
        Err(EngineError::ModelRejected(_))
    ));
    assert_eq!(model_version(&engine_with_wrong_pin), before);
}

/// Files under `dir` that hold any 64-byte run of `model` (32 runs spread over it).
fn files_holding(dir: &Path, model: &[u8]) -> Vec<std::path::PathBuf> {
    let step = (model.len() - 64) / 31;
    let windows: std::collections::HashSet<&[u8]> =
        (0..32).map(|i| &model[i * step..i * step + 64]).collect();
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        if path.is_dir() {
            pending.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else if let Ok(bytes) = std::fs::read(&path) {
            if bytes.windows(64).any(|b| windows.contains(b)) {
                found.push(path);
            }
        }
    }
    found
}

fn device_engine(dir: &Path, url: &str, pinned: &str, device: &DeviceKey) -> Engine {
    let mut config = online_config(url, GENEROUS_DEADLINE);
    config.pinned_model_key = Some(pinned.to_owned());
    config.device_key = Some(device.clone());
    open_engine(dir, config).unwrap()
}

#[test]
fn a_package_served_to_device_a_is_refused_on_device_b_and_stored_sealed_on_a() {
    let models = other_model_dir();
    let served = std::fs::read(models.path().join("edge-int8.onnx")).unwrap();
    let cloud =
        TestCloud::start(|config| config.edge_model_dir = Some(models.path().to_path_buf()))
            .unwrap();
    let (device_a, device_b) = (DeviceKey::generate(), DeviceKey::generate());

    // Device B's engine, but its link asks as device A (a package captured for A, replayed).
    let dir_b = tempfile::tempdir().unwrap();
    let mut config_b = online_config(&cloud.url(), GENEROUS_DEADLINE);
    config_b.pinned_model_key = Some(cloud.model_public_key().to_owned());
    config_b.device_key = Some(device_b.clone());
    let as_device_a = CloudConfig {
        device_public_key: Some(*device_a.public_key().as_bytes()),
        ..config_b.cloud.clone().unwrap()
    };
    let link = Arc::new(CloudClient::new(&as_device_a).unwrap());
    let engine_b = Engine::open_with_link(dir_b.path(), config_b, Some(link)).unwrap();
    let before = model_version(&engine_b);
    let refused = engine_b.update_model().unwrap_err();
    assert!(
        matches!(&refused, EngineError::ModelRejected(reason) if reason.contains("sealed to device")),
        "{refused}"
    );
    assert_eq!(model_version(&engine_b), before, "the old model stays");
    engine_b.close().unwrap();

    // Device A installs it, and nothing in its data directory holds the plain model.
    let dir_a = tempfile::tempdir().unwrap();
    let engine_a = device_engine(
        dir_a.path(),
        &cloud.url(),
        cloud.model_public_key(),
        &device_a,
    );
    assert!(matches!(
        engine_a.update_model().unwrap(),
        ModelUpdate::Updated { .. }
    ));
    engine_a.close().unwrap();
    assert_eq!(
        files_holding(dir_a.path(), &served),
        Vec::<std::path::PathBuf>::new()
    );

    // After a restart A loads it from the store; with B's key the stored model does not open
    // and the embedded one serves instead.
    let offline_a = |device: &DeviceKey| {
        let mut config = engine_config(None);
        config.device_key = Some(device.clone());
        let engine = open_engine(dir_a.path(), config).unwrap();
        let version = model_version(&engine);
        engine.close().unwrap();
        version
    };
    assert_eq!(offline_a(&device_a), cloud.model_version());
    assert_eq!(offline_a(&device_b), before);
}

/// A device-bound update from the real server is that device's watermarked copy (the committed
/// int8 model has a watermark plan): it verifies, installs under the package's version, and once
/// loaded from the store it judges like the unmarked original. The engine starts from the fp32
/// model files so that the served int8 model is an update for it.
#[test]
fn a_watermarked_copy_installs_and_judges_like_the_original() {
    let cloud = TestCloud::start(|_| {}).unwrap();
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../edge/models");
    let dir = tempfile::tempdir().unwrap();
    let device = DeviceKey::generate();
    let mut config = online_config(&cloud.url(), GENEROUS_DEADLINE);
    config.pinned_model_key = Some(cloud.model_public_key().to_owned());
    config.device_key = Some(device.clone());
    config.model = ModelSource::Files {
        model: models.join("edge-fp32.onnx"),
        vocab: models.join("vocab.json"),
    };
    let engine = open_engine(dir.path(), config).unwrap();
    let update = engine.update_model().unwrap();
    assert!(
        matches!(&update, ModelUpdate::Updated { version, .. } if version == cloud.model_version()),
        "{update:?}"
    );
    engine.close().unwrap();

    // Offline on the installed copy (it opens: no installed-model error, no model failure).
    let mut config = engine_config(None);
    config.device_key = Some(device);
    let marked = open_engine(dir.path(), config).unwrap();
    let stats = marked.stats();
    assert_eq!(stats.installed_model_error, None);
    assert_eq!(stats.failures.model, 0);
    let original_dir = tempfile::tempdir().unwrap();
    let original = open_engine(original_dir.path(), engine_config(None)).unwrap();
    for i in 0..6 {
        let text = if i % 2 == 0 {
            samples::ham(i)
        } else {
            samples::phishing(i)
        };
        let sender = samples::sender(820 + i);
        let by_copy = marked.classify(&sender, &text, now_ms());
        let by_original = original.classify(&sender, &text, now_ms());
        assert_eq!(by_copy.source, Source::Local, "{by_copy:?}");
        assert_eq!(
            (by_copy.label, by_copy.action),
            (by_original.label, by_original.action)
        );
    }
}
