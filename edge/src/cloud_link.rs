//! The edge's link to the cloud service: a thin tonic client over protocol v1. Owner: edge-cloud-link.
//!
//! Every call carries the API key (`authorization: Bearer <key>`) and a deadline, applied twice:
//! as `grpc-timeout` so the server can give up early, and as a local timer so a stalled network
//! never holds the caller longer than the deadline. Failures come back as [`CloudLinkError`];
//! [`CloudLinkError::is_retryable`] tells the engine whether to queue the message for re-check.
//!
//! The channel connects lazily, on first use, inside the tokio runtime of that first call (so
//! [`CloudClient::new`] works outside a runtime). Nothing here logs or formats message text.

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use smsguard_proto::v1::sms_guard_client::SmsGuardClient;
use smsguard_proto::v1::{
    ClassifyBatch, ClassifyRequest, ClassifyResult, GetModelRequest, GetModelResponse,
    ReportRequest, ReportResponse, SmsMessage, SyncCacheRequest, SyncCacheResponse, Verdict,
};
use smsguard_signing::{PackageParts, VerifyingKey};
use tokio_stream::StreamExt;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Request, Status};

/// Most messages in one `ClassifyStream` frame (the server's documented `max_batch_messages`).
pub const MAX_FRAME_MESSAGES: usize = 64;

/// Default deadline of an interactive `Classify` call.
pub const DEFAULT_DEADLINE: Duration = Duration::from_millis(300);

/// Background calls (batches, sync, model download) get this many interactive deadlines...
const BULK_DEADLINE_FACTOR: u32 = 20;
/// ...but never less than this, so a short interactive deadline does not starve a model download.
const MIN_BULK_DEADLINE: Duration = Duration::from_secs(5);

/// Largest response accepted (a model package is a few hundred KB; leave ample room).
const MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;

/// Server reasons are echoed into errors; cap them so a misbehaving server cannot flood logs.
const MAX_REASON_CHARS: usize = 200;

/// Where and how to reach the cloud.
/// Serde form (for the CLI and the JNI bridge): `deadline` travels as `deadline_ms`, and any
/// missing field takes its default.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct CloudConfig {
    /// `http://host:port` (plaintext, local use) or `https://host:port` (TLS, needs `ca_cert_pem`).
    pub url: String,
    /// Per-device API key, sent as `authorization: Bearer <key>`.
    pub api_key: Option<String>,
    /// Deadline of an interactive `Classify` call.
    #[serde(rename = "deadline_ms", with = "duration_as_millis")]
    pub deadline: Duration,
    /// PEM of the CA that signed the server's certificate (no system roots are built in).
    /// Travels as text in serde form.
    #[serde(with = "pem_as_text")]
    pub ca_cert_pem: Option<Vec<u8>>,
    /// Opaque per-install id put into every request that has a device field.
    pub device_id: String,
    /// The device's X25519 public key, sent with `GetModel` so the package comes sealed to this
    /// device; set by the engine from its `device_key`, never read from configuration.
    #[serde(skip)]
    pub device_public_key: Option<[u8; 32]>,
}

impl Default for CloudConfig {
    fn default() -> Self {
        CloudConfig {
            url: "http://127.0.0.1:50051".to_owned(),
            api_key: None,
            deadline: DEFAULT_DEADLINE,
            ca_cert_pem: None,
            device_id: String::new(),
            device_public_key: None,
        }
    }
}

mod private;

mod duration_as_millis {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(value.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        <u64 as serde::Deserialize>::deserialize(d).map(Duration::from_millis)
    }
}

mod pem_as_text {
    use serde::{de::Error as _, ser::Error as _, Deserialize};

    pub fn serialize<S: serde::Serializer>(
        value: &Option<Vec<u8>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            None => s.serialize_none(),
            Some(bytes) => {
                let text = std::str::from_utf8(bytes)
                    .map_err(|_| S::Error::custom("ca_cert_pem is not UTF-8 text"))?;
                s.serialize_some(text)
            }
        }
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<u8>>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        match text {
            Some(text) if text.trim().is_empty() => Err(D::Error::custom("ca_cert_pem is empty")),
            other => Ok(other.map(String::into_bytes)),
        }
    }
}

