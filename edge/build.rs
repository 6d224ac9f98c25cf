//! Embeds the shipped model only when `models/edge-int8.onnx` and `models/vocab.json` exist, so
//! the workspace still builds before the first model is trained (then `EdgeModel::embedded`
//! returns `EdgeError::NoEmbeddedModel`).

use std::path::Path;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(smsguard_embedded_model)");
    // The folder's mtime changes when a file is added or replaced.
    println!("cargo::rerun-if-changed=models");
    println!("cargo::rerun-if-changed=models/edge-int8.onnx");
    println!("cargo::rerun-if-changed=models/vocab.json");
    let shipped = ["models/edge-int8.onnx", "models/vocab.json"];
    if shipped.iter().all(|file| Path::new(file).is_file()) {
        println!("cargo::rustc-cfg=smsguard_embedded_model");
    }
}
