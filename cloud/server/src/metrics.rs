//! Prometheus metrics and the tiny HTTP endpoint that serves them (`GET /metrics`).

use std::sync::Arc;
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Metric, Registry};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::connections::{Acceptor, GuardedStream};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcLabels {
    pub rpc: &'static str,
    pub code: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcLabel {
    pub rpc: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerdictLabels {
    pub label: &'static str,
    pub action: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelLabel {
    pub model: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabel {
    pub rule: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ListenerLabel {
    pub listener: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TimeoutLabels {
    pub listener: &'static str,
    pub phase: &'static str,
}

fn latency_histogram() -> Histogram {
    // 50 us .. about 1.6 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

/// Every metric of the service.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RpcLabels, Counter>,
    latency: Family<RpcLabel, Histogram, fn() -> Histogram>,
    verdicts: Family<VerdictLabels, Counter>,
    model_errors: Family<ModelLabel, Counter>,
    rule_hits: Family<RuleLabel, Counter>,
    rejected: Family<ReasonLabel, Counter>,
    connections_open: Family<ListenerLabel, Gauge>,
    connections_refused: Family<ListenerLabel, Counter>,
    connection_timeouts: Family<TimeoutLabels, Counter>,
    accept_errors: Family<ListenerLabel, Counter>,
    pub store_entries: Gauge,
    pub sync_version: Gauge,
    pub reloads: Counter,
    /// Verdicts given without the shared state (the state backend failed or was too slow).
    pub shared_state_degraded: Counter,
    /// Verdicts marked degraded, for whatever reason (a scorer failed, the shared state did not
    /// answer): the exact count behind the console's degraded share.
    degraded_verdicts: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// A metric's name (after the `smsguard_` prefix) and its help text, as Prometheus shows them.
type Described = (&'static str, &'static str);

const REQUESTS: Described = ("requests", "gRPC requests by RPC and status code");
const LATENCY: Described = ("request_duration_seconds", "gRPC request latency by RPC");
const VERDICTS: Described = ("verdicts", "Verdicts by label and action");
const MODEL_ERRORS: Described = (
    "model_errors",
    "Scorer failures (degraded verdict inputs) by model",
);
const REJECTED: Described = ("rejected", "Requests refused before scoring, by reason");
const RULE_HITS: Described = (
    "rule_hits",
    "Rules and knowledge entries that fired, by id (the ids of the rules file)",
);
const CONNECTIONS_OPEN: Described = ("connections_open", "Connections held, by listener");
const CONNECTIONS_REFUSED: Described = (
    "connections_refused",
    "Connections closed on accept because the listener was at its limit",
);
const CONNECTION_TIMEOUTS: Described = (
    "connection_timeouts",
    "Connections closed for silence, by listener and phase (handshake, idle)",
);
const ACCEPT_ERRORS: Described = (
    "accept_errors",
    "Failed accepts (e.g. out of file descriptors), each followed by a back-off",
);
const STORE_ENTRIES: Described = (
    "similarity_store_entries",
    "Fingerprints in the similarity memory",
);
const SYNC_VERSION: Described = ("sync_version", "Newest sync log version");
const RELOADS: Described = ("reloads", "Successful rules or spam feed reloads");
const SHARED_STATE_DEGRADED: Described = ("shared_state_degraded", "Verdicts given without similarity and sender input because the shared state (Redis) failed or did not answer in time");
const DEGRADED_VERDICTS: Described = (
    "degraded_verdicts",
    "Verdicts marked degraded (a scorer failed or the shared state did not answer)",
);

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("smsguard");
        let r = &mut registry;
        let requests = registered(r, REQUESTS, Family::<RpcLabels, Counter>::default());
        let latency = registered(
            r,
            LATENCY,
            Family::<RpcLabel, Histogram, fn() -> Histogram>::new_with_constructor(
                latency_histogram,
            ),
        );
        let verdicts = registered(r, VERDICTS, Family::<VerdictLabels, Counter>::default());
        let model_errors = registered(r, MODEL_ERRORS, Family::<ModelLabel, Counter>::default());
        let rejected = registered(r, REJECTED, Family::<ReasonLabel, Counter>::default());
        let rule_hits = registered(r, RULE_HITS, Family::<RuleLabel, Counter>::default());
        let connections_open = registered(
            r,
            CONNECTIONS_OPEN,
            Family::<ListenerLabel, Gauge>::default(),
        );
        let connections_refused = registered(
            r,
            CONNECTIONS_REFUSED,
            Family::<ListenerLabel, Counter>::default(),
        );
        let connection_timeouts = registered(
            r,
            CONNECTION_TIMEOUTS,
            Family::<TimeoutLabels, Counter>::default(),
        );
        let accept_errors = registered(
            r,
            ACCEPT_ERRORS,
            Family::<ListenerLabel, Counter>::default(),
        );
        let store_entries = registered(r, STORE_ENTRIES, Gauge::default());
        let sync_version = registered(r, SYNC_VERSION, Gauge::default());
        let reloads = registered(r, RELOADS, Counter::default());
        let shared_state_degraded = registered(r, SHARED_STATE_DEGRADED, Counter::default());
        let degraded_verdicts = registered(r, DEGRADED_VERDICTS, Counter::default());
        Metrics {
            registry,
            requests,
            latency,
            verdicts,
            model_errors,
            rule_hits,
            rejected,
            connections_open,
            connections_refused,
            connection_timeouts,
            accept_errors,
            store_entries,
            sync_version,
            reloads,
            shared_state_degraded,
            degraded_verdicts,
        }
    }

    pub fn record_request(&self, rpc: &'static str, code: tonic::Code, started: Instant) {
        self.requests
            .get_or_create(&RpcLabels {
                rpc,
                code: code_name(code),
            })
            .inc();
        self.latency
            .get_or_create(&RpcLabel { rpc })
            .observe(started.elapsed().as_secs_f64());
    }

    pub fn record_verdict(&self, label: &'static str, action: &'static str) {
        self.verdicts
            .get_or_create(&VerdictLabels { label, action })
            .inc();
    }

    /// One verdict was marked degraded (counted beside [`Self::record_verdict`]).
    pub fn record_degraded_verdict(&self) {
        self.degraded_verdicts.inc();
    }

    pub fn record_rule_hit(&self, rule: &str) {
        self.rule_hits
            .get_or_create(&RuleLabel {
                rule: rule.to_owned(),
            })
            .inc();
    }

    pub fn record_model_error(&self, model: &str) {
        self.model_errors
            .get_or_create(&ModelLabel {
                model: model.to_owned(),
            })
            .inc();
    }

    pub fn record_rejection(&self, reason: &'static str) {
        self.rejected.get_or_create(&ReasonLabel { reason }).inc();
    }

    pub fn connection_opened(&self, listener: &'static str) {
        self.connections_open
            .get_or_create(&ListenerLabel { listener })
            .inc();
    }

    pub fn connection_closed(&self, listener: &'static str) {
        self.connections_open
            .get_or_create(&ListenerLabel { listener })
            .dec();
    }

    pub fn record_connection_refused(&self, listener: &'static str) {
        self.connections_refused
            .get_or_create(&ListenerLabel { listener })
            .inc();
    }

    pub fn record_connection_timeout(&self, listener: &'static str, phase: &'static str) {
        self.connection_timeouts
            .get_or_create(&TimeoutLabels { listener, phase })
            .inc();
    }

    pub fn record_accept_error(&self, listener: &'static str) {
        self.accept_errors
            .get_or_create(&ListenerLabel { listener })
            .inc();
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Serves `GET /metrics` (anything else: 404) on `acceptor` until the task is aborted. One
/// request per connection; the request head is capped at 8 KiB and must arrive within the
/// listener's handshake timeout, and the listener's connection limit holds.
pub async fn serve_metrics(acceptor: Acceptor, metrics: Arc<Metrics>) {
    let head_timeout = acceptor.limits().handshake_timeout;
    loop {
        let (stream, slot) = acceptor.next().await;
        let stream = acceptor.guard(stream, slot);
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            if tokio::time::timeout(head_timeout, answer(stream, &metrics))
                .await
                .is_err()
            {
                metrics.record_connection_timeout("metrics", "request");
            }
        });
    }
}

/// Reads one request head and answers it.
async fn answer(mut stream: GuardedStream, metrics: &Metrics) {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let first_line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let response = if first_line.starts_with(b"GET /metrics ") {
        http_response("200 OK", "text/plain; version=0.0.4", &metrics.encode())
    } else {
        http_response(
            "404 Not Found",
            "text/plain",
            "not found: try GET /metrics\n",
        )
    };
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

fn http_response(status: &str, content_type: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Registers `metric` under `name` and hands back the handle the recorders update (the
/// registry keeps a clone; both share one value).
fn registered<M: Metric + Clone>(registry: &mut Registry, (name, help): Described, metric: M) -> M {
    registry.register(name, help, metric.clone());
    metric
}
