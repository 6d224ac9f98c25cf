//! Support for the end-to-end tests of smsguard (the edge engine against the real cloud server
//! on loopback). Owner: edge-cloud-link.
//!
//! - [`TestCloud`]: the real server in process, killable and restartable on the same address.
//! - [`DelayProxy`]: a TCP relay that adds latency, stalls, refuses or cuts connections.
//! - [`TamperingRelay`]: a protocol-level man in the middle that rewrites model packages.
//! - [`samples`]: made-up messages (no corpus text is copied here).
//!
//! Every helper owns its own small tokio runtime, so tests are plain `#[test]` functions that
//! call the engine's synchronous API.

pub mod proxy;
pub mod relay;
pub mod samples;
pub mod test_cloud;

use std::path::Path;
use std::time::Duration;

use smsguard_edge::cloud_link::{CloudConfig, CloudLinkError};
use smsguard_edge::engine::{Engine, EngineConfig, EngineError};

pub use proxy::DelayProxy;
pub use relay::{Tamper, TamperingRelay, MOVED_TO};
pub use test_cloud::{unused_loopback_addr, TestCloud};

/// Failures of the harness itself (not of the code under test).
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("cloud server: {0}")]
    Server(#[from] smsguard_server::ServerError),
    #[error("cloud link: {0}")]
    Link(#[from] CloudLinkError),
    #[error("engine: {0}")]
    Engine(#[from] EngineError),
}

/// A two-worker runtime for one helper (server, proxy or relay).
pub(crate) fn small_runtime(name: &str) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(name)
        .enable_all()
        .build()
}

/// Deadline for tests that expect the cloud to answer in time. Debug builds on a shared,
/// busy machine are slow, so it is generous; the slow-cloud tests use a proxy delay far above
/// it.
pub const GENEROUS_DEADLINE: Duration = Duration::from_secs(3);

/// A cloud config for `url` with the given deadline and no API key.
pub fn cloud_config(url: &str, deadline: Duration) -> CloudConfig {
    CloudConfig {
        url: url.to_owned(),
        api_key: None,
        deadline,
        ca_cert_pem: None,
        device_id: "system-test-device".to_owned(),
        device_public_key: None,
    }
}

/// Engine settings for tests: the embedded model, `cloud` (or offline), a small store cache.
pub fn engine_config(cloud: Option<CloudConfig>) -> EngineConfig {
    EngineConfig {
        cloud,
        store_cache_bytes: 1024 * 1024,
        ..EngineConfig::default()
    }
}

/// Opens an engine on `dir`, failing the test's harness on an invalid configuration.
pub fn open_engine(dir: &Path, config: EngineConfig) -> Result<Engine, HarnessError> {
    Ok(Engine::open(dir, config)?)
}

/// Milliseconds since the epoch, for `received_at_ms`.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A model folder for `ServerConfig::edge_model_dir` holding the committed fp32 model under the
/// served name, so the package the server signs differs from the engine's embedded int8 model.
pub fn other_model_dir() -> std::io::Result<tempfile::TempDir> {
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../edge/models");
    let dir = tempfile::tempdir()?;
    for (from, to) in [
        ("edge-fp32.onnx", "edge-int8.onnx"),
        ("vocab.json", "vocab.json"),
        ("manifest.json", "manifest.json"),
    ] {
        std::fs::copy(models.join(from), dir.path().join(to))?;
    }
    Ok(dir)
}
