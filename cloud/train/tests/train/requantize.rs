//! `requantize` reads the float weights back out of an fp32 export and edits a manifest's file
//! entry in place.

use onnx_protobuf::ModelProto;
use protobuf::Message;
use smsguard_train::manifest::FileEntry;
use smsguard_train::onnx_export::{export_fp32, ReferenceCnn};
use smsguard_train::quantize::{export_int8_calibrated, synthetic_ids};
use smsguard_train::requantize::{float_initializers, replace_file_entry};

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
fn a_file_entry_is_replaced_in_place_and_nothing_else_changes() {
    let text =
        "{\n  \"files\": [\n    {\"name\": \"a.onnx\", \"bytes\": 10, \"sha256\": \"aa\"},\n    \
                {\"name\": \"edge-int8.onnx\", \"bytes\": 10, \"sha256\": \"bb\"}\n  ],\n  \
                \"accuracy\": 0.9827586206896551\n}\n";
    let old = FileEntry {
        name: "edge-int8.onnx".into(),
        bytes: 10,
        sha256: "bb".into(),
    };
    let new = FileEntry {
        name: "edge-int8.onnx".into(),
        bytes: 12,
        sha256: "cc".into(),
    };
    let updated = replace_file_entry(text, &old, &new).unwrap();
    assert!(updated.contains("{\"name\": \"a.onnx\", \"bytes\": 10, \"sha256\": \"aa\"}"));
    assert!(updated.contains("{\"name\": \"edge-int8.onnx\", \"bytes\": 12, \"sha256\": \"cc\"}"));
    assert!(
        updated.contains("0.9827586206896551"),
        "other figures keep every digit"
    );
    let missing = FileEntry {
        name: "nope.onnx".into(),
        ..old
    };
    assert!(replace_file_entry(text, &missing, &new).is_err());
}
