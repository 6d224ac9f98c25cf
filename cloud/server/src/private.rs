//! `PrivateClassify`: scores a BFV ciphertext of a message's features with the private-mode
//! model (`cloud/models/private.json`, compiled in) and returns the encrypted class scores. The
//! server never sees text, sender or fingerprint; it logs and counts sizes and timings only.

use sha2::{Digest, Sha256};
use smsguard_private::params::PARAMETER_SET;
use smsguard_private::{PrivateError, PrivateModel, PrivateScorer};
use smsguard_proto::v1;

use crate::error::{RequestError, ServerError};

const EMBEDDED_MODEL: &str = include_str!("../../models/private.json");
/// Largest ciphertext accepted (a valid one is about 55 KB).
pub const MAX_CIPHERTEXT_BYTES: usize = 256 * 1024;

/// The private-mode model, its packed weights and its version.
#[derive(Debug)]
pub struct PrivateMode {
    scorer: PrivateScorer,
    model_version: String,
    labels: Vec<String>,
}

impl PrivateMode {
    /// The compiled-in model.
    pub fn embedded() -> Result<Self, ServerError> {
        Self::from_json(EMBEDDED_MODEL)
    }

    pub fn from_json(json: &str) -> Result<Self, ServerError> {
        let model: PrivateModel =
            serde_json::from_str(json).map_err(|e| ServerError::PrivateModel(e.to_string()))?;
        let scorer =
            PrivateScorer::new(&model).map_err(|e| ServerError::PrivateModel(e.to_string()))?;
        let digest = Sha256::digest(json.as_bytes());
        Ok(Self {
            scorer,
            model_version: hex::encode(&digest[..8]),
            labels: model.labels,
        })
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
        })
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
