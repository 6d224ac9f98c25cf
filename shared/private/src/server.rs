//! The cloud's side: multiply the phone's ciphertext by the model's packed plaintext weights.

use std::sync::Arc;

use fhe::bfv::{BfvParameters, Ciphertext, Encoding, Plaintext};
use fhe_traits::{DeserializeParametrized, FheEncoder, Serialize};

use crate::params::bfv_parameters;
use crate::{PrivateError, PrivateModel, PrivateShape};

/// Scores encrypted feature vectors with one model; the packed weights are encoded once.
#[derive(Debug)]
pub struct PrivateScorer {
    params: Arc<BfvParameters>,
    packed_weights: Plaintext,
    shape: PrivateShape,
}

impl PrivateScorer {
    pub fn new(model: &PrivateModel) -> Result<Self, PrivateError> {
        model.validate()?;
        let params = bfv_parameters()?;
        let packed_weights =
            Plaintext::try_encode(&pack_weights(model), Encoding::poly(), &params)?;
        Ok(Self {
            params,
            packed_weights,
            shape: model.shape,
        })
    }

    pub fn shape(&self) -> &PrivateShape {
        &self.shape
    }

    /// One plaintext-ciphertext product, then a switch down to the smallest modulus; returns the
    /// answer's bytes. Whatever bytes arrive, a bad query is an error, never a panic.
    pub fn score(&self, query: &[u8]) -> Result<Vec<u8>, PrivateError> {
        let ciphertext = Ciphertext::from_bytes(query, &self.params)
            .map_err(|e| PrivateError::MalformedCiphertext(e.to_string()))?;
        check_polynomials(&ciphertext, &self.params)?;
        if self.params.level_of_context(ciphertext[0].ctx())? != 0 {
            return Err(PrivateError::MalformedCiphertext(
                "a query must be at the top level".into(),
            ));
        }
        let mut answer = &ciphertext * &self.packed_weights;
        answer.switch_to_level(self.params.max_level())?;
        Ok(answer.to_bytes())
    }
}

/// Class `k`'s weights reversed at offset `k * D`, so its dot product lands in coefficient
/// `k * D + D - 1` (see the crate documentation).
pub fn pack_weights(model: &PrivateModel) -> Vec<i64> {
    let d = model.shape.buckets;
    let mut packed = vec![0; model.shape.classes * d];
    for k in 0..model.shape.classes {
        for (i, &w) in model.class_weights(k).iter().enumerate() {
            packed[k * d + d - 1 - i] = w;
        }
    }
    packed
}

/// A well-formed BFV ciphertext of two polynomials, both in NTT form over one context of these
/// parameters (the `fhe` deserialiser checks sizes but not this, and its arithmetic asserts it).
pub(crate) fn check_polynomials(
    ciphertext: &Ciphertext,
    params: &Arc<BfvParameters>,
) -> Result<(), PrivateError> {
    if ciphertext.len() != 2 {
        return Err(PrivateError::MalformedCiphertext(format!(
            "{} polynomials, expected 2",
            ciphertext.len()
        )));
    }
    Ciphertext::new(ciphertext.to_vec(), params)
        .map(|_| ())
        .map_err(|e| PrivateError::MalformedCiphertext(e.to_string()))
}
