use std::path::Path;

use smsguard_model::error::PROVISION_SCRIPT;
use smsguard_model::runtime::{init_runtime, init_runtime_from, locate_library};
use smsguard_model::ModelError;

#[test]
fn missing_library_names_the_provisioning_script() {
    let err = init_runtime_from(Path::new("/nonexistent/dir/libonnxruntime.so")).unwrap_err();
    assert!(matches!(err, ModelError::RuntimeMissing { .. }));
    let message = err.to_string();
    assert!(message.contains(PROVISION_SCRIPT), "{message}");
    assert!(
        message.contains("/nonexistent/dir/libonnxruntime.so"),
        "{message}"
    );
}

#[test]
fn nothing_found_lists_every_candidate() {
    let candidates = ["/nope/a.so".into(), "/nope/b.so".into()];
    let message = locate_library(None, &candidates).unwrap_err().to_string();
    assert!(
        message.contains("/nope/a.so") && message.contains("/nope/b.so"),
        "{message}"
    );
    assert!(message.contains(PROVISION_SCRIPT));
}

#[test]
fn init_is_idempotent() {
    init_runtime().unwrap();
    init_runtime().unwrap();
}
