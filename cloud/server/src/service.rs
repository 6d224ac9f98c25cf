//! The `smsguard.v1.SmsGuard` gRPC service: thin async wrappers over [`AppState`] that run the
//! CPU-bound scoring and the blocking store writes in `spawn_blocking`, count and time every
//! call, and log ids, lengths and codes only.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use smsguard_proto::v1;
use smsguard_proto::v1::sms_guard_server::SmsGuard;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status, Streaming};

use crate::auth::{KeyId, Quota};
use crate::error::RequestError;
use crate::state::AppState;
use crate::stream::{open_stream, ResultStream};

/// When a call must be answered: the client's `grpc-timeout`, capped by the server's
/// `request_timeout_ms` for unary calls (a stream runs as long as its client allows).
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    at: Option<tokio::time::Instant>,
    millis: u64,
}

impl Deadline {
    pub fn new(metadata: &MetadataMap, cap: Option<Duration>) -> Self {
        let budget = match (parse_grpc_timeout(metadata), cap) {
            (Some(asked), Some(cap)) => Some(asked.min(cap)),
            (asked, cap) => asked.or(cap),
        };
        Deadline {
            at: budget.map(|b| tokio::time::Instant::now() + b),
            millis: budget.map_or(0, |b| b.as_millis() as u64),
        }
    }

    fn exceeded(&self) -> RequestError {
        RequestError::DeadlineExceeded {
            millis: self.millis,
        }
    }

    /// Fails at once when the deadline has already passed (no work is started for it).
    pub fn check(&self) -> Result<(), RequestError> {
        match self.at {
            Some(at) if tokio::time::Instant::now() >= at => Err(self.exceeded()),
            _ => Ok(()),
        }
    }

    /// Runs `work` until the deadline.
    pub async fn run<T>(
        &self,
        work: impl Future<Output = Result<T, RequestError>>,
    ) -> Result<T, RequestError> {
        self.check()?;
        match self.at {
            Some(at) => tokio::time::timeout_at(at, work)
                .await
                .unwrap_or_else(|_| Err(self.exceeded())),
            None => work.await,
        }
    }
}

/// The `grpc-timeout` header: up to 8 digits and a unit (H, M, S, m, u, n).
fn parse_grpc_timeout(metadata: &MetadataMap) -> Option<Duration> {
    let text = metadata.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = text.split_at(text.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let value: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(value * 3600),
        "M" => Duration::from_secs(value * 60),
        "S" => Duration::from_secs(value),
        "m" => Duration::from_millis(value),
        "u" => Duration::from_micros(value),
        "n" => Duration::from_nanos(value),
        _ => return None,
    })
}

#[derive(Debug, Clone)]
pub struct SmsGuardService {
    state: Arc<AppState>,
}

impl SmsGuardService {
    pub fn new(state: Arc<AppState>) -> Self {
        SmsGuardService { state }
    }

    /// Counts and times one call and logs its outcome (no message content).
    fn finish<T>(
        &self,
        rpc: &'static str,
        started: Instant,
        result: Result<T, RequestError>,
    ) -> Result<Response<T>, Status> {
        let code = result
            .as_ref()
            .map_or_else(RequestError::code, |_| tonic::Code::Ok);
        self.state.metrics.record_request(rpc, code, started);
        match result {
            Ok(answer) => {
                tracing::debug!(rpc, micros = started.elapsed().as_micros() as u64, "ok");
                Ok(Response::new(answer))
            }
            Err(error) => {
                tracing::info!(rpc, code = ?code, reason = %error, "request refused");
                Err(error.into())
            }
        }
    }

    fn unary_deadline(&self, metadata: &MetadataMap) -> Deadline {
        let cap = Duration::from_millis(self.state.config.request_timeout_ms);
        Deadline::new(metadata, Some(cap))
    }

    async fn classify_one(
        &self,
        request: v1::ClassifyRequest,
        quota: Option<Quota>,
    ) -> Result<v1::ClassifyResponse, RequestError> {
        let msg = self.state.validate(request.message.as_ref())?;
        let verdict = self
            .blocking(move |state| state.score_as(&msg, quota.as_ref().map(Quota::limit)))
            .await?;
        Ok(v1::ClassifyResponse {
            verdict: Some(verdict),
        })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&AppState) -> Result<T, RequestError> + Send + 'static,
    ) -> Result<T, RequestError> {
        let permit = self.state.admit()?;
        let state = Arc::clone(&self.state);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work(&state)
        })
        .await?
    }
}

#[tonic::async_trait]
impl SmsGuard for SmsGuardService {
    async fn classify(
        &self,
        request: Request<v1::ClassifyRequest>,
    ) -> Result<Response<v1::ClassifyResponse>, Status> {
        let started = Instant::now();
        let deadline = self.unary_deadline(request.metadata());
        let quota = request.extensions().get::<Quota>().cloned();
        let result = deadline
            .run(self.classify_one(request.into_inner(), quota))
            .await;
        self.finish("Classify", started, result)
    }

