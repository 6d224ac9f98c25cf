//! Embeds the shipped model only when `edge/models/edge-int8.onnx` and `edge/models/vocab.json`
//! exist, so the workspace still builds before the first model is trained (then
//! `EdgeModel::embedded` returns `ModelError::NoEmbeddedModel`). The files stay beside the edge
//! crate that ships them; this crate only compiles them in.

use std::path::Path;

/// The edge's model folder, relative to this crate's manifest directory.
const SHIPPED_DIR: &str = "../../edge/models";

fn main() {
    println!("cargo::rustc-check-cfg=cfg(smsguard_embedded_model)");
    // The folder's mtime changes when a file is added or replaced.
    println!("cargo::rerun-if-changed={SHIPPED_DIR}");
    let shipped = ["edge-int8.onnx", "vocab.json"].map(|name| format!("{SHIPPED_DIR}/{name}"));
    for file in &shipped {
        println!("cargo::rerun-if-changed={file}");
    }
    if shipped.iter().all(|file| Path::new(file).is_file()) {
        println!("cargo::rustc-cfg=smsguard_embedded_model");
    }
}
