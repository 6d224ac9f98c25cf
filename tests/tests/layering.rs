//! ARCHITECTURE.md's layering invariant, read from `cargo metadata`: no cloud crate depends on an
//! edge crate, or the reverse; they meet only in `shared/` (and the schema in `proto/`), and a
//! shared crate depends on nothing above it. Every kind of dependency counts (normal, dev,
//! build), since a test-only arrow still makes one side build the other.

use std::path::{Component, Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// Where a workspace crate lives, by the first folder of its path under the workspace root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layer {
    /// `shared/` and `proto/`: the bottom floor both sides build on.
    Shared,
    Edge,
    Cloud,
    /// `tests/`: the end-to-end tests, which run the edge against the cloud on purpose.
    SystemTests,
}

impl Layer {
    fn of(relative: &Path) -> Option<Layer> {
        let first = match relative.components().next()? {
            Component::Normal(name) => name.to_str()?,
            _ => return None,
        };
        match first {
            "shared" | "proto" => Some(Layer::Shared),
            "edge" => Some(Layer::Edge),
            "cloud" => Some(Layer::Cloud),
            "tests" => Some(Layer::SystemTests),
            _ => None,
        }
    }

    /// Whether a crate of this layer may depend on a crate of `other`.
    fn may_depend_on(self, other: Layer) -> bool {
        match (self, other) {
            (_, Layer::Shared) | (Layer::SystemTests, _) => true,
            (Layer::Shared, _) | (_, Layer::SystemTests) => false,
            (from, to) => from == to,
        }
    }
}

/// One path dependency between workspace crates.
#[derive(Debug)]
struct Arrow {
    from: String,
    from_dir: PathBuf,
    to: String,
    to_dir: PathBuf,
}

fn workspace_metadata() -> Value {
    let output = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo metadata");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON")
}

/// Every dependency of a workspace member on a crate by path, as directories relative to the
/// workspace root.
fn path_arrows(metadata: &Value) -> Vec<Arrow> {
    let root = Path::new(metadata["workspace_root"].as_str().expect("workspace_root"));
    let relative = |dir: &Path| dir.strip_prefix(root).unwrap_or(dir).to_path_buf();
    let mut arrows = Vec::new();
    for package in metadata["packages"].as_array().expect("packages") {
        let manifest = Path::new(package["manifest_path"].as_str().expect("manifest_path"));
        let from_dir = relative(manifest.parent().expect("manifest in a folder"));
        for dependency in package["dependencies"].as_array().expect("dependencies") {
            let Some(path) = dependency["path"].as_str() else {
                continue;
            };
            arrows.push(Arrow {
                from: package["name"].as_str().unwrap_or("?").to_string(),
                from_dir: from_dir.clone(),
                to: dependency["name"].as_str().unwrap_or("?").to_string(),
                to_dir: relative(Path::new(path)),
            });
        }
    }
    arrows
}

#[test]
fn edge_and_cloud_meet_only_in_shared() {
    let metadata = workspace_metadata();
    let arrows = path_arrows(&metadata);
    let mut layers_seen = Vec::new();
    let mut violations = Vec::new();
    for arrow in &arrows {
        let from = Layer::of(&arrow.from_dir);
        let to = Layer::of(&arrow.to_dir);
        let (Some(from), Some(to)) = (from, to) else {
            violations.push(format!(
                "{} ({}) -> {} ({}): a folder outside shared/, proto/, edge/, cloud/, tests/; \
                 place it in a layer and update ARCHITECTURE.md",
                arrow.from,
                arrow.from_dir.display(),
                arrow.to,
                arrow.to_dir.display()
            ));
            continue;
        };
        layers_seen.extend([from, to]);
        if !from.may_depend_on(to) {
            violations.push(format!(
                "{} ({}, {from:?}) depends on {} ({}, {to:?})",
                arrow.from,
                arrow.from_dir.display(),
                arrow.to,
                arrow.to_dir.display()
            ));
        }
    }
    // Guards against passing by seeing nothing (a changed layout or metadata format).
    for layer in [Layer::Shared, Layer::Edge, Layer::Cloud] {
        assert!(
            layers_seen.contains(&layer),
            "no dependency of or on a {layer:?} crate found in {} path dependencies",
            arrows.len()
        );
    }
    assert!(
        violations.is_empty(),
        "layering broken (ARCHITECTURE.md: edge and cloud meet only in shared/):\n{}",
        violations.join("\n")
    );
}

/// ARCHITECTURE.md: nothing but `smsguard-model` talks to ONNX Runtime. Only its normal
/// dependency on `ort` is allowed; the trainer's parity test and example may link `ort` as a
/// dev-dependency to check the exported graphs directly.
#[test]
fn only_the_model_crate_links_onnx_runtime() {
    let metadata = workspace_metadata();
    let mut linking = Vec::new();
    for package in metadata["packages"].as_array().expect("packages") {
        let name = package["name"].as_str().unwrap_or("?");
        for dependency in package["dependencies"].as_array().expect("dependencies") {
            let is_ort = dependency["name"].as_str() == Some("ort");
            let is_dev = dependency["kind"].as_str() == Some("dev");
            if is_ort && !is_dev {
                linking.push(name.to_string());
            }
        }
    }
    assert_eq!(linking, ["smsguard-model"], "crates that link ort");
}

/// ARCHITECTURE.md: the phone's engine links `smsguard-eval` for its metrics and perf figures
/// only, never its `report` feature (plotters, system fonts), which only the cloud's evals use.
#[test]
fn the_edge_links_evaluation_without_its_report_files() {
    let metadata = workspace_metadata();
    let mut edge_uses = 0;
    for package in metadata["packages"].as_array().expect("packages") {
        let manifest = package["manifest_path"].as_str().expect("manifest_path");
        let root = metadata["workspace_root"].as_str().expect("workspace_root");
        let dir = Path::new(manifest).parent().expect("manifest in a folder");
        if Layer::of(dir.strip_prefix(root).unwrap_or(dir)) != Some(Layer::Edge) {
            continue;
        }
        for dependency in package["dependencies"].as_array().expect("dependencies") {
            if dependency["name"].as_str() != Some("smsguard-eval") {
                continue;
            }
            edge_uses += 1;
            let features = dependency["features"].as_array().expect("features");
            assert!(
                dependency["uses_default_features"] == false
                    && !features.iter().any(|f| f == "report"),
                "{} links smsguard-eval with its report feature",
                package["name"]
            );
        }
    }
    assert!(edge_uses > 0, "no edge crate links smsguard-eval");
}

#[test]
fn the_layer_rule_forbids_each_crossing() {
    use Layer::*;
    assert!(Edge.may_depend_on(Shared) && Cloud.may_depend_on(Shared));
    assert!(Edge.may_depend_on(Edge) && Cloud.may_depend_on(Cloud));
    assert!(!Cloud.may_depend_on(Edge) && !Edge.may_depend_on(Cloud));
    assert!(!Shared.may_depend_on(Edge) && !Shared.may_depend_on(Cloud));
    assert!(!Edge.may_depend_on(SystemTests) && !Shared.may_depend_on(SystemTests));
    assert!(SystemTests.may_depend_on(Edge) && SystemTests.may_depend_on(Cloud));
    assert_eq!(Layer::of(Path::new("cloud/server")), Some(Cloud));
    assert_eq!(Layer::of(Path::new("edge/jni")), Some(Edge));
    assert_eq!(Layer::of(Path::new("shared/model")), Some(Shared));
    assert_eq!(Layer::of(Path::new("elsewhere/x")), None);
}
