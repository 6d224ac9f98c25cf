//! The encrypted model container: a model never lies on disk (or in the library) in the clear,
//! only inside this container, and is opened into memory only.
//!
//! Layout (all of the header is authenticated as associated data, so no header byte can change
//! unnoticed):
//!
//! ```text
//! magic "SMGC" (4) | format version (1) | key id (8) | nonce (24) | XChaCha20-Poly1305 ciphertext + tag (≥ 16)
//! ```
//!
//! The key id (the first 8 bytes of a domain-tagged SHA-256 of the key) names the key a
//! container was sealed with, so a container for another key is refused as such before any
//! decryption, with an error that says so rather than "corrupt". The opened plaintext is a
//! [`Plaintext`]: its buffer is zeroised when dropped, so a caller that hands it to ONNX Runtime
//! and drops it leaves no copy of the model in freed memory.
//!
//! A separate crate (not a module of `smsguard-signing`) because the model crate's build script
//! seals the embedded model with it: a build dependency should be small, and encryption is a
//! different concern from the Ed25519 package signatures. It does no I/O.

pub mod device;

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

/// First bytes of every container.
pub const MAGIC: &[u8; 4] = b"SMGC";
/// The one format version this build reads and writes.
pub const FORMAT_VERSION: u8 = 1;
pub const KEY_BYTES: usize = 32;
pub const KEY_ID_BYTES: usize = 8;
pub const NONCE_BYTES: usize = 24;
/// Magic, version, key id and nonce.
pub const HEADER_BYTES: usize = MAGIC.len() + 1 + KEY_ID_BYTES + NONCE_BYTES;
/// The Poly1305 tag that ends every container.
pub const TAG_BYTES: usize = 16;
/// Prefix of what a key id hashes, so it is never the digest of the key used elsewhere.
const KEY_ID_DOMAIN: &[u8] = b"smsguard-container-key-id\0";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ContainerError {
    #[error("model container is truncated: {len} bytes, at least {minimum} needed")]
    Truncated { len: usize, minimum: usize },
    #[error("not a model container (no SMGC magic)")]
    BadMagic,
    #[error("model container format version {found} is unknown (this build reads version {FORMAT_VERSION})")]
    UnknownVersion { found: u8 },
    #[error("model container is sealed for key {found}, this key is {expected}")]
    WrongKey { expected: String, found: String },
    #[error("model container does not authenticate: its bytes were altered")]
    Corrupt,
    #[error("model package is sealed to device {found}, this device is {device}")]
    NotForThisDevice { device: String, found: String },
    #[error("the device public key is a low-order point: nothing sealed to it would be secret")]
    WeakDeviceKey,
    #[error("a key is 64 hex digits; this text is not hex")]
    NotHex,
    #[error("a container key is {KEY_BYTES} bytes, got {0}")]
    BadKeyLength(usize),
    #[error("the operating system gave no randomness")]
    Randomness,
}

/// A 32-byte container key. Zeroised on drop; its `Debug` shows only the key id.
#[derive(Clone)]
pub struct ContainerKey(Zeroizing<[u8; KEY_BYTES]>);

impl std::fmt::Debug for ContainerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ContainerKey(key_id={})", self.key_id_hex())
    }
}

impl ContainerKey {
    pub fn from_bytes(bytes: [u8; KEY_BYTES]) -> ContainerKey {
        ContainerKey(Zeroizing::new(bytes))
    }

    /// A key from a slice that must be exactly [`KEY_BYTES`] long.
    pub fn from_slice(bytes: &[u8]) -> Result<ContainerKey, ContainerError> {
        let mut key: [u8; KEY_BYTES] = bytes
            .try_into()
            .map_err(|_| ContainerError::BadKeyLength(bytes.len()))?;
        let built = ContainerKey::from_bytes(key);
        key.zeroize();
        Ok(built)
    }

    /// A fresh random key from the operating system.
    pub fn generate() -> ContainerKey {
        ContainerKey::from_bytes(XChaCha20Poly1305::generate_key(&mut OsRng).into())
    }

