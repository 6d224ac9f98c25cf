//! Sealing a model package to one device (ECIES): the cloud draws an ephemeral X25519 key,
//! agrees a secret with the device's public key, derives a container key from it with
//! HKDF-SHA256 (salted with both public keys) and seals a [`crate`] container under it. Only the
//! device's private key derives that key again, so a package captured on the way to (or copied
//! from) device A does not open on device B.
//!
//! Envelope layout: magic "SMGD" (4) | version (1) | recipient key id (8) | ephemeral public key
//! (32) | container. The recipient key id lets device B say "not for this device" instead of
//! "corrupt"; every other envelope byte feeds the key derivation, so any change fails to open.

use chacha20poly1305::aead::OsRng;
use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::{open, seal, ContainerError, ContainerKey, Plaintext, KEY_BYTES, KEY_ID_BYTES};

pub const ENVELOPE_MAGIC: &[u8; 4] = b"SMGD";
pub const ENVELOPE_VERSION: u8 = 1;
const PUBLIC_KEY_BYTES: usize = 32;
const ENVELOPE_HEADER_BYTES: usize = ENVELOPE_MAGIC.len() + 1 + KEY_ID_BYTES + PUBLIC_KEY_BYTES;
/// HKDF `info` of the key a package is sealed under.
const PACKAGE_INFO: &[u8] = b"smsguard-device-package-v1";
/// HKDF `info` of the key an installed model is stored under on the device.
const STORAGE_INFO: &[u8] = b"smsguard-device-stored-model-v1";
const DEVICE_KEY_ID_DOMAIN: &[u8] = b"smsguard-device-key-id\0";

/// A device's X25519 private key (from the host: the Android Keystore through the app, or the
/// CLI's key file). Zeroised on drop; its `Debug` shows only the public key id.
#[derive(Clone)]
pub struct DeviceSecret(StaticSecret);

impl std::fmt::Debug for DeviceSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DeviceSecret(key_id={})", self.public_key().key_id_hex())
    }
}

impl DeviceSecret {
    pub fn generate() -> DeviceSecret {
        DeviceSecret(StaticSecret::random_from_rng(OsRng))
    }

    pub fn from_slice(bytes: &[u8]) -> Result<DeviceSecret, ContainerError> {
        let bytes: Zeroizing<[u8; KEY_BYTES]> = Zeroizing::new(
            bytes
                .try_into()
                .map_err(|_| ContainerError::BadKeyLength(bytes.len()))?,
        );
        Ok(DeviceSecret(StaticSecret::from(*bytes)))
    }

    /// A secret from 64 hex digits (surrounding whitespace ignored).
    pub fn from_hex(text: &str) -> Result<DeviceSecret, ContainerError> {
        let bytes = Zeroizing::new(hex::decode(text.trim()).map_err(|_| ContainerError::NotHex)?);
        DeviceSecret::from_slice(&bytes)
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0.as_bytes())
    }

    pub fn public_key(&self) -> DevicePublicKey {
        DevicePublicKey(PublicKey::from(&self.0))
    }

    /// The key this device stores an installed model under (derived, never the secret itself).
    pub fn storage_key(&self) -> ContainerKey {
        derive_key(self.0.as_bytes(), b"", STORAGE_INFO)
    }
}

/// A device's X25519 public key, as `GetModel` requests carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DevicePublicKey(PublicKey);

impl DevicePublicKey {
    pub fn from_slice(bytes: &[u8]) -> Result<DevicePublicKey, ContainerError> {
        let bytes: [u8; PUBLIC_KEY_BYTES] = bytes
            .try_into()
            .map_err(|_| ContainerError::BadKeyLength(bytes.len()))?;
        Ok(DevicePublicKey(PublicKey::from(bytes)))
    }

    pub fn as_bytes(&self) -> &[u8; PUBLIC_KEY_BYTES] {
        self.0.as_bytes()
    }

    pub fn key_id(&self) -> [u8; KEY_ID_BYTES] {
        let digest = Sha256::new()
            .chain_update(DEVICE_KEY_ID_DOMAIN)
            .chain_update(self.0.as_bytes())
            .finalize();
        let mut id = [0u8; KEY_ID_BYTES];
        id.copy_from_slice(&digest[..KEY_ID_BYTES]);
        id
    }