/// Hand-written so the API key never appears in logs.
impl std::fmt::Debug for CloudConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudConfig")
            .field("url", &self.url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("deadline", &self.deadline)
            .field("ca_cert_pem", &self.ca_cert_pem.as_ref().map(Vec::len))
            .field("device_id", &self.device_id)
            .finish()
    }
}

/// Why a cloud call did not produce an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloudLinkError {
    #[error("cloud configuration is invalid: {0}")]
    Config(String),
    #[error("cloud deadline exceeded")]
    DeadlineExceeded,
    #[error("cloud unavailable: {reason}")]
    Unavailable { reason: String },
    #[error("cloud overloaded or rate limited: {reason}")]
    ResourceExhausted { reason: String },
    #[error("cloud rejected the request ({code:?}): {reason}")]
    Rejected { code: Code, reason: String },
    #[error("cloud answer is malformed: {0}")]
    BadResponse(String),
    #[error("model package signature check failed: {0}")]
    Signature(String),
}

impl CloudLinkError {
    /// True when the same request may succeed later (network, deadline, overload, server fault):
    /// the engine keeps its local verdict and queues the message for re-check.
    pub fn is_retryable(&self) -> bool {
        match self {
            CloudLinkError::DeadlineExceeded
            | CloudLinkError::Unavailable { .. }
            | CloudLinkError::ResourceExhausted { .. } => true,
            CloudLinkError::Rejected { code, .. } => matches!(code, Code::Internal),
            CloudLinkError::Config(_)
            | CloudLinkError::BadResponse(_)
            | CloudLinkError::Signature(_) => false,
        }
    }

    /// True when the cloud refused this message itself (too long, malformed: INVALID_ARGUMENT,
    /// OUT_OF_RANGE): asking again cannot help, and the refusal says nothing about whether the
    /// message is spam, so the local verdict must stand.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            CloudLinkError::Rejected {
                code: Code::InvalidArgument | Code::OutOfRange,
                ..
            }
        )
    }

    /// The one place that maps a gRPC status to a link error.
    pub fn from_status(status: &Status) -> Self {
        let reason = truncate_reason(status.message());
        match status.code() {
            Code::DeadlineExceeded => CloudLinkError::DeadlineExceeded,
            // tonic's own grpc-timeout timer reports an expired deadline as CANCELLED.
            Code::Cancelled if is_client_timeout(status) => CloudLinkError::DeadlineExceeded,
            // Connection refused/reset surfaces as Unavailable or Unknown; a stream cut by a
            // dying server as Cancelled or Aborted. All mean "try again later".
            Code::Unavailable | Code::Unknown | Code::Cancelled | Code::Aborted => {
                CloudLinkError::Unavailable { reason }
            }
            Code::ResourceExhausted => CloudLinkError::ResourceExhausted { reason },
            code => CloudLinkError::Rejected { code, reason },
        }
    }
}

impl From<Status> for CloudLinkError {
    fn from(status: Status) -> Self {
        CloudLinkError::from_status(&status)
    }
}

fn is_client_timeout(status: &Status) -> bool {
    status.message() == tonic::TimeoutExpired(()).to_string()
}

fn truncate_reason(message: &str) -> String {
    message.chars().take(MAX_REASON_CHARS).collect()
}

/// A cheap-to-clone handle on one lazily connected channel to the cloud.
#[derive(Clone)]
pub struct CloudClient {
    inner: Arc<ClientInner>,
}

struct ClientInner {
    endpoint: Endpoint,
    channel: OnceLock<Channel>,
    authorization: Option<AsciiMetadataValue>,
    deadline: Duration,
    bulk_deadline: Duration,
    device_id: String,
    device_public_key: Vec<u8>,
}

