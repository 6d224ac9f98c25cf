//! Crash-test helper for `tests/tests/system/install_crash.rs`: installs model updates into one
//! edge store for ever, alternating between two clouds that serve different models signed by one
//! key, and prints `installed N` after each. Every round opens the engine afresh and closes it, so
//! a SIGKILL from the test lands in an open, a download, an install or a close.
//!
//! Usage: `model-install-loop DATA_DIR PINNED_KEY URL_A URL_B`

use std::path::PathBuf;

use smsguard_edge::engine::{Engine, ModelUpdate};
use smsguard_system_tests::{cloud_config, engine_config, GENEROUS_DEADLINE};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, pinned, url_a, url_b] = args.as_slice() else {
        return Err("usage: model-install-loop DATA_DIR PINNED_KEY URL_A URL_B".into());
    };
    let dir = PathBuf::from(dir);
    for (round, url) in [url_a, url_b].into_iter().cycle().enumerate() {
        let mut config = engine_config(Some(cloud_config(url, GENEROUS_DEADLINE)));
        config.pinned_model_key = Some(pinned.clone());
        let engine = Engine::open(&dir, config)?;
        let update = engine.update_model()?;
        engine.close()?;
        if let ModelUpdate::Updated { version, .. } = update {
            println!("installed {round} {version}");
        }
    }
    Ok(())
}
