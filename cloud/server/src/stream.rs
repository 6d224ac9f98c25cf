//! `ClassifyStream` and the gRPC front of the service.
//!
//! A stream's frames are read with their messages still encoded ([`EncodedBatch`]) and each
//! message is decoded on its own, so one undecodable message gets a per-message
//! INVALID_ARGUMENT instead of ending the stream. Every message takes a token from its API key's
//! bucket (the first one rides on the token the call took to open); a message over the limit
//! gets a per-message RESOURCE_EXHAUSTED.
//!
//! [`GuardService`] routes `ClassifyStream` to that lenient reader and every other method to the
//! generated server, whose body refusals (INTERNAL for an undecodable body, OUT_OF_RANGE for an
//! oversized one) it rewrites into the client errors they are, and counts.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use prost::Message as _;
use smsguard_proto::v1;
use smsguard_proto::v1::sms_guard_server::SmsGuardServer;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::body::Body;
use tonic::codegen::{http, Service};
use tonic::server::{NamedService, StreamingService};
use tonic::{Request, Response, Status, Streaming};

use crate::auth::Quota;
use crate::error::RequestError;
use crate::service::{Deadline, SmsGuardService};
use crate::state::{AppState, ValidMessage};

const CLASSIFY_STREAM_PATH: &str = "/smsguard.v1.SmsGuard/ClassifyStream";

/// A `ClassifyBatch` whose messages are still encoded. Field 1 of `ClassifyBatch` is
/// `repeated SmsMessage`, whose wire form is that of `repeated bytes`, so the frame reads as
/// this and each message is decoded on its own.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EncodedBatch {
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub messages: Vec<Vec<u8>>,
}

/// One message of a frame: decoded, or why not.
pub type Slot = Result<v1::SmsMessage, RequestError>;

impl EncodedBatch {
    fn into_slots(self) -> Vec<Slot> {
        self.messages
            .iter()
            .enumerate()
            .map(|(index, encoded)| {
                v1::SmsMessage::decode(encoded.as_slice()).map_err(|e| RequestError::Undecodable {
                    what: format!("message #{index} of the frame"),
                    reason: e.to_string(),
                })
            })
            .collect()
    }
}

/// The answer stream of `ClassifyStream`.
pub type ResultStream = Pin<Box<dyn Stream<Item = Result<v1::ClassifyBatchResult, Status>> + Send>>;

/// Starts serving one stream whose frames `split` turns into message slots; returns at once
/// with the answer stream.
pub fn open_stream<T: Send + 'static>(
    state: Arc<AppState>,
    request: Request<Streaming<T>>,
    split: fn(T) -> Vec<Slot>,
) -> Response<ResultStream> {
    let started = Instant::now();
    let deadline = Deadline::new(request.metadata(), None);
    let quota = request.extensions().get::<Quota>().cloned();
    let inbound = request.into_inner().map(move |frame| frame.map(split));
    // Bounded: when the client stops reading answers, the server stops reading frames.
    let (tx, rx) = mpsc::channel(state.config.stream_buffer_frames);
    tokio::spawn(async move {
        let mut stream = StreamRun {
            state,
            quota,
            prepaid: 1,
            deadline,
        };
        let (frames, code) = stream.serve(inbound, tx).await;
        tracing::debug!(frames, code = ?code, "stream closed");
        stream
            .state
            .metrics
            .record_request("ClassifyStream", code, started);
    });
    Response::new(Box::pin(ReceiverStream::new(rx)) as ResultStream)
}

struct StreamRun {
    state: Arc<AppState>,
    quota: Option<Quota>,
    /// Messages already paid for: the token the call took when it opened pays for its first
    /// message, so a stream of one message costs what a `Classify` does.
    prepaid: usize,
    deadline: Deadline,
}

impl StreamRun {
    /// Answers frames until the client ends the stream, a frame cannot be read, or the
    /// deadline passes; returns the frames answered and the stream's final code.
    async fn serve(
        &mut self,
        mut inbound: impl Stream<Item = Result<Vec<Slot>, Status>> + Unpin,
        tx: mpsc::Sender<Result<v1::ClassifyBatchResult, Status>>,
    ) -> (u64, tonic::Code) {
        let mut frames = 0u64;
        loop {
            let next = self.deadline.run(async { Ok(inbound.next().await) }).await;
            let answer = match next {
                Ok(None) => return (frames, tonic::Code::Ok),
                Ok(Some(Ok(slots))) => self.answer(slots).await,
                Ok(Some(Err(status))) => Err(unreadable_frame(status)),
                Err(exceeded) => Err(exceeded),
            };
            let failed = answer.as_ref().err().map(RequestError::code);
            if tx.send(answer.map_err(Status::from)).await.is_err() {
                return (frames, tonic::Code::Cancelled);
            }
            frames += 1;
            if let Some(code) = failed {
                return (frames, code);
            }
        }
    }

