//! The phone's side: featurise, encrypt under its own secret key, decrypt the scores.

use std::sync::Arc;

use fhe::bfv::{BfvParameters, Ciphertext, Encoding, Plaintext, SecretKey};
use fhe_traits::{
    DeserializeParametrized, FheDecoder, FheDecrypter, FheEncoder, FheEncrypter, Serialize,
};

use crate::model::check_features;
use crate::params::bfv_parameters;
use crate::{PrivateError, PrivateShape};

/// Holds the phone's BFV secret key; nothing of it leaves the phone.
#[derive(Debug)]
pub struct PrivateClient {
    params: Arc<BfvParameters>,
    secret: SecretKey,
    shape: PrivateShape,
}

impl PrivateClient {
    /// A client with a fresh secret key for a model of `shape`.
    pub fn new(shape: PrivateShape) -> Result<Self, PrivateError> {
        shape.validate()?;
        let params = bfv_parameters()?;
        let secret = SecretKey::random(&params, &mut rand::rng());
        Ok(Self {
            params,
            secret,
            shape,
        })
    }

    pub fn shape(&self) -> &PrivateShape {
        &self.shape
    }

    /// Encrypts a normalised text's features (see [`PrivateShape::features`]).
    pub fn encrypt_text(&self, normalized_text: &str) -> Result<Vec<u8>, PrivateError> {
        self.encrypt_features(&self.shape.features(normalized_text))
    }

    /// Encrypts a feature vector: coefficient `i` is bucket `i`. Symmetric encryption, so the
    /// second half of the ciphertext is sent as its seed (half the bytes).
    pub fn encrypt_features(&self, features: &[i64]) -> Result<Vec<u8>, PrivateError> {
        check_features(&self.shape, features)?;
        let plaintext = Plaintext::try_encode(features, Encoding::poly(), &self.params)?;
        let ciphertext: Ciphertext = self.secret.try_encrypt(&plaintext, &mut rand::rng())?;
        Ok(ciphertext.to_bytes())
    }

    /// Decrypts the server's answer into the K integer scores.
    pub fn decrypt_scores(&self, answer: &[u8]) -> Result<Vec<i64>, PrivateError> {
        let ciphertext = Ciphertext::from_bytes(answer, &self.params)
            .map_err(|e| PrivateError::MalformedCiphertext(e.to_string()))?;
        crate::server::check_polynomials(&ciphertext, &self.params)?;
        let plaintext = self.secret.try_decrypt(&ciphertext)?;
        let coefficients = Vec::<u64>::try_decode(&plaintext, Encoding::poly())?;
        let t = self.params.plaintext();
        let d = self.shape.buckets;
        Ok((0..self.shape.classes)
            .map(|k| centre(coefficients[(k + 1) * d - 1], t))
            .collect())
    }
}

/// The signed integer of a value modulo t, in (-t/2, t/2].
fn centre(value: u64, t: u64) -> i64 {
    if value > t / 2 {
        value as i64 - t as i64
    } else {
        value as i64
    }
}