impl std::fmt::Debug for CloudClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudClient")
            .field("uri", self.inner.endpoint.uri())
            .field("deadline", &self.inner.deadline)
            .field("has_api_key", &self.inner.authorization.is_some())
            .finish()
    }
}

impl CloudClient {
    /// Validates the configuration; connects nothing yet.
    pub fn new(config: &CloudConfig) -> Result<Self, CloudLinkError> {
        if config.deadline.is_zero() {
            return Err(CloudLinkError::Config("deadline must be positive".into()));
        }
        let endpoint = build_endpoint(config)?;
        let authorization = config.api_key.as_deref().map(bearer_value).transpose()?;
        let bulk_deadline = (config.deadline * BULK_DEADLINE_FACTOR).max(MIN_BULK_DEADLINE);
        Ok(CloudClient {
            inner: Arc::new(ClientInner {
                endpoint,
                channel: OnceLock::new(),
                authorization,
                deadline: config.deadline,
                bulk_deadline,
                device_id: config.device_id.clone(),
                device_public_key: config.device_public_key.map_or_else(Vec::new, Vec::from),
            }),
        })
    }

    /// The interactive deadline this client applies to `classify`.
    pub fn deadline(&self) -> Duration {
        self.inner.deadline
    }

    /// Fused verdict for one message, within the interactive deadline.
    pub async fn classify(&self, mut msg: SmsMessage) -> Result<Verdict, CloudLinkError> {
        self.fill_device_id(&mut msg.device_id);
        let deadline = self.inner.deadline;
        let request = self.request(ClassifyRequest { message: Some(msg) }, deadline);
        let mut client = self.grpc();
        let response = with_deadline(deadline, client.classify(request)).await?;
        response
            .verdict
            .ok_or_else(|| CloudLinkError::BadResponse("ClassifyResponse without a verdict".into()))
    }

    /// Classifies many messages over one `ClassifyStream`, in frames of at most
    /// [`MAX_FRAME_MESSAGES`]; returns one result per message, in input order. A per-message
    /// failure is a `ClassifyResult` with an error outcome, not an `Err`.
    pub async fn classify_batch(
        &self,
        mut msgs: Vec<SmsMessage>,
    ) -> Result<Vec<ClassifyResult>, CloudLinkError> {
        if msgs.is_empty() {
            return Ok(Vec::new());
        }
        for msg in &mut msgs {
            self.fill_device_id(&mut msg.device_id);
        }
        let batches = split_into_frames(msgs, MAX_FRAME_MESSAGES);
        let frame_sizes: Vec<usize> = batches.iter().map(|b| b.messages.len()).collect();
        let deadline = self.inner.bulk_deadline;
        let request = self.request(tokio_stream::iter(batches), deadline);
        let mut client = self.grpc();
        let frame_count = frame_sizes.len();
        let exchange = async move {
            let mut responses = client.classify_stream(request).await?.into_inner();
            let mut frames = Vec::with_capacity(frame_count);
            while let Some(frame) = responses.next().await {
                frames.push(frame?);
            }
            Ok::<_, Status>(frames)
        };
        let frames = match tokio::time::timeout(deadline, exchange).await {
            Err(_elapsed) => return Err(CloudLinkError::DeadlineExceeded),
            Ok(result) => result?,
        };
        collect_frame_results(&frame_sizes, frames)
    }

    /// Sends the user's spam / not-spam feedback.
    pub async fn report(&self, mut req: ReportRequest) -> Result<ReportResponse, CloudLinkError> {
        self.fill_device_id(&mut req.device_id);
        let deadline = self.inner.bulk_deadline;
        let request = self.request(req, deadline);
        let mut client = self.grpc();
        with_deadline(deadline, client.report(request)).await
    }

