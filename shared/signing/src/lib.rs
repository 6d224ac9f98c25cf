//! Detached Ed25519 signatures over an edge model package, so a phone installs only a model the
//! operator signed. The cloud signs (`smsguard-cloud keygen` makes the pair; the private key is
//! never committed); the edge verifies against a public key pinned in its configuration.
//!
//! What is signed is [`canonical_message`]: a domain tag, then the manifest JSON, the model bytes
//! and the vocabulary bytes, each preceded by its length as a big-endian u64. Length prefixes make
//! the split unambiguous (bytes cannot move from the model into the vocabulary unnoticed), and the
//! tag keeps a signature from being valid in any other protocol. Keys travel as lowercase hex
//! (32 bytes each); a key id is the hex of the first 8 bytes of the public key's SHA-256.
//!
//! This crate does no I/O: callers read and write key files.

use ed25519_dalek::Signer;
use sha2::{Digest, Sha256};

/// Domain separation tag, first bytes of every signed message.
pub const DOMAIN_TAG: &[u8] = b"smsguard-model-package-v1\0";
/// Domain tag of a signed private-mode fusion head: the same key signs the edge model and the
/// head the phone fuses private scores with, and neither signature is valid for the other.
pub const PRIVATE_HEAD_TAG: &[u8] = b"smsguard-private-head-v1\0";

/// The exact bytes signed for a private-mode fusion head: the tag, the head JSON's length as a
/// big-endian u64, the head JSON.
pub fn private_head_message(head_json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(PRIVATE_HEAD_TAG.len() + 8 + head_json.len());
    out.extend_from_slice(PRIVATE_HEAD_TAG);
    out.extend_from_slice(&(head_json.len() as u64).to_be_bytes());
    out.extend_from_slice(head_json);
    out
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SigningError {
    #[error("key is not {expected} bytes of hex ({reason})")]
    BadKey {
        expected: usize,
        reason: &'static str,
    },
    #[error("signature is {0} bytes, expected 64")]
    BadSignatureLength(usize),
    #[error("signature does not verify against key {key_id}")]
    Invalid { key_id: String },
    #[error("model sha256 in the manifest does not match the model bytes")]
    DigestMismatch,
    #[error("the operating system gave no randomness: {0}")]
    Randomness(String),
}

/// The three parts of a package as the cloud serves them.
#[derive(Debug, Clone, Copy)]
pub struct PackageParts<'a> {
    pub manifest_json: &'a [u8],
    pub model: &'a [u8],
    pub vocabulary: &'a [u8],
}

/// The exact bytes that are signed (see the crate docs).
pub fn canonical_message(parts: PackageParts<'_>) -> Vec<u8> {
    let len = DOMAIN_TAG.len() + 24 + parts.manifest_json.len() + parts.model.len();
    let mut out = Vec::with_capacity(len + parts.vocabulary.len());
    out.extend_from_slice(DOMAIN_TAG);
    for part in [parts.manifest_json, parts.model, parts.vocabulary] {
        out.extend_from_slice(&(part.len() as u64).to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

/// Lowercase hex SHA-256 of `bytes` (the form the manifest records).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A private signing key. Its `Debug` never shows the key.
pub struct SigningKey(ed25519_dalek::SigningKey);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey(key_id={})", self.verifying_key().key_id())
    }
}

impl SigningKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Result<Self, SigningError> {
        let mut seed = [0u8; 32];
        getrandom::getrandom(&mut seed).map_err(|e| SigningError::Randomness(e.to_string()))?;
        Ok(SigningKey(ed25519_dalek::SigningKey::from_bytes(&seed)))
    }

    pub fn from_hex(text: &str) -> Result<Self, SigningError> {
        Ok(SigningKey(ed25519_dalek::SigningKey::from_bytes(
            &decode_32(text)?,
        )))
    }

    /// The secret as hex, for writing the key file (mode 0600 is the caller's job).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0.to_bytes())
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey(self.0.verifying_key())
    }

    /// Signs a package; returns the 64-byte detached signature.
    pub fn sign(&self, parts: PackageParts<'_>) -> Vec<u8> {
        self.0.sign(&canonical_message(parts)).to_bytes().to_vec()
    }

    /// Signs a private-mode fusion head ([`private_head_message`]).
    pub fn sign_private_head(&self, head_json: &[u8]) -> Vec<u8> {
        self.0
            .sign(&private_head_message(head_json))
            .to_bytes()
            .to_vec()
    }
}

/// A public key, pinned on the edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyingKey(ed25519_dalek::VerifyingKey);

