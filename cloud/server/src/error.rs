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
    #[error("private-mode model: {0}")]
    PrivateModel(String),
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
    #[error("operator console: {0}")]
    Console(#[from] crate::console::ConsoleError),
    #[error(transparent)]
    State(#[from] crate::state_backend::StateError),
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
    #[error("{what} is not valid protobuf: {reason}")]
    Undecodable { what: String, reason: String },
    #[error("the request is too large: {0}")]
    TooLarge(String),
    #[error("the client's stream broke off: {0}")]
    StreamBrokeOff(String),
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
    #[error("parameter set `{asked}` is not served; this server uses `{served}`")]
    WrongParameters { asked: String, served: String },
    /// The server's configuration cannot serve this request (e.g. the state backend).
    #[error("{0}")]
    NotServed(String),
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
            | RequestError::Undecodable { .. }
            | RequestError::TooManyMessages { .. } => Code::InvalidArgument,
            RequestError::Overloaded { .. }
            | RequestError::RateLimited { .. }
            | RequestError::TooLarge(_) => Code::ResourceExhausted,
            RequestError::Unauthenticated => Code::Unauthenticated,
            RequestError::StreamBrokeOff(_) => Code::Cancelled,
            RequestError::DeadlineExceeded { .. } => Code::DeadlineExceeded,
            RequestError::Unavailable(_) => Code::Unavailable,
            RequestError::WrongParameters { .. } | RequestError::NotServed(_) => {
                Code::FailedPrecondition
            }
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

/// How tonic-prost words a body that does not decode (it answers INTERNAL).
const PROST_DECODE_FAILURE: &str = "failed to decode Protobuf message";
/// How tonic words a broken gRPC frame header or a body cut short (INTERNAL too).
const FRAMING_FAILURES: [&str; 2] = ["protocol error:", "Unexpected EOF decoding stream"];

impl RequestError {
    /// The client error behind one of tonic's own refusals of a request body, made before any
    /// handler runs: an undecodable body is INTERNAL there and an oversized one OUT_OF_RANGE,
    /// though both are the client's fault (INVALID_ARGUMENT, RESOURCE_EXHAUSTED). `None` for
    /// any other status.
    pub fn from_transport(status: &Status, what: &str) -> Option<RequestError> {
        let message = status.message();
        match status.code() {
            Code::OutOfRange => Some(RequestError::TooLarge(message.to_owned())),
            Code::Internal
                if message.starts_with(PROST_DECODE_FAILURE)
                    || FRAMING_FAILURES.iter().any(|f| message.starts_with(f)) =>
            {
                Some(RequestError::Undecodable {
                    what: what.to_owned(),
                    reason: message.to_owned(),
                })
            }
            _ => None,
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

impl From<crate::state_backend::StateError> for RequestError {
    fn from(error: crate::state_backend::StateError) -> Self {
        match error {
            // The phone keeps its report and retries; a verdict never gets here (it degrades).
            crate::state_backend::StateError::Unavailable(_) => {
                RequestError::Unavailable(error.to_string())
            }
            crate::state_backend::StateError::Unsupported { .. } => {
                RequestError::NotServed(error.to_string())
            }
            _ => RequestError::Internal(error.to_string()),
        }
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
    use smsguard_proto::v1;

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

    #[test]
    fn tonics_own_body_refusals_become_client_errors_and_other_statuses_stay() {
        // The very statuses tonic-prost and tonic produce, so an upgrade that rewords them
        // fails here rather than paging someone.
        let undecodable = <v1::SmsMessage as prost::Message>::decode(&[0x0a, 0xc8, 0x01][..])
            .expect_err("truncated");
        let decode_status = Status::internal(undecodable.to_string());
        let mapped = RequestError::from_transport(&decode_status, "the Classify request")
            .expect("a client error");
        assert_eq!(mapped.code(), Code::InvalidArgument);
        assert!(mapped
            .to_string()
            .starts_with("the Classify request is not valid protobuf"));
        let oversized = Status::out_of_range(
            "Error, decoded message length too large: found 600000 bytes, the limit is: 524288 bytes",
        );
        let mapped = RequestError::from_transport(&oversized, "x").expect("a client error");
        assert_eq!(mapped.code(), Code::ResourceExhausted);
        let eof = Status::internal("Unexpected EOF decoding stream.");
        assert!(RequestError::from_transport(&eof, "x").is_some());
        let ours = Status::internal("internal error: sync log: io");
        assert_eq!(RequestError::from_transport(&ours, "x"), None);
        assert_eq!(
            RequestError::from_transport(&Status::unavailable("x"), "x"),
            None
        );
    }
}