    /// One frame's answer; `Err` ends the stream (deadline passed, key revoked).
    async fn answer(&mut self, slots: Vec<Slot>) -> Result<v1::ClassifyBatchResult, RequestError> {
        let max = self.state.config.max_batch_messages;
        if slots.len() > max {
            self.state.metrics.record_rejection("frame_too_large");
            let error = RequestError::TooManyMessages {
                count: slots.len(),
                max,
            };
            return Ok(failed_frame(&slots, &error));
        }
        let allowed = self.charge(slots.len())?;
        let state = Arc::clone(&self.state);
        self.deadline
            .run(score_frame(state, slots, allowed, self.quota.clone()))
            .await
    }

    /// How many of `messages` may be scored: the prepaid ones, then what the key's bucket
    /// grants.
    fn charge(&mut self, messages: usize) -> Result<usize, RequestError> {
        let Some(quota) = &self.quota else {
            return Ok(messages);
        };
        let prepaid = self.prepaid.min(messages);
        self.prepaid -= prepaid;
        Ok(prepaid + quota.charge(messages - prepaid)?)
    }
}

/// A frame tonic could not read: an undecodable or oversized frame, or else a stream the client
/// broke off (reset, connection lost); neither is the server's fault.
fn unreadable_frame(status: Status) -> RequestError {
    RequestError::from_transport(&status, "a ClassifyStream frame")
        .unwrap_or_else(|| RequestError::StreamBrokeOff(status.message().to_owned()))
}

/// Scores one frame off the runtime: the first `allowed` messages are scored (or get their own
/// error), the rest get the key's rate-limit error. An overloaded server fails the whole
/// frame's messages with RESOURCE_EXHAUSTED (per message) rather than the stream.
async fn score_frame(
    state: Arc<AppState>,
    slots: Vec<Slot>,
    allowed: usize,
    quota: Option<Quota>,
) -> Result<v1::ClassifyBatchResult, RequestError> {
    let over_limit = quota.as_ref().map(Quota::exceeded);
    let permit = match state.admit() {
        Ok(permit) => permit,
        Err(error) => return Ok(failed_frame(&slots, &error)),
    };
    let answered = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let results = frame_results(&state, &slots, allowed, quota.as_ref(), over_limit);
        v1::ClassifyBatchResult { results }
    })
    .await?;
    Ok(answered)
}

/// The results of a frame, in order: messages past `allowed` get `over_limit`, invalid ones
/// their error, and the valid ones are scored together (one shared-state round trip).
fn frame_results(
    state: &AppState,
    slots: &[Slot],
    allowed: usize,
    quota: Option<&Quota>,
    over_limit: Option<RequestError>,
) -> Vec<v1::ClassifyResult> {
    let mut results: Vec<Option<v1::ClassifyResult>> = vec![None; slots.len()];
    let mut valid = Vec::new();
    for (index, slot) in slots.iter().enumerate() {
        if let (false, Some(limit)) = (index < allowed, &over_limit) {
            state.metrics.record_rejection("rate_limited");
            results[index] = Some(error_result(slot, limit));
            continue;
        }
        let checked = match slot {
            Ok(message) => state.validate(Some(message)),
            Err(error) => Err(error.clone()),
        };
        match checked {
            Ok(msg) => valid.push((index, msg)),
            Err(error) => {
                state.metrics.record_rejection("invalid_message");
                results[index] = Some(error_result(slot, &error));
            }
        }
    }
    let msgs: Vec<ValidMessage> = valid.iter().map(|(_, msg)| msg.clone()).collect();
    let scored = state.score_many(&msgs, quota.map(Quota::limit));
    for ((index, msg), verdict) in valid.into_iter().zip(scored) {
        results[index] = Some(match verdict {
            Ok(verdict) => v1::ClassifyResult {
                client_message_id: msg.client_message_id,
                outcome: Some(v1::classify_result::Outcome::Verdict(verdict)),
            },
            Err(limited) => error_result(&slots[index], &limited),
        });
    }
    results.into_iter().flatten().collect()
}

/// The answer to a frame refused as a whole: `error` for each of its messages.
fn failed_frame(slots: &[Slot], error: &RequestError) -> v1::ClassifyBatchResult {
    let results = slots.iter().map(|slot| error_result(slot, error)).collect();
    v1::ClassifyBatchResult { results }
}

/// A per-message error; an undecodable message has no id (results answer messages in order).
fn error_result(slot: &Slot, error: &RequestError) -> v1::ClassifyResult {
    let client_message_id = slot
        .as_ref()
        .map(|m| m.client_message_id.clone())
        .unwrap_or_default();
    v1::ClassifyResult {
        client_message_id,
        outcome: Some(v1::classify_result::Outcome::Error(
            error.to_message_error(),
        )),
    }
}

