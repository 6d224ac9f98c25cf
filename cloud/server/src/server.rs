//! Starting and stopping the service: [`spawn`] binds the gRPC port (and the metrics port),
//! serves `smsguard.v1.SmsGuard` behind the API key interceptor plus standard health and
//! reflection, and runs the periodic reload; [`RunningServer::shutdown`] stops gracefully.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use smsguard_proto::v1::sms_guard_server::SmsGuardServer;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

use crate::auth::ApiKeyCheck;
use crate::config::{ServerConfig, TlsConfig};
use crate::connections::{open_files_limit, Acceptor, ConnectionLimits};
use crate::error::ServerError;
use crate::metrics::{self, Metrics};
use crate::service::SmsGuardService;
use crate::state::{AppState, ReloadSummary};
use crate::stream::GuardService;

/// A started server. Dropping it without [`RunningServer::shutdown`] leaves the tasks running
/// until the runtime stops.
#[derive(Debug)]
pub struct RunningServer {
    /// The gRPC address actually bound (the port is real when the config asked for port 0).
    pub addr: SocketAddr,
    /// The metrics address actually bound, when metrics are on.
    pub metrics_addr: Option<SocketAddr>,
    /// The operator console's address actually bound, when the console is on.
    pub console_addr: Option<SocketAddr>,
    /// Hex Ed25519 public key that signs `GetModel` answers (what an edge pins).
    pub model_public_key: String,
    /// Version of the edge model package `GetModel` serves.
    pub model_version: String,
    state: Arc<AppState>,
    keys: ApiKeyCheck,
    health: tonic_health::server::HealthReporter,
    stop: oneshot::Sender<()>,
    serve: JoinHandle<Result<(), tonic::transport::Error>>,
    background: Vec<JoinHandle<()>>,
    grace: Duration,
}

/// Starts the server; returns once it is listening. Loading the models takes a few seconds
/// (more in debug builds).
pub async fn spawn(config: ServerConfig) -> Result<RunningServer, ServerError> {
    config.validate()?;
    let metrics = Arc::new(Metrics::new());
    let state = {
        let config = config.clone();
        let metrics = Arc::clone(&metrics);
        off_runtime(move || AppState::open(config, metrics)).await?
    };
    let state = Arc::new(state);

    let (listener, addr) = bind(config.listen).await?;
    let limits = grpc_limits(&config);
    let incoming = Acceptor::new(listener, "grpc", limits, Arc::clone(&metrics)).into_incoming();
    let mut background = Vec::new();
    let metrics_addr = start_metrics(&config, limits, &metrics, &mut background).await?;
    let console_addr = start_console(&config, limits, &state, &mut background).await?;

    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<SmsGuardServer<SmsGuardService>>()
        .await;
    // Both reflection versions: older grpcurl releases only speak v1alpha.
    let reflection = reflection_builder()
        .build_v1()
        .map_err(|e| ServerError::Task(format!("reflection: {e}")))?;
    let reflection_alpha = reflection_builder()
        .build_v1alpha()
        .map_err(|e| ServerError::Task(format!("reflection: {e}")))?;
    let keys = ApiKeyCheck::new(&config.api_keys, Arc::clone(&metrics));
    let guard = InterceptedService::new(GuardService::new(Arc::clone(&state)), keys.clone());

    let router = grpc_builder(&config, limits)?
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_alpha)
        .add_service(guard);
    let (stop, stopped) = oneshot::channel::<()>();
    let serve = tokio::spawn(router.serve_with_incoming_shutdown(incoming, async move {
        let _ = stopped.await;
    }));
    background.push(tokio::spawn(reload_periodically(
        Arc::clone(&state),
        Duration::from_secs(config.reload_interval_seconds),
    )));
    tracing::info!(
        %addr,
        metrics = ?metrics_addr,
        console = ?console_addr,
        tls = config.tls.is_some(),
        client_certs = config.tls.as_ref().is_some_and(|t| t.client_ca_pem.is_some()),
        api_keys = config.api_keys.len(),
        max_connections = limits.max_connections,
        similarity_entries = state.similarity_len(),
        model_version = %state.package.version,
        model_key_id = %state.package.public_key.key_id(),
        "smsguard-cloud listening"
    );
    Ok(RunningServer {
        addr,
        metrics_addr,
        console_addr,
        model_public_key: state.package.public_key.to_hex(),
        model_version: state.package.version.clone(),
        state,
        keys,
        health,
        stop,
        serve,
        background,
        grace: Duration::from_secs(config.shutdown_grace_seconds),
    })
}