    pub fn as_bytes(&self) -> &[u8; KEY_BYTES] {
        &self.0
    }

    /// The id a container records: the first 8 bytes of SHA-256(domain ‖ key).
    pub fn key_id(&self) -> [u8; KEY_ID_BYTES] {
        let digest = Sha256::new()
            .chain_update(KEY_ID_DOMAIN)
            .chain_update(self.0.as_slice())
            .finalize();
        let mut id = [0u8; KEY_ID_BYTES];
        id.copy_from_slice(&digest[..KEY_ID_BYTES]);
        id
    }

    pub fn key_id_hex(&self) -> String {
        hex::encode(self.key_id())
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.0.as_slice().into())
    }
}

/// An opened model: the plaintext lives only here and is zeroised when this is dropped.
#[derive(PartialEq, Eq)]
pub struct Plaintext(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for Plaintext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Plaintext({} bytes)", self.0.len())
    }
}

impl std::ops::Deref for Plaintext {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

/// Seals `plaintext` under `key` with a fresh random nonce.
pub fn seal(key: &ContainerKey, plaintext: &[u8]) -> Result<Vec<u8>, ContainerError> {
    let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
    Ok(seal_with_nonce(key, nonce.into(), plaintext))
}

/// Seals `plaintext` under `key` with `nonce`, which must never be reused with the same key
/// (the build script draws it at random; tests pin it).
pub fn seal_with_nonce(key: &ContainerKey, nonce: [u8; NONCE_BYTES], plaintext: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_BYTES + plaintext.len() + TAG_BYTES);
    out.extend_from_slice(MAGIC);
    out.push(FORMAT_VERSION);
    out.extend_from_slice(&key.key_id());
    out.extend_from_slice(&nonce);
    let sealed = key
        .cipher()
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: &out,
            },
        )
        // Encryption fails only for a message longer than 2^38 bytes, never a model.
        .unwrap_or_default();
    out.extend_from_slice(&sealed);
    out
}

/// The parsed header of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub version: u8,
    pub key_id: [u8; KEY_ID_BYTES],
    pub nonce: [u8; NONCE_BYTES],
}

impl Header {
    /// Reads and checks the header (magic, length, version); the key id is checked by `open`.
    pub fn parse(container: &[u8]) -> Result<Header, ContainerError> {
        let minimum = HEADER_BYTES + TAG_BYTES;
        if container.len() >= MAGIC.len() && &container[..MAGIC.len()] != MAGIC {
            return Err(ContainerError::BadMagic);
        }
        if container.len() < minimum {
            return Err(ContainerError::Truncated {
                len: container.len(),
                minimum,
            });
        }
        let version = container[MAGIC.len()];
        if version != FORMAT_VERSION {
            return Err(ContainerError::UnknownVersion { found: version });
        }
        let mut key_id = [0u8; KEY_ID_BYTES];
        let key_id_start = MAGIC.len() + 1;
        key_id.copy_from_slice(&container[key_id_start..key_id_start + KEY_ID_BYTES]);
        let mut nonce = [0u8; NONCE_BYTES];
        nonce.copy_from_slice(&container[key_id_start + KEY_ID_BYTES..HEADER_BYTES]);
        Ok(Header {
            version,
            key_id,
            nonce,
        })
    }
}

/// Opens a container into memory. Refuses, each with its own error, a truncated container,
/// another format, an unknown version, another key, and any altered byte.
pub fn open(key: &ContainerKey, container: &[u8]) -> Result<Plaintext, ContainerError> {
    let header = Header::parse(container)?;
    if header.key_id != key.key_id() {
        return Err(ContainerError::WrongKey {
            expected: key.key_id_hex(),
            found: hex::encode(header.key_id),
        });
    }
    let (aad, sealed) = container.split_at(HEADER_BYTES);
    key.cipher()
        .decrypt(
            XNonce::from_slice(&header.nonce),
            Payload { msg: sealed, aad },
        )
        .map(|plain| Plaintext(Zeroizing::new(plain)))
        .map_err(|_| ContainerError::Corrupt)
}
