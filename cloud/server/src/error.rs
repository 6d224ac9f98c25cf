//! The one place where errors become gRPC statuses, and the server's own error type.
//!
//! Reasons name fields, lengths and limits; none quotes message text or a sender.

use tonic::{Code, Status};

use crate::config::ConfigError;

/// Errors of starting or stopping the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot load the cloud scorer: {0}")]
    Scorer(#[from] smsguard_scoring::CloudError),
    #[error("sync log: {0}")]
    SyncLog(#[from] sled::Error),
    #[error("edge model package: {0}")]
    ModelPackage(String),
    #[error("signing key {path}: {message}")]
    SigningKey {
        path: std::path::PathBuf,
        message: String,
    },
    #[error("TLS: {0}")]
    Tls(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("gRPC transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("a server task failed: {0}")]
    Task(String),
    #[error("store flush failed: {0}")]
    Flush(String),
}

/// Why one request (or one message of a stream frame) is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RequestError {
    #[error("{field} is required")]
    Missing { field: &'static str },
    #[error("{field} is empty")]
    Empty { field: &'static str },
    #[error("{field} is {len} UTF-8 bytes; the limit is {max}")]
    TooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("{field}: unknown enum value {value}")]
    InvalidEnum { field: &'static str, value: i32 },
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("the frame has {count} messages; the limit is {max} per frame")]
    TooManyMessages { count: usize, max: usize },
    #[error("the server is at its limit of {limit} requests in flight; retry later")]
    Overloaded { limit: usize },
    #[error("rate limit of API key `{key_id}` exceeded")]
    RateLimited { key_id: String },
    #[error("missing or unknown API key")]
    Unauthenticated,
    #[error("the deadline of {millis} ms was exceeded")]
    DeadlineExceeded { millis: u64 },
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl RequestError {
    pub fn code(&self) -> Code {
        match self {
            RequestError::Missing { .. }
            | RequestError::Empty { .. }
            | RequestError::TooLong { .. }
            | RequestError::InvalidEnum { .. }
            | RequestError::Invalid { .. }
            | RequestError::TooManyMessages { .. } => Code::InvalidArgument,
            RequestError::Overloaded { .. } | RequestError::RateLimited { .. } => {
                Code::ResourceExhausted
            }
            RequestError::Unauthenticated => Code::Unauthenticated,
            RequestError::DeadlineExceeded { .. } => Code::DeadlineExceeded,
            RequestError::Unavailable(_) => Code::Unavailable,
            RequestError::Internal(_) => Code::Internal,
        }
    }

    /// The per-message error of a `ClassifyStream` answer.
    pub fn to_message_error(&self) -> smsguard_proto::v1::MessageError {
        smsguard_proto::v1::MessageError {
            code: self.code() as i32,
            reason: self.to_string(),
        }
    }
}

impl From<RequestError> for Status {
    fn from(error: RequestError) -> Status {
        Status::new(error.code(), error.to_string())
    }
}

impl From<smsguard_scoring::similarity::SimilarityError> for RequestError {
    fn from(error: smsguard_scoring::similarity::SimilarityError) -> Self {
        RequestError::Internal(format!("similarity memory: {error}"))
    }
}

impl From<sled::Error> for RequestError {
    fn from(error: sled::Error) -> Self {
        RequestError::Internal(format!("sync log: {error}"))
    }
}

impl From<tokio::task::JoinError> for RequestError {
    fn from(error: tokio::task::JoinError) -> Self {
        RequestError::Internal(format!("scoring task failed: {error}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_requests_are_invalid_argument_and_overload_is_resource_exhausted() {
        let status: Status = RequestError::TooLong {
            field: "message.body",
            len: 3000,
            max: 2048,
        }
        .into();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains("2048"));
        let overload: Status = RequestError::Overloaded { limit: 4 }.into();
        assert_eq!(overload.code(), Code::ResourceExhausted);
        let auth: Status = RequestError::Unauthenticated.into();
        assert_eq!(auth.code(), Code::Unauthenticated);
    }
}
