//! The shipped model is compiled in encrypted: no run of its plaintext bytes is in the built
//! code, yet it loads and is byte for byte the shipped file.

use smsguard_model::{ContainerError, ContainerKey, EdgeModel, ModelError};

const SHIPPED_MODEL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../edge/models/edge-int8.onnx"
);
/// Length of each plaintext window searched for: long enough that a match is no coincidence.
const WINDOW: usize = 64;
/// Windows taken across the model (its start, its end and evenly between).
const WINDOWS: usize = 32;

#[test]
fn no_window_of_the_plaintext_model_is_in_this_test_executable() {
    let Ok(model) = std::fs::read(SHIPPED_MODEL) else {
        eprintln!("no shipped model in this checkout: nothing to look for");
        return;
    };
    // Loading it proves the embedded model is linked into this very executable.
    let loaded = EdgeModel::embedded().expect("the embedded model loads");
    assert!(!loaded.metadata().labels.is_empty());
    let executable = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    let step = (model.len() - WINDOW) / (WINDOWS - 1);
    for start in (0..WINDOWS).map(|i| i * step) {
        let window = &model[start..start + WINDOW];
        assert!(
            memchr::memmem::find(&executable, window).is_none(),
            "the executable holds the plaintext model bytes {start}..{}",
            start + WINDOW
        );
    }
}

#[test]
fn the_embedded_model_is_the_shipped_file() {
    let Ok(model) = std::fs::read(SHIPPED_MODEL) else {
        return;
    };
    let expected = sha256_hex(&model);
    assert_eq!(EdgeModel::embedded_sha256(), Some(expected.as_str()));
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[test]
fn a_sealed_model_loads_only_with_its_key() {
    let (Ok(model), Ok(vocab)) = (
        std::fs::read(SHIPPED_MODEL),
        std::fs::read_to_string(SHIPPED_MODEL.replace("edge-int8.onnx", "vocab.json")),
    ) else {
        return;
    };
    let key = ContainerKey::generate();
    let container = smsguard_container::seal(&key, &model).unwrap();
    let loaded = EdgeModel::from_container(&container, &key, &vocab).expect("opens and loads");
    assert!(!loaded.metadata().labels.is_empty());
    let other = ContainerKey::generate();
    assert!(matches!(
        EdgeModel::from_container(&container, &other, &vocab),
        Err(ModelError::Container(ContainerError::WrongKey { .. }))
    ));
    // Plain ONNX is not a container: refused before ONNX Runtime sees it.
    assert!(matches!(
        EdgeModel::from_container(&model, &key, &vocab),
        Err(ModelError::Container(ContainerError::BadMagic))
    ));
}
