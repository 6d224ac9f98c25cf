//! `watermark-trace`: names the device a leaked edge model was served to. Each model `GetModel`
//! seals to a device carries that device's watermark (`smsguard_server::watermark`); given the
//! server's signing key and model, this reads the mark out of a copied model file and prints the
//! device's public key id (its first 16 hex digits, as the server and the edge print key ids).
//!
//! ```sh
//! cargo run -p smsguard-server --bin watermark-trace -- \
//!     --signing-key /var/lib/smsguard/signing.key [--model-dir DIR] leaked.onnx
//! ```
//! Exit status 0 with `device <key id>` when a mark is found, 1 with a reason when not.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use smsguard_server::package::{read_signing_key, ModelPackage};

#[derive(Debug, Parser)]
#[command(
    name = "watermark-trace",
    about = "Name the device a leaked edge model was served to"
)]
struct Args {
    /// The server's model signing key (its `signing.key`).
    #[arg(long)]
    signing_key: PathBuf,
    /// The model folder the server serves (`edge_model_dir`); default: the compiled-in model.
    #[arg(long)]
    model_dir: Option<PathBuf>,
    /// The leaked model file (plain ONNX).
    leaked: PathBuf,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let key = read_signing_key(&args.signing_key)?;
    let package = ModelPackage::load(args.model_dir.as_deref(), &key)?;
    let leaked = std::fs::read(&args.leaked)
        .with_context(|| format!("cannot read {}", args.leaked.display()))?;
    let marker = package
        .watermarker()
        .context("the served model has no int8 weights, so its copies carry no watermark")?;
    match marker.read(package.model(), &leaked) {
        Some(mark) => {
            println!("device {mark:016x}");
            Ok(())
        }
        None => {
            eprintln!(
                "no watermark of this server's key in {} (another model, another operator, or \
                 altered where the marks lie)",
                args.leaked.display()
            );
            std::process::exit(1)
        }
    }
}
