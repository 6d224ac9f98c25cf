//! The shipped model as compiled in: a `smsguard-container` sealed at build time (see build.rs)
//! and the key to open it, stored as two halves that only this module puts back together.
//!
//! Obfuscation, not secrecy: whoever reads this library can rebuild the key. What it stops is
//! copying a usable `.onnx` file (or byte run) out of an unpacked app; it does not stop a
//! debugger or a memory dump while the model loads (see README, "Model protection").

use smsguard_container::{ContainerKey, KEY_BYTES};

#[cfg(smsguard_embedded_model)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/embedded_key.rs"));
    pub(super) const CONTAINER: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/edge-int8.smgc"));
    pub(super) const VOCAB_JSON: &str = include_str!("../../../edge/models/vocab.json");

    pub(super) fn key_halves() -> ([u8; super::KEY_BYTES], [u8; super::KEY_BYTES]) {
        (KEY_MASK, KEY_MASKED)
    }
}

/// The sealed model, its vocabulary and the SHA-256 of the plaintext model; `None` in a build
/// without a shipped model.
pub(crate) struct Embedded {
    pub container: &'static [u8],
    pub vocab_json: &'static str,
    pub model_sha256: &'static str,
}

#[cfg(smsguard_embedded_model)]
pub(crate) const EMBEDDED: Option<Embedded> = Some(Embedded {
    container: generated::CONTAINER,
    vocab_json: generated::VOCAB_JSON,
    model_sha256: generated::MODEL_SHA256,
});
#[cfg(not(smsguard_embedded_model))]
pub(crate) const EMBEDDED: Option<Embedded> = None;

/// The embedded container's key, rebuilt from its halves. `black_box` keeps the compiler from
/// folding the halves into the plain key at build time.
#[cfg(smsguard_embedded_model)]
pub(crate) fn container_key() -> ContainerKey {
    use zeroize::Zeroize;
    let (mask, masked) = std::hint::black_box(generated::key_halves());
    let mut key = [0u8; KEY_BYTES];
    for ((out, m), k) in key.iter_mut().zip(mask).zip(masked) {
        *out = m ^ k;
    }
    let built = ContainerKey::from_bytes(key);
    key.zeroize();
    built
}

#[cfg(not(smsguard_embedded_model))]
pub(crate) fn container_key() -> ContainerKey {
    ContainerKey::from_bytes([0; KEY_BYTES])
}