    type ClassifyStreamStream = ResultStream;

    async fn classify_stream(
        &self,
        request: Request<Streaming<v1::ClassifyBatch>>,
    ) -> Result<Response<Self::ClassifyStreamStream>, Status> {
        // Served by `GuardService` from `EncodedBatch` frames; this path reads whole frames.
        Ok(open_stream(Arc::clone(&self.state), request, |frame| {
            frame.messages.into_iter().map(Ok).collect()
        }))
    }

    async fn report(
        &self,
        request: Request<v1::ReportRequest>,
    ) -> Result<Response<v1::ReportResponse>, Status> {
        let started = Instant::now();
        let deadline = self.unary_deadline(request.metadata());
        let caller = request.extensions().get::<KeyId>().cloned();
        let req = request.into_inner();
        // Once started, a report is written whatever the deadline: it is flushed before the
        // answer, and a late answer is better than a lost report.
        let result = match deadline.check() {
            Ok(()) => {
                self.blocking(move |state| state.report(&req, caller.as_ref()))
                    .await
            }
            Err(e) => Err(e),
        };
        self.finish("Report", started, result)
    }

    async fn sync_cache(
        &self,
        request: Request<v1::SyncCacheRequest>,
    ) -> Result<Response<v1::SyncCacheResponse>, Status> {
        let started = Instant::now();
        let deadline = self.unary_deadline(request.metadata());
        let req = request.into_inner();
        let result = deadline
            .run(self.blocking(move |state| state.sync_page(&req)))
            .await;
        self.finish("SyncCache", started, result)
    }

    async fn get_model(
        &self,
        request: Request<v1::GetModelRequest>,
    ) -> Result<Response<v1::GetModelResponse>, Status> {
        let started = Instant::now();
        let result = self.state.get_model(request.get_ref());
        self.finish("GetModel", started, result)
    }

    async fn private_classify(
        &self,
        request: Request<v1::PrivateClassifyRequest>,
    ) -> Result<Response<v1::PrivateClassifyResponse>, Status> {
        let started = Instant::now();
        let deadline = self.unary_deadline(request.metadata());
        let req = request.into_inner();
        let result = deadline
            .run(self.blocking(move |state| state.private.answer(&req)))
            .await;
        self.finish("PrivateClassify", started, result)
    }

    async fn private_similarity(
        &self,
        request: Request<v1::PrivateSimilarityRequest>,
    ) -> Result<Response<v1::PrivateSimilarityResponse>, Status> {
        let started = Instant::now();
        let deadline = self.unary_deadline(request.metadata());
        let req = request.into_inner();
        let result = deadline
            .run(self.blocking(move |state| state.private_similarity(&req)))
            .await;
        self.finish("PrivateSimilarity", started, result)
    }

    async fn private_params(
        &self,
        request: Request<v1::PrivateParamsRequest>,
    ) -> Result<Response<v1::PrivateParamsResponse>, Status> {
        let started = Instant::now();
        let deadline = self.unary_deadline(request.metadata());
        let result = deadline
            .run(self.blocking(move |state| Ok(state.private_params())))
            .await;
        self.finish("PrivateParams", started, result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(timeout: &str) -> MetadataMap {
        let mut map = MetadataMap::new();
        map.insert("grpc-timeout", timeout.parse().unwrap());
        map
    }

    #[test]
    fn grpc_timeouts_parse_in_every_unit_and_garbage_is_ignored() {
        assert_eq!(
            parse_grpc_timeout(&metadata("300m")),
            Some(Duration::from_millis(300))
        );
        assert_eq!(
            parse_grpc_timeout(&metadata("2S")),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            parse_grpc_timeout(&metadata("1H")),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(
            parse_grpc_timeout(&metadata("5n")),
            Some(Duration::from_nanos(5))
        );
        assert_eq!(parse_grpc_timeout(&metadata("123456789S")), None);
        assert_eq!(parse_grpc_timeout(&metadata("soon")), None);
        assert_eq!(parse_grpc_timeout(&MetadataMap::new()), None);
    }

    #[tokio::test]
    async fn a_deadline_is_the_shorter_of_the_client_timeout_and_the_cap() {
        let capped = Deadline::new(&metadata("1H"), Some(Duration::from_millis(20)));
        assert_eq!(capped.millis, 20);
        let slow = capped
            .run(async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok(())
            })
            .await;
        assert_eq!(slow, Err(RequestError::DeadlineExceeded { millis: 20 }));
        let expired = Deadline::new(&metadata("1n"), None);
        tokio::time::sleep(Duration::from_millis(2)).await;
        assert!(expired.check().is_err());
        let none = Deadline::new(&MetadataMap::new(), None);
        assert_eq!(none.run(async { Ok(7) }).await, Ok(7));
    }
}
