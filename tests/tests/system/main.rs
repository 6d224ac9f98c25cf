//! End-to-end scenarios: the real edge engine (and its cloud link) against the real cloud
//! server on loopback. Each test starts its own server (a fraction of a second) so kills,
//! restarts, keys and TTLs never leak between tests; senders differ per test as well.

mod errors;
mod feedback;
mod install_crash;
mod killed;
mod knowledge_sync;
mod link;
mod model;
mod offline;
mod online;
mod private_engine;
mod private_mode;
mod private_params;
mod private_similarity;
mod queue;
mod slow;
mod tls;

use std::path::Path;
use std::time::Duration;

use smsguard_edge::engine::{Engine, EngineConfig};
use smsguard_system_tests::{cloud_config, engine_config, open_engine, GENEROUS_DEADLINE};

/// An engine on `dir` talking to `url` with a deadline long enough for a debug-build server.
pub fn online_engine(dir: &Path, url: &str) -> Engine {
    open_engine(dir, online_config(url, GENEROUS_DEADLINE)).expect("engine opens")
}

pub fn online_config(url: &str, deadline: Duration) -> EngineConfig {
    engine_config(Some(cloud_config(url, deadline)))
}
