//! [`TamperingRelay`]: a man in the middle that speaks protocol v1 to the edge, forwards every
//! call to the real cloud with the edge's own [`CloudClient`], and rewrites `GetModel` answers
//! (flip a model byte, drop the vocabulary's tail, ...). It stands for a compromised network or
//! mirror: the package it serves carries the real server's signature over other bytes. It also
//! relays private mode, and can stand for a cloud that moved to another BFV parameter set
//! ([`TamperingRelay::move_parameters`]).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use smsguard_edge::cloud_link::{CloudClient, CloudConfig, CloudLinkError};
use smsguard_proto::v1;
use smsguard_proto::v1::sms_guard_server::{SmsGuard, SmsGuardServer};
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Code, Request, Response, Status, Streaming};

use crate::HarnessError;

/// Rewrites a model package in flight.
pub type Tamper = Arc<dyn Fn(&mut v1::GetModelResponse) + Send + Sync>;

/// A running relay on `127.0.0.1:<port>`; it stops when dropped.
pub struct TamperingRelay {
    addr: SocketAddr,
    service: Arc<RelayService>,
    runtime: Option<Runtime>,
}

impl std::fmt::Debug for TamperingRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TamperingRelay")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

struct RelayService {
    upstream: CloudClient,
    tamper: Tamper,
    packages_tampered: AtomicU64,
    /// Once set, the cloud behind the relay "moved" to the parameter set [`MOVED_TO`].
    parameters_moved: AtomicBool,
    /// Once set, `PrivateParams` is UNIMPLEMENTED, as on a server from before the call.
    parameters_hidden: AtomicBool,
    /// Once set, every `PrivateClassify` answer's fusion head gains one byte (a trailing space:
    /// still valid JSON, no longer what was signed).
    heads_altered: AtomicBool,
}

/// The parameter set a moved cloud publishes (no phone supports it).
pub const MOVED_TO: &str = "bfv-n8192-moved-v9";