/// `ClassifyStream` over [`EncodedBatch`] frames.
struct LenientClassifyStream(Arc<AppState>);

impl StreamingService<EncodedBatch> for LenientClassifyStream {
    type Response = v1::ClassifyBatchResult;
    type ResponseStream = ResultStream;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ResultStream>, Status>> + Send>>;

    fn call(&mut self, request: Request<Streaming<EncodedBatch>>) -> Self::Future {
        let response = open_stream(Arc::clone(&self.0), request, EncodedBatch::into_slots);
        Box::pin(async move { Ok(response) })
    }
}

/// The `smsguard.v1.SmsGuard` service as served (see the module doc).
#[derive(Debug, Clone)]
pub struct GuardService {
    generated: SmsGuardServer<SmsGuardService>,
    state: Arc<AppState>,
}

impl GuardService {
    pub fn new(state: Arc<AppState>) -> Self {
        let generated = SmsGuardServer::new(SmsGuardService::new(Arc::clone(&state)))
            .max_decoding_message_size(state.config.max_request_bytes);
        GuardService { generated, state }
    }
}

impl NamedService for GuardService {
    const NAME: &'static str = <SmsGuardServer<SmsGuardService> as NamedService>::NAME;
}

type BoxResponse = Pin<Box<dyn Future<Output = Result<http::Response<Body>, Infallible>> + Send>>;

impl Service<http::Request<Body>> for GuardService {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxResponse;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> BoxResponse {
        if request.uri().path() == CLASSIFY_STREAM_PATH {
            let service = LenientClassifyStream(Arc::clone(&self.state));
            let max = self.state.config.max_request_bytes;
            return Box::pin(async move {
                let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::<
                    v1::ClassifyBatchResult,
                    EncodedBatch,
                >::default())
                .apply_max_message_size_config(Some(max), None);
                Ok(grpc.streaming(service, request).await)
            });
        }
        let rpc = rpc_name(request.uri().path());
        let started = Instant::now();
        let state = Arc::clone(&self.state);
        let answered = self.generated.call(request);
        Box::pin(async move {
            let mut response = answered.await?;
            if let Some(error) = refused_body(response.headers(), rpc) {
                state.metrics.record_request(rpc, error.code(), started);
                state.metrics.record_rejection(match error {
                    RequestError::TooLarge(_) => "request_too_large",
                    _ => "undecodable",
                });
                tracing::info!(rpc, code = ?error.code(), "request body refused");
                replace_status(response.headers_mut(), &Status::from(error));
            }
            Ok(response)
        })
    }
}

/// The client error behind a trailers-only answer of tonic refusing a request body (our
/// handlers never answer INTERNAL with tonic's decode wording, nor OUT_OF_RANGE).
fn refused_body(headers: &http::HeaderMap, rpc: &str) -> Option<RequestError> {
    let status = Status::from_header_map(headers)?;
    RequestError::from_transport(&status, &format!("the {rpc} request"))
}

fn replace_status(headers: &mut http::HeaderMap, status: &Status) {
    for name in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
        headers.remove(name);
    }
    if status.add_header(headers).is_err() {
        tracing::warn!("could not rewrite a refused body's status");
    }
}

/// The method name of a request path, as a metric label.
fn rpc_name(path: &str) -> &'static str {
    match path.rsplit('/').next().unwrap_or_default() {
        "Classify" => "Classify",
        "Report" => "Report",
        "SyncCache" => "SyncCache",
        "GetModel" => "GetModel",
        "PrivateClassify" => "PrivateClassify",
        "PrivateSimilarity" => "PrivateSimilarity",
        "PrivateParams" => "PrivateParams",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_reads_message_by_message_and_a_broken_message_fails_alone() {
        let good = v1::SmsMessage {
            body: "see you at 6".into(),
            client_message_id: "a".into(),
            ..v1::SmsMessage::default()
        };
        let frame = v1::ClassifyBatch {
            messages: vec![good.clone(), good.clone()],
        }
        .encode_to_vec();
        let mut batch = EncodedBatch::decode(frame.as_slice()).unwrap();
        assert_eq!(batch.messages.len(), 2);
        // Message #1's body becomes invalid UTF-8: its field 2 payload starts at byte 2.
        batch.messages[1][2] = 0xff;
        let slots = batch.into_slots();
        assert_eq!(slots[0].as_ref().unwrap(), &good);
        let error = slots[1].as_ref().unwrap_err();
        assert_eq!(error.code(), tonic::Code::InvalidArgument);
        assert!(error.to_string().contains("message #1"), "{error}");
    }
}
