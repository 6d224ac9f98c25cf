//! The operator console: a small web UI on its own listener (`console_listen`, off by default,
//! loopback unless `console_allow_remote`), served by axum on the tokio/hyper stack tonic
//! already uses.
//!
//! Pages are rendered on the server as plain HTML with inline SVG charts and one embedded
//! stylesheet: no script, no third-party asset, nothing fetched at run time, and a strict
//! Content-Security-Policy (`default-src 'none'`) that would block anything else. Server
//! rendering keeps the whole console in this crate's Rust (one binary, one language, no front-end
//! build) and its pages work with JavaScript off.
//!
//! Pages: **Overview** (verdicts by label and action, verdicts per second by label over the last
//! hour,
//! the degraded share, latency percentiles, model versions: all from the server's metrics
//! registry), **Try a message** (the fused verdict and each scorer's contribution, scored by the
//! same call as gRPC `Classify`; the text is neither stored nor logged), **Rules** (the rules
//! file on disk, its validation error if any, its rules, a reload button) and **Audit** (every
//! console action from the `console_audit` tree of the store), **Campaigns** (clusters of
//! reported near-duplicate fingerprints, [`campaigns`]) and **Reports** (votes by cluster, with
//! whitelist and blacklist actions, [`crate::operator_list`]). See [`auth`] for the
//! credential, sessions and CSRF tokens.

pub mod audit;
pub mod auth;
mod campaign_pages;
pub mod campaigns;
mod charts;
mod handlers;
mod list_handlers;
pub mod pages;
pub mod rules;
pub mod stats;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::connections::{Acceptor, GuardedStream};
use crate::state::AppState;
use audit::{AuditError, AuditLog};
use auth::{PasswordHash, PasswordHashError, Sessions};
use stats::History;

/// Why the console cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("console_admin_password_hash is required when console_listen is set")]
    NoPassword,
    #[error(transparent)]
    PasswordHash(#[from] PasswordHashError),
    #[error(transparent)]
    Audit(#[from] AuditError),
}

/// The console's settings, taken from [`crate::ServerConfig`].
#[derive(Debug, Clone)]
pub struct ConsoleSettings {
    pub admin_user: String,
    pub password_hash: String,
    pub session_lifetime: Duration,
}

/// What every console request shares.
#[derive(Debug)]
pub struct Console {
    app: Arc<AppState>,
    admin_user: String,
    password: PasswordHash,
    sessions: Sessions,
    audit: AuditLog,
    history: Arc<History>,
}

/// The accepted connections of the console listener, with their peer addresses, within the
/// listener's connection limit and timeouts (the same [`Acceptor`] as the other listeners).
struct ConsoleListener {
    acceptor: Acceptor,
    addr: SocketAddr,
}

impl axum::serve::Listener for ConsoleListener {
    type Io = GuardedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (GuardedStream, SocketAddr) {
        loop {
            let (stream, slot) = self.acceptor.next().await;
            // A peer that is already gone has no address; its connection is dropped.
            let Ok(peer) = stream.peer_addr() else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            return (self.acceptor.guard(stream, slot), peer);
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.addr)
    }
}

/// The client address of a console request (axum's `ConnectInfo` for [`ConsoleListener`]).
#[derive(Debug, Clone, Copy)]
struct Peer(SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, ConsoleListener>>
    for Peer
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, ConsoleListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

/// Starts serving the console on `acceptor` (bound to `addr`) and sampling the verdict history;
/// returns the two tasks (aborted at shutdown).
pub fn start(
    acceptor: Acceptor,
    addr: SocketAddr,
    app: Arc<AppState>,
    settings: ConsoleSettings,
) -> Result<Vec<JoinHandle<()>>, ConsoleError> {
    let console = Arc::new(Console {
        password: PasswordHash::parse(&settings.password_hash)?,
        admin_user: settings.admin_user,
        sessions: Sessions::new(settings.session_lifetime),
        audit: AuditLog::open(&app.sync)?,
        history: Arc::default(),
        app,
    });
    let sampler = tokio::spawn(stats::sample_forever(
        Arc::clone(&console.app.metrics),
        Arc::clone(&console.history),
    ));
    let router = handlers::router(Arc::clone(&console));
    let listener = ConsoleListener { acceptor, addr };
    let serve = tokio::spawn(async move {
        let service = router.into_make_service_with_connect_info::<Peer>();
        if let Err(error) = axum::serve(listener, service).await {
            tracing::warn!(%error, "operator console stopped");
        }
    });
    Ok(vec![sampler, serve])
}
