//! Model packages sealed to a device: opened only with that device's key, and the Ed25519
//! signature is still checked on the opened model.

use std::time::Duration;

use smsguard_container::device::seal_to_device;
use smsguard_edge::cloud_link::CloudLinkError;
use smsguard_edge::engine::{DeviceKey, Engine, EngineConfig, EngineError, ModelUpdate};
use smsguard_proto::v1::GetModelResponse;
use smsguard_signing::SigningKey;

use super::{cloud_config, model_package, Behaviour, FakeCloud};

/// `package` with its model moved into `sealed_model`, sealed to `device`.
fn sealed_to(device: &DeviceKey, mut package: GetModelResponse) -> GetModelResponse {
    package.sealed_model = seal_to_device(&device.public_key(), &package.model).unwrap();
    package.model = Vec::new();
    package
}

fn rejection(engine: &Engine) -> String {
    match engine.update_model() {
        Err(EngineError::ModelRejected(reason)) => reason,
        other => panic!("expected a rejected package, got {other:?}"),
    }
}

#[test]
fn a_sealed_package_opens_with_this_devices_key_only_and_must_still_verify() {
    let signer = SigningKey::generate().unwrap();
    let device = DeviceKey::generate();
    let cloud = FakeCloud::new(Behaviour::Fail(CloudLinkError::DeadlineExceeded));
    let open = |device_key: Option<DeviceKey>| {
        let dir = tempfile::tempdir().unwrap();
        let config = EngineConfig {
            cloud: Some(cloud_config(Duration::from_millis(50))),
            pinned_model_key: Some(signer.verifying_key().to_hex()),
            device_key,
            ..EngineConfig::default()
        };
        let engine = Engine::open_with_link(dir.path(), config, Some(cloud.link())).unwrap();
        (dir, engine)
    };

    // Without a device key a sealed package cannot be opened, so it is refused as such.
    cloud.state().model = Some(sealed_to(&device, model_package(&signer, "v2", false)));
    let (_dir, keyless) = open(None);
    assert!(rejection(&keyless).contains("no device_key"));

    // Another device's key: refused, the embedded model stays.
    let (_dir, other) = open(Some(DeviceKey::generate()));
    let before = other.stats().model_version;
    assert!(rejection(&other).contains("sealed to device"));
    assert_eq!(other.stats().model_version, before);

    // A model altered before sealing opens, then fails the signature.
    cloud.state().model = Some(sealed_to(&device, model_package(&signer, "v2", true)));
    let (_dir, engine) = open(Some(device.clone()));
    assert!(
        rejection(&engine).contains("signature"),
        "signature checked"
    );

    cloud.state().model = Some(sealed_to(&device, model_package(&signer, "v2", false)));
    assert!(matches!(
        engine.update_model().unwrap(),
        ModelUpdate::Updated { version, .. } if version == "v2"
    ));
}