impl VerifyingKey {
    pub fn from_hex(text: &str) -> Result<Self, SigningError> {
        ed25519_dalek::VerifyingKey::from_bytes(&decode_32(text)?)
            .map(VerifyingKey)
            .map_err(|_| SigningError::BadKey {
                expected: 32,
                reason: "not a valid Ed25519 point",
            })
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0.to_bytes())
    }

    /// Hex of the first 8 bytes of SHA-256 of the key (what `GetModelResponse.key_id` carries).
    pub fn key_id(&self) -> String {
        hex::encode(&Sha256::digest(self.0.to_bytes())[..8])
    }

    /// Checks a detached signature over `parts` (strict verification: no malleable signatures).
    pub fn verify(&self, parts: PackageParts<'_>, signature: &[u8]) -> Result<(), SigningError> {
        self.verify_message(&canonical_message(parts), signature)
    }

    /// Checks a private-mode fusion head's detached signature ([`private_head_message`]).
    pub fn verify_private_head(
        &self,
        head_json: &[u8],
        signature: &[u8],
    ) -> Result<(), SigningError> {
        self.verify_message(&private_head_message(head_json), signature)
    }

    fn verify_message(&self, message: &[u8], signature: &[u8]) -> Result<(), SigningError> {
        let bytes: [u8; 64] = signature
            .try_into()
            .map_err(|_| SigningError::BadSignatureLength(signature.len()))?;
        let signature = ed25519_dalek::Signature::from_bytes(&bytes);
        self.0
            .verify_strict(message, &signature)
            .map_err(|_| SigningError::Invalid {
                key_id: self.key_id(),
            })
    }

    /// [`VerifyingKey::verify`] plus a check that `expected_model_sha256` (from the manifest)
    /// is the digest of the model bytes, so a manifest never describes another model.
    pub fn verify_package(
        &self,
        parts: PackageParts<'_>,
        expected_model_sha256: &str,
        signature: &[u8],
    ) -> Result<(), SigningError> {
        self.verify(parts, signature)?;
        // Exactly the lower-case form `sha256_hex` writes: the digest is not covered by the
        // signature and the edge records it with the installed model, so only the canonical
        // spelling of the real digest may pass (the fuzzer found "566D..." accepted).
        if sha256_hex(parts.model) != expected_model_sha256 {
            return Err(SigningError::DigestMismatch);
        }
        Ok(())
    }
}

fn decode_32(text: &str) -> Result<[u8; 32], SigningError> {
    let bytes = hex::decode(text.trim()).map_err(|_| SigningError::BadKey {
        expected: 32,
        reason: "not hex",
    })?;
    bytes.try_into().map_err(|_| SigningError::BadKey {
        expected: 32,
        reason: "wrong length",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts<'a>(model: &'a [u8], vocab: &'a [u8]) -> PackageParts<'a> {
        PackageParts {
            manifest_json: br#"{"version":"t"}"#,
            model,
            vocabulary: vocab,
        }
    }

    #[test]
    fn a_signed_package_verifies_and_any_change_breaks_it() {
        let key = SigningKey::generate().unwrap();
        let public = key.verifying_key();
        let signature = key.sign(parts(b"model", b"vocab"));
        public
            .verify(parts(b"model", b"vocab"), &signature)
            .unwrap();
        for (model, vocab) in [
            (&b"modeL"[..], &b"vocab"[..]),
            (b"mode", b"lvocab"),
            (b"model", b""),
        ] {
            assert!(matches!(
                public.verify(parts(model, vocab), &signature),
                Err(SigningError::Invalid { .. })
            ));
        }
        let mut flipped = signature.clone();
        flipped[10] ^= 1;
        assert!(public.verify(parts(b"model", b"vocab"), &flipped).is_err());
        assert_eq!(
            public.verify(parts(b"model", b"vocab"), &signature[..63]),
            Err(SigningError::BadSignatureLength(63))
        );
    }

    #[test]
    fn a_signed_head_verifies_and_no_package_signature_passes_for_it() {
        let key = SigningKey::generate().unwrap();
        let public = key.verifying_key();
        let head = br#"{"version":"h1","markets":{}}"#;
        let signature = key.sign_private_head(head);
        assert_eq!(public.verify_private_head(head, &signature), Ok(()));
        let mut changed = head.to_vec();
        changed.push(b' ');
        assert!(public.verify_private_head(&changed, &signature).is_err());
        assert!(public.verify_private_head(head, &signature[..63]).is_err());
        let other = SigningKey::generate().unwrap().verifying_key();
        assert!(other.verify_private_head(head, &signature).is_err());
        // Domain separation: a package signature over the same bytes is not a head signature,
        // nor the other way round.
        let as_package = parts(head, b"");
        let package_signature = key.sign(as_package);
        assert!(public
            .verify_private_head(head, &package_signature)
            .is_err());
        assert!(public.verify(as_package, &signature).is_err());
    }

    #[test]
    fn another_key_does_not_verify() {
        let signer = SigningKey::generate().unwrap();
        let other = SigningKey::generate().unwrap().verifying_key();
        let signature = signer.sign(parts(b"m", b"v"));
        assert!(other.verify(parts(b"m", b"v"), &signature).is_err());
        assert_ne!(other.key_id(), signer.verifying_key().key_id());
    }

    #[test]
    fn keys_round_trip_through_hex_and_bad_hex_is_refused() {
        let key = SigningKey::generate().unwrap();
        let again = SigningKey::from_hex(&key.to_hex()).unwrap();
        assert_eq!(again.verifying_key(), key.verifying_key());
        let public = VerifyingKey::from_hex(&key.verifying_key().to_hex()).unwrap();
        assert_eq!(public.key_id().len(), 16);
        assert!(VerifyingKey::from_hex("zz").is_err());
        assert!(SigningKey::from_hex(&"ab".repeat(31)).is_err());
        assert!(!format!("{key:?}").contains(&key.to_hex()));
    }

    #[test]
    fn manifest_digest_must_match_the_model() {
        let key = SigningKey::generate().unwrap();
        let parts = parts(b"model", b"vocab");
        let signature = key.sign(parts);
        let public = key.verifying_key();
        public
            .verify_package(parts, &sha256_hex(b"model"), &signature)
            .unwrap();
        assert_eq!(
            public.verify_package(parts, &sha256_hex(b"other"), &signature),
            Err(SigningError::DigestMismatch)
        );
    }

    #[test]
    fn only_the_canonical_lower_case_digest_is_accepted() {
        let key = SigningKey::generate().unwrap();
        let parts = parts(b"model", b"vocab");
        let signature = key.sign(parts);
        let upper = sha256_hex(b"model").to_uppercase();
        assert_eq!(
            key.verifying_key()
                .verify_package(parts, &upper, &signature),
            Err(SigningError::DigestMismatch)
        );
    }
}
