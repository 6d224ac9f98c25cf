//! The one error type of the bridge. Messages name the argument or the operation, never message
//! text or phone numbers, because they reach Java exceptions and C callers' logs.

use thiserror::Error;

/// Everything a bridge call can fail with; mapped to `SmsGuardException` (JNI) or
/// [`crate::c_api::SmsGuardStatus`] (C).
#[derive(Debug, Error)]
pub enum BridgeError {
    /// A required argument was null (Java `null`, C `NULL`).
    #[error("argument `{0}` must not be null")]
    NullArgument(&'static str),
    /// An argument was present but unusable (bad config JSON, negative id, non-UTF-8 path).
    #[error("invalid argument `{name}`: {why}")]
    InvalidArgument { name: &'static str, why: String },
    /// The handle was never issued or has been closed.
    #[error("engine handle {0} is closed or was never opened")]
    ClosedHandle(u64),
    /// The engine refused or failed the operation.
    #[error("engine error: {0}")]
    Engine(#[from] smsguard_edge::engine::EngineError),
    /// A result could not be turned into JSON.
    #[error("could not serialise the result: {0}")]
    Serialise(#[from] serde_json::Error),
    /// A JNI call failed (usually because a Java exception, e.g. OutOfMemoryError, is pending).
    #[error("JNI call failed: {0}")]
    Jni(#[from] jni::errors::Error),
    /// The host's `KeyProvider` threw (its exception is cleared and named here).
    #[error("the KeyProvider failed: {0}")]
    KeyProvider(String),
    /// Rust code panicked inside the call; the panic was caught at the boundary.
    #[error("internal panic in `{0}` (caught by the bridge)")]
    Panic(&'static str),
}

impl BridgeError {
    pub(crate) fn invalid(name: &'static str, why: impl Into<String>) -> Self {
        Self::InvalidArgument {
            name,
            why: why.into(),
        }
    }
}

/// Result alias of the bridge.
pub type BridgeResult<T> = Result<T, BridgeError>;
