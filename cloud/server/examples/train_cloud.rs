//! Stand-in for `smsguard-train train-cloud` until the trainer's `main.rs` wires
//! `cloud_models::run`: compiles the same source files without the trainer's heavy
//! dependencies (candle), so the cloud models can be trained in release quickly.
//!
//! `cargo run --release -p smsguard-server --no-default-features --example train_cloud -- [ARGS]`

use clap::Parser;

#[path = "../../train/src/data.rs"]
#[allow(dead_code)]
mod data;

/// The one item of the trainer's manifest module that `cloud_models` uses.
mod manifest {
    use sha2::{Digest, Sha256};

    #[derive(Debug, Clone, serde::Serialize)]
    pub struct FileEntry {
        pub name: String,
        pub bytes: usize,
        pub sha256: String,
    }

    impl FileEntry {
        pub fn of(name: &str, contents: &[u8]) -> Self {
            FileEntry {
                name: name.to_owned(),
                bytes: contents.len(),
                sha256: hex::encode(Sha256::digest(contents)),
            }
        }
    }
}

#[path = "../../train/src/cloud_models.rs"]
mod cloud_models;

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    args: cloud_models::CloudTrainArgs,
}

fn main() -> anyhow::Result<()> {
    cloud_models::run(Cli::parse().args)
}
