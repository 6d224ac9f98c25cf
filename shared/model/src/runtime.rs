//! Loading the ONNX Runtime shared library (ort `load-dynamic`) and the one ort environment of
//! the process.
//!
//! Search order: `$ORT_DYLIB_PATH` when set (an explicit choice: nothing else is tried), else
//! `<workspace>/.ort/libonnxruntime.so` as provisioned by `edge/provision-onnxruntime.sh` (fixed
//! at compile time), else the library next to the running executable (how an app ships it).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ort::environment::Environment;

use crate::error::ModelError;

/// Environment variable naming the ONNX Runtime library explicitly.
pub const ORT_DYLIB_ENV: &str = "ORT_DYLIB_PATH";

/// Where `edge/provision-onnxruntime.sh` puts the library in this workspace.
const WORKSPACE_LIBRARY: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../.ort/libonnxruntime.so");

static ENVIRONMENT: OnceLock<Environment> = OnceLock::new();
/// Serialises first-time initialisation so two threads never load the library concurrently.
static INIT_LOCK: Mutex<()> = Mutex::new(());

/// Loads ONNX Runtime from the default search path and creates the process environment.
/// Idempotent: later calls return at once. A failure is not remembered, so a caller may fix the
/// environment (e.g. set `ORT_DYLIB_PATH`) and retry.
pub fn init_runtime() -> Result<(), ModelError> {
    if ENVIRONMENT.get().is_some() {
        return Ok(());
    }
    let library = locate_library(std::env::var_os(ORT_DYLIB_ENV), &default_candidates())?;
    init_runtime_from(&library)
}

/// Loads ONNX Runtime from `library` and creates the process environment. The path is checked
/// even when a runtime is already loaded (one per process), so a bad path is always reported.
pub fn init_runtime_from(library: &Path) -> Result<(), ModelError> {
    if !library.is_file() {
        return Err(ModelError::RuntimeMissing {
            searched: vec![library.to_path_buf()],
        });
    }
    let _guard = INIT_LOCK.lock().map_err(|_| ModelError::Poisoned)?;
    if ENVIRONMENT.get().is_some() {
        return Ok(());
    }
    let builder = ort::init_from(library).map_err(|e| ModelError::RuntimeLoad {
        path: library.to_path_buf(),
        reason: e.to_string(),
    })?;
    let environment = builder
        .with_name("smsguard")
        .with_telemetry(false)
        .build()
        .map_err(ModelError::ort("create the environment"))?;
    // Only this function sets the cell, under the lock, so it is still empty here.
    let _ = ENVIRONMENT.set(environment);
    Ok(())
}

/// The process environment, initialising the runtime on first use.
pub(crate) fn environment() -> Result<&'static Environment, ModelError> {
    init_runtime()?;
    ENVIRONMENT.get().ok_or_else(|| ModelError::RuntimeMissing {
        searched: Vec::new(),
    })
}

/// Picks the library: the explicit override if given (it must exist), else the first existing
/// candidate. The error lists every place looked at.
pub fn locate_library(
    explicit: Option<OsString>,
    candidates: &[PathBuf],
) -> Result<PathBuf, ModelError> {
    let searched: Vec<PathBuf> = match explicit.filter(|p| !p.is_empty()) {
        Some(path) => vec![PathBuf::from(path)],
        None => candidates.to_vec(),
    };
    match searched.iter().find(|p| p.is_file()) {
        Some(found) => Ok(found.clone()),
        None => Err(ModelError::RuntimeMissing { searched }),
    }
}

/// The workspace copy, then the library next to the executable.
pub fn default_candidates() -> Vec<PathBuf> {
    let mut candidates = vec![PathBuf::from(WORKSPACE_LIBRARY)];
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
    {
        let name = format!(
            "{}onnxruntime{}",
            std::env::consts::DLL_PREFIX,
            std::env::consts::DLL_SUFFIX
        );
        candidates.push(dir.join(name));
    }
    candidates
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_path_wins_and_is_not_silently_replaced() {
        let existing = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        let err = locate_library(
            Some("/nonexistent/libonnxruntime.so".into()),
            std::slice::from_ref(&existing),
        )
        .unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("/nonexistent/libonnxruntime.so"),
            "{message}"
        );
        assert!(
            message.contains(crate::error::PROVISION_SCRIPT),
            "{message}"
        );
        assert_eq!(
            locate_library(None, &[PathBuf::from("/nope"), existing.clone()]).unwrap(),
            existing
        );
        // An empty variable counts as unset.
        assert_eq!(
            locate_library(Some(OsString::new()), std::slice::from_ref(&existing)).unwrap(),
            existing
        );
    }

    #[test]
    fn default_candidates_start_with_the_workspace_copy() {
        let candidates = default_candidates();
        assert!(candidates[0].ends_with(".ort/libonnxruntime.so"));
        assert!(candidates.len() >= 2);
    }
}