/// The metrics listener, when one is configured: its own connection cap, the same timeouts.
async fn start_metrics(
    config: &ServerConfig,
    limits: ConnectionLimits,
    metrics: &Arc<Metrics>,
    background: &mut Vec<JoinHandle<()>>,
) -> Result<Option<SocketAddr>, ServerError> {
    let Some(wanted) = config.metrics_listen else {
        return Ok(None);
    };
    let (listener, bound) = bind(wanted).await?;
    let limits = ConnectionLimits {
        max_connections: config.metrics_max_connections,
        ..limits
    };
    let acceptor = Acceptor::new(listener, "metrics", limits, Arc::clone(metrics));
    background.push(tokio::spawn(metrics::serve_metrics(
        acceptor,
        Arc::clone(metrics),
    )));
    Ok(Some(bound))
}

/// The gRPC server's timeouts, keepalive and TLS, before any service is added.
fn grpc_builder(config: &ServerConfig, limits: ConnectionLimits) -> Result<Server, ServerError> {
    // Pings at a third of the idle timeout: a live client answers two before it would go idle;
    // one that does not answer within the next third is closed.
    let ping_every = limits.idle_timeout / 3;
    let mut builder = Server::builder()
        // A backstop: the handlers enforce `request_timeout_ms` themselves and answer
        // DEADLINE_EXCEEDED (tonic's own timeout answers CANCELLED).
        .timeout(Duration::from_millis(config.request_timeout_ms) + Duration::from_secs(1))
        .http2_keepalive_interval(Some(ping_every))
        .http2_keepalive_timeout(Some(ping_every));
    if let Some(tls) = &config.tls {
        let tls = tls_config(tls)?.timeout(limits.handshake_timeout);
        builder = builder
            .tls_config(tls)
            .map_err(|e| ServerError::Tls(e.to_string()))?;
    }
    Ok(builder)
}

impl RunningServer {
    /// Re-reads the rules file, the spam feed and the API keys of the config file now (what
    /// SIGHUP does); connections stay up. A removed key is refused from the next call on and its
    /// open streams stop; a config file that no longer parses keeps the old keys (and fails).
    /// The service's state, for in-process callers (tests; the console holds its own handle).
    pub fn app(&self) -> &Arc<AppState> {
        &self.state
    }

    pub async fn reload(&self) -> Result<ReloadSummary, ServerError> {
        // Keys first and whatever the rest does: a broken rules file must not delay a
        // revocation.
        let keys = self.reload_api_keys();
        let state = Arc::clone(&self.state);
        let summary = off_runtime(move || state.reload()).await;
        keys.and(summary)
    }

    fn reload_api_keys(&self) -> Result<(), ServerError> {
        if let Some(keys) = self.state.config.current_api_keys()? {
            let change = self.keys.replace_keys(&keys);
            tracing::info!(
                added = change.added,
                removed = change.removed,
                kept = change.kept,
                "API keys reloaded"
            );
        }
        Ok(())
    }

    /// Stops accepting connections, lets in-flight requests finish (up to the configured
    /// grace period), then flushes the stores.
    pub async fn shutdown(self) -> Result<(), ServerError> {
        self.health
            .set_not_serving::<SmsGuardServer<SmsGuardService>>()
            .await;
        let _ = self.stop.send(());
        let mut serve = self.serve;
        let outcome = match tokio::time::timeout(self.grace, &mut serve).await {
            Ok(joined) => joined
                .map_err(|e| ServerError::Task(e.to_string()))?
                .map_err(ServerError::from),
            Err(_) => {
                tracing::warn!("grace period over: closing the remaining connections");
                serve.abort();
                Ok(())
            }
        };
        for task in &self.background {
            task.abort();
        }
        let state = Arc::clone(&self.state);
        off_runtime(move || state.flush()).await?;
        tracing::info!("smsguard-cloud stopped; stores flushed");
        outcome
    }
}

