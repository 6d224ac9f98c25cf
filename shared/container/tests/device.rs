//! A package sealed to one device opens there and nowhere else.

use smsguard_container::device::{open_as_device, seal_to_device, DevicePublicKey, DeviceSecret};
use smsguard_container::ContainerError;

const PACKAGE: &[u8] = b"model bytes of a signed package";

#[test]
fn a_package_sealed_to_device_a_opens_on_a_only() {
    let device_a = DeviceSecret::generate();
    let device_b = DeviceSecret::generate();
    let envelope = seal_to_device(&device_a.public_key(), PACKAGE).unwrap();
    assert_eq!(&*open_as_device(&device_a, &envelope).unwrap(), PACKAGE);
    assert_eq!(
        open_as_device(&device_b, &envelope).unwrap_err(),
        ContainerError::NotForThisDevice {
            device: device_b.public_key().key_id_hex(),
            found: device_a.public_key().key_id_hex(),
        }
    );
    // Two packages for the same device differ (a fresh ephemeral key each time).
    assert_ne!(
        envelope,
        seal_to_device(&device_a.public_key(), PACKAGE).unwrap()
    );
}

#[test]
fn relabelling_a_package_for_device_b_does_not_open_it_there() {
    let device_a = DeviceSecret::generate();
    let device_b = DeviceSecret::generate();
    let mut envelope = seal_to_device(&device_a.public_key(), PACKAGE).unwrap();
    envelope[5..13].copy_from_slice(&device_b.public_key().key_id());
    assert_eq!(
        open_as_device(&device_b, &envelope).unwrap_err(),
        ContainerError::Corrupt
    );
}

#[test]
fn every_byte_of_an_envelope_is_protected() {
    let device = DeviceSecret::generate();
    let envelope = seal_to_device(&device.public_key(), PACKAGE).unwrap();
    for at in 0..envelope.len() {
        let mut damaged = envelope.clone();
        damaged[at] ^= 0x01;
        assert!(
            open_as_device(&device, &damaged).is_err(),
            "flipped byte {at} opened"
        );
    }
    for len in [0, 3, 20, envelope.len() - 1] {
        assert!(open_as_device(&device, &envelope[..len]).is_err());
    }
    let mut old = envelope;
    old[4] = 9;
    assert_eq!(
        open_as_device(&device, &old).unwrap_err(),
        ContainerError::UnknownVersion { found: 9 }
    );
}

#[test]
fn a_low_order_device_key_is_refused_and_secrets_never_print() {
    let zero = DevicePublicKey::from_slice(&[0; 32]).unwrap();
    assert_eq!(
        seal_to_device(&zero, PACKAGE).unwrap_err(),
        ContainerError::WeakDeviceKey
    );
    let secret = DeviceSecret::generate();
    assert!(!format!("{secret:?}").contains(&secret.to_hex()));
    let again = DeviceSecret::from_hex(&secret.to_hex()).unwrap();
    assert_eq!(again.public_key(), secret.public_key());
    assert_eq!(again.storage_key().key_id(), secret.storage_key().key_id());
    assert_eq!(
        DeviceSecret::from_hex("abcd").unwrap_err(),
        ContainerError::BadKeyLength(2)
    );
    assert_eq!(
        DeviceSecret::from_hex(&"zz".repeat(32)).unwrap_err(),
        ContainerError::NotHex
    );
}
