//! The engine's view of the cloud: a trait over the five calls (so tests can stand in a scripted
//! cloud) and the small tokio runtime that drives them for the engine's sync API.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use smsguard_proto::v1::{
    ClassifyResult, GetModelResponse, PrivateClassifyResponse, PrivateParamsResponse,
    PrivateSimilarityResponse, ReportRequest, ReportResponse, SmsMessage, SyncCacheResponse,
    Verdict,
};

use crate::cloud_link::{CloudClient, CloudLinkError};

/// A cloud call in flight; owns everything it needs.
pub type CloudFuture<T> = Pin<Box<dyn Future<Output = Result<T, CloudLinkError>> + Send + 'static>>;

/// The cloud calls the engine makes. [`CloudClient`] is the real one.
pub trait CloudLink: Send + Sync + fmt::Debug {
    fn classify(&self, msg: SmsMessage) -> CloudFuture<Verdict>;
    fn classify_batch(&self, msgs: Vec<SmsMessage>) -> CloudFuture<Vec<ClassifyResult>>;
    fn report(&self, req: ReportRequest) -> CloudFuture<ReportResponse>;
    /// A page of changes since `since_version`, with the cloud's knowledge table when its id
    /// is not `knowledge_revision`.
    fn sync_cache(
        &self,
        since_version: u64,
        max_entries: u32,
        knowledge_revision: String,
    ) -> CloudFuture<SyncCacheResponse>;
    fn get_model(&self, current_version: &str) -> CloudFuture<GetModelResponse>;
    /// Private mode's one call (a link without it refuses, and the local verdict stands).
    fn private_classify(
        &self,
        parameter_set: String,
        features: Vec<u8>,
    ) -> CloudFuture<PrivateClassifyResponse> {
        let _ = (parameter_set, features);
        Box::pin(async {
            Err(CloudLinkError::Rejected {
                code: tonic::Code::Unimplemented,
                reason: "this cloud link has no private mode".into(),
            })
        })
    }
    /// Private mode's similarity lookup by band-key prefixes (a link without it refuses).
    fn private_similarity(
        &self,
        prefix_bits: u32,
        prefixes: Vec<u32>,
    ) -> CloudFuture<PrivateSimilarityResponse> {
        let _ = (prefix_bits, prefixes);
        Box::pin(async {
            Err(CloudLinkError::Rejected {
                code: tonic::Code::Unimplemented,
                reason: "this cloud link has no private similarity lookup".into(),
            })
        })
    }
    /// Private mode's parameters and model (`PrivateParams`); a link without private mode
    /// answers UNIMPLEMENTED, like a server from before the call.
    fn private_params(&self) -> CloudFuture<PrivateParamsResponse> {
        Box::pin(async {
            Err(CloudLinkError::Rejected {
                code: tonic::Code::Unimplemented,
                reason: "this cloud link publishes no private parameters".into(),
            })
        })
    }
}

impl CloudLink for CloudClient {
    fn classify(&self, msg: SmsMessage) -> CloudFuture<Verdict> {
        let client = self.clone();
        Box::pin(async move { client.classify(msg).await })
    }

    fn classify_batch(&self, msgs: Vec<SmsMessage>) -> CloudFuture<Vec<ClassifyResult>> {
        let client = self.clone();
        Box::pin(async move { client.classify_batch(msgs).await })
    }

    fn report(&self, req: ReportRequest) -> CloudFuture<ReportResponse> {
        let client = self.clone();
        Box::pin(async move { client.report(req).await })
    }

    fn sync_cache(
        &self,
        since_version: u64,
        max_entries: u32,
        knowledge_revision: String,
    ) -> CloudFuture<SyncCacheResponse> {
        let client = self.clone();
        Box::pin(async move {
            client
                .sync_cache(since_version, max_entries, &knowledge_revision)
                .await
        })
    }

    fn get_model(&self, current_version: &str) -> CloudFuture<GetModelResponse> {
        let client = self.clone();
        let current_version = current_version.to_owned();
        Box::pin(async move { client.get_model(&current_version).await })
    }

    fn private_classify(
        &self,
        parameter_set: String,
        features: Vec<u8>,
    ) -> CloudFuture<PrivateClassifyResponse> {
        let client = self.clone();
        Box::pin(async move { client.private_classify(&parameter_set, features).await })
    }

    fn private_similarity(
        &self,
        prefix_bits: u32,
        prefixes: Vec<u32>,
    ) -> CloudFuture<PrivateSimilarityResponse> {
        let client = self.clone();
        Box::pin(async move { client.private_similarity(prefix_bits, prefixes).await })
    }

    fn private_params(&self) -> CloudFuture<PrivateParamsResponse> {
        let client = self.clone();
        Box::pin(async move { client.private_params().await })
    }
}

/// How long a bulk call (batch, report, sync, model) may take before the engine gives up on it;
/// the client applies its own, shorter deadlines.
pub const BULK_WAIT: Duration = Duration::from_secs(60);

/// The cloud link plus the runtime its futures run on. Callers block on a channel rather than
/// `block_on`, so the sync API also works from inside another runtime's worker thread.
pub(crate) struct Remote {
    runtime: Option<tokio::runtime::Runtime>,
    pub(crate) link: Arc<dyn CloudLink>,
    /// Interactive deadline of `classify`.
    pub(crate) deadline: Duration,
}

impl fmt::Debug for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Remote")
            .field("link", &self.link)
            .field("deadline", &self.deadline)
            .finish()
    }
}

/// A spawned cloud call whose answer may be waited for (or abandoned).
#[derive(Debug)]
pub(crate) struct Pending<T> {
    answer: mpsc::Receiver<Result<T, CloudLinkError>>,
}

impl<T> Pending<T> {
    /// The answer if it arrives before `deadline`; `DeadlineExceeded` otherwise (the call keeps
    /// running in the background and its late answer is dropped).
    pub(crate) fn wait_until(self, deadline: Instant) -> Result<T, CloudLinkError> {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.answer.recv_timeout(left) {
            Ok(answer) => answer,
            Err(mpsc::RecvTimeoutError::Timeout) => Err(CloudLinkError::DeadlineExceeded),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(CloudLinkError::Unavailable {
                reason: "cloud task ended without an answer".into(),
            }),
        }
    }
}

impl Remote {
    pub(crate) fn new(link: Arc<dyn CloudLink>, deadline: Duration) -> std::io::Result<Remote> {
        // One worker: the engine makes few concurrent calls and a phone has few cores.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("smsguard-cloud")
            .enable_all()
            .build()?;
        Ok(Remote {
            runtime: Some(runtime),
            link,
            deadline,
        })
    }

    /// Starts `call` on the runtime.
    pub(crate) fn start<T: Send + 'static>(&self, call: CloudFuture<T>) -> Pending<T> {
        let (sender, answer) = mpsc::sync_channel(1);
        if let Some(runtime) = &self.runtime {
            runtime.spawn(async move {
                // The receiver may have given up already; a late answer is simply dropped.
                let _ = sender.send(call.await);
            });
        }
        Pending { answer }
    }

    /// Runs `call` and waits for its answer up to [`BULK_WAIT`].
    pub(crate) fn call<T: Send + 'static>(
        &self,
        call: CloudFuture<T>,
    ) -> Result<T, CloudLinkError> {
        self.start(call).wait_until(Instant::now() + BULK_WAIT)
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        // A plain drop blocks and panics inside another runtime; background shutdown does neither.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