    /// Spam fingerprints and sender rules changed since `since_version`, and the cloud's
    /// knowledge table when its id is not `knowledge_revision`.
    pub async fn sync_cache(
        &self,
        since_version: u64,
        max_entries: u32,
        knowledge_revision: &str,
    ) -> Result<SyncCacheResponse, CloudLinkError> {
        let body = SyncCacheRequest {
            since_version,
            max_entries,
            device_id: self.inner.device_id.clone(),
            knowledge_revision: knowledge_revision.to_owned(),
        };
        let deadline = self.inner.bulk_deadline;
        let request = self.request(body, deadline);
        let mut client = self.grpc();
        with_deadline(deadline, client.sync_cache(request)).await
    }

    /// The current edge model package (or `up_to_date`). Verify it with [`verify_model_package`]
    /// before installing anything.
    pub async fn get_model(
        &self,
        current_version: &str,
    ) -> Result<GetModelResponse, CloudLinkError> {
        let body = GetModelRequest {
            current_version: current_version.to_owned(),
            device_id: self.inner.device_id.clone(),
            device_public_key: self.inner.device_public_key.clone(),
        };
        let deadline = self.inner.bulk_deadline;
        let request = self.request(body, deadline);
        let mut client = self.grpc();
        with_deadline(deadline, client.get_model(request)).await
    }

    fn fill_device_id(&self, device_id: &mut String) {
        if device_id.is_empty() {
            device_id.clone_from(&self.inner.device_id);
        }
    }

    /// Wraps a body with the API key and the grpc-timeout header.
    fn request<T>(&self, body: T, deadline: Duration) -> Request<T> {
        let mut request = Request::new(body);
        request.set_timeout(deadline);
        if let Some(value) = &self.inner.authorization {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        request
    }

    /// A generated client on the shared channel. Must run inside a tokio runtime: the first call
    /// spawns the channel's background worker there.
    fn grpc(&self) -> SmsGuardClient<Channel> {
        let channel = self
            .inner
            .channel
            .get_or_init(|| self.inner.endpoint.connect_lazy())
            .clone();
        SmsGuardClient::new(channel).max_decoding_message_size(MAX_RESPONSE_BYTES)
    }
}

fn build_endpoint(config: &CloudConfig) -> Result<Endpoint, CloudLinkError> {
    let invalid = |what: &str| CloudLinkError::Config(format!("cloud url: {what}"));
    let endpoint = Endpoint::from_shared(config.url.clone())
        .map_err(|_| invalid("not a valid URI"))?
        .connect_timeout(config.deadline.max(MIN_BULK_DEADLINE / 5))
        .tcp_nodelay(true);
    let scheme = endpoint.uri().scheme_str().unwrap_or_default().to_owned();
    match scheme.as_str() {
        "http" => Ok(endpoint),
        "https" => {
            let pem = config.ca_cert_pem.as_ref().ok_or_else(|| {
                invalid("https needs ca_cert_pem (no system root certificates are built in)")
            })?;
            let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem));
            endpoint
                .tls_config(tls)
                .map_err(|e| CloudLinkError::Config(format!("TLS setup: {e}")))
        }
        _ => Err(invalid("scheme must be http or https")),
    }
}

fn bearer_value(key: &str) -> Result<AsciiMetadataValue, CloudLinkError> {
    if key.is_empty() {
        return Err(CloudLinkError::Config("api_key is empty".into()));
    }
    let mut value: AsciiMetadataValue =
        MetadataValue::try_from(format!("Bearer {key}")).map_err(|_| {
            CloudLinkError::Config("api_key has characters not allowed in a header".into())
        })?;
    value.set_sensitive(true);
    Ok(value)
}

/// Runs a unary call under a local timer as well as its grpc-timeout.
async fn with_deadline<T, F>(deadline: Duration, call: F) -> Result<T, CloudLinkError>
where
    F: Future<Output = Result<tonic::Response<T>, Status>>,
{
    match tokio::time::timeout(deadline, call).await {
        Err(_elapsed) => Err(CloudLinkError::DeadlineExceeded),
        Ok(Err(status)) => Err(CloudLinkError::from_status(&status)),
        Ok(Ok(response)) => Ok(response.into_inner()),
    }
}

