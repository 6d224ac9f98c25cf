//! The device's X25519 key pair: `GetModel` asks with its public key, so the cloud seals each
//! model package to this device (see `smsguard_container::device`), and an installed model is
//! stored sealed under a key derived from it. The host supplies the private key (on Android a
//! secret kept by the Android Keystore, passed in the engine config; on the CLI a 0600 key file,
//! which is weaker: whoever reads the data directory as its owner reads the key too).

use serde::{Deserialize, Deserializer};
use smsguard_container::device::{DevicePublicKey, DeviceSecret};
use smsguard_container::ContainerKey;
use smsguard_model::EdgeModel;

/// A device's private key; 64 hex digits in the engine config. Never printed or serialised.
#[derive(Clone)]
pub struct DeviceKey(DeviceSecret);

impl DeviceKey {
    pub fn generate() -> DeviceKey {
        DeviceKey(DeviceSecret::generate())
    }

    pub fn from_hex(text: &str) -> Result<DeviceKey, smsguard_container::ContainerError> {
        DeviceSecret::from_hex(text).map(DeviceKey)
    }

    /// A key from its 32 raw bytes, as a host's key store hands it over (the JNI `KeyProvider`).
    pub fn from_bytes(bytes: &[u8]) -> Result<DeviceKey, smsguard_container::ContainerError> {
        DeviceSecret::from_slice(bytes).map(DeviceKey)
    }

    pub fn to_hex(&self) -> String {
        self.0.to_hex()
    }

    pub fn public_key(&self) -> DevicePublicKey {
        self.0.public_key()
    }

    pub fn secret(&self) -> &DeviceSecret {
        &self.0
    }
}

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "DeviceKey(public_key_id={})",
            self.public_key().key_id_hex()
        )
    }
}

/// Two keys are the same key when their public halves are.
impl PartialEq for DeviceKey {
    fn eq(&self, other: &DeviceKey) -> bool {
        self.public_key() == other.public_key()
    }
}

impl<'de> Deserialize<'de> for DeviceKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = zeroize::Zeroizing::new(String::deserialize(deserializer)?);
        DeviceKey::from_hex(&text).map_err(serde::de::Error::custom)
    }
}

/// The key an installed model is stored under: derived from the device key when there is one,
/// else the library's own embedded-model key (obfuscation only, and it changes with each build
/// of the library, after which a stored update no longer opens and the embedded model serves
/// until the next update).
pub(crate) fn model_storage_key(device: Option<&DeviceKey>) -> ContainerKey {
    device.map_or_else(EdgeModel::library_key, |key| key.0.storage_key())
}
