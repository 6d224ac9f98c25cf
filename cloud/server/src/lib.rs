//! The smsguard cloud service (`smsguard-cloud`): a tonic gRPC server for protocol v1
//! (`Classify`, `ClassifyStream`, `Report`, `SyncCache`, `GetModel`) with health, reflection,
//! TLS, API keys, rate limits, Prometheus metrics, hot reload and graceful shutdown; and the
//! in-process evaluation of the fused cloud verdict (`smsguard-cloud eval`).
//!
//! Start one in process with [`spawn`] (`ServerConfig::for_tests` for a loopback test server),
//! or run the binary: `smsguard-cloud serve --plaintext --no-seed --listen 127.0.0.1:0
//! --data-dir DIR`, which prints `listening ADDR` (and `metrics ADDR`) as its first stdout
//! lines, stops gracefully on SIGTERM / ctrl-c and reloads rules, the spam feed and the API keys
//! of its config file on SIGHUP.
//! With `--console-listen ADDR` it also serves the operator console ([`console`]): a web UI
//! behind an admin password.
//! Settings: [`ServerConfig`] (TOML file, `SMSGUARD_*` variables, flags; see
//! `cloud.example.toml`).
//!
//! Model versions: `GetModel`'s manifest version is the first 16 hex digits of the edge model's
//! SHA-256. Report ids: a `Report` carrying only a fingerprint id is resolved from the
//! fingerprints of recently classified messages; otherwise its 64 MinHash slots are needed.

pub mod auth;
pub mod config;
pub mod connections;
pub mod console;
pub mod error;
pub mod eval;
pub mod metrics;
pub mod operator_list;
pub mod package;
pub mod private;
pub mod private_similarity;
pub mod report_budget;
pub mod server;
pub mod service;
pub mod state;
pub mod state_backend;
pub mod stream;
pub mod sync;
pub mod watermark;

pub use config::{ApiKeyConfig, ServerConfig, TlsConfig};
pub use error::{RequestError, ServerError};
pub use server::{spawn, RunningServer};