/// Splits messages into `ClassifyStream` frames of at most `max` messages, keeping order.
pub fn split_into_frames(msgs: Vec<SmsMessage>, max: usize) -> Vec<ClassifyBatch> {
    let max = max.max(1);
    let mut frames = Vec::with_capacity(msgs.len().div_ceil(max));
    let mut current = Vec::with_capacity(max.min(msgs.len()));
    for msg in msgs {
        current.push(msg);
        if current.len() == max {
            frames.push(ClassifyBatch {
                messages: std::mem::take(&mut current),
            });
        }
    }
    if !current.is_empty() {
        frames.push(ClassifyBatch { messages: current });
    }
    frames
}

/// Flattens response frames, checking that each answers its request frame message by message.
fn collect_frame_results(
    frame_sizes: &[usize],
    frames: Vec<smsguard_proto::v1::ClassifyBatchResult>,
) -> Result<Vec<ClassifyResult>, CloudLinkError> {
    if frames.len() != frame_sizes.len() {
        return Err(CloudLinkError::BadResponse(format!(
            "{} result frames for {} request frames",
            frames.len(),
            frame_sizes.len()
        )));
    }
    let mut results = Vec::with_capacity(frame_sizes.iter().sum());
    for (index, (frame, expected)) in frames.into_iter().zip(frame_sizes).enumerate() {
        if frame.results.len() != *expected {
            return Err(CloudLinkError::BadResponse(format!(
                "frame {index}: {} results for {expected} messages",
                frame.results.len()
            )));
        }
        results.extend(frame.results);
    }
    Ok(results)
}