/// Binds and starts the operator console when `console_listen` is set; its tasks join
/// `background`. The console shares the metrics listener's connection limit (both are for a
/// handful of operators, not for devices).
async fn start_console(
    config: &ServerConfig,
    limits: ConnectionLimits,
    state: &Arc<AppState>,
    background: &mut Vec<JoinHandle<()>>,
) -> Result<Option<SocketAddr>, ServerError> {
    let Some(wanted) = config.console_listen else {
        return Ok(None);
    };
    let password_hash = config
        .console_admin_password_hash
        .clone()
        .ok_or(crate::console::ConsoleError::NoPassword)?;
    let (listener, bound) = bind(wanted).await?;
    let limits = ConnectionLimits {
        max_connections: config.metrics_max_connections,
        ..limits
    };
    let acceptor = Acceptor::new(listener, "console", limits, Arc::clone(&state.metrics));
    let settings = crate::console::ConsoleSettings {
        admin_user: config.console_admin_user.clone(),
        password_hash,
        session_lifetime: Duration::from_secs(config.console_session_minutes * 60),
    };
    background.extend(crate::console::start(
        acceptor,
        bound,
        Arc::clone(state),
        settings,
    )?);
    Ok(Some(bound))
}

/// Runs blocking `work` (store I/O, model loading) off the async runtime; a task that panicked
/// becomes [`ServerError::Task`].
async fn off_runtime<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ServerError> + Send + 'static,
) -> Result<T, ServerError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ServerError::Task(e.to_string()))?
}

fn reflection_builder() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(smsguard_proto::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
}

/// File descriptors kept out of the gRPC connection budget besides the metrics listener's
/// (and, when on, the console's) `metrics_max_connections`: the stores, the listening sockets,
/// logs, blocking threads' files.
const RESERVED_FDS: usize = 64;

/// The gRPC listener's limits: `max_connections`, lowered to fit the open-files limit so that
/// the accept loop refuses connections before the process runs out of descriptors.
fn grpc_limits(config: &ServerConfig) -> ConnectionLimits {
    let console_fds = match config.console_listen {
        Some(_) => config.metrics_max_connections,
        None => 0,
    };
    let budget = open_files_limit().map(|limit| {
        limit
            .saturating_sub(RESERVED_FDS + config.metrics_max_connections + console_fds)
            .max(1)
    });
    let max_connections = match budget {
        Some(budget) if budget < config.max_connections => {
            tracing::warn!(
                configured = config.max_connections,
                lowered_to = budget,
                "max_connections lowered to fit the open-files limit (ulimit -n)"
            );
            budget
        }
        _ => config.max_connections,
    };
    ConnectionLimits {
        max_connections,
        handshake_timeout: Duration::from_millis(config.handshake_timeout_ms),
        idle_timeout: Duration::from_millis(config.idle_timeout_ms),
    }
}

/// Binds `wanted`; returns the listener and the address actually bound (a real port for 0).
async fn bind(wanted: SocketAddr) -> Result<(TcpListener, SocketAddr), ServerError> {
    let bind_error = |source| ServerError::Bind {
        addr: wanted,
        source,
    };
    let listener = TcpListener::bind(wanted).await.map_err(bind_error)?;
    let bound = listener.local_addr().map_err(bind_error)?;
    Ok((listener, bound))
}

fn tls_config(tls: &TlsConfig) -> Result<ServerTlsConfig, ServerError> {
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|e| ServerError::Tls(format!("{}: {e}", path.display())))
    };
    let identity = Identity::from_pem(read(&tls.cert_pem)?, read(&tls.key_pem)?);
    let mut config = ServerTlsConfig::new().identity(identity);
    if let Some(ca) = &tls.client_ca_pem {
        config = config
            .client_ca_root(Certificate::from_pem(read(ca)?))
            .client_auth_optional(false);
    }
    Ok(config)
}

async fn reload_periodically(state: Arc<AppState>, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let state = Arc::clone(&state);
        match tokio::task::spawn_blocking(move || state.reload()).await {
            Ok(Ok(summary)) if summary != ReloadSummary::default() => {
                tracing::info!(?summary, "reloaded")
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "reload failed"),
            Err(e) => tracing::warn!(error = %e, "reload task failed"),
        }
    }
}