impl TamperingRelay {
    /// Relays to the plaintext cloud at `upstream_url`, rewriting packages with `tamper`.
    pub fn start(upstream_url: &str, tamper: Tamper) -> Result<TamperingRelay, HarnessError> {
        let upstream = CloudClient::new(&CloudConfig {
            url: upstream_url.to_owned(),
            deadline: std::time::Duration::from_secs(10),
            ..CloudConfig::default()
        })?;
        let runtime = crate::small_runtime("tampering-relay")?;
        let listener = runtime.block_on(TcpListener::bind(("127.0.0.1", 0)))?;
        let addr = listener.local_addr()?;
        let service = Arc::new(RelayService {
            upstream,
            tamper,
            packages_tampered: AtomicU64::new(0),
            parameters_moved: AtomicBool::new(false),
            parameters_hidden: AtomicBool::new(false),
            heads_altered: AtomicBool::new(false),
        });
        let router = tonic::transport::Server::builder()
            .add_service(SmsGuardServer::from_arc(Arc::clone(&service)));
        runtime.spawn(router.serve_with_incoming(TcpListenerStream::new(listener)));
        Ok(TamperingRelay {
            addr,
            service,
            runtime: Some(runtime),
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// From now on the relay stands for a cloud on the parameter set [`MOVED_TO`]: its
    /// `PrivateParams` publish it, and `PrivateClassify` queries reach the real server under that
    /// name, which it refuses with FAILED_PRECONDITION as it would refuse any set it does not serve.
    pub fn move_parameters(&self) {
        self.service.parameters_moved.store(true, Ordering::Relaxed);
    }

    /// From now on `PrivateParams` answers UNIMPLEMENTED (a server from before the call).
    pub fn hide_parameters(&self) {
        self.service
            .parameters_hidden
            .store(true, Ordering::Relaxed);
    }

    /// From now on private answers carry a fusion head one byte off the signed one.
    pub fn alter_heads(&self) {
        self.service.heads_altered.store(true, Ordering::Relaxed);
    }

    /// Model packages rewritten so far.
    pub fn packages_tampered(&self) -> u64 {
        self.service.packages_tampered.load(Ordering::Relaxed)
    }
}

impl Drop for TamperingRelay {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The relay answers with the upstream's status code and reason.
fn to_status(error: CloudLinkError) -> Status {
    match error {
        CloudLinkError::DeadlineExceeded => Status::deadline_exceeded("upstream deadline"),
        CloudLinkError::Rejected { code, reason } => Status::new(code, reason),
        CloudLinkError::ResourceExhausted { reason } => Status::resource_exhausted(reason),
        other => Status::new(Code::Unavailable, other.to_string()),
    }
}

type ResultStream = Pin<Box<dyn Stream<Item = Result<v1::ClassifyBatchResult, Status>> + Send>>;

#[tonic::async_trait]
impl SmsGuard for RelayService {
    async fn classify(
        &self,
        request: Request<v1::ClassifyRequest>,
    ) -> Result<Response<v1::ClassifyResponse>, Status> {
        let message = request
            .into_inner()
            .message
            .ok_or_else(|| Status::invalid_argument("no message"))?;
        let verdict = self.upstream.classify(message).await.map_err(to_status)?;
        Ok(Response::new(v1::ClassifyResponse {
            verdict: Some(verdict),
        }))
    }

    type ClassifyStreamStream = ResultStream;

    /// Collects the whole inbound stream, classifies it upstream, answers frame by frame.
    async fn classify_stream(
        &self,
        request: Request<Streaming<v1::ClassifyBatch>>,
    ) -> Result<Response<Self::ClassifyStreamStream>, Status> {
        let mut inbound = request.into_inner();
        let mut sizes = Vec::new();
        let mut messages = Vec::new();
        while let Some(frame) = inbound.next().await {
            let frame = frame?;
            sizes.push(frame.messages.len());
            messages.extend(frame.messages);
        }
        let mut results = self
            .upstream
            .classify_batch(messages)
            .await
            .map_err(to_status)?
            .into_iter();
        let frames: Vec<Result<v1::ClassifyBatchResult, Status>> = sizes
            .into_iter()
            .map(|size| {
                Ok(v1::ClassifyBatchResult {
                    results: results.by_ref().take(size).collect(),
                })
            })
            .collect();
        Ok(Response::new(
            Box::pin(tokio_stream::iter(frames)) as ResultStream
        ))
    }

    async fn report(
        &self,
        request: Request<v1::ReportRequest>,
    ) -> Result<Response<v1::ReportResponse>, Status> {
        let answer = self
            .upstream
            .report(request.into_inner())
            .await
            .map_err(to_status)?;
        Ok(Response::new(answer))
    }

    async fn sync_cache(
        &self,
        request: Request<v1::SyncCacheRequest>,
    ) -> Result<Response<v1::SyncCacheResponse>, Status> {
        let request = request.into_inner();
        let answer = self
            .upstream
            .sync_cache(
                request.since_version,
                request.max_entries,
                &request.knowledge_revision,
            )
            .await
            .map_err(to_status)?;
        Ok(Response::new(answer))
    }

    async fn get_model(
        &self,
        request: Request<v1::GetModelRequest>,
    ) -> Result<Response<v1::GetModelResponse>, Status> {
        let mut package = self
            .upstream
            .get_model(&request.into_inner().current_version)
            .await
            .map_err(to_status)?;
        if !package.up_to_date {
            (self.tamper)(&mut package);
            self.packages_tampered.fetch_add(1, Ordering::Relaxed);
        }
        Ok(Response::new(package))
    }

    async fn private_classify(
        &self,
        request: Request<v1::PrivateClassifyRequest>,
    ) -> Result<Response<v1::PrivateClassifyResponse>, Status> {
        let mut request = request.into_inner();
        if self.parameters_moved.load(Ordering::Relaxed) {
            request.parameter_set = MOVED_TO.into();
        }
        let mut answer = self
            .upstream
            .private_classify(&request.parameter_set, request.features)
            .await
            .map_err(to_status)?;
        if self.heads_altered.load(Ordering::Relaxed) {
            answer.fusion_head.push(' ');
        }
        Ok(Response::new(answer))
    }

    async fn private_similarity(
        &self,
        request: Request<v1::PrivateSimilarityRequest>,
    ) -> Result<Response<v1::PrivateSimilarityResponse>, Status> {
        let request = request.into_inner();
        let answer = self
            .upstream
            .private_similarity(request.prefix_bits, request.prefixes)
            .await
            .map_err(to_status)?;
        Ok(Response::new(answer))
    }

    async fn private_params(
        &self,
        _request: Request<v1::PrivateParamsRequest>,
    ) -> Result<Response<v1::PrivateParamsResponse>, Status> {
        if self.parameters_hidden.load(Ordering::Relaxed) {
            return Err(Status::unimplemented("no PrivateParams on this server"));
        }
        let mut params = self.upstream.private_params().await.map_err(to_status)?;
        if self.parameters_moved.load(Ordering::Relaxed) {
            params.parameter_set = MOVED_TO.into();
            params.polynomial_degree = 8192;
        }
        Ok(Response::new(params))
    }
}
