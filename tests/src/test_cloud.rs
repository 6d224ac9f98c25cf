//! [`TestCloud`]: the real `smsguard-server` in process on a loopback port, on a runtime of its
//! own so a test can kill it (drop every task and connection at once) and restart it on the
//! same address with the same data directory.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use smsguard_server::{RunningServer, ServerConfig, ServerError};
use tokio::runtime::Runtime;

use crate::HarnessError;

/// How long a restart keeps retrying while the old listener's port is being released.
const REBIND_PATIENCE: Duration = Duration::from_secs(10);

/// A cloud server for one test (or one module). Killed when dropped.
#[derive(Debug)]
pub struct TestCloud {
    config: ServerConfig,
    /// Holds the data directory unless the caller supplied one.
    _dir: Option<tempfile::TempDir>,
    running: Option<(Runtime, RunningServer)>,
    addr: SocketAddr,
    model_public_key: String,
    model_version: String,
}

impl TestCloud {
    /// Starts `ServerConfig::for_tests` on a fresh data directory, after `configure` adjusts it.
    pub fn start(configure: impl FnOnce(&mut ServerConfig)) -> Result<TestCloud, HarnessError> {
        let dir = tempfile::tempdir()?;
        let mut config = ServerConfig::for_tests(dir.path());
        // The phones of these tests are anonymous, one reporter together: a quorum of one lets
        // their reports act (cloud/server/tests/server/poisoning.rs tests the real quorum).
        config.report_quorum = 1;
        configure(&mut config);
        Self::start_with(config, Some(dir))
    }

    /// Starts exactly `config` (its data directory is the caller's).
    pub fn start_with(
        config: ServerConfig,
        dir: Option<tempfile::TempDir>,
    ) -> Result<TestCloud, HarnessError> {
        let (runtime, server) = launch(&config)?;
        let mut cloud = TestCloud {
            addr: server.addr,
            model_public_key: server.model_public_key.clone(),
            model_version: server.model_version.clone(),
            config,
            _dir: dir,
            running: Some((runtime, server)),
        };
        // Restarts reuse the bound port rather than another ephemeral one.
        cloud.config.listen = cloud.addr;
        Ok(cloud)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn data_dir(&self) -> &Path {
        &self.config.data_dir
    }

    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Hex Ed25519 key that signs this server's model packages (what an edge pins).
    pub fn model_public_key(&self) -> &str {
        &self.model_public_key
    }

    /// The Prometheus listener, when `metrics_listen` was configured (it moves on a restart).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.running
            .as_ref()
            .and_then(|(_, server)| server.metrics_addr)
    }

    /// Calls of `rpc` the server has answered (any status), from its Prometheus counters;
    /// needs `metrics_listen`.
    pub fn requests_answered(&self, rpc: &str) -> Result<u64, HarnessError> {
        use std::io::{Read, Write};
        let addr = self.metrics_addr().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, "no metrics listener")
        })?;
        let mut stream = std::net::TcpStream::connect(addr)?;
        stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
        let mut text = String::new();
        stream.read_to_string(&mut text)?;
        let prefix = format!("smsguard_requests_total{{rpc=\"{rpc}\",");
        Ok(text
            .lines()
            .filter(|line| line.starts_with(&prefix))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
            .sum())
    }

    /// Version of the model package the server serves.
    pub fn model_version(&self) -> &str {
        &self.model_version
    }

    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Stops the server abruptly: every task is dropped and every connection closed, with no
    /// graceful drain (the closest in-process stand-in for a crash).
    pub fn kill(&mut self) {
        if let Some((runtime, server)) = self.running.take() {
            drop(server);
            runtime.shutdown_timeout(Duration::from_secs(5));
        }
    }

    /// Graceful shutdown: in-flight requests finish and the stores are flushed.
    pub fn stop(&mut self) -> Result<(), HarnessError> {
        if let Some((runtime, server)) = self.running.take() {
            let outcome = runtime.block_on(server.shutdown());
            runtime.shutdown_timeout(Duration::from_secs(5));
            outcome?;
        }
        Ok(())
    }

    /// Starts the server again on the same address and data directory (kills it first if it
    /// is still running).
    pub fn restart(&mut self) -> Result<(), HarnessError> {
        self.kill();
        let give_up = Instant::now() + REBIND_PATIENCE;
        loop {
            match launch(&self.config) {
                Ok(running) => {
                    self.running = Some(running);
                    return Ok(());
                }
                Err(HarnessError::Server(ServerError::Bind { .. })) if Instant::now() < give_up => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(other) => return Err(other),
            }
        }
    }
}

impl Drop for TestCloud {
    fn drop(&mut self) {
        self.kill();
    }
}

fn launch(config: &ServerConfig) -> Result<(Runtime, RunningServer), HarnessError> {
    let runtime = crate::small_runtime("test-cloud")?;
    let server = runtime.block_on(smsguard_server::spawn(config.clone()))?;
    Ok((runtime, server))
}

/// A loopback address nothing listens on (bound once, then released), for "cloud down" tests
/// that later start a server there.
pub fn unused_loopback_addr() -> Result<SocketAddr, HarnessError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}
