//! The one error type of private classification.

/// Why a private-mode operation failed. Never carries message text.
#[derive(Debug, thiserror::Error)]
pub enum PrivateError {
    /// The ciphertext bytes are not a ciphertext of this crate's parameter set.
    #[error("malformed ciphertext: {0}")]
    MalformedCiphertext(String),
    /// The model does not fit the parameter set or its own shape.
    #[error("invalid private model: {0}")]
    InvalidModel(String),
    /// The feature vector does not match the model's shape.
    #[error("feature vector has {actual} buckets, the model expects {expected}")]
    FeatureShape { expected: usize, actual: usize },
    /// A homomorphic operation failed (the `fhe` crate's reason).
    #[error("homomorphic encryption error: {0}")]
    Fhe(String),
}

impl From<fhe::Error> for PrivateError {
    fn from(error: fhe::Error) -> Self {
        Self::Fhe(error.to_string())
    }
}
