//! Embeds the shipped cloud models only when they exist (`cloud/models/multiclass.bin`,
//! `cloud/models/subword.json`, `cloud/models/lexical.bin`, `cloud/models/fusion.json`), so the
//! crate builds before the first training run; then `MulticlassModel::embedded`,
//! `LexicalModel::embedded` / `FusionModel::embedded` return a "no embedded model" error.

use std::path::Path;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(smsguard_embedded_multiclass)");
    println!("cargo::rustc-check-cfg=cfg(smsguard_embedded_fusion)");
    println!("cargo::rustc-check-cfg=cfg(smsguard_embedded_subwords)");
    println!("cargo::rustc-check-cfg=cfg(smsguard_embedded_lexical)");
    println!("cargo::rerun-if-changed=../models");
    println!("cargo::rerun-if-changed=../models/multiclass.bin");
    println!("cargo::rerun-if-changed=../models/fusion.json");
    println!("cargo::rerun-if-changed=../models/subword.json");
    println!("cargo::rerun-if-changed=../models/lexical.bin");
    if Path::new("../models/multiclass.bin").is_file() {
        println!("cargo::rustc-cfg=smsguard_embedded_multiclass");
    }
    if Path::new("../models/subword.json").is_file() {
        println!("cargo::rustc-cfg=smsguard_embedded_subwords");
    }
    if Path::new("../models/lexical.bin").is_file() {
        println!("cargo::rustc-cfg=smsguard_embedded_lexical");
    }
    if Path::new("../models/fusion.json").is_file() {
        println!("cargo::rustc-cfg=smsguard_embedded_fusion");
    }
}