/// Checks a downloaded model package against the pinned public key: the signing key id, the
/// Ed25519 signature over manifest JSON + model + vocabulary, the manifest's model digest and
/// size. Any failure means "keep the old model".
pub fn verify_model_package(
    resp: &GetModelResponse,
    pinned: &VerifyingKey,
) -> Result<(), CloudLinkError> {
    if resp.up_to_date {
        return Err(CloudLinkError::BadResponse(
            "up_to_date answer carries no package to verify".into(),
        ));
    }
    let manifest = resp
        .manifest
        .as_ref()
        .ok_or_else(|| CloudLinkError::BadResponse("model package without a manifest".into()))?;
    let pinned_id = pinned.key_id();
    if resp.key_id != pinned_id {
        return Err(CloudLinkError::Signature(format!(
            "package signed by key {:?}, pinned key is {pinned_id}",
            truncate_reason(&resp.key_id)
        )));
    }
    let parts = PackageParts {
        manifest_json: manifest.manifest_json.as_bytes(),
        model: &resp.model,
        vocabulary: &resp.vocabulary,
    };
    pinned
        .verify_package(parts, &manifest.sha256, &resp.signature)
        .map_err(|e| CloudLinkError::Signature(e.to_string()))?;
    if manifest.size_bytes != resp.model.len() as u64 {
        return Err(CloudLinkError::Signature(format!(
            "manifest says {} model bytes, got {}",
            manifest.size_bytes,
            resp.model.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use smsguard_proto::v1::{ClassifyBatchResult, ModelManifest};
    use smsguard_signing::{sha256_hex, SigningKey};

    fn message(id: usize) -> SmsMessage {
        SmsMessage {
            client_message_id: id.to_string(),
            ..SmsMessage::default()
        }
    }

    #[test]
    fn frames_hold_at_most_the_limit_and_keep_order() {
        for (count, expected_sizes) in [
            (0, vec![]),
            (1, vec![1]),
            (64, vec![64]),
            (65, vec![64, 1]),
            (130, vec![64, 64, 2]),
        ] {
            let frames = split_into_frames((0..count).map(message).collect(), 64);
            let sizes: Vec<usize> = frames.iter().map(|f| f.messages.len()).collect();
            assert_eq!(sizes, expected_sizes, "{count} messages");
            let ids: Vec<String> = frames
                .iter()
                .flat_map(|f| f.messages.iter().map(|m| m.client_message_id.clone()))
                .collect();
            let expected_ids: Vec<String> = (0..count).map(|i| i.to_string()).collect();
            assert_eq!(ids, expected_ids);
        }
    }

    #[test]
    fn result_frames_must_match_request_frames() {
        let answer = |n: usize| ClassifyBatchResult {
            results: (0..n)
                .map(|i| ClassifyResult {
                    client_message_id: i.to_string(),
                    outcome: None,
                })
                .collect(),
        };
        let ok = collect_frame_results(&[2, 1], vec![answer(2), answer(1)]).unwrap();
        assert_eq!(ok.len(), 3);
        assert!(matches!(
            collect_frame_results(&[2, 1], vec![answer(2)]),
            Err(CloudLinkError::BadResponse(_))
        ));
        assert!(matches!(
            collect_frame_results(&[2, 1], vec![answer(2), answer(2)]),
            Err(CloudLinkError::BadResponse(_))
        ));
    }

    #[test]
    fn statuses_map_to_errors_and_only_transient_ones_retry() {
        let cases = [
            (Code::DeadlineExceeded, true),
            (Code::Unavailable, true),
            (Code::Unknown, true),
            (Code::Cancelled, true),
            (Code::ResourceExhausted, true),
            (Code::Internal, true),
            (Code::InvalidArgument, false),
            (Code::Unauthenticated, false),
            (Code::PermissionDenied, false),
            (Code::Unimplemented, false),
        ];
        for (code, retryable) in cases {
            let error = CloudLinkError::from_status(&Status::new(code, "why"));
            assert_eq!(error.is_retryable(), retryable, "{code:?} -> {error:?}");
        }
        assert_eq!(
            CloudLinkError::from_status(&Status::deadline_exceeded("x")),
            CloudLinkError::DeadlineExceeded
        );
        let client_timer = Status::cancelled(tonic::TimeoutExpired(()).to_string());
        assert_eq!(
            CloudLinkError::from_status(&client_timer),
            CloudLinkError::DeadlineExceeded
        );
        assert_eq!(
            CloudLinkError::from_status(&Status::unauthenticated("bad key")),
            CloudLinkError::Rejected {
                code: Code::Unauthenticated,
                reason: "bad key".into()
            }
        );
        let long = CloudLinkError::from_status(&Status::internal("r".repeat(5000)));
        assert!(long.to_string().len() < 400);
    }

    #[test]
    fn configuration_is_validated_without_connecting() {
        let config = |url: &str| CloudConfig {
            url: url.into(),
            ..CloudConfig::default()
        };
        assert!(CloudClient::new(&config("http://127.0.0.1:1")).is_ok());
        for bad in ["not a uri", "ftp://127.0.0.1:1", "https://127.0.0.1:1"] {
            assert!(
                matches!(
                    CloudClient::new(&config(bad)),
                    Err(CloudLinkError::Config(_))
                ),
                "{bad}"
            );
        }
        let zero_deadline = CloudConfig {
            deadline: Duration::ZERO,
            ..CloudConfig::default()
        };
        assert!(CloudClient::new(&zero_deadline).is_err());
        let bad_key = CloudConfig {
            api_key: Some("line\nbreak".into()),
            ..CloudConfig::default()
        };
        assert!(CloudClient::new(&bad_key).is_err());
        let with_key = CloudConfig {
            api_key: Some("secret-key".into()),
            ..CloudConfig::default()
        };
        assert!(!format!("{with_key:?}").contains("secret-key"));
        let client = CloudClient::new(&with_key).unwrap();
        assert!(!format!("{client:?}").contains("secret-key"));
    }

    #[test]
    fn the_serde_form_uses_milliseconds_and_pem_text() {
        let json = r#"{"url":"https://cloud.example:443","deadline_ms":250,
                       "ca_cert_pem":"-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n"}"#;
        let config: CloudConfig = serde_json::from_str(json).unwrap();
        assert_eq!(config.deadline, Duration::from_millis(250));
        assert!(config
            .ca_cert_pem
            .as_deref()
            .unwrap()
            .starts_with(b"-----BEGIN"));
        assert_eq!(config.api_key, None);
        assert_eq!(config.device_id, "");
        let again: CloudConfig =
            serde_json::from_str(&serde_json::to_string(&config).unwrap()).unwrap();
        assert_eq!(again, config);
        let defaults: CloudConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(defaults, CloudConfig::default());
        assert!(serde_json::from_str::<CloudConfig>(r#"{"ca_cert_pem":" "}"#).is_err());
    }

    #[tokio::test]
    async fn an_unreachable_cloud_is_a_retryable_error() {
        // Port 1 on loopback refuses connections.
        let client = CloudClient::new(&CloudConfig {
            url: "http://127.0.0.1:1".into(),
            ..CloudConfig::default()
        })
        .unwrap();
        let error = client.classify(message(1)).await.unwrap_err();
        assert!(error.is_retryable(), "{error:?}");
        let error = client.classify_batch(vec![message(1)]).await.unwrap_err();
        assert!(error.is_retryable(), "{error:?}");
        assert!(client.classify_batch(Vec::new()).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn requests_carry_the_key_and_the_deadline() {
        let client = CloudClient::new(&CloudConfig {
            api_key: Some("k1".into()),
            deadline: Duration::from_millis(250),
            ..CloudConfig::default()
        })
        .unwrap();
        let request = client.request((), Duration::from_millis(250));
        let metadata = request.metadata();
        assert_eq!(metadata.get("authorization").unwrap(), "Bearer k1");
        assert_eq!(metadata.get("grpc-timeout").unwrap(), "250000u");
    }

    fn signed_package(key: &SigningKey) -> GetModelResponse {
        let model = b"onnx model bytes".to_vec();
        let vocabulary = br#"{"a":1}"#.to_vec();
        let manifest_json = r#"{"version":"v2"}"#.to_owned();
        let signature = key.sign(PackageParts {
            manifest_json: manifest_json.as_bytes(),
            model: &model,
            vocabulary: &vocabulary,
        });
        GetModelResponse {
            up_to_date: false,
            manifest: Some(ModelManifest {
                version: "v2".into(),
                sha256: sha256_hex(&model),
                size_bytes: model.len() as u64,
                pipeline_version: 1,
                manifest_json,
            }),
            model,
            vocabulary,
            signature,
            key_id: key.verifying_key().key_id(),
            sealed_model: Vec::new(),
        }
    }

    #[test]
    fn a_signed_package_verifies_against_the_pinned_key() {
        let key = SigningKey::generate().unwrap();
        verify_model_package(&signed_package(&key), &key.verifying_key()).unwrap();
    }

    #[test]
    fn any_tampered_part_or_foreign_key_is_refused() {
        let key = SigningKey::generate().unwrap();
        let pinned = key.verifying_key();
        let good = signed_package(&key);
        let tamperings: [fn(&mut GetModelResponse); 6] = [
            |p| p.model[3] ^= 1,
            |p| p.vocabulary[0] ^= 1,
            |p| p.model.truncate(5),
            |p| p.signature[0] ^= 1,
            |p| {
                if let Some(m) = p.manifest.as_mut() {
                    m.manifest_json.push(' ');
                }
            },
            |p| p.key_id = "0000000000000000".into(),
        ];
        for (index, tamper) in tamperings.iter().enumerate() {
            let mut package = good.clone();
            tamper(&mut package);
            assert!(
                matches!(
                    verify_model_package(&package, &pinned),
                    Err(CloudLinkError::Signature(_))
                ),
                "tampering {index} was accepted"
            );
        }
        let other = SigningKey::generate().unwrap();
        let foreign = signed_package(&other);
        assert!(verify_model_package(&foreign, &pinned).is_err());
        let mut no_manifest = good.clone();
        no_manifest.manifest = None;
        assert!(matches!(
            verify_model_package(&no_manifest, &pinned),
            Err(CloudLinkError::BadResponse(_))
        ));
    }
}
