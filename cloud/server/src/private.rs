//! `PrivateClassify`: scores a BFV ciphertext of a message's features with the private-mode
//! model (`cloud/models/private.json`, compiled in) and returns the encrypted class scores. The
//! server never sees text, sender or fingerprint; it logs and counts sizes and timings only.
//! Every answer carries the fusion head fitted for this model (`cloud/models/private_head.json`,
//! `smsguard-train fit-private-head`): the phone fuses with the head of the model that scored.
//! `PrivateParams` publishes the same (parameter set, shape, model version, head) up front.
//! The head is signed with the key that signs the edge model package ([`PrivateMode::signed_by`]),
//! so a phone that pins that key fuses only with a head the operator published.

use sha2::{Digest, Sha256};
use smsguard_private::params::{self, PARAMETER_SET};
use smsguard_private::{PrivateError, PrivateHead, PrivateModel, PrivateScorer};
use smsguard_proto::v1;
use smsguard_signing::SigningKey;

use crate::error::{RequestError, ServerError};

const EMBEDDED_MODEL: &str = include_str!("../../models/private.json");
const EMBEDDED_HEAD: &str = include_str!("../../models/private_head.json");
/// Largest ciphertext accepted (a valid one is about 55 KB).
pub const MAX_CIPHERTEXT_BYTES: usize = 256 * 1024;

/// The private-mode model, its packed weights and its version.
#[derive(Debug)]
pub struct PrivateMode {
    scorer: PrivateScorer,
    model_version: String,
    labels: Vec<String>,
    /// The fusion head's JSON, as published.
    head: String,
    /// Its signature by the model signing key, and that key's id (empty until signed).
    head_signature: Vec<u8>,
    key_id: String,
}

impl PrivateMode {
    /// The compiled-in model.
    pub fn embedded() -> Result<Self, ServerError> {
        Self::from_json(EMBEDDED_MODEL, EMBEDDED_HEAD)
    }

    /// A model and its fusion head; the head must have been fitted for this model.
    pub fn from_json(json: &str, head_json: &str) -> Result<Self, ServerError> {
        let model: PrivateModel =
            serde_json::from_str(json).map_err(|e| ServerError::PrivateModel(e.to_string()))?;
        let scorer =
            PrivateScorer::new(&model).map_err(|e| ServerError::PrivateModel(e.to_string()))?;
        let digest = Sha256::digest(json.as_bytes());
        let model_version = hex::encode(&digest[..8]);
        let head: PrivateHead = serde_json::from_str(head_json)
            .map_err(|e| ServerError::PrivateModel(format!("fusion head: {e}")))?;
        head.validate()
            .map_err(|e| ServerError::PrivateModel(e.to_string()))?;
        if head.model_version != model_version || !model.labels.contains(&head.ham_label) {
            return Err(ServerError::PrivateModel(format!(
                "fusion head {} was fitted for private model {}, not {model_version}",
                head.version, head.model_version
            )));
        }
        Ok(Self {
            scorer,
            model_version,
            labels: model.labels,
            head: serde_json::to_string(&head)
                .map_err(|e| ServerError::PrivateModel(e.to_string()))?,
            head_signature: Vec::new(),
            key_id: String::new(),
        })
    }

    /// Signs the fusion head with the key that signs the edge model package.
    pub fn signed_by(mut self, key: &SigningKey) -> Self {
        self.head_signature = key.sign_private_head(self.head.as_bytes());
        self.key_id = key.verifying_key().key_id();
        self
    }

    /// One encrypted scoring (CPU-bound: run it in a blocking thread).
    pub fn answer(
        &self,
        request: &v1::PrivateClassifyRequest,
    ) -> Result<v1::PrivateClassifyResponse, RequestError> {
        if request.parameter_set != PARAMETER_SET {
            return Err(RequestError::WrongParameters {
                asked: request.parameter_set.chars().take(64).collect(),
                served: PARAMETER_SET.to_string(),
            });
        }
        if request.features.len() > MAX_CIPHERTEXT_BYTES {
            return Err(RequestError::TooLong {
                field: "features",
                len: request.features.len(),
                max: MAX_CIPHERTEXT_BYTES,
            });
        }
        let scores = self.scorer.score(&request.features).map_err(invalid)?;
        let shape = self.scorer.shape();
        Ok(v1::PrivateClassifyResponse {
            scores,
            parameter_set: PARAMETER_SET.to_string(),
            model_version: self.model_version.clone(),
            classes: shape.classes as u32,
            buckets: shape.buckets as u32,
            labels: self.labels.clone(),
            fusion_head: self.head.clone(),
            fusion_head_signature: self.head_signature.clone(),
            key_id: self.key_id.clone(),
        })
    }
}

impl PrivateMode {
    /// The parameters, shape, model and head the phone fetches before its first query
    /// (`PrivateParams`); the similarity fields are the caller's.
    pub fn params(&self) -> v1::PrivateParamsResponse {
        let shape = self.scorer.shape();
        v1::PrivateParamsResponse {
            parameter_set: PARAMETER_SET.to_string(),
            polynomial_degree: params::DEGREE as u32,
            ciphertext_moduli_bits: params::MODULI_BITS.iter().map(|&b| b as u32).collect(),
            plaintext_modulus: params::PLAINTEXT_MODULUS,
            classes: shape.classes as u32,
            buckets: shape.buckets as u32,
            max_ngram: shape.max_n as u32,
            max_chars: shape.max_chars as u32,
            max_feature: params::MAX_FEATURE as u32,
            model_version: self.model_version.clone(),
            labels: self.labels.clone(),
            fusion_head: self.head.clone(),
            fusion_head_signature: self.head_signature.clone(),
            key_id: self.key_id.clone(),
            ..Default::default()
        }
    }
}

fn invalid(error: PrivateError) -> RequestError {
    match error {
        PrivateError::MalformedCiphertext(reason) => RequestError::Invalid {
            field: "features",
            reason: format!("malformed ciphertext: {reason}"),
        },
        other => RequestError::Internal(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_model_and_head_load_together() {
        assert!(PrivateMode::embedded().is_ok());
    }

    #[test]
    fn a_head_fitted_for_another_model_or_invalid_is_refused() {
        let mut head: PrivateHead = serde_json::from_str(EMBEDDED_HEAD).unwrap();
        head.model_version = "0123456789abcdef".into();
        let other = serde_json::to_string(&head).unwrap();
        assert!(PrivateMode::from_json(EMBEDDED_MODEL, &other).is_err());
        head = serde_json::from_str(EMBEDDED_HEAD).unwrap();
        head.margin_scale = -1.0;
        let invalid = serde_json::to_string(&head).unwrap();
        assert!(PrivateMode::from_json(EMBEDDED_MODEL, &invalid).is_err());
        assert!(PrivateMode::from_json(EMBEDDED_MODEL, "{}").is_err());
    }
}