    pub fn key_id_hex(&self) -> String {
        hex::encode(self.key_id())
    }
}

/// Seals `plaintext` so that only `recipient`'s private key opens it.
pub fn seal_to_device(
    recipient: &DevicePublicKey,
    plaintext: &[u8],
) -> Result<Vec<u8>, ContainerError> {
    let ephemeral = StaticSecret::random_from_rng(OsRng);
    let ephemeral_public = PublicKey::from(&ephemeral);
    let shared = ephemeral.diffie_hellman(&recipient.0);
    if !shared.was_contributory() {
        return Err(ContainerError::WeakDeviceKey);
    }
    let key = package_key(shared.as_bytes(), ephemeral_public.as_bytes(), recipient);
    let mut out = Vec::with_capacity(ENVELOPE_HEADER_BYTES + plaintext.len() + 64);
    out.extend_from_slice(ENVELOPE_MAGIC);
    out.push(ENVELOPE_VERSION);
    out.extend_from_slice(&recipient.key_id());
    out.extend_from_slice(ephemeral_public.as_bytes());
    out.extend_from_slice(&seal(&key, plaintext)?);
    Ok(out)
}

/// Opens an envelope with this device's secret. Refuses another device's package
/// ([`ContainerError::NotForThisDevice`]) and any altered byte ([`ContainerError::Corrupt`]).
pub fn open_as_device(secret: &DeviceSecret, envelope: &[u8]) -> Result<Plaintext, ContainerError> {
    if envelope.len() >= ENVELOPE_MAGIC.len() && &envelope[..ENVELOPE_MAGIC.len()] != ENVELOPE_MAGIC
    {
        return Err(ContainerError::BadMagic);
    }
    if envelope.len() < ENVELOPE_HEADER_BYTES {
        return Err(ContainerError::Truncated {
            len: envelope.len(),
            minimum: ENVELOPE_HEADER_BYTES + crate::HEADER_BYTES + crate::TAG_BYTES,
        });
    }
    let version = envelope[ENVELOPE_MAGIC.len()];
    if version != ENVELOPE_VERSION {
        return Err(ContainerError::UnknownVersion { found: version });
    }
    let id_start = ENVELOPE_MAGIC.len() + 1;
    let recipient = secret.public_key();
    let found = &envelope[id_start..id_start + KEY_ID_BYTES];
    if found != recipient.key_id() {
        return Err(ContainerError::NotForThisDevice {
            device: recipient.key_id_hex(),
            found: hex::encode(found),
        });
    }
    let ephemeral_bytes: [u8; PUBLIC_KEY_BYTES] = envelope
        [id_start + KEY_ID_BYTES..ENVELOPE_HEADER_BYTES]
        .try_into()
        .map_err(|_| ContainerError::Corrupt)?;
    let shared = secret.0.diffie_hellman(&PublicKey::from(ephemeral_bytes));
    if !shared.was_contributory() {
        return Err(ContainerError::Corrupt);
    }
    let key = package_key(shared.as_bytes(), &ephemeral_bytes, &recipient);
    // A changed ephemeral key derives another key: that is damage, not another key's container.
    open(&key, &envelope[ENVELOPE_HEADER_BYTES..]).map_err(|e| match e {
        ContainerError::WrongKey { .. } => ContainerError::Corrupt,
        other => other,
    })
}

fn package_key(
    shared: &[u8; 32],
    ephemeral_public: &[u8; PUBLIC_KEY_BYTES],
    recipient: &DevicePublicKey,
) -> ContainerKey {
    let mut salt = [0u8; 2 * PUBLIC_KEY_BYTES];
    salt[..PUBLIC_KEY_BYTES].copy_from_slice(ephemeral_public);
    salt[PUBLIC_KEY_BYTES..].copy_from_slice(recipient.as_bytes());
    derive_key(shared, &salt, PACKAGE_INFO)
}

fn derive_key(input: &[u8], salt: &[u8], info: &[u8]) -> ContainerKey {
    let mut okm = Zeroizing::new([0u8; KEY_BYTES]);
    // 32 bytes is far below HKDF-SHA256's 8,160-byte limit: expand cannot fail.
    let _ = Hkdf::<Sha256>::new(Some(salt), input).expand(info, okm.as_mut_slice());
    ContainerKey::from_bytes(*okm)
}
