//! `requantize` reads the float weights back out of an fp32 export and records the new int8 file
//! in the manifest.

use onnx_protobuf::ModelProto;
use protobuf::Message;
use std::path::Path;

use smsguard_train::manifest::{FileEntry, Manifest};
use smsguard_train::onnx_export::{export_fp32, ReferenceCnn};
use smsguard_train::quantize::{export_int8_calibrated, synthetic_ids};
use smsguard_train::requantize::float_initializers;

use super::parity::{mid_config, random_weights};

#[test]
fn float_weights_read_back_from_fp32_give_the_same_int8_model() {
    let cfg = mid_config();
    let weights = random_weights(&cfg, 9);
    let metadata = vec![("smsguard.example".to_string(), "kept".to_string())];
    let fp32 = export_fp32(&cfg, &weights, &metadata).expect("fp32 export");
    let model = ModelProto::parse_from_bytes(&fp32).expect("parse");
    let read_back = float_initializers(&model).expect("initializers");
    // Every weight comes back (the exporter's spam mask is not one), in any order.
    ReferenceCnn::from_named(&cfg, &read_back).expect("a complete, valid weight list");
    let calibration = synthetic_ids(&cfg, 32, 5);
    let original = export_int8_calibrated(&cfg, &weights, &metadata, &calibration).unwrap();
    let again = export_int8_calibrated(&cfg, &read_back, &metadata, &calibration).unwrap();
    assert!(original == again, "the re-exported int8 model differs");
}

#[test]
fn a_file_entry_is_replaced_and_nothing_else_changes() {
    // The shipped manifest parses and prints back byte for byte (serde_json float_roundtrip),
    // so rewriting it after one file changed keeps every other figure's digits.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../edge/models/manifest.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut manifest = Manifest::read(&path).unwrap();
    assert_eq!(manifest.to_json().unwrap(), text);

    let before = manifest.clone();
    manifest.set_file("edge-int8.onnx", b"new bytes").unwrap();
    assert_eq!(
        manifest.file("edge-int8.onnx"),
        Some(&FileEntry::of("edge-int8.onnx", b"new bytes"))
    );
    let unchanged = |m: &Manifest| {
        m.files
            .iter()
            .filter(|f| f.name != "edge-int8.onnx")
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(unchanged(&manifest), unchanged(&before));
    assert_eq!(manifest.dev_metrics, before.dev_metrics);
    assert!(manifest.set_file("nope.onnx", b"x").is_err());
}
